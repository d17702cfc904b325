"""Sensitive data never reaches a log: ID numbers and mobile numbers are masked in every record.

Installed as the log-record factory, so it covers every logger — ours, Flask's, gunicorn's,
RQ's — whatever handler prints the record afterwards.
"""

from __future__ import annotations

import logging

from services.idcard import mask_personal_numbers

_installed = False


def install_log_masking() -> None:
    global _installed
    if _installed:
        return
    make_record = logging.getLogRecordFactory()

    def masked_record(*args, **kwargs) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a broken format string: leave it to the handler
            return record
        record.msg, record.args = mask_personal_numbers(message), None
        return record

    logging.setLogRecordFactory(masked_record)
    _installed = True
