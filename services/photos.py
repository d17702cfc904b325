"""人工审核照片的保存：手持身份证和报纸的半身照，交工作人员审核。

Every photo is decoded with Pillow before anyone sees it: opened (JPEG, PNG, or an iPhone's
HEIC through pillow-heif), checked for its size before any pixel is decoded (a header announcing
more than :data:`MAX_PIXELS` is a decompression bomb, not a phone photo), verified, decoded in
full (a truncated upload or garbage behind a real header fails there), turned upright from its
EXIF orientation and re-encoded as a JPEG without any metadata: what is stored is the picture,
never the GPS position, the phone's serial number or a payload hidden in the file.

Photos are sensitive personal information: they go to ``photo_dir`` (outside the web root,
directory 0700, files 0600) under a random name that says nothing about the person, and are
served to signed-in staff only via :func:`photo_path`.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import secrets
import warnings
from dataclasses import dataclass
from pathlib import Path

import pillow_heif
from PIL import Image, ImageFile, ImageOps, ImageStat, UnidentifiedImageError
from sqlalchemy.orm import Session

from services.accounts import actor_for
from services.models import AuditLog, ChannelAccount, Person, PhotoReview

__all__ = [
    "MAX_BYTES",
    "MAX_PIXELS",
    "MAX_SIDE",
    "MIN_SIDE",
    "ImageInfo",
    "PhotoRejected",
    "ReviewPhoto",
    "decode_photo",
    "inspect_image",
    "open_stored_photo",
    "photo_path",
    "store_review_photo",
]

MAX_BYTES = 10 * 1024 * 1024
MAX_SIDE = 12_000  # px; more is a decompression bomb, not a phone photo
MAX_PIXELS = 50_000_000  # a 50 MP phone camera still fits; 1 GB of decoded pixels does not
MIN_SIDE = 200  # px; smaller cannot show a face, an ID card and a date
# Standard deviation of the grey levels below which a picture shows nothing: what libjpeg
# makes of random bytes behind a real header is mid-grey (it fills what it cannot decode).
MIN_CONTRAST = 8.0
STORED_SIDE = 4_096  # px, the long side kept: the ID number and the date stay readable
JPEG_QUALITY = 90

# Pillow refuses more than twice MAX_IMAGE_PIXELS by itself and only warns between once and
# twice: a warning is an error here, whichever thread opens the image.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
warnings.filterwarnings("error", category=Image.DecompressionBombWarning)
pillow_heif.register_heif_opener()

_FORMATS = {"JPEG": "jpeg", "PNG": "png", "HEIF": "heif"}
_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1")
_STORED_NAME = re.compile(r"[0-9a-f]{32}\.(?:jpg|png)")


class PhotoRejected(ValueError):
    """照片不能收下；``reason`` 是给用户看的中文，``code`` 供程序判断。"""

    def __init__(self, reason: str, code: str):
        super().__init__(reason)
        self.reason = reason
        self.code = code  # empty / too_large / not_image / truncated / corrupt / too_big / too_small / blank


_REASONS = {
    "empty": "没有收到照片内容，请重新发送",
    "too_large": f"照片太大了（超过{MAX_BYTES // (1024 * 1024)}MB），请换一张或压缩后重新发送",
    "not_image": "这不是照片文件，请发送JPG或PNG格式的照片",
    "truncated": "照片没有传完整，请重新发送",
    "corrupt": "照片文件已损坏，无法打开，请重新拍一张",
    "too_big": "照片尺寸不正常（像素太多），请用手机相机重新拍一张",
    "too_small": "照片太小了，工作人员看不清，请发送原图",
    "blank": "照片上什么也看不清（一片空白），请对着本人、身份证和报纸重新拍一张",
}


def _rejected(code: str) -> PhotoRejected:
    return PhotoRejected(_REASONS[code], code)


@dataclass(frozen=True)
class ImageInfo:
    format: str  # what was sent: 'jpeg' / 'png' / 'heif'
    width: int  # upright, after the EXIF orientation
    height: int

    @property
    def extension(self) -> str:
        return {"jpeg": ".jpg", "png": ".png", "heif": ".heic"}[self.format]

    @property
    def mime_type(self) -> str:
        return f"image/{self.format}"


@dataclass(frozen=True)
class ReviewPhoto:
    """A photo as it is kept: the upright picture re-encoded as a JPEG, no metadata."""

    info: ImageInfo
    jpeg: bytes


def inspect_image(data: bytes) -> ImageInfo:
    """检查照片文件；合格则返回格式和尺寸，否则抛出 :class:`PhotoRejected`。"""
    return decode_photo(data).info


def decode_photo(data: bytes) -> ReviewPhoto:
    """解码并重新编码照片；不合格抛出 :class:`PhotoRejected`（理由是给用户看的中文）。"""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError("photo data must be bytes")
    data = bytes(data)
    if not data:
        raise _rejected("empty")
    if len(data) > MAX_BYTES:
        raise _rejected("too_large")
    try:
        return _decode(data)
    except PhotoRejected:
        raise
    except Image.DecompressionBombError:
        raise _rejected("too_big") from None
    except Image.DecompressionBombWarning:
        raise _rejected("too_big") from None
    except UnidentifiedImageError:
        raise _rejected("corrupt" if _looks_like_a_photo(data) else "not_image") from None
    except Exception as error:  # noqa: BLE001 — whatever a decoder says about outsider bytes
        raise _rejected("truncated" if "truncated" in str(error).lower() else "corrupt") from None


def _decode(data: bytes) -> ReviewPhoto:
    with Image.open(io.BytesIO(data), formats=list(_FORMATS)) as image:
        format = _FORMATS[image.format]
        _check_size(*image.size)  # from the header alone: nothing decoded yet
        image.verify()  # PNG: every chunk's CRC
    with Image.open(io.BytesIO(data), formats=list(_FORMATS)) as image:
        # face_recognition's import sets this for the whole process (it would fill a cut-off
        # picture with grey and call it loaded): refused here, whatever was imported before.
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        image.load()  # every pixel: a truncated or garbled picture fails here
        upright = ImageOps.exif_transpose(image)
        picture = _rgb(upright)
    picture.thumbnail((STORED_SIDE, STORED_SIDE), Image.Resampling.LANCZOS)
    if ImageStat.Stat(picture.convert("L")).stddev[0] < MIN_CONTRAST:
        raise _rejected("blank")
    output = io.BytesIO()
    picture.save(output, "JPEG", quality=JPEG_QUALITY, optimize=True)  # no exif=…: none kept
    return ReviewPhoto(ImageInfo(format, *upright.size), output.getvalue())


def _rgb(image: Image.Image) -> Image.Image:
    """RGB on white: transparent pixels of a PNG become paper, 16-bit greys become 8-bit."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        image = image.point(lambda value: value / 256).convert("L")
    if image.mode in ("RGBA", "LA", "P", "PA"):
        image = image.convert("RGBA")
        white = Image.new("RGBA", image.size, "white")
        return Image.alpha_composite(white, image).convert("RGB")
    return image.convert("RGB")


