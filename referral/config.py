"""Settings from the environment. Production refuses to start without real secrets."""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import secrets
from datetime import time, timedelta
from pathlib import Path

# Values that must never protect real data.
KNOWN_WEAK_SECRETS = {"", "dev", "secret", "changeme", "change-me", "development"}
MIN_SECRET_LENGTH = 32


# Scripts and styles only from this site: no inline code, no third parties. Bootstrap's CSS draws
# its checkbox and select icons as data: images.
CONTENT_SECURITY_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": ["'self'", "data:"],
    "font-src": "'self'",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
PERMISSIONS_POLICY = {
    feature: "()"
    for feature in ("camera", "microphone", "geolocation", "payment", "usb", "interest-cohort", "browsing-topics")
}


class ConfigError(RuntimeError):
    """Raised when the app is started with a configuration that is not safe to run."""


# The daily jobs of `flask worker` and when they run (Berlin time); JOB_TIMES overrides some or all,
# e.g. "retention=01:15,reminders=06:45". Retention and the audit check at night, reminders before
# the working day starts.
JOB_DEFAULT_TIMES = {
    "retention": "02:30",
    "prune": "02:45",
    "audit-checkpoint": "03:15",
    "audit-verify": "03:30",
    "reminders": "07:00",
}


def job_times(value: str | None) -> dict[str, time]:
    """JOB_TIMES parsed and merged with the defaults; a wrong entry stops the start with the reason."""
    entries = dict(JOB_DEFAULT_TIMES)
    for part in filter(None, (p.strip() for p in (value or "").split(","))):
        job, _, at = part.partition("=")
        if job.strip() not in JOB_DEFAULT_TIMES:
            raise ConfigError(f"JOB_TIMES: unknown job {job.strip()!r} (known: {', '.join(JOB_DEFAULT_TIMES)}).")
        entries[job.strip()] = at.strip()
    times = {}
    for job, at in entries.items():
        try:
            hour, minute = (int(n) for n in at.split(":"))
            times[job] = time(hour, minute)
        except ValueError as error:
            raise ConfigError(f"JOB_TIMES: {job}={at!r} is not a time of day as HH:MM (Berlin time).") from error
    return times


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _instance_secret(instance_path: Path) -> str:
    """A random key kept in instance/ so that local sessions survive a restart."""
    instance_path.mkdir(parents=True, exist_ok=True)
    key_file = instance_path / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(48))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


def _instance_data_keys(instance_path: Path) -> str:
    """A local data key for development and the demo, kept in instance/ (never used in production)."""
    from cryptography.fernet import Fernet

    instance_path.mkdir(parents=True, exist_ok=True)
    key_file = instance_path / "data_keys"
    if not key_file.exists():
        key_file.write_text(Fernet.generate_key().decode())
        key_file.chmod(0o600)
    return key_file.read_text().strip()


def redis_options() -> dict:
    """Redis unreachable: a few quick tries, then the error, which becomes a 503 page (outages.py),
    instead of redis-py's default of ten tries with up to a second between them per command."""
    from redis.backoff import ExponentialBackoff
    from redis.retry import Retry

    return {"socket_connect_timeout": 2, "socket_timeout": 2, "retry": Retry(ExponentialBackoff(cap=0.1, base=0.01), 2)}


