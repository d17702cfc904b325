"""Photos parked between the channel that received them and the action that files them.

A random token is all that travels through the tracker (and through a Rasa server): never the
bytes, never a file name that says whose photo it is.
"""

from __future__ import annotations

import secrets
from pathlib import Path


class UploadParking:
    def __init__(self, photo_dir: str | Path):
        self.folder = Path(photo_dir) / "incoming"

    def park(self, data: bytes) -> str:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        token = secrets.token_hex(16)
        path = self.folder / token
        path.write_bytes(data)
        path.chmod(0o600)
        return token

    def claim(self, token: str) -> bytes | None:
        """The parked bytes, removed from the parking; None for an unknown or forged token."""
        if not (isinstance(token, str) and len(token) == 32 and token.isalnum()):
            return None
        path = self.folder / token
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        path.unlink(missing_ok=True)
        return data
