"""`flask` commands: users and demo data. They call the same operations as the web pages."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from .accounts import operations as accounts
from .accounts import services
from .accounts.models import Role
from .extensions import db

users = AppGroup("users", help="Manage user accounts.")
demo_cli = AppGroup("demo", help="Fictional demo data (never in production).")
audit_cli = AppGroup("audit", help="The audit log.")
keys_cli = AppGroup("keys", help="The data keys (encryption at rest).")
notifications_cli = AppGroup("notifications", help="E-mail notifications (the outbox).")
attachments_cli = AppGroup("attachments", help="Attachments (stored in the database).")


@attachments_cli.command("import-files")
def import_attachment_files():
    """Move attachments from UPLOAD_FOLDER into the database (once, after upgrading). Resumable:
    run it again after an interruption; each file is removed only after its commit."""
    from .cases.file_import import import_files

    result = import_files(report=click.echo)
    if result.missing or result.unreadable:
        raise SystemExit(1)


backup_cli = AppGroup("backup", help="Backing up the database and restoring it into an empty one.")


@backup_cli.command("create")
@click.argument("path", type=click.Path(file_okay=False, path_type=Path))
def create_backup(path):
    """Write a consistent backup into the new directory PATH: the database archive, the attachment
    files and manifest.json (schema revision, row counts, audit head, checksums). The data keys are
    not included: keep REFERRAL_DATA_KEYS apart from the backups."""
    import time

    from . import backup

    db.session.remove()
    started = time.perf_counter()
    try:
        made = backup.create(
            current_app.config["SQLALCHEMY_DATABASE_URI"], Path(current_app.config["UPLOAD_FOLDER"]), path, click.echo
        )
    except backup.BackupError as error:
        raise click.ClickException(str(error)) from error
    manifest = made.manifest
    head = manifest["audit_head"] or {"seq": 0}
    click.echo(
        f"Backup written to {made.directory} in {time.perf_counter() - started:.1f} s: "
        f"{manifest['archive']['bytes']} bytes, {sum(manifest['tables'].values())} rows in "
        f"{len(manifest['tables'])} tables, audit log up to entry {head['seq']}, "
        f"{manifest['uploads']['files']} attachment file(s)."
    )


@backup_cli.command("restore")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
def restore_backup(path):
    """Restore the backup in PATH into the empty database DATABASE_URL names (refused if it holds any
    table), then compare the row counts and the audit head with the manifest."""
    import time

    from . import backup

    db.session.remove()
    db.engine.dispose()  # SQLite: no connection of this process holds the file being replaced
    started = time.perf_counter()
    try:
        restored = backup.restore(
            current_app.config["SQLALCHEMY_DATABASE_URI"], Path(current_app.config["UPLOAD_FOLDER"]), path, click.echo
        )
    except backup.BackupError as error:
        raise click.ClickException(str(error)) from error
    db.engine.dispose()
    if restored.differences:
        click.echo("The restored database does NOT match the manifest:", err=True)
        for difference in restored.differences:
            click.echo(f"- {difference}", err=True)
        raise SystemExit(1)
    manifest = restored.manifest
    head = manifest["audit_head"] or {"seq": 0}
    click.echo(
        f"Restored in {time.perf_counter() - started:.1f} s; matches the manifest of {manifest['created_at']}: "
        f"schema {manifest['schema_revision']}, {sum(manifest['tables'].values())} rows in "
        f"{len(manifest['tables'])} tables, audit log up to entry {head['seq']}. "
        "Next: `flask audit verify`."
    )


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


@click.command("worker")
@click.option("--once", is_flag=True, help="One round (due daily jobs, then the outbox), then end.")
def worker(once):
    """Send e-mails continuously and run the daily jobs (retention, reminders, audit check) at
    their times (JOB_TIMES); several workers on several servers may run at once."""
    from .jobs.worker import run

    run(once=once, report=lambda line: click.echo(line))


reminders_cli = AppGroup("reminders", help="Reminders of overdue deadlines (run daily by `flask worker`).")


@reminders_cli.command("send")
def send_reminders():
    """Remind district leads of overdue acknowledgements and feedback, and the InsoFa pool of
    consultations not accepted in time; each item once a day."""
    from .notifications.reminders import send

    click.echo(f"{send()} overdue item(s) reminded.")


retention_cli = AppGroup("retention", help="Deleting data whose purpose has ended (run daily).")


@retention_cli.command("run")
@click.option("--dry-run", is_flag=True, help="Only list what would be purged.")
@click.option("--batch", default=200, show_default=True, help="Referrals (or consultations) per transaction.")
def run_retention(dry_run, batch):
    """Purge closed referrals past the retention period and drafts untouched too long."""
    from . import retention

    retention.run(dry_run=dry_run, report=click.echo, batch=batch)


@keys_cli.command("rotate")
@click.option("--batch", default=5000, show_default=True, help="Values per statement and transaction.")
def rotate_keys(batch):
    """Re-encrypt all data and files under the newest key of REFERRAL_DATA_KEYS (safe to re-run)."""
    import time

    from .keys import rotate

    started = time.perf_counter()
    counts = rotate(batch, report=click.echo)
    seconds = time.perf_counter() - started
    click.echo(f"{seconds:.1f} s, {counts['values'] / max(seconds, 1e-9):,.0f} values/s.")


@audit_cli.command("verify")
@click.option(
    "--checkpoints",
    "checkpoint_file",
    type=click.Path(dir_okay=False),
    help="Checkpoint file (JSON lines) to check the chain against; default AUDIT_CHECKPOINT_FILE.",
)
def verify_audit(checkpoint_file):
    """Walk the whole log (legacy chain, every block, unsealed entries) and check it against the
    signed checkpoints; exit status 1 and where it breaks if it was tampered with."""
    import time

    from .audit import chain, checkpoints

    started = time.perf_counter()
    verdict = chain.verify(checkpoints=checkpoints.configured(checkpoint_file) if checkpoint_file else None)
    db.session.rollback()
    click.echo(str(verdict))
    seconds = time.perf_counter() - started
    click.echo(f"Checked in {seconds:.1f} s ({verdict.checked / max(seconds, 1e-9):,.0f} entries/s).")
    if not verdict.ok:
        raise SystemExit(1)


@audit_cli.command("seal")
def seal_audit():
    """Link the committed, not yet sealed entries into blocks now (the worker does it every round)."""
    from .audit import chain

    click.echo(f"{chain.seal_pending()} entries sealed.")


@audit_cli.command("keygen")
@click.argument("private_key", type=click.Path(dir_okay=False, path_type=Path))
def audit_keygen(private_key):
    """Write a new Ed25519 private key for the checkpoints to PRIVATE_KEY (mode 0600, never
    overwritten) and print its public key. Keep the private key off the database server."""
    from .audit import checkpoints

    try:
        public = checkpoints.generate(private_key)
    except checkpoints.CheckpointError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"Private key written to {private_key} (mode 0600): set AUDIT_CHECKPOINT_KEY_FILE={private_key}")
    click.echo(f"AUDIT_CHECKPOINT_PUBLIC_KEY={public}")


@audit_cli.command("checkpoint")
def audit_checkpoint():
    """Seal what is waiting and publish a signed checkpoint of the chain's head now (the worker
    does it daily, JOB_TIMES audit-checkpoint)."""
    from .audit import chain, checkpoints

    chain.seal_pending()
    try:
        checkpoint = checkpoints.publish()
    except (checkpoints.CheckpointError, OSError) as error:
        raise click.ClickException(str(error)) from error
    db.session.commit()
    if checkpoint is None:
        configured = current_app.config["AUDIT_CHECKPOINT_KEY_FILE"]
        raise click.ClickException(
            "Nothing sealed yet." if configured else "AUDIT_CHECKPOINT_KEY_FILE is not set: no checkpoint."
        )
    click.echo(
        f"Checkpoint: block {checkpoint['block']}, entry {checkpoint['last_entry_id']}, hash {checkpoint['hash']}."
    )


# Each `users` command is one operation (accounts/operations.py), committed when it succeeded. The
# audit log records the operator: role "cli", no account, the OS user in the scope.


def _user_by_email(email: str):
    user = accounts.by_email(email)
    if user is None:
        raise click.ClickException(f"No user with the address {email}.")
    return user


def _run(operation, *args):
    """One command, one transaction: committed when the operation succeeded, otherwise nothing stays."""
    try:
        result = operation(accounts.Actor.operator(), *args)
        db.session.commit()
    except accounts.AccountError as error:
        db.session.rollback()
        raise click.ClickException(str(error)) from error
    return result


def _role_and_scope(role: str, scope: str | None):
    try:
        school, district = services.find_scope(Role(role), scope)
    except accounts.AccountError as error:
        raise click.ClickException(str(error)) from error
    return Role(role), school, district


_role_option = click.option("--role", "role", type=click.Choice([r.value for r in Role]), required=True)
_scope_option = click.option(
    "--scope", default=None, help="School (name or id) for school roles, district (code or name) for ASD roles."
)


@users.command("create")
@click.argument("email")
@click.option("--name", required=True, help="Full name as shown to others.")
@_role_option
@_scope_option
@click.option("--phone", default="")
@click.password_option(help="At least 12 characters; asked for when not given.")
def create_user(email, name, role, scope, phone, password):
    """Create a user with a password and one membership (e.g. the first admin)."""
    role, school, district = _role_and_scope(role, scope)
    user = _run(accounts.create_with_password, email, name, password, phone, role, school, district)
    click.echo(f"Created {user.email} ({role.label}).")


@users.command("invite")
@click.argument("email")
@click.option("--name", required=True, help="Full name as shown to others.")
@_role_option
@_scope_option
@click.option("--phone", default="")
def invite(email, name, role, scope, phone):
    """Invite a person, as the admin page does: the link to set a password goes out by e-mail."""
    if not current_app.config.get("SERVER_NAME"):
        raise click.ClickException("SERVER_NAME must be set: the invitation link names the server.")
    role, school, district = _role_and_scope(role, scope)
    user = _run(accounts.invite, email, name, phone, role, school, district)
    click.echo(f"Invited {user.email} ({role.label}); the link waits in the outbox.")


@users.command("invite-again")
@click.argument("email")
def invite_again(email):
    """Send a new invitation link (the old one stops working)."""
    user = _user_by_email(email)
    _run(accounts.invite_again, user)
    click.echo(f"New invitation for {user.email} waits in the outbox.")


@users.command("add-membership")
@click.argument("email")
@_role_option
@_scope_option
def add_membership(email, role, scope):
    """Give an existing user one more membership."""
    user = _user_by_email(email)
    role, school, district = _role_and_scope(role, scope)
    _run(accounts.add_membership, user, role, school, district)
    click.echo(f"{user.email} is now also {role.label}.")


@users.command("remove-membership")
@click.argument("email")
@_role_option
@_scope_option
def remove_membership(email, role, scope):
    """Take one membership from a user."""
    user = _user_by_email(email)
    role, school, district = _role_and_scope(role, scope)
    membership = next(
        (
            m
            for m in user.memberships
            if m.role is role
            and m.school_id == (school.id if school else None)
            and m.district_id == (district.id if district else None)
        ),
        None,
    )
    if membership is None:
        raise click.ClickException(f"{user.email} has no such membership.")
    _run(accounts.remove_membership, user, membership)
    click.echo(f"{user.email} is no longer {role.label}.")


@users.command("end-sessions")
@click.argument("email")
def end_sessions(email):
    """End every session of a user at once (e.g. a lost device)."""
    user = _user_by_email(email)
    _run(accounts.end_sessions, user)
    click.echo(f"All sessions of {user.email} ended.")


@users.command("deactivate")
@click.argument("email")
def deactivate(email):
    """Deactivate a user (e.g. a teacher leaves the school): access ends at once, referrals stay."""
    user = _user_by_email(email)
    _run(accounts.deactivate, user)
    click.echo(f"{user.email} deactivated; their referrals stay with the school.")


@users.command("reactivate")
@click.argument("email")
def reactivate(email):
    """Let a deactivated user sign in again."""
    user = _user_by_email(email)
    _run(accounts.reactivate, user)
    click.echo(f"{user.email} is active again.")


@users.command("reset-2fa")
@click.argument("email")
def reset_two_factor(email):
    """A lost phone: the user sets up the authenticator again at the next login (also for the last admin)."""
    user = _user_by_email(email)
    _run(accounts.reset_two_factor, user)
    click.echo(f"Two-factor login of {user.email} reset; it is set up again at the next login.")


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
    click.echo(
        f"{made['referrals']} referrals ({made['transfers']} transferred) and {made['consultations']} "
        f"consultations generated in {time.perf_counter() - started:.0f} s."
    )


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
    app.cli.add_command(attachments_cli)
    app.cli.add_command(backup_cli)
    app.cli.add_command(worker)
    from .api.cli import api_clients

    app.cli.add_command(api_clients)