def load(instance_path: Path, env: dict[str, str] | None = None) -> dict:
    """Build the Flask config from environment variables."""
    env = dict(os.environ if env is None else env)
    production = env.get("REFERRAL_ENV", "development").strip().lower() == "production"

    secret_key = env.get("SECRET_KEY", "")
    database_url = env.get("DATABASE_URL", "")
    if production:
        problems = []
        if secret_key.strip().lower() in KNOWN_WEAK_SECRETS or len(secret_key) < MIN_SECRET_LENGTH:
            problems.append(
                f"SECRET_KEY must be set to a random value of at least {MIN_SECRET_LENGTH} characters "
                "(for example: python -c 'import secrets; print(secrets.token_urlsafe(48))')."
            )
        if not database_url:
            problems.append("DATABASE_URL must point to the production database (postgresql+psycopg://...).")
        if not env.get("REFERRAL_DATA_KEYS", "").strip():
            problems.append(
                "REFERRAL_DATA_KEYS must hold at least one data key (newest first, comma-separated): "
                "case data is stored encrypted with it."
            )
        if not env.get("SERVER_NAME"):
            problems.append(
                "SERVER_NAME must be the public host name (e.g. mitteilungen.stadt.example): links in "
                "e-mails are built from it, never from the Host header a client sends."
            )
        if env.get("METRICS_TOKEN") and len(env["METRICS_TOKEN"]) < MIN_SECRET_LENGTH:
            problems.append(
                f"METRICS_TOKEN must be a random value of at least {MIN_SECRET_LENGTH} characters, or unset."
            )
        if _bool(env.get("FLASK_DEBUG")):
            problems.append("FLASK_DEBUG must be off: the debugger runs code for whoever reaches it.")
        if not _bool(env.get("SESSION_COOKIE_SECURE"), default=True):
            problems.append("SESSION_COOKIE_SECURE must stay on: session cookies only over HTTPS.")
        if problems:
            raise ConfigError("Refusing to start in production mode:\n- " + "\n- ".join(problems))
    else:
        secret_key = secret_key or _instance_secret(instance_path)
        env.setdefault("REFERRAL_DATA_KEYS", _instance_data_keys(instance_path))
        database_url = database_url or f"sqlite:///{instance_path / 'referral.db'}"

    # Single sign-on (referral/signon/): wrong settings stop the start in every mode, not only in production.
    from .signon import settings as signon

    oidc_providers, problems = signon.providers(env, production)
    local_login_roles, more = signon.local_login_roles(env)
    if problems or more:
        raise ConfigError("Single sign-on settings:\n- " + "\n- ".join(problems + more))

    # Two-factor authentication is required in production; REQUIRE_2FA=0 switches it off for a demo.
    require_2fa = _bool(env.get("REQUIRE_2FA"), default=production)
    totp_secret = env.get("TOTP_SECRET") or hashlib.sha256(("totp:" + secret_key).encode()).hexdigest()

    # E-mail: SMTP in production (MAIL_SERVER, default a local relay); without MAIL_SERVER a
    # development server prints mails to its terminal, so invitation and reset links can be clicked.
    mail_server = env.get("MAIL_SERVER", "")
    mail_backend = env.get("MAIL_BACKEND") or ("smtp" if mail_server or production else "console")

    if database_url.startswith("postgresql://") or database_url.startswith("postgres://"):
        # psycopg 3 is the only PostgreSQL driver we ship.
        database_url = "postgresql+psycopg://" + database_url.split("://", 1)[1]

    # hide_parameters: a failing statement is logged and raised without its values (names, dates,
    # keyed hashes, ciphertexts). pool_pre_ping: after a database restart the first request gets a
    # fresh connection instead of an error.
    # prepare_threshold=None: psycopg never prepares statements on the server, so PostgreSQL plans each
    # one for the values it runs with. Prepared (psycopg's default after five runs), PostgreSQL may switch
    # to a plan made without the values: at 200,000 referrals the evaluation's overdue count took 140 ms
    # instead of 16, a list page read a school's whole history instead of 26 index rows.
    engine_options: dict = {
        "pool_pre_ping": True,
        "hide_parameters": True,
        "connect_args": {"prepare_threshold": None},
    }
    if database_url.startswith("sqlite"):
        engine_options = {"connect_args": {"timeout": 15}, "hide_parameters": True}

    # Logs: one JSON object per line in production (for the log shipper), readable text otherwise.
    log_format = env.get("LOG_FORMAT", "json" if production else "text").strip().lower()
    if log_format not in {"json", "text"}:
        raise ConfigError(f"LOG_FORMAT must be json or text, not {log_format!r}.")
    log_level = env.get("LOG_LEVEL", "INFO").strip().upper()
    if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ConfigError(f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not {log_level!r}.")
    metrics_networks = []
    for part in env.get("METRICS_ALLOWED_NETWORKS", "").split(","):
        if part.strip():
            try:
                metrics_networks.append(ipaddress.ip_network(part.strip(), strict=False))
            except ValueError as error:
                raise ConfigError(f"METRICS_ALLOWED_NETWORKS: {error}.") from error

    # The audit log's signed checkpoints (audit/checkpoints.py): without a key the chain still
    # shows every change, but not a rewrite of the whole chain by the database's owner.
    audit_key_file = env.get("AUDIT_CHECKPOINT_KEY_FILE", "").strip()
    if production and not audit_key_file:
        logging.getLogger("referral.config").warning(
            "AUDIT_CHECKPOINT_KEY_FILE is not set: the audit log gets no signed checkpoints, so whoever "
            "owns the database could rewrite it undetected (see README, audit log)."
        )

    return {
        "REFERRAL_PRODUCTION": production,
        "AUDIT_CHECKPOINT_KEY_FILE": audit_key_file,
        "AUDIT_CHECKPOINT_PUBLIC_KEY": env.get("AUDIT_CHECKPOINT_PUBLIC_KEY", "").strip(),
        "AUDIT_CHECKPOINT_FILE": env.get("AUDIT_CHECKPOINT_FILE", "").strip(),
        "AUDIT_CHECKPOINT_MAIL": env.get("AUDIT_CHECKPOINT_MAIL", "").strip(),
        # The worker seals the audit log's new entries into a block once this many seconds have passed
        # since the oldest of them was written (or a full block is waiting): the window in which an
        # entry is not yet chained.
        "AUDIT_SEAL_SECONDS": float(env.get("AUDIT_SEAL_SECONDS", "60")),
        # Identity providers by lower-case name, and the roles that may log in with a password (None: all).
        "OIDC_PROVIDERS": oidc_providers,
        "LOCAL_LOGIN_ROLES": local_login_roles,
        "LOG_FORMAT": log_format,
        "LOG_LEVEL": log_level,
        # /metrics (observability/metrics.py): a bearer token and/or the networks allowed to scrape.
        # Neither set: the endpoint answers 404, as if it did not exist.
        "METRICS_TOKEN": env.get("METRICS_TOKEN") or None,
        "METRICS_ALLOWED_NETWORKS": metrics_networks,
        "REFERRAL_DATA_KEYS": env.get("REFERRAL_DATA_KEYS", ""),
        "SERVER_NAME": env.get("SERVER_NAME") or None,
        # Reverse proxies in front of the app whose X-Forwarded-For/-Proto are trusted (0: none).
        "TRUSTED_PROXIES": int(env.get("TRUSTED_PROXIES", "0")),
        "PREFERRED_URL_SCHEME": "https" if production else "http",
        "SECRET_KEY": secret_key,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options,
        # PostgreSQL: no request waits longer on one statement (0: no limit); CLI and worker have none.
        "DATABASE_STATEMENT_TIMEOUT_SECONDS": float(env.get("DATABASE_STATEMENT_TIMEOUT_SECONDS", "30")),
        "UPLOAD_FOLDER": env.get("UPLOAD_FOLDER", str(instance_path / "uploads")),
        # Fonts embedded in the PDF of record (Debian package fonts-dejavu-core); see printable.py.
        "PDF_FONT_DIR": env.get("PDF_FONT_DIR", "/usr/share/fonts/truetype/dejavu"),
        "MAX_ATTACHMENT_BYTES": int(env.get("MAX_ATTACHMENT_MB", "10")) * 1024 * 1024,
        # Whole request: a few attachments' worth plus the form.
        "MAX_CONTENT_LENGTH": int(env.get("MAX_ATTACHMENT_MB", "10")) * 1024 * 1024 + 512 * 1024,
        "BABEL_DEFAULT_LOCALE": "de_DE",
        "BABEL_DEFAULT_TIMEZONE": "Europe/Berlin",
        "BOOTSTRAP_SERVE_LOCAL": True,
        "WTF_CSRF_TIME_LIMIT": None,  # bound to the session instead, which expires on its own
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": production,
        "REMEMBER_COOKIE_SECURE": production,
        "PERMANENT_SESSION_LIFETIME": 12 * 3600,
        # Sessions live on the server (Flask-Session): the cookie holds a random id only, so logging
        # out or ending a session on the server makes a copied cookie worthless. Redis when
        # several instances run; else files in instance/.
        "SESSION_TYPE": "redis" if env.get("REDIS_URL") else "cachelib",
        "SESSION_REDIS_URL": env.get("REDIS_URL", ""),
        "SESSION_FILE_DIR": str(instance_path / "sessions"),
        "SESSION_KEY_PREFIX": "referral-session:",
        "SESSION_PERMANENT": True,
        # Stored only when changed: every page view changes it (enforce() notes the time), so the
        # store's expiry follows the activity; an asset request changes nothing and so cannot write
        # back an older state over a concurrent request's (a lost flash message).
        "SESSION_REFRESH_EACH_REQUEST": False,
        "SESSION_IDLE_MINUTES": int(env.get("SESSION_IDLE_MINUTES", "30")),
        "SESSION_ABSOLUTE_HOURS": int(env.get("SESSION_ABSOLUTE_HOURS", "12")),
        "MAIL_BACKEND": mail_backend,
        "MAIL_SERVER": mail_server or "localhost",
        "MAIL_PORT": int(env.get("MAIL_PORT", "25")),
        "MAIL_USE_TLS": _bool(env.get("MAIL_USE_TLS")),
        "MAIL_USERNAME": env.get("MAIL_USERNAME") or None,
        "MAIL_PASSWORD": env.get("MAIL_PASSWORD") or None,
        "MAIL_TIMEOUT": 20,
        "MAIL_DEFAULT_SENDER": env.get("MAIL_DEFAULT_SENDER", "Mitteilungen Schule-ASD <no-reply@localhost>"),
        "INVITATION_VALID_HOURS": 72,
        # Flask-Security-Too: login by e-mail, argon2; no self-registration. Password reset by
        # e-mail link (1 hour; the link dies once the password changed) and change of password.
        "SECURITY_PASSWORD_HASH": "argon2",
        "SECURITY_PASSWORD_SALT": env.get("SECURITY_PASSWORD_SALT") or secret_key,
        "SECURITY_USER_IDENTITY_ATTRIBUTES": [
            {"email": {"mapper": "flask_security.uia_email_mapper", "case_insensitive": True}}
        ],
        "SECURITY_REGISTERABLE": False,
        "SECURITY_RECOVERABLE": True,
        "SECURITY_RESET_PASSWORD_WITHIN": timedelta(hours=1),
        "SECURITY_RESET_URL": "/password/reset",
        "SECURITY_CHANGEABLE": True,
        "SECURITY_CHANGE_URL": "/password/change",
        "SECURITY_POST_CHANGE_VIEW": "/",
        "SECURITY_AUTO_LOGIN_AFTER_RESET": False,  # the second factor must still be asked
        "SECURITY_SEND_PASSWORD_CHANGE_EMAIL": True,
        "SECURITY_SEND_PASSWORD_RESET_NOTICE_EMAIL": True,
        "SECURITY_EMAIL_HTML": False,
        "SECURITY_EMAIL_SENDER": env.get("MAIL_DEFAULT_SENDER", "Mitteilungen Schule-ASD <no-reply@localhost>"),
        "SECURITY_EMAIL_SUBJECT_PASSWORD_RESET": "Passwort zurücksetzen – Mitteilungen Schule-ASD",
        "SECURITY_EMAIL_SUBJECT_PASSWORD_NOTICE": "Ihr Passwort wurde zurückgesetzt – Mitteilungen Schule-ASD",
        "SECURITY_EMAIL_SUBJECT_PASSWORD_CHANGE_NOTICE": "Ihr Passwort wurde geändert – Mitteilungen Schule-ASD",
        "SECURITY_CONFIRMABLE": False,
        "SECURITY_TRACKABLE": False,
        "SECURITY_JOIN_USER_ROLES": False,  # roles are scoped memberships, see accounts/models.py
        "SECURITY_USERNAME_ENABLE": False,
        "SECURITY_LOGOUT_METHODS": ["POST"],
        "SECURITY_POST_LOGIN_VIEW": "/",
        "SECURITY_POST_LOGOUT_VIEW": "/login",
        "SECURITY_UNAUTHORIZED_VIEW": None,
        "SECURITY_RETURN_GENERIC_RESPONSES": True,
        "SECURITY_I18N_DIRNAME": ["builtin"],
        "SECURITY_MSG_LOGIN": ("Bitte melden Sie sich an.", "info"),
        # One message for every failed login, so that it does not tell whether an address has an account.
        "SECURITY_MSG_GENERIC_AUTHN_FAILED": ("E-Mail-Adresse oder Passwort ist falsch.", "error"),
        "SECURITY_FLASH_MESSAGES": True,
        # The password pages in plain German, and never telling whether an address has an account.
        "SECURITY_MSG_PASSWORD_RESET_REQUEST": (
            "Wenn es ein Konto mit dieser Adresse gibt, ist eine E-Mail mit "
            "einem Link unterwegs. Der Link gilt {reset_valid}.",  # from SECURITY_RESET_PASSWORD_WITHIN: create_app
            "info",
        ),
        "SECURITY_MSG_PASSWORD_RESET_EXPIRED": (
            "Der Link ist abgelaufen (er gilt %(within)s). Bitte fordern Sie hier einen neuen an.",
            "error",
        ),
        "SECURITY_MSG_INVALID_RESET_PASSWORD_TOKEN": (
            "Dieser Link wurde schon benutzt oder ist ungültig. Bitte fordern Sie hier einen neuen an.",
            "error",
        ),
        "SECURITY_MSG_PASSWORD_RESET": (
            "Ihr neues Passwort ist gespeichert. Bitte melden Sie sich damit an.",
            "success",
        ),
        "SECURITY_MSG_PASSWORD_CHANGE": ("Ihr Passwort wurde geändert.", "success"),
        "SECURITY_MSG_PASSWORD_NOT_PROVIDED": ("Bitte ein Passwort angeben.", "error"),
        "SECURITY_MSG_INVALID_PASSWORD": ("Das Passwort ist nicht richtig.", "error"),
        "SECURITY_MSG_RETYPE_PASSWORD_MISMATCH": ("Die beiden Passwörter stimmen nicht überein.", "error"),
        "SECURITY_MSG_PASSWORD_IS_THE_SAME": ("Das neue Passwort muss sich vom bisherigen unterscheiden.", "error"),
        "SECURITY_MSG_EMAIL_NOT_PROVIDED": ("Bitte die E-Mail-Adresse angeben.", "error"),
        "SECURITY_MSG_INVALID_EMAIL_ADDRESS": (
            "Bitte eine gültige E-Mail-Adresse angeben, z. B. name@schule.example.",
            "error",
        ),
        "SECURITY_EMAIL_VALIDATOR_ARGS": {"check_deliverability": False},
        # Passwords: at least 12 characters and a strength estimate of 3 of 4 by zxcvbn, whose
        # dictionaries of common passwords ship with the package (no network calls).
        "SECURITY_TWO_FACTOR": True,
        "SECURITY_TWO_FACTOR_ENABLED_METHODS": ["authenticator"],
        "SECURITY_TWO_FACTOR_REQUIRED": require_2fa,
        "SECURITY_TWO_FACTOR_RESCUE_MAIL": "",
        "SECURITY_TWO_FACTOR_ALWAYS_VALIDATE": True,
        "SECURITY_TOTP_SECRETS": {"1": totp_secret},
        "SECURITY_TOTP_ISSUER": "Mitteilungen Schule-ASD",
        "SECURITY_MULTI_FACTOR_RECOVERY_CODES": True,
        "SECURITY_MULTI_FACTOR_RECOVERY_CODES_N": 8,
        "SECURITY_PASSWORD_LENGTH_MIN": 12,
        "SECURITY_PASSWORD_COMPLEXITY_CHECKER": "zxcvbn",
        "SECURITY_ZXCVBN_MINIMUM_SCORE": 3,
        "SECURITY_PASSWORD_CHECK_BREACHED": False,
        # Throttling (Flask-Limiter): counters in Redis when several instances run, else in memory.
        "RATELIMIT_STORAGE_URI": env.get("REDIS_URL") or "memory://",
        "RATELIMIT_STORAGE_OPTIONS": redis_options() if env.get("REDIS_URL") else {},
        # Redis unreachable: the same limits, counted in this process until Redis answers again.
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "OUTAGE_RETRY_AFTER_SECONDS": 30,
        "RATELIMIT_STRATEGY": "moving-window",
        "RATELIMIT_HEADERS_ENABLED": False,
        "LOGIN_FAILURES_PER_ACCOUNT": env.get("LOGIN_FAILURES_PER_ACCOUNT", "5 per 15 minutes"),
        "LOGIN_ATTEMPTS_PER_ADDRESS": env.get("LOGIN_ATTEMPTS_PER_ADDRESS", "30 per minute"),
        # REST API (referral/api): calls per client, access token lifetime, and how long a change may take
        # to commit before the `changed_since` walk passes it (api/routes.py, _settled).
        "API_RATE_LIMIT": env.get("API_RATE_LIMIT", "600 per minute"),
        "API_TOKEN_MINUTES": int(env.get("API_TOKEN_MINUTES", "10")),
        "API_SYNC_SETTLE_SECONDS": int(env.get("API_SYNC_SETTLE_SECONDS", "60")),
        # Password reset, invitation and second-factor steps, per network address.
        "ACCOUNT_STEPS_PER_ADDRESS": env.get("ACCOUNT_STEPS_PER_ADDRESS", "10 per minute"),
        # Single sign-on: callbacks and back-channel logouts per address (a school's NAT, the provider's
        # server); a flood of forged tokens must not reach the audit log and the provider at full speed.
        "SIGN_ON_REQUESTS_PER_ADDRESS": env.get("SIGN_ON_REQUESTS_PER_ADDRESS", "120 per minute"),
        # `flask worker`: when each daily job runs (Berlin time), how often the outbox is looked at,
        # after how long a run whose worker died is taken over, and how late a job may be (beyond a
        # day since its last successful run) before the admin page and /readyz call it overdue.
        "JOB_TIMES": job_times(env.get("JOB_TIMES")),
        "WORKER_INTERVAL_SECONDS": float(env.get("WORKER_INTERVAL_SECONDS", "15")),
        "JOB_STALE_MINUTES": int(env.get("JOB_STALE_MINUTES", "120")),
        "JOB_GRACE_MINUTES": int(env.get("JOB_GRACE_MINUTES", "60")),
    }
