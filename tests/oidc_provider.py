"""A real OpenID Provider for the single sign-on tests, and tools to drive it.

`OidcProvider` starts the OpenID-certified `oidc-provider` npm package (tests/oidc/provider.mjs, locked in
tests/oidc/package-lock.json, installed with `npm ci --prefix tests/oidc`) on a free port behind a transparent
Python HTTP proxy. The proxy's address is the issuer; it passes every request through unchanged, except that
it can tamper with the ID token in the token endpoint's response (`provider.attack`), so that the tests can
prove the app refuses forged tokens that come from the real token endpoint.

Typical use (the app's tests use the Flask test client; the provider is real HTTP)::

    provider = OidcProvider(users={"anna": {"email": "anna@example.org", "email_verified": True}})
    receiver = provider.backchannel_receiver()
    provider.add_client("referral", "s3cret-of-at-least-32-characters!!", ["http://localhost/login/oidc/test/callback"],
                        backchannel_logout_uri=receiver.url)
    with provider:
        ...  # provider.issuer, provider.login(...), provider.end_session(...)

Without Node.js or the npm package the tests skip locally and fail under CI (`require_oidc_tools`), as the
accessibility tests do.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import http.server
import json
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import requests
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

TOOLS = Path(__file__).resolve().parent / "oidc"
PROVIDER_SCRIPT = TOOLS / "provider.mjs"
PACKAGE = TOOLS / "node_modules" / "oidc-provider" / "package.json"
INSTALL_HINT = "`npm ci --prefix tests/oidc` (needs Node.js and npm: apt-get install -y nodejs npm)"

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"

# Each attack turns the real ID token from the token endpoint into one that a relying party must refuse.
ATTACKS = (
    "wrong_issuer",  # iss changed, re-signed with the provider's real key
    "wrong_audience",  # aud another client, re-signed
    "expired",  # exp and iat in the past, re-signed
    "bad_signature",  # one byte of the signature changed
    "alg_none",  # header alg "none", empty signature
    "hmac",  # HS256 with the client secret as key (the algorithm confusion attack)
    "foreign_key",  # signed with a fresh RSA key whose kid is not in the JWKS
    "foreign_key_same_kid",  # signed with a fresh RSA key that claims the real key's kid
    "wrong_nonce",  # nonce changed, re-signed
    "wrong_azp",  # aud [client, other], azp other, re-signed
)
OTHER_CLIENT = "other-client"


class OidcToolsMissing(RuntimeError):
    """Node.js or the npm package is not installed."""


class OidcProviderError(RuntimeError):
    """The provider did not start, or a login/logout at it did not go as the harness expected."""


def require_oidc_tools() -> None:
    """Skip the calling test when Node.js or the npm package is missing; fail it instead under CI."""
    import pytest

    try:
        check_tools()
    except OidcToolsMissing as missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set, so the single sign-on tests must run: {missing}", pytrace=False)
        pytest.skip(str(missing))


def check_tools() -> str:
    node = shutil.which("node")
    if node is None:
        raise OidcToolsMissing(f"Node.js is missing; the OpenID Provider for the tests needs it: {INSTALL_HINT}")
    if not PACKAGE.is_file():
        raise OidcToolsMissing(f"the npm package oidc-provider is not installed ({PACKAGE} missing): {INSTALL_HINT}")
    return node


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def unverified_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims of a JWS, not verified (for crafting forgeries and for diagnostics only)."""
    header, payload, _ = token.split(".")
    return json.loads(_unb64(header)), json.loads(_unb64(payload))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- HTML forms (the provider's login and logout pages) -----------------------------------------------------


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self.buttons: list[dict[str, str]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"id": a.get("id", ""), "action": a.get("action", ""), "fields": {}})
        elif tag == "input" and a.get("name") and self.forms:
            self.forms[-1]["fields"][a["name"]] = a.get("value", "")
        elif tag == "button":
            self.buttons.append(a)

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.text.append(data.strip())


def _parse(html: str) -> _Forms:
    parser = _Forms()
    parser.feed(html)
    return parser


# --- the transparent proxy that is the issuer ----------------------------------------------------------------

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
}


