"""Photos for manual review: only real pictures, decoded under a pixel limit, stored
privately under random names as JPEGs re-encoded without metadata."""

from __future__ import annotations

import functools
import io
import stat
import struct

import pillow_heif
import pytest
from PIL import ExifTags, Image, ImageChops, ImageStat
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from services.accounts import account_for
from services.models import AuditLog, Person, PhotoReview
from services.photos import (
    MAX_BYTES,
    MAX_PIXELS,
    PhotoRejected,
    inspect_image,
    photo_path,
    store_review_photo,
)
from tests.fake_photos import (
    garbage_behind_a_jpeg_header,
    jpeg_with_exif,
    jpeg_with_size,
    png_claiming,
    png_of,
)
from tests.support import FACES, make_person

JPEG = FACES / "obama.jpg"
PNG = FACES / "alex_lacamoire2.png"


def stored_image(photo_dir, review) -> Image.Image:
    image = Image.open(photo_path(photo_dir, review))
    image.load()
    return image


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
    assert path.read_bytes() != data  # re-encoded, not the bytes as sent
    stored = stored_image(photo_dir, review)
    assert (stored.format, stored.size, stored.mode) == ("JPEG", (910, 1137), "RGB")
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
    assert photo_path(photo_dir, review).suffix == ".jpg"
    assert stored_image(photo_dir, review).format == "JPEG"
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


@functools.cache
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
        "png header only, huge": (png_claiming(100_000, 100_000)[:33], "corrupt"),
        "16-bit png 11999x11999 (1.15 GB decoded)": (png_of(11_999, 11_999, 16), "too_big"),
        "74-byte png claiming 12000x12000": (png_claiming(12_000, 12_000), "too_big"),
        "7 MB of garbage behind a jpeg header": (garbage_behind_a_jpeg_header(0), "corrupt"),
        # libjpeg decodes some random bytes without an error, as mid-grey: nothing to see
        "7 MB of garbage that decodes to grey": (garbage_behind_a_jpeg_header(21), "blank"),
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


def test_the_sizes_named_in_the_fakes_are_what_they_claim():
    assert len(png_claiming(12_000, 12_000)) < 80
    sixteen_bit = png_of(11_999, 11_999, 16)
    assert len(sixteen_bit) < 1_300_000  # small on disk, 288 MB of pixels
    assert struct.unpack(">IIB", sixteen_bit[16:25]) == (11_999, 11_999, 16)


def test_a_picture_up_to_the_pixel_limit_is_accepted_one_row_more_is_not():
    side = 7_000  # 49 MP, a 50 MP phone camera's size
    assert side * side <= MAX_PIXELS < side * (side + 160)
    assert inspect_image(png_of(side, side)).width == side
    with pytest.raises(PhotoRejected) as rejected:
        inspect_image(png_of(side, side + 160))
    assert rejected.value.code == "too_big"
    assert "像素" in rejected.value.reason


def test_gps_and_every_other_exif_tag_are_not_kept(db, photo_dir):
    data = jpeg_with_exif(Image.open(JPEG), gps=(39.9, 116.4))
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(ExifTags.IFD.GPSInfo)  # it was there
    with db.session() as session:
        review = store_review_photo(session, photo_dir, data, person=None, account=None)
    stored = stored_image(photo_dir, review)
    assert not stored.getexif() and "exif" not in stored.info
    raw = photo_path(photo_dir, review).read_bytes()
    assert b"Exif" not in raw and b"TestPhone" not in raw


def test_a_photo_turned_by_its_exif_orientation_is_stored_upright(db, photo_dir):
    upright = Image.open(JPEG).convert("RGB")
    # As a phone held sideways stores it: pixels turned, orientation 6 says "turn 90° back".
    data = jpeg_with_exif(upright.transpose(Image.Transpose.ROTATE_90), orientation=6)
    assert Image.open(io.BytesIO(data)).size == (1137, 910)
    with db.session() as session:
        review = store_review_photo(session, photo_dir, data, person=None, account=None)
        assert inspect_image(data).width == 910
    stored = stored_image(photo_dir, review)
    assert stored.size == (910, 1137)
    difference = ImageStat.Stat(ImageChops.difference(stored, upright).convert("L")).mean[0]
    assert difference < 6  # the same picture, the right way up (JPEG noise only)


def test_an_iphone_heic_photo_is_accepted_and_kept_as_jpeg(db, photo_dir):
    output = io.BytesIO()
    pillow_heif.from_pillow(Image.open(JPEG).convert("RGB")).save(output, quality=80)
    assert output.getvalue()[4:12] == b"ftypheic"
    assert inspect_image(output.getvalue()).format == "heif"
    with db.session() as session:
        review = store_review_photo(
            session, photo_dir, output.getvalue(), person=None, account=None
        )
    assert stored_image(photo_dir, review).size == (910, 1137)


def test_a_truncated_photo_is_refused_even_after_face_recognition_is_imported():
    """face_recognition sets Pillow's LOAD_TRUNCATED_IMAGES for the whole process."""
    from services import faces

    faces.face_locations(faces.load_image(FACES / "obama_small.jpg"))  # imports it
    jpeg = JPEG.read_bytes()
    assert inspect_or_code(jpeg[: len(jpeg) // 2]) == "truncated"
    assert inspect_or_code(garbage_behind_a_jpeg_header(0)) == "corrupt"


def test_garbage_is_refused_whatever_the_random_bytes():
    codes = {
        seed: inspect_or_code(garbage_behind_a_jpeg_header(seed, 1024 * 1024)) for seed in range(12)
    }
    assert set(codes.values()) <= {"corrupt", "blank", "truncated"}


def inspect_or_code(data: bytes) -> str:
    try:
        inspect_image(data)
    except PhotoRejected as rejected:
        return rejected.code
    return "accepted"


def test_a_transparent_png_is_kept_on_white():
    from services.photos import decode_photo

    picture = Image.open(JPEG).convert("RGBA")
    picture.paste((0, 0, 0, 0), (0, 0, 300, 300))  # a transparent corner
    output = io.BytesIO()
    picture.save(output, "PNG")
    photo = decode_photo(output.getvalue())
    assert min(Image.open(io.BytesIO(photo.jpeg)).getpixel((150, 150))) > 250
    assert decode_photo((FACES / "obama2_rgba.png").read_bytes()).info.format == "png"


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
