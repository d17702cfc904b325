"""Custom actions (rasa_sdk): the same classes run in the embedded engine and, for a Rasa
server, in an action server: ``python -m rasa_sdk --actions bot.actions``."""

from bot.actions import assistance, care, certification, forms  # noqa: F401 — registers them