def _proxy_handler(provider: OidcProvider) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            pass

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            conn = http.client.HTTPConnection("127.0.0.1", provider.node_port, timeout=30)
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                out_headers = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP]
                status = response.status
            except OSError as error:
                status, data = 502, f"proxy: node unreachable: {error}".encode()
                out_headers = [("Content-Type", "text/plain")]
            finally:
                conn.close()
            if self.command == "POST" and urlsplit(self.path).path == provider.token_path and status == 200:
                data = provider._tamper_token_response(data, self.headers, body or b"")
            self.send_response_only(status)
            for key, value in out_headers:
                if key.lower() != "content-length":
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            self.close_connection = True

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = do_PATCH = _forward

    return Handler


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


def _serve(handler: type[http.server.BaseHTTPRequestHandler]) -> tuple[_Server, threading.Thread]:
    server = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return server, thread


# --- back-channel logout receiver ---------------------------------------------------------------------------


class BackchannelReceiver:
    """A local HTTP endpoint for back-channel logout: records each POSTed `logout_token`.

    The provider cannot reach an app that runs in the Flask test client, so a test registers this URL as the
    client's backchannel_logout_uri and replays the recorded (real, provider-signed) token into the test client.
    With `forward_to` set, each token is also POSTed on to that URL (a live app server), and its status is what
    the provider sees.
    """

    def __init__(self, forward_to: str | None = None) -> None:
        self.tokens: list[str] = []
        self.forward_to = forward_to
        self.status = 200  # what the provider gets back when not forwarding
        self._changed = threading.Condition()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                token = parse_qs(body.decode("utf-8")).get("logout_token", [""])[0]
                status = receiver.status
                if receiver.forward_to:
                    forwarded = requests.post(
                        receiver.forward_to,
                        data=body,
                        headers={"Content-Type": "application/x-www-form-urlencoded"},
                        timeout=10,
                    )
                    status = forwarded.status_code
                with receiver._changed:
                    receiver.tokens.append(token)
                    receiver._changed.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server, self._thread = _serve(Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/backchannel-logout"

    def wait(self, count: int = 1, timeout: float = 5.0) -> list[str]:
        """The tokens received so far, once there are at least `count` (else OidcProviderError)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.tokens) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise OidcProviderError(f"expected {count} logout token(s), got {len(self.tokens)}")
                self._changed.wait(left)
            return list(self.tokens)

    def clear(self) -> None:
        with self._changed:
            self.tokens.clear()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# --- the provider ------------------------------------------------------------------------------------------


class OidcProvider:
    """oidc-provider (Node) behind a tampering proxy; use as a context manager or call start()/stop()."""

    def __init__(
        self,
        users: Mapping[str, Mapping[str, Any]] | None = None,
        clients: Sequence[Mapping[str, Any]] = (),
        startup_timeout: float = 20.0,
    ) -> None:
        self.users: dict[str, dict[str, Any]] = {sub: dict(claims) for sub, claims in (users or {}).items()}
        self.clients: list[dict[str, Any]] = [dict(c) for c in clients]
        self.startup_timeout = startup_timeout
        self.key = RSAKey.generate_key(
            2048, {"kid": f"test-{secrets.token_hex(4)}", "alg": "RS256", "use": "sig"}, private=True
        )
        self._attack: str | None = None
        # (original, as sent) ID tokens of the token responses, newest last: lets a test show the forgery.
        self.token_log: list[tuple[str, str]] = []
        self.metadata: dict[str, Any] = {}
        self.token_path = "/token"
        self.node_port = 0
        self._proxy: _Server | None = None
        self._node: subprocess.Popen[bytes] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._receivers: list[BackchannelReceiver] = []
        self._lock = threading.Lock()

    # configuration (before start)

    def add_client(
        self,
        client_id: str,
        client_secret: str,
        redirect_uris: Sequence[str],
        post_logout_redirect_uris: Sequence[str] = (),
        backchannel_logout_uri: str | None = None,
        token_endpoint_auth_method: str = "client_secret_basic",
        **metadata: Any,
    ) -> dict[str, Any]:
        """Register a client (OAuth client metadata); only before start(), since node reads its config once."""
        if self._node is not None:
            raise OidcProviderError("add_client() must come before start(): the provider reads its clients once")
        client: dict[str, Any] = {
            "client_id": client_id,
            "client_secret": client_secret,
            "redirect_uris": list(redirect_uris),
            "post_logout_redirect_uris": list(post_logout_redirect_uris),
            "token_endpoint_auth_method": token_endpoint_auth_method,
            "id_token_signed_response_alg": "RS256",
            "grant_types": ["authorization_code"],
            "response_types": ["code"],
            **metadata,
        }
        if backchannel_logout_uri:
            client["backchannel_logout_uri"] = backchannel_logout_uri
            client.setdefault("backchannel_logout_session_required", True)
        self.clients.append(client)
        return client

    def add_user(self, sub: str, **claims: Any) -> None:
        if self._node is not None:
            raise OidcProviderError("add_user() must come before start()")
        self.users[sub] = claims

    def backchannel_receiver(self, forward_to: str | None = None) -> BackchannelReceiver:
        """A new back-channel logout receiver (stopped with the provider); register its .url with a client."""
        receiver = BackchannelReceiver(forward_to)
        self._receivers.append(receiver)
        return receiver

    def client(self, client_id: str) -> dict[str, Any]:
        for client in self.clients:
            if client["client_id"] == client_id:
                return client
        raise KeyError(client_id)

    # lifecycle

    @property
    def issuer(self) -> str:
        if self._proxy is None:
            raise OidcProviderError("the provider is not started")
        return f"http://127.0.0.1:{self._proxy.server_address[1]}"

    @property
    def node_url(self) -> str:
        return f"http://127.0.0.1:{self.node_port}"

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def start(self) -> OidcProvider:
        node = check_tools()
        self._proxy, _ = _serve(_proxy_handler(self))
        self.node_port = _free_port()
        self._tmp = tempfile.TemporaryDirectory(prefix="oidc-provider-")
        config_path = Path(self._tmp.name) / "config.json"
        config = {
            "issuer": self.issuer,
            "port": self.node_port,
            "jwks": {"keys": [self.key.as_dict(private=True)]},
            "clients": self.clients,
            "users": self.users,
        }
        config_path.write_text(json.dumps(config), encoding="utf-8")
        self._stderr_path = Path(self._tmp.name) / "stderr.log"
        stderr = self._stderr_path.open("wb")
        try:
            self._node = subprocess.Popen(
                [node, str(PROVIDER_SCRIPT), str(config_path)],
                cwd=TOOLS,
                stdin=subprocess.PIPE,  # closed when this process dies: node then exits
                stdout=subprocess.PIPE,
                stderr=stderr,
                env={**os.environ, "NODE_ENV": "test"},
            )
        finally:
            stderr.close()
        try:
            self._await_ready()
            self.metadata = requests.get(self.discovery_url, timeout=10).json()
            self.token_path = urlsplit(self.metadata["token_endpoint"]).path
        except BaseException:
            self.stop()
            raise
        return self

    def _await_ready(self) -> None:
        assert self._node is not None and self._node.stdout is not None
        line: list[bytes] = []
        reader = threading.Thread(target=lambda: line.append(self._node.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(self.startup_timeout)
        if not line or line[0].strip() != b"ready":
            code = self._node.poll()
            state = f"exited with status {code}" if code is not None else f"not ready after {self.startup_timeout} s"
            raise OidcProviderError(f"the OpenID Provider (node {PROVIDER_SCRIPT}) {state}; stderr:\n{self.stderr()}")

    def stderr(self) -> str:
        path = getattr(self, "_stderr_path", None)
        return path.read_text("utf-8", "replace") if path and path.exists() else ""

    def stop(self) -> None:
        if self._node is not None:
            self._node.terminate()
            try:
                self._node.wait(5)
            except subprocess.TimeoutExpired:
                self._node.kill()
                self._node.wait(5)
            for pipe in (self._node.stdin, self._node.stdout):
                if pipe:
                    pipe.close()
            self._node = None
        if self._proxy is not None:
            self._proxy.shutdown()
            self._proxy.server_close()
            self._proxy = None
        for receiver in self._receivers:
            receiver.close()
        self._receivers.clear()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> OidcProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def attack(self) -> str | None:
        """The forgery applied to every ID token the token endpoint returns (one of ATTACKS), or None."""
        return self._attack

    @attack.setter
    def attack(self, attack: str | None) -> None:
        if attack is not None and attack not in ATTACKS:
            raise ValueError(f"unknown attack {attack!r}; known: {', '.join(ATTACKS)}")
        self._attack = attack

    @contextlib.contextmanager
    def attacking(self, attack: str | None) -> Iterator[None]:
        """Tamper with the token endpoint's ID tokens inside the block (see ATTACKS)."""
        previous, self.attack = self.attack, attack
        try:
            yield
        finally:
            self.attack = previous

    # signing (the provider's real key, or another one): for forgeries in tests

    def sign(
        self, claims: Mapping[str, Any], header: Mapping[str, Any] | None = None, key: RSAKey | None = None
    ) -> str:
        key = key or self.key
        head = {"alg": "RS256", "kid": key.kid, **(header or {})}
        return jwt.encode(head, dict(claims), key, algorithms=[head["alg"]], default_type=None)

    def logout_token(
        self,
        client_id: str,
        sub: str | None,
        sid: str | None = None,
        *,
        events: Mapping[str, Any] | None = None,
        omit: Sequence[str] = (),
        key: RSAKey | None = None,
        header: Mapping[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """A logout token signed with the provider's key (or `key`), by default a valid one.

        Forgeries: `omit=("events",)`, `nonce="x"`, `aud="other-client"`, `iss=...`, `iat=...`, `events={}`.
        """
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": self.issuer,
            "aud": client_id,
            "iat": now,
            "exp": now + 120,
            "jti": secrets.token_urlsafe(16),
            "events": dict(events) if events is not None else {BACKCHANNEL_EVENT: {}},
        }
        if sub is not None:
            payload["sub"] = sub
        if sid is not None:
            payload["sid"] = sid
        payload.update(claims)
        for name in omit:
            payload.pop(name, None)
        return self.sign(payload, {"typ": "logout+jwt", **(header or {})}, key)

    def forge_id_token(self, token: str, attack: str, client_secret: str | None = None) -> str:
        """The ID token `token` turned into the forgery `attack` (see ATTACKS)."""
        header, claims = unverified_parts(token)
        client_id = claims["aud"] if isinstance(claims["aud"], str) else claims["aud"][0]
        now = int(time.time())
        if attack == "wrong_issuer":
            return self.sign({**claims, "iss": f"{self.issuer}/other-issuer"}, header)
        if attack == "wrong_audience":
            return self.sign({**claims, "aud": OTHER_CLIENT}, header)
        if attack == "expired":
            times = {"iat": now - 7200, "exp": now - 3600}
            if "auth_time" in claims:
                times["auth_time"] = now - 7200
            return self.sign({**claims, **times}, header)
        if attack == "bad_signature":
            head, payload, signature = token.split(".")
            raw = bytearray(_unb64(signature))
            raw[len(raw) // 2] ^= 0x01
            return f"{head}.{payload}.{_b64(bytes(raw))}"
        if attack == "alg_none":
            none_header = {k: v for k, v in header.items() if k != "kid"} | {"alg": "none"}
            return f"{_b64(json.dumps(none_header).encode())}.{_b64(json.dumps(claims).encode())}."
        if attack == "hmac":
            secret = client_secret if client_secret is not None else self.client(client_id)["client_secret"]
            hs_header = {k: v for k, v in header.items() if k != "kid"} | {"alg": "HS256"}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # joserfc warns about short secrets; the forgery wants this one
                return jwt.encode(hs_header, claims, OctKey.import_key(secret), algorithms=["HS256"], default_type=None)
        if attack in ("foreign_key", "foreign_key_same_kid"):
            kid = str(self.key.kid) if attack == "foreign_key_same_kid" else f"foreign-{secrets.token_hex(4)}"
            foreign = RSAKey.generate_key(2048, {"kid": kid, "alg": "RS256"}, private=True)
            return self.sign(claims, {**header, "kid": kid}, foreign)
        if attack == "wrong_nonce":
            return self.sign({**claims, "nonce": secrets.token_urlsafe(16)}, header)
        if attack == "wrong_azp":
            return self.sign({**claims, "aud": [client_id, OTHER_CLIENT], "azp": OTHER_CLIENT}, header)
        raise ValueError(f"unknown attack {attack!r}; known: {', '.join(ATTACKS)}")

    def _tamper_token_response(self, data: bytes, headers: Any, request_body: bytes) -> bytes:
        attack = self.attack
        try:
            document = json.loads(data)
        except ValueError:
            return data
        original = document.get("id_token")
        if not original:
            return data
        if attack is None:
            sent = original
        else:
            sent = self.forge_id_token(original, attack, self._secret_of_request(headers, request_body))
            document["id_token"] = sent
        with self._lock:
            self.token_log.append((original, sent))
        return json.dumps(document).encode() if attack else data

    def _secret_of_request(self, headers: Any, body: bytes) -> str | None:
        """The client secret the token request authenticated with (basic or post), for the HMAC forgery."""
        auth = headers.get("Authorization", "")
        if auth.lower().startswith("basic "):
            from urllib.parse import unquote

            _, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            return unquote(secret)
        form = parse_qs(body.decode("utf-8", "replace"))
        return form.get("client_secret", [None])[0]

    # driving the user's browser at the provider

    def _is_own(self, url: str) -> bool:
        own = urlsplit(self.issuer)
        target = urlsplit(url)
        return (target.scheme, target.netloc) == (own.scheme, own.netloc)

    def _walk(
        self, http: requests.Session, response: requests.Response, max_steps: int = 20
    ) -> requests.Response | str:
        """Follow the provider's own redirects; a redirect elsewhere ends the walk and is returned unrequested."""
        for _ in range(max_steps):
            if response.status_code not in (301, 302, 303, 307, 308):
                return response
            location = urljoin(response.url, response.headers["Location"])
            if not self._is_own(location):
                return location
            response = http.get(location, allow_redirects=False, timeout=10)
        raise OidcProviderError("too many redirects at the provider")

    def _failure(self, what: str, response: requests.Response) -> OidcProviderError:
        text = " ".join(_parse(response.text).text)[:2000]
        return OidcProviderError(
            f"{what}: HTTP {response.status_code} at {response.url}: {text}\n{self.stderr()[-3000:]}"
        )

    def login(self, http: requests.Session, authorize_url: str, sub: str) -> str:
        """Log `sub` in at the provider, starting at the app's authorization URL; returns the redirect to the
        client's redirect_uri (with code and state, or an error), not requested.

        `http` is the user's browser at the provider: while it holds a provider session (an earlier login), the
        provider signs that account in again without asking (single sign-on), whatever `sub` says. Use a fresh
        requests.Session per user, or let the app send prompt=login."""
        result = self._walk(http, http.get(authorize_url, allow_redirects=False, timeout=10))
        for _ in range(3):
            if isinstance(result, str):
                return result
            forms = [f for f in _parse(result.text).forms if "login" in f["fields"]]
            if result.status_code != 200 or not forms:
                raise self._failure("no login form at the provider", result)
            if "Unbekannter Benutzer" in result.text:
                raise OidcProviderError(f"the provider does not know the user {sub!r}")
            action = urljoin(result.url, forms[0]["action"])
            submitted = http.post(action, data={**forms[0]["fields"], "login": sub}, allow_redirects=False, timeout=10)
            result = self._walk(http, submitted)
        raise self._failure("the login did not finish", result if not isinstance(result, str) else submitted)

    def end_session(self, http: requests.Session, end_session_url: str) -> str | None:
        """RP-initiated logout at the provider (confirms the logout form); returns the redirect to the
        post_logout_redirect_uri, not requested, or None when the provider shows its own "signed out" page.
        Back-channel logout tokens have been delivered when this returns (the provider awaits them)."""
        result = self._walk(http, http.get(end_session_url, allow_redirects=False, timeout=10))
        if isinstance(result, str):
            return result
        forms = [f for f in _parse(result.text).forms if "xsrf" in f["fields"]]
        if result.status_code != 200 or not forms:
            raise self._failure("no logout form at the provider", result)
        action = urljoin(result.url, forms[0]["action"])
        confirmed = http.post(action, data={**forms[0]["fields"], "logout": "yes"}, allow_redirects=False, timeout=10)
        result = self._walk(http, confirmed)
        if isinstance(result, str):
            return result
        if result.status_code != 200:
            raise self._failure("the logout failed", result)
        return None
