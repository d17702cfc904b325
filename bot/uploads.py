"""Photos parked between the channel that received them and the action that files them.

A random token is all that travels through the tracker (and through a Rasa server): never the
bytes, never a file name that says whose photo it is. A photo the dialogue never claims (the
turn failed, the flow went elsewhere) is removed after :data:`UNCLAIMED_SECONDS`, and the
parking holds at most :data:`MAX_PARKED` photos: outsiders cannot fill the disk through it.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

UNCLAIMED_SECONDS = 15 * 60  # a turn claims its photo within seconds; Rasa retries within minutes
MAX_PARKED = 500  # photos waiting at once (~7 MB each at most)


class ParkingFull(Exception):
    """Too many photos are waiting to be claimed: this one is not kept."""


class UploadParking:
    def __init__(self, photo_dir: str | Path):
        self.folder = Path(photo_dir) / "incoming"

    def park(self, data: bytes) -> str:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.waiting() >= MAX_PARKED:
            self.sweep()
            if self.waiting() >= MAX_PARKED:
                raise ParkingFull(f"{MAX_PARKED} photos are waiting to be claimed")
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

    def waiting(self) -> int:
        return sum(1 for _ in self.folder.iterdir()) if self.folder.is_dir() else 0

    def sweep(self, max_age_seconds: float = UNCLAIMED_SECONDS) -> int:
        """Remove photos parked longer than ``max_age_seconds``; how many were removed."""
        if not self.folder.is_dir():
            return 0
        cutoff = time.time() - max_age_seconds
        removed = 0
        for path in self.folder.iterdir():
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:  # claimed meanwhile
                continue
        return removed
