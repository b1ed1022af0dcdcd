"""referral: the handover of child-welfare concerns from primary schools to the ASD."""

from __future__ import annotations

from pathlib import Path

from flask import Flask, current_app, render_template
from flask_login import current_user
from flask_security import Security

from . import config
from .accounts.mail import OutboxMailUtil
from .accounts.passwords import GermanPasswordUtil
from .extensions import babel, bootstrap, csrf, db, mail, migrate, server_sessions, talisman

security = Security(password_util_cls=GermanPasswordUtil, mail_util_cls=OutboxMailUtil)

ROOT = Path(__file__).resolve().parent.parent


def create_app(overrides: dict | None = None, env: dict[str, str] | None = None) -> Flask:
    app = Flask(
        __name__,
        instance_path=str(ROOT / "instance"),
        template_folder=str(ROOT / "templates"),
    )
    from .integers import BoundedIntConverter

    app.url_map.converters["int"] = BoundedIntConverter  # before any route is added
    app.config.update(config.load(Path(app.instance_path), env))
    if overrides:
        app.config.update(overrides)
    if app.config["TRUSTED_PROXIES"]:
        # The client's address (for the per-address limits) and scheme as the proxy saw them.
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)
    from .crypto import DataKeyError, Vault, parse_keys

    try:
        app.extensions["referral_vault"] = Vault(parse_keys(app.config["REFERRAL_DATA_KEYS"]))
    except DataKeyError as error:
        raise config.ConfigError(str(error)) from error
    from . import lifecycle

    lifecycle.register(app)  # first: its commit runs after every other after-request function
    from . import observability

    observability.register(app)  # logs and metrics; its request id is given before anything else runs
    register_extensions(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_template_helpers(app)
    register_commands(app)
    if app.config["MAIL_BACKEND"] == "console" and not app.config.get("TESTING"):
        _print_mails_at_once(app)
    return app


def _print_mails_at_once(app: Flask) -> None:
    """Development without an SMTP server: the outbox is printed to the terminal after each request,
    so that invitation and reset links work without running the delivery worker."""
    from .notifications.delivery import deliver

    # When the response is closed: after the request's commit (lifecycle.py). Before it, on a connection
    # of its own, the delivery would wait for SQLite's write lock, which the request itself holds (a POST
    # that wrote anything then failed after 15 s). Not at the end of every request context: the CLI's
    # test_request_context (demo data, invitations) ends with its own transaction still open.
    @app.after_request
    def print_outbox(response):
        def deliver_now() -> None:
            with app.app_context():  # a session of its own: nothing of the request's is committed here
                deliver(limit=20)

        response.call_on_close(deliver_now)
        return response


def register_extensions(app: Flask) -> None:
    from .accounts.datastore import UserDatastore
    from .accounts.models import User
    from .accounts.passwords import forgot_password_form
    from .kernel.wording import configured
    from .redaction import register as redact_sql_errors

    redact_sql_errors()
    message, category = app.config["SECURITY_MSG_PASSWORD_RESET_REQUEST"]
    app.config["SECURITY_MSG_PASSWORD_RESET_REQUEST"] = (message.format(**configured(app.config)), category)
    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), compare_type=True)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=lambda: "de_DE", timezone_selector=lambda: "Europe/Berlin")
    bootstrap.init_app(app)
    mail.init_app(app)
    _session_store(app)
    server_sessions.init_app(app)
    security.init_app(app, UserDatastore(db, User, None), forgot_password_form=forgot_password_form())
    from .accounts import sessions
    from .accounts.routes import blueprint as accounts
    from .accounts.throttling import protect_login
    from .audit import log
    from .signon import local_login
    from .signon import routes as signon

    app.register_blueprint(accounts)  # before the throttle wraps its view
    signon.register(app)  # likewise
    protect_login(app)
    log.register(app)
    sessions.register(app)
    local_login.register(app)  # after the audit's login form, which it extends
    production = app.config["REFERRAL_PRODUCTION"]
    talisman.init_app(
        app,
        content_security_policy=config.CONTENT_SECURITY_POLICY,
        permissions_policy=config.PERMISSIONS_POLICY,
        referrer_policy="no-referrer",
        frame_options="DENY",
        force_https=production,  # behind the TLS proxy; see README, "Sicherheit"
        strict_transport_security=production,
        strict_transport_security_max_age=31536000,
        session_cookie_secure=production,
        session_cookie_http_only=True,
    )


def _session_store(app: Flask) -> None:
    """The client object Flask-Session keeps sessions in, unless a test has given one."""
    if app.config["SESSION_TYPE"] == "redis":
        import redis

        app.config.setdefault(
            "SESSION_REDIS", redis.Redis.from_url(app.config["SESSION_REDIS_URL"], **config.redis_options())
        )
    elif app.config.get("SESSION_CACHELIB") is None:
        from cachelib import FileSystemCache

        # 0600 files under instance/; expired ones are removed by cachelib as new ones are written.
        app.config["SESSION_CACHELIB"] = FileSystemCache(app.config["SESSION_FILE_DIR"], threshold=10000, mode=0o600)


