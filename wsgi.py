"""WSGI entry point: `gunicorn wsgi:app` in production, `flask --app wsgi ...` for commands."""

from referral import create_app

app = create_app()
