"""短信端口：给有手机号、却没有绑定任何微信 / 支付宝账号的人发认证提醒。

Shanxi's rules remind by SMS three months ahead (shanxi-2018-certification-rules.txt 一(四)).
The domain only sees :class:`SmsSender`; by default :class:`LoggingSmsSender` writes what
would be sent to the log (phone masked). A real gateway plugs in by configuration::

    SMS_SENDER = "mycompany.sms:make_sender"   # a callable(config) returning an SmsSender
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from services.idcard import mask_phone

__all__ = ["LoggingSmsSender", "SmsSender", "sms_sender", "sms_sender_from_config"]

log = logging.getLogger(__name__)
_EXTENSION = "sms"


class SmsSender(Protocol):
    """Send one text to one phone number now (may raise; the caller logs and moves on)."""

    def send(self, phone: str, text: str) -> None: ...


class LoggingSmsSender:
    """No gateway configured: log the message with the number masked, and keep it for tests."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, phone: str, text: str) -> None:
        self.sent.append((phone, text))
        log.info("SMS to %s: %s", mask_phone(phone), text)


def sms_sender_from_config(config: Mapping[str, Any]) -> SmsSender:
    """``SMS_SENDER = "module:callable"`` → ``callable(config)``; unset → the logging sender."""
    spec = config.get("SMS_SENDER")
    if not spec:
        return LoggingSmsSender()
    module_name, _, attribute = str(spec).partition(":")
    if not attribute:
        raise ValueError(f"SMS_SENDER must look like 'module:callable', not {spec!r}")
    factory: Callable[[Mapping[str, Any]], SmsSender] = getattr(
        importlib.import_module(module_name), attribute
    )
    return factory(config)


def sms_sender(runtime) -> SmsSender:
    """The runtime's sender, built once per process from its configuration."""
    sender = runtime.extensions.get(_EXTENSION)
    if sender is None:
        sender = runtime.extensions[_EXTENSION] = sms_sender_from_config(runtime.config)
    return sender
