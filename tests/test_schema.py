"""The schema comes only from migrations, and the migrated schema equals the models."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import Column, Integer, MetaData, inspect

from referral.extensions import db


def test_flask_db_check_finds_no_difference(runner):
    result = runner.invoke(args=["db", "check"])
    assert result.exit_code == 0, result.output


def _differences(metadata):
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, metadata)


def test_migrated_schema_equals_the_models(app):
    assert _differences(db.metadata) == []


def test_the_comparison_would_notice_a_difference(app):
    """Control: a column the migrations don't know is reported, so the test above can fail."""
    changed = MetaData(naming_convention=db.metadata.naming_convention)
    for table in db.metadata.tables.values():
        table.to_metadata(changed)
    changed.tables["referral"].append_column(Column("unmigrated", Integer))
    assert [d[0] for d in _differences(changed)] == ["add_column"]


def test_every_model_table_exists_after_migrating(app):
    tables = set(inspect(db.engine).get_table_names())
    assert set(db.metadata.tables) <= tables


def test_migrations_run_down_and_up_again(app):
    downgrade(revision="base")
    assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
    upgrade()
    assert set(db.metadata.tables) <= set(inspect(db.engine).get_table_names())


def test_state_is_checked_by_the_database(app):
    """The enum of states is a CHECK constraint in the database, not only a Python type."""
    checks = {c["name"] for c in inspect(db.engine).get_check_constraints("referral")}
    assert {"ck_referral_state", "ck_referral_submitted_complete", "ck_referral_acute_has_phone_call"} <= checks
