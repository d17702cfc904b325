"""Photos for manual review: only real JPEG/PNG, stored privately under random names."""

from __future__ import annotations

import stat
import struct
import zlib

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from services.accounts import account_for
from services.models import AuditLog, Person, PhotoReview
from services.photos import (
    MAX_BYTES,
    PhotoRejected,
    inspect_image,
    photo_path,
    store_review_photo,
)
from tests.support import FACES, make_person

JPEG = FACES / "obama.jpg"
PNG = FACES / "alex_lacamoire2.png"


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_claiming(width: int, height: int) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + png_chunk(b"IEND", b"")
    )


def jpeg_with_size(width: int, height: int) -> bytes:
    """obama.jpg with its frame header rewritten (walking the segments: the EXIF thumbnail
    inside APP1 has a start-of-frame marker of its own)."""
    data = bytearray(JPEG.read_bytes())
    position = 2
    while data[position + 1] != 0xC0:
        position += 2 + struct.unpack(">H", data[position + 2 : position + 4])[0]
    data[position + 5 : position + 9] = struct.pack(">HH", height, width)
    return bytes(data)


@pytest.fixture
def photo_dir(tmp_path):
    return tmp_path / "private" / "photos"  # not there yet


def test_store_a_jpeg(db, photo_dir):
    data = JPEG.read_bytes()
    with db.session() as session:
        person = make_person(session)
        account = account_for(session, "wechat", "o-daughter")
        review = store_review_photo(session, photo_dir, data, person=person, account=account)
        assert review.status == "pending"
        assert review.person_id == person.id and review.account_id == account.id
        id_number = person.id_number

    path = photo_path(photo_dir, review)
    assert path.parent == photo_dir
    assert path.read_bytes() == data
    assert path.suffix == ".jpg" and len(path.stem) == 32 and int(path.stem, 16) >= 0
    assert "王秀兰" not in path.name and id_number not in path.name
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(photo_dir.stat().st_mode) == 0o700

    with db.session() as session:
        stored = session.scalars(select(PhotoReview)).one()
        assert stored.photo_name == path.name and stored.status == "pending"
        entry = session.scalars(select(AuditLog)).one()
        assert (entry.actor, entry.action, entry.target_id) == (
            f"wechat#{account.id}",
            "photo_review.submitted",
            str(review.id),
        )
        assert entry.detail["width"] == 910 and entry.detail["height"] == 1137


@pytest.mark.parametrize("database", ["db", "sqlite_db"])
def test_store_a_png_without_person_or_account(request, database, photo_dir):
    db = request.getfixturevalue(database)
    with db.session() as session:
        review = store_review_photo(session, photo_dir, PNG.read_bytes(), person=None, account=None)
    assert photo_path(photo_dir, review).suffix == ".png"
    with db.session() as session:
        assert session.scalars(select(AuditLog.actor)).one() == "bot"


def test_every_photo_gets_its_own_random_name(db, photo_dir):
    with db.session() as session:
        names = {
            store_review_photo(
                session, photo_dir, JPEG.read_bytes(), person=None, account=None
            ).photo_name
            for _ in range(3)
        }
    assert len(names) == 3
    assert sorted(p.name for p in photo_dir.iterdir()) == sorted(names)


def test_image_inspection():
    info = inspect_image(JPEG.read_bytes())
    assert (info.format, info.width, info.height, info.mime_type) == (
        "jpeg",
        910,
        1137,
        "image/jpeg",
    )
    png = inspect_image(PNG.read_bytes())
    assert (png.format, png.width, png.height, png.extension) == ("png", 424, 394, ".png")
    progressive = inspect_image((FACES / "obama_whitehouse.jpg").read_bytes())
    assert (progressive.width, progressive.height) == (1480, 832)


def fakes() -> dict[str, tuple[bytes, str]]:
    jpeg = JPEG.read_bytes()
    png = PNG.read_bytes()
    return {
        "text renamed .jpg": ("这是一张照片，真的。\n".encode() * 100, "not_image"),
        "empty": (b"", "empty"),
        "mp4 video": ((FACES / "short_hamilton_clip.mp4").read_bytes()[:4096], "not_image"),
        "truncated jpeg": (jpeg[: len(jpeg) // 2], "truncated"),
        "jpeg without its end": (jpeg[:-2], "truncated"),
        "jpeg header only": (jpeg[:200], "truncated"),
        "truncated png": (png[: len(png) // 2], "truncated"),
        "png with a bad crc": (png[:40] + bytes([png[40] ^ 0xFF]) + png[41:], "corrupt"),
        "png bomb 100000x100000": (png_claiming(100_000, 100_000), "too_big"),
        "png header only, huge": (png_claiming(100_000, 100_000)[:33], "too_big"),
        "jpeg claiming 13000 px": (jpeg_with_size(13_000, 800), "too_big"),
        "jpeg 1x1": (jpeg_with_size(1, 1), "too_small"),
        "jpeg claiming 0 px": (jpeg_with_size(0, 800), "corrupt"),
        "over 10 MB": (jpeg + b"\x00" * (MAX_BYTES - len(jpeg) + 1), "too_large"),
    }


@pytest.mark.parametrize("name", list(fakes()))
def test_fakes_are_rejected_and_nothing_is_stored(db, photo_dir, name):
    data, code = fakes()[name]
    with db.session() as session, pytest.raises(PhotoRejected) as rejected:
        store_review_photo(session, photo_dir, data, person=None, account=None)
    assert rejected.value.code == code
    assert isinstance(rejected.value, ValueError)
    assert any("\u4e00" <= c <= "\u9fff" for c in rejected.value.reason)  # Chinese for users
    assert not photo_dir.exists() or list(photo_dir.iterdir()) == []
    with db.session() as session:
        assert session.scalars(select(PhotoReview)).all() == []


def test_largest_allowed_size_is_accepted():
    assert inspect_image(png_claiming(12_000, 12_000)).width == 12_000
    assert inspect_image(jpeg_with_size(12_000, 9_000)).height == 9_000


def test_trailing_bytes_after_the_jpeg_end_are_fine():
    """Some phones append data after EOI (motion photos, maker trailers)."""
    assert inspect_image(JPEG.read_bytes() + b"trailer" * 10).format == "jpeg"


def test_file_is_removed_when_the_row_cannot_be_written(db, photo_dir):
    ghost = Person(id=999_999)  # not in the database: the foreign key fails
    with pytest.raises(IntegrityError), db.session() as session:
        store_review_photo(session, photo_dir, JPEG.read_bytes(), person=ghost, account=None)
    assert list(photo_dir.iterdir()) == []


def test_existing_directory_is_used(db, tmp_path):
    with db.session() as session:
        review = store_review_photo(session, tmp_path, PNG.read_bytes(), person=None, account=None)
    assert photo_path(tmp_path, review).exists()


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "王秀兰.jpg", "", "a.jpg"])
def test_photo_path_refuses_names_it_did_not_make(tmp_path, name):
    with pytest.raises(ValueError):
        photo_path(tmp_path, PhotoReview(id=1, photo_name=name))
