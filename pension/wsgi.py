"""WSGI entry point for gunicorn: ``gunicorn pension.wsgi:app``."""

from pension import create_app

app = create_app()
