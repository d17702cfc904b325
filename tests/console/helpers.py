"""Signing in and posting forms the way the console's pages do (with their CSRF token)."""

from __future__ import annotations

import re

from tests.support import PASSWORD

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(client, path: str = "/console/login") -> str:
    found = CSRF.search(client.get(path).get_data(as_text=True))
    assert found, f"no CSRF token on {path}"
    return found.group(1)


def sign_in(client, username: str = "li", password: str = PASSWORD):
    return client.post(
        "/console/login",
        data={"username": username, "password": password, "csrf_token": csrf_token(client)},
    )


def post(client, path: str, data: dict | None = None, *, token_from: str | None = None):
    """A console form POST with the page's CSRF token."""
    token = csrf_token(client, token_from or "/console/reviews")
    return client.post(path, data={**(data or {}), "csrf_token": token})
