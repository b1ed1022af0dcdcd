"""The identity providers and who may still log in with a password, from environment variables:

    OIDC_<NAME>_ISSUER, OIDC_<NAME>_CLIENT_ID, OIDC_<NAME>_CLIENT_SECRET, OIDC_<NAME>_LABEL,
    OIDC_<NAME>_MFA_VALUES (optional), OIDC_<NAME>_ROLES (optional), LOCAL_LOGIN_ROLES (optional)

Read without Flask, so that a wrong setting stops the app at start with a sentence naming it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

SUFFIXES = ("_ISSUER", "_CLIENT_ID", "_CLIENT_SECRET", "_LABEL", "_MFA_VALUES", "_ROLES")
NAME = re.compile(r"[A-Z0-9]+(?:_[A-Z0-9]+)*")


@dataclass(frozen=True)
class Provider:
    name: str  # lower-case, as in /login/oidc/<name>
    issuer: str
    client_id: str
    client_secret: str
    label: str  # the button's text
    mfa_values: frozenset[str]  # `acr` or `amr` values that count as a second factor
    roles: frozenset[str] | None  # None: every role may use it

    @property
    def origin(self) -> str:
        parts = urlsplit(self.issuer)
        return f"{parts.scheme}://{parts.netloc}"

    def allows(self, roles: set[str]) -> bool:
        return self.roles is None or bool(self.roles & roles)


def _list(value: str) -> list[str]:
    return [part.strip() for part in value.replace(" ", ",").split(",") if part.strip()]


def _roles(value: str, setting: str, problems: list[str]) -> frozenset[str]:
    from ..accounts.models import Role

    known = {role.value for role in Role}
    roles = frozenset(_list(value))
    if unknown := sorted(roles - known):
        problems.append(f"{setting}: unknown role(s) {', '.join(unknown)}; known are {', '.join(sorted(known))}.")
    return roles


def providers(env: dict[str, str], production: bool) -> tuple[dict[str, Provider], list[str]]:
    """The configured providers by name, and what is wrong with their settings."""
    problems: list[str] = []
    names = sorted(
        key[len("OIDC_") : -len("_ISSUER")]
        for key in env
        if key.startswith("OIDC_") and key.endswith("_ISSUER") and env[key].strip()
    )
    found: dict[str, Provider] = {}
    for upper in names:
        prefix = f"OIDC_{upper}"
        if not NAME.fullmatch(upper):
            problems.append(f"{prefix}_ISSUER: the name between OIDC_ and _ISSUER may hold only A-Z, 0-9 and _.")
            continue
        issuer = env[f"{prefix}_ISSUER"].strip()
        parts = urlsplit(issuer)
        if parts.scheme not in {"https", "http"} or not parts.netloc or parts.query or parts.fragment:
            problems.append(f"{prefix}_ISSUER must be the provider's issuer URL (https://…), not {issuer!r}.")
        elif production and parts.scheme != "https":
            problems.append(f"{prefix}_ISSUER must use https in production.")
        client_id = env.get(f"{prefix}_CLIENT_ID", "").strip()
        secret = env.get(f"{prefix}_CLIENT_SECRET", "").strip()
        if not client_id:
            problems.append(f"{prefix}_CLIENT_ID must be set (the client id registered at the provider).")
        if not secret:
            problems.append(f"{prefix}_CLIENT_SECRET must be set (the client secret registered at the provider).")
        roles_setting = env.get(f"{prefix}_ROLES", "").strip()
        found[upper.lower()] = Provider(
            name=upper.lower(),
            issuer=issuer,
            client_id=client_id,
            client_secret=secret,
            label=env.get(f"{prefix}_LABEL", "").strip() or f"Mit dem Konto von {upper.title()} anmelden",
            mfa_values=frozenset(_list(env.get(f"{prefix}_MFA_VALUES", ""))),
            roles=_roles(roles_setting, f"{prefix}_ROLES", problems) if roles_setting else None,
        )
    # A setting for a provider without an issuer is a typo that would otherwise go unnoticed.
    for key in sorted(env):
        if key.startswith("OIDC_") and key.endswith(SUFFIXES) and not key.endswith("_ISSUER"):
            upper = next(key[len("OIDC_") : -len(s)] for s in SUFFIXES if key.endswith(s))
            if upper.lower() not in found and upper not in names:
                problems.append(f"{key} is set, but OIDC_{upper}_ISSUER is not.")
    return found, problems


def local_login_roles(env: dict[str, str]) -> tuple[frozenset[str] | None, list[str]]:
    """Unset: every role may log in with a password. Set (even empty): only these roles may."""
    problems: list[str] = []
    if "LOCAL_LOGIN_ROLES" not in env:
        return None, problems
    return _roles(env["LOCAL_LOGIN_ROLES"], "LOCAL_LOGIN_ROLES", problems), problems