def _check_size(width: int, height: int) -> None:
    if width <= 0 or height <= 0:
        raise _rejected("corrupt")
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise _rejected("too_big")
    if width < MIN_SIDE or height < MIN_SIDE:
        raise _rejected("too_small")


def _looks_like_a_photo(data: bytes) -> bool:
    """A JPEG, PNG or HEIF signature that Pillow could not open: a broken photo, not a text."""
    return data.startswith(_SIGNATURES) or (data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS)


def store_review_photo(
    session: Session,
    photo_dir: Path,
    data: bytes,
    *,
    person: Person | None,
    account: ChannelAccount | None,
    now: dt.datetime | None = None,
) -> PhotoReview:
    """检查并保存一张待人工审核的照片，登记一条 status='pending' 的审核记录。

    What is written is the re-encoded JPEG (:func:`decode_photo`), never the bytes as sent.
    The file is written before the row; if the row cannot be added the file is removed. A
    transaction rolled back later by the caller leaves an unreferenced file behind, which a
    clean-up job can delete (files with no PhotoReview row). ``now`` (naive UTC, the app's
    clock) is when it was submitted: the newspaper's date is judged against it.
    """
    photo = decode_photo(data)
    directory = _photo_directory(Path(photo_dir))
    name = secrets.token_hex(16) + ".jpg"
    path = directory / name
    _write_private(path, photo.jpeg)
    try:
        session.flush()  # person / account ids
        review = PhotoReview(
            person_id=person.id if person is not None else None,
            account_id=account.id if account is not None else None,
            photo_name=name,
            status="pending",
            **({"submitted_at": now} if now is not None else {}),
        )
        session.add(review)
        session.flush()
        session.add(
            AuditLog(
                actor=actor_for(account),
                action="photo_review.submitted",
                target_type="photo_review",
                target_id=str(review.id),
                detail={
                    "person_id": review.person_id,
                    "account_id": review.account_id,
                    "format": photo.info.format,
                    "width": photo.info.width,
                    "height": photo.info.height,
                    "bytes": len(data),
                    "stored_bytes": len(photo.jpeg),
                },
            )
        )
        session.flush()
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return review


def photo_path(photo_dir: Path, review: PhotoReview) -> Path:
    """审核记录对应的照片文件路径（只给已登录的工作人员用）。

    Refuses a stored name that is not one this module made, so a tampered row cannot point
    outside ``photo_dir``.
    """
    name = review.photo_name or ""
    if not _STORED_NAME.fullmatch(name):
        raise ValueError(f"photo review {review.id} has an unexpected file name")
    return Path(photo_dir) / name


def open_stored_photo(photo_dir: Path, review: PhotoReview) -> Image.Image:
    """The stored picture of a review, decoded (for the pre-checks); the file was made here."""
    with Image.open(photo_path(photo_dir, review)) as image:
        image.load()
        return _rgb(image)


def _photo_directory(directory: Path) -> Path:
    if not directory.exists():
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(directory, 0o700)  # whatever the umask
    if not directory.is_dir():
        raise NotADirectoryError(directory)
    return directory


def _write_private(path: Path, data: bytes) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    descriptor = os.open(path, flags | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise
