"""gunicorn behind deploy/nginx.conf — the service's settings (pension/gunicorn_conf.py), for
``gunicorn -c deploy/gunicorn.conf.py pension.wsgi:app`` (bind with GUNICORN_BIND, e.g.
``unix:/run/pension/gunicorn.sock`` or the default ``127.0.0.1:8000``)."""

from pension.gunicorn_conf import *  # noqa: F403 — one set of settings for `pension serve` too
