"""`flask` commands: users and demo data. They call the same operations as the web pages."""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from .accounts import services as accounts
from .accounts.models import Role
from .extensions import db

users = AppGroup("users", help="Manage user accounts.")
demo_cli = AppGroup("demo", help="Fictional demo data (never in production).")
audit_cli = AppGroup("audit", help="The audit log.")
keys_cli = AppGroup("keys", help="The data keys (encryption at rest).")
notifications_cli = AppGroup("notifications", help="E-mail notifications (the outbox).")


@notifications_cli.command("deliver")
@click.option("--loop", is_flag=True, help="Keep running, checking every --interval seconds.")
@click.option("--interval", default=15, show_default=True)
def deliver_notifications(loop, interval):
    """Send the e-mails waiting in the outbox; failed ones are retried later."""
    import time

    from .notifications.delivery import deliver

    while True:
        sent, failed = deliver()
        if sent or failed or not loop:
            click.echo(f"{sent} sent, {failed} failed (kept for a later attempt).")
        if not loop:
            return
        time.sleep(interval)


reminders_cli = AppGroup("reminders", help="Reminders of overdue deadlines (run from cron).")


@reminders_cli.command("send")
def send_reminders():
    """Remind district leads of overdue acknowledgements and feedback, and the InsoFa pool of
    consultations not accepted in time; each item once a day."""
    from .notifications.reminders import send

    click.echo(f"{send()} overdue item(s) reminded.")


retention_cli = AppGroup("retention", help="Deleting data whose purpose has ended (run daily).")


@retention_cli.command("run")
@click.option("--dry-run", is_flag=True, help="Only list what would be purged.")
def run_retention(dry_run):
    """Purge closed referrals past the retention period and drafts untouched too long."""
    from .cases import retention

    retention.run(dry_run=dry_run, report=click.echo)


@keys_cli.command("rotate")
@click.option("--batch", default=500, show_default=True, help="Rows per transaction.")
def rotate_keys(batch):
    """Re-encrypt all data and files under the newest key of REFERRAL_DATA_KEYS (safe to re-run)."""
    from .keys import rotate

    rotate(batch, report=click.echo)


@audit_cli.command("verify")
def verify_audit():
    """Walk the whole hash chain; exit status 1 and the first broken entry if it was tampered with."""
    from .audit import chain

    verdict = chain.verify()
    db.session.rollback()
    click.echo(str(verdict))
    if not verdict.ok:
        raise SystemExit(1)


@users.command("create")
@click.argument("email")
@click.option("--name", required=True, help="Full name as shown to others.")
@click.option("--role", "role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--scope", default=None, help="School (name or id) for school roles, district (code) for ASD roles.")
@click.option("--phone", default="")
@click.password_option(help="At least 12 characters; asked for when not given.")
def create_user(email, name, role, scope, phone, password):
    """Create a user with one membership (role and scope)."""
    try:
        user = accounts.create_user(email, name, password, phone)
        accounts.add_membership(user, Role(role), scope)
        db.session.commit()
    except accounts.AccountError as error:
        db.session.rollback()
        raise click.ClickException(str(error)) from error
    click.echo(f"Created {user.email} ({Role(role).label}).")


@users.command("add-membership")
@click.argument("email")
@click.option("--role", "role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--scope", default=None)
def add_membership(email, role, scope):
    """Give an existing user one more membership."""
    from sqlalchemy import select

    from .accounts.models import User

    user = db.session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise click.ClickException(f"No user with the address {email}.")
    try:
        accounts.add_membership(user, Role(role), scope)
        db.session.commit()
    except accounts.AccountError as error:
        db.session.rollback()
        raise click.ClickException(str(error)) from error
    click.echo(f"{user.email} is now also {Role(role).label}.")


def _user_by_email(email: str):
    from sqlalchemy import select

    from .accounts.models import User

    user = db.session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise click.ClickException(f"No user with the address {email}.")
    return user


@users.command("end-sessions")
@click.argument("email")
def end_sessions(email):
    """End every session of a user at once (e.g. a lost device)."""
    user = _user_by_email(email)
    accounts.end_sessions(user)
    db.session.commit()
    click.echo(f"All sessions of {user.email} ended.")


@users.command("deactivate")
@click.argument("email")
def deactivate(email):
    """Deactivate a user (e.g. a teacher leaves the school): access ends at once, referrals stay."""
    user = _user_by_email(email)
    accounts.deactivate(user)
    db.session.commit()
    click.echo(f"{user.email} deactivated; their referrals stay with the school.")


def _refuse_in_production():
    if current_app.config["REFERRAL_PRODUCTION"]:
        raise click.ClickException("Demo data is never loaded in production.")


@demo_cli.command("load")
@click.option("--if-empty", is_flag=True, help="Do nothing when the database holds data already.")
def load_demo(if_empty):
    """Load the fictional demo data."""
    from . import demo

    _refuse_in_production()
    if demo.has_data():
        if if_empty:
            click.echo("The database holds data already; demo data not loaded again.")
            return
        raise click.ClickException("The database is not empty; demo data is only loaded into an empty database.")
    demo.load()
    db.session.commit()
    click.echo("Demo data loaded.")


@demo_cli.command("generate")
@click.option("--referrals", default=1000, show_default=True, help="Number of referrals (consultations: a quarter).")
@click.option("--years", default=3, show_default=True, help="Spread over this many years up to today.")
@click.option("--districts", default=6, show_default=True)
@click.option("--schools", default=8, show_default=True, help="Schools per district.")
@click.option("--seed", default=1, show_default=True, help="The same seed gives the same data.")
def generate_demo(referrals, years, districts, schools, seed):
    """Generate fictional data at a city's scale (benchmarks, trying the evaluation)."""
    import time

    from .generator import generate

    _refuse_in_production()
    started = time.perf_counter()
    made = generate(referrals, years=years, districts=districts, schools=schools, seed=seed, report=click.echo)
    click.echo(f"{made['referrals']} referrals ({made['transfers']} transferred) and {made['consultations']} "
               f"consultations generated in {time.perf_counter() - started:.0f} s.")


@demo_cli.command("logins")
def print_logins():
    """Print the demo logins."""
    from . import demo

    _refuse_in_production()
    click.echo(demo.logins_text())


def register(app) -> None:
    app.cli.add_command(users)
    app.cli.add_command(demo_cli)
    app.cli.add_command(audit_cli)
    app.cli.add_command(keys_cli)
    app.cli.add_command(retention_cli)
    app.cli.add_command(notifications_cli)
    app.cli.add_command(reminders_cli)
