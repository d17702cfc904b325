"""Photos parked between a channel and the action that files them are bounded on disk."""

from __future__ import annotations

import os
import time

import pytest

from bot import uploads
from bot.uploads import ParkingFull, UploadParking


def test_an_unclaimed_photo_is_swept_and_a_fresh_one_kept(tmp_path):
    parking = UploadParking(tmp_path)
    stale, fresh = parking.park(b"old"), parking.park(b"new")
    an_hour_ago = time.time() - 3600
    os.utime(parking.folder / stale, (an_hour_ago, an_hour_ago))

    assert parking.sweep() == 1
    assert parking.claim(stale) is None
    assert parking.claim(fresh) == b"new"


def test_a_full_parking_refuses_more_photos(tmp_path, monkeypatch):
    monkeypatch.setattr(uploads, "MAX_PARKED", 3)  # a bound, not our behaviour, is lowered
    parking = UploadParking(tmp_path)
    for _ in range(3):
        parking.park(b"x")

    with pytest.raises(ParkingFull):
        parking.park(b"x")
    assert parking.waiting() == 3
