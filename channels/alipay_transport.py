"""The transport hook for ``alipay-sdk-python``: the one place this app changes how the SDK
reaches Alipay.

The SDK signs every request and verifies every response itself (``DefaultAlipayClient``,
``SignatureUtils``); that code runs unchanged, in production and in the tests. Its transport,
``alipay.aop.api.util.WebUtils.get_http_connection``, has one defect: it dials port 80 or 443
whatever ``server_url`` says (and a URL with an explicit port makes it fail building the
request line). :func:`install` replaces that one function with :func:`get_http_connection`,
which honours the port. For the production gateway (``https://openapi.alipay.com/gateway.do``,
no port) it opens exactly what the SDK opens — an ``HTTPSConnection`` to port 443 with
certificate verification, and the same absolute request target. With a port
(``ALIPAY_SERVER_URL=http://127.0.0.1:8931/gateway.do``) it reaches that port: this is how the
tests reach their local stand-in for the Alipay gateway.

``channels.alipay`` calls :func:`install` on import; it is idempotent.
"""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit

from alipay.aop.api.util import WebUtils

_SDK_GET_HTTP_CONNECTION = WebUtils.get_http_connection


def get_http_connection(url: str, query_string: str | None, timeout: float):
    """Same contract as the SDK's: ``(request target, unopened connection)``."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(f"Alipay server URL must be http(s)://host[:port]/path, not {url!r}")
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)
    connection_class = http.client.HTTPSConnection if secure else http.client.HTTPConnection
    connection = connection_class(host=parts.hostname, port=port, timeout=timeout)
    target = f"{parts.scheme}://{parts.netloc}{parts.path}"
    if query_string:
        target += "?" + query_string
    return target, connection


def install() -> None:
    """Route the SDK's HTTP through :func:`get_http_connection` (idempotent)."""
    WebUtils.get_http_connection = get_http_connection


def uninstall() -> None:
    """Put the SDK's own function back (for completeness; nothing in the app calls this)."""
    WebUtils.get_http_connection = _SDK_GET_HTTP_CONNECTION