def register_blueprints(app: Flask) -> None:
    from .administration.routes import blueprint as administration
    from .audit.routes import blueprint as audit
    from .cases.routes import blueprint as cases
    from .consultations.routes import blueprint as consultations
    from .coordination.routes import blueprint as coordination
    from .directory.routes import blueprint as directory
    from .evaluation.routes import blueprint as evaluation
    from .guide.routes import blueprint as guide
    from .health import blueprint as health
    from .home import blueprint as home
    from .surveys.routes import blueprint as surveys

    for blueprint in (
        home,
        cases,
        consultations,
        evaluation,
        coordination,
        administration,
        audit,
        directory,
        guide,
        health,
        surveys,
    ):
        app.register_blueprint(blueprint)
    from .api.actions import register as api_actions
    from .api.routes import blueprint as api_blueprint
    from .api.routes import register as api
    from .api.webhooks import register as webhooks
    from .notifications.routes import register as notifications

    api_actions(api_blueprint)  # the write endpoints, on the blueprint before it is registered
    api(app)
    webhooks(app)

    notifications(app)


def register_errorhandlers(app: Flask) -> None:
    from . import outages
    from .kernel.wording import configured

    # Texts that quote the configuration are read from it when shown.
    messages = {
        400: ("Ungültige Anfrage", "Die Anfrage konnte nicht verarbeitet werden. Bitte laden Sie die Seite neu."),
        403: ("Keine Berechtigung", "Für diese Seite fehlt Ihnen die Berechtigung."),
        404: ("Nicht gefunden", "Diese Seite gibt es nicht, oder sie ist für Sie nicht sichtbar."),
        405: ("Nicht erlaubt", "Diese Aktion ist so nicht möglich."),
        413: (
            "Datei zu groß",
            "Die gesendeten Daten sind zu groß. Anhänge dürfen höchstens {max_attachment} groß sein.",
        ),
        429: (
            "Zu viele Versuche",
            "Zu viele fehlgeschlagene Anmeldeversuche. Die Anmeldung ist für {login_lockout} "
            "gesperrt. Bitte warten Sie, oder wenden Sie sich an die Administration.",
        ),
    }

    from .api.errors import http_problem, under_api

    def handler(code):
        def handle(error):
            if under_api():  # the API answers problem details, never a page (api/errors.py)
                if code in (403, 404):
                    db.session.rollback()
                return http_problem(code)
            title, text = messages[code]
            text = text.format(**configured(current_app.config))
            try:
                if code in (403, 404):
                    from .audit.log import denied

                    db.session.rollback()
                    denied(code)
                return render_template("errors/error.html", code=code, title=title, text=text), code
            except Exception as failure:  # the page with navigation needs the user, the session, the database
                if kind := outages.unreachable(failure):
                    outages.rollback_quietly()
                    return outages.outage_page(kind)
                raise

        return handle

    for code in messages:
        app.register_error_handler(code, handler(code))

    from werkzeug.exceptions import HTTPException

    @app.errorhandler(HTTPException)
    def other_http_error(error):
        # Codes without a page of their own (401, 406, 415, …): Werkzeug's answer, except under /api/.
        if under_api() and error.code and error.code >= 400:
            return http_problem(error.code)
        return error

    @app.errorhandler(500)
    def internal_error(error):
        # Rendered without user, session or database: whatever failed may be one of them.
        if kind := outages.unreachable(getattr(error, "original_exception", None)):
            outages.rollback_quietly()
            return outages.outage_page(kind)
        outages.rollback_quietly()  # nothing half-written reaches the database
        from .workflow.errors import LOST_IN_THE_DATABASE, lost_a_race

        if under_api():
            lost = lost_a_race(getattr(error, "original_exception", None) or error)
            return http_problem(409 if lost else 500)
        if lost_a_race(getattr(error, "original_exception", None) or error):
            # Lost at the request's commit, after every check had passed: a concurrent change, not a fault.
            return outages.render_static(409, "Gleichzeitige Änderung", [LOST_IN_THE_DATABASE])
        note = outages.saving_note()  # only what is known about the input; nothing for a page only read
        return outages.render_static(
            500, "Interner Fehler", ["Es ist ein Fehler aufgetreten.", note or "Bitte versuchen Sie es erneut."]
        )

    outages.register(app)

    from flask_wtf.csrf import CSRFError

    @app.errorhandler(CSRFError)
    def csrf_error(error):
        return render_template(
            "errors/error.html",
            code=400,
            title="Sitzung abgelaufen",
            text="Das Formular war nicht mehr gültig (Sicherheitsprüfung). Bitte laden Sie die Seite neu und "
            "senden Sie es erneut.",
        ), 400


def register_template_helpers(app: Flask) -> None:
    from .templating import register

    register(app)

    @app.context_processor
    def inject_user():
        return {"current_user": current_user}


def register_commands(app: Flask) -> None:
    from .cli import register

    register(app)
