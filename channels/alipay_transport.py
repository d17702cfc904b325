"""The hooks for ``alipay-sdk-python``: the one place this app changes how the SDK reaches
Alipay and how it signs.

The SDK signs every request and verifies every response itself (``DefaultAlipayClient``); that
code runs unchanged, in production and in the tests, with two functions replaced:

* **RSA.** The SDK's ``sign_with_rsa2`` / ``verify_with_rsa`` use the pure-Python ``rsa``
  package: about 37 ms per RSA-2048 signature, holding the GIL. :func:`sign_with_rsa2` and
  :func:`verify_with_rsa` have the same contract and give the same bytes (PKCS#1 v1.5 over
  SHA-256 is deterministic) from OpenSSL through ``cryptography``, in about 1 ms. The gateway
  signs its replies with :func:`rsa2_sign` too.
* **Transport.** Its transport,
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

import base64
import binascii
import http.client
from functools import lru_cache
from urllib.parse import urlsplit

from alipay.aop.api import DefaultAlipayClient as sdk_client
from alipay.aop.api.util import WebUtils
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

_SDK_GET_HTTP_CONNECTION = WebUtils.get_http_connection
_SDK_SIGN, _SDK_VERIFY = sdk_client.sign_with_rsa2, sdk_client.verify_with_rsa


def rsa2_sign(private_key: rsa.RSAPrivateKey, content: bytes) -> str:
    """RSA2 as Alipay means it: PKCS#1 v1.5 over SHA-256, base64."""
    signature = private_key.sign(content, padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode("ascii")


def rsa2_verify(public_key: rsa.RSAPublicKey, content: bytes, signature: str) -> bool:
    try:
        raw = base64.b64decode(signature, validate=True)
        public_key.verify(raw, content, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


@lru_cache(maxsize=8)
def _private_key(bare_base64: str) -> rsa.RSAPrivateKey:
    return serialization.load_der_private_key(base64.b64decode(bare_base64), None)


@lru_cache(maxsize=8)
def _public_key(bare_base64: str) -> rsa.RSAPublicKey:
    return serialization.load_der_public_key(base64.b64decode(bare_base64))


def sign_with_rsa2(private_key: str, sign_content: str, charset: str) -> str:
    """The SDK's contract (bare base64 PKCS#1 key, text, charset), in OpenSSL."""
    return rsa2_sign(_private_key(private_key), sign_content.encode(charset))


def verify_with_rsa(public_key: str, message: bytes, sign: str) -> bool:
    """The SDK's contract: True, or an exception (the SDK reports either as a bad answer)."""
    if not rsa2_verify(_public_key(public_key), message, sign):
        raise InvalidSignature("Alipay's signature does not match")
    return True


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
    """Route the SDK's HTTP through :func:`get_http_connection` and its RSA through
    :func:`sign_with_rsa2` / :func:`verify_with_rsa` (idempotent)."""
    WebUtils.get_http_connection = get_http_connection
    sdk_client.sign_with_rsa2 = sign_with_rsa2
    sdk_client.verify_with_rsa = verify_with_rsa


def uninstall() -> None:
    """Put the SDK's own functions back (for completeness; nothing in the app calls this)."""
    WebUtils.get_http_connection = _SDK_GET_HTTP_CONNECTION
    sdk_client.sign_with_rsa2, sdk_client.verify_with_rsa = _SDK_SIGN, _SDK_VERIFY
