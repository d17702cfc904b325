"""人工审核照片的保存：手持身份证和报纸的半身照，交工作人员审核。

Only real JPEG and PNG files are accepted. Their structure is checked here without an image
library: the JPEG marker segments up to the end-of-image marker (SOF gives the size), or the
PNG chunks with their CRCs up to IEND (IHDR gives the size). That rejects renamed text files,
truncated uploads and headers announcing absurd dimensions (decompression bombs) before any
decoder ever sees them. Pixel data is not decoded.

Photos are sensitive personal information: they go to ``photo_dir`` (outside the web root,
directory 0700, files 0600) under a random name that says nothing about the person, and are
served to signed-in staff only via :func:`photo_path`.
"""

from __future__ import annotations

import os
import re
import secrets
import zlib
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from services.accounts import actor_for
from services.models import AuditLog, ChannelAccount, Person, PhotoReview

__all__ = [
    "MAX_BYTES",
    "MAX_SIDE",
    "MIN_SIDE",
    "ImageInfo",
    "PhotoRejected",
    "inspect_image",
    "photo_path",
    "store_review_photo",
]

MAX_BYTES = 10 * 1024 * 1024
MAX_SIDE = 12_000  # px; more is a decompression bomb, not a phone photo
MIN_SIDE = 200  # px; smaller cannot show a face, an ID card and a date

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SOI = b"\xff\xd8\xff"
# Start-of-frame markers: baseline, extended, progressive, lossless, arithmetic variants.
_JPEG_SOF = frozenset(
    {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
)
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM, RST0–7: no length field
# Inside entropy-coded data, 0xFF is followed by 0x00 (stuffing), RSTn or another 0xFF (fill).
_JPEG_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_PNG_BIT_DEPTHS = {0: {1, 2, 4, 8, 16}, 2: {8, 16}, 3: {1, 2, 4, 8}, 4: {8, 16}, 6: {8, 16}}
_STORED_NAME = re.compile(r"[0-9a-f]{32}\.(?:jpg|png)")


class PhotoRejected(ValueError):
    """照片不能收下；``reason`` 是给用户看的中文，``code`` 供程序判断。"""

    def __init__(self, reason: str, code: str):
        super().__init__(reason)
        self.reason = reason
        self.code = (
            code  # empty / too_large / not_image / truncated / corrupt / too_big / too_small
        )


@dataclass(frozen=True)
class ImageInfo:
    format: str  # 'jpeg' / 'png'
    width: int
    height: int

    @property
    def extension(self) -> str:
        return ".jpg" if self.format == "jpeg" else ".png"

    @property
    def mime_type(self) -> str:
        return f"image/{self.format}"


def inspect_image(data: bytes) -> ImageInfo:
    """检查照片文件；合格则返回格式和尺寸，否则抛出 :class:`PhotoRejected`。"""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError("photo data must be bytes")
    data = bytes(data)
    if not data:
        raise PhotoRejected("没有收到照片内容，请重新发送", "empty")
    if len(data) > MAX_BYTES:
        raise PhotoRejected(
            f"照片太大了（超过{MAX_BYTES // (1024 * 1024)}MB），请换一张或压缩后重新发送",
            "too_large",
        )
    if data.startswith(_JPEG_SOI):
        info = _inspect_jpeg(data)
    elif data.startswith(_PNG_SIGNATURE):
        info = _inspect_png(data)
    else:
        raise PhotoRejected("这不是照片文件，请发送JPG或PNG格式的照片", "not_image")
    return info


def store_review_photo(
    session: Session,
    photo_dir: Path,
    data: bytes,
    *,
    person: Person | None,
    account: ChannelAccount | None,
) -> PhotoReview:
    """检查并保存一张待人工审核的照片，登记一条 status='pending' 的审核记录。

    The file is written before the row; if the row cannot be added the file is removed. A
    transaction rolled back later by the caller leaves an unreferenced file behind, which a
    clean-up job can delete (files with no PhotoReview row).
    """
    info = inspect_image(data)
    directory = _photo_directory(Path(photo_dir))
    name = secrets.token_hex(16) + info.extension
    path = directory / name
    _write_private(path, bytes(data))
    try:
        session.flush()  # person / account ids
        review = PhotoReview(
            person_id=person.id if person is not None else None,
            account_id=account.id if account is not None else None,
            photo_name=name,
            status="pending",
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
                    "format": info.format,
                    "width": info.width,
                    "height": info.height,
                    "bytes": len(data),
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


def _check_size(format: str, width: int, height: int) -> ImageInfo:
    if width <= 0 or height <= 0:
        raise PhotoRejected("照片文件已损坏，无法打开，请重新拍一张", "corrupt")
    if width > MAX_SIDE or height > MAX_SIDE:
        raise PhotoRejected(
            f"照片尺寸不正常（超过{MAX_SIDE}像素），请用手机相机重新拍一张", "too_big"
        )
    if width < MIN_SIDE or height < MIN_SIDE:
        raise PhotoRejected("照片太小了，工作人员看不清，请发送原图", "too_small")
    return ImageInfo(format, width, height)


def _truncated() -> PhotoRejected:
    return PhotoRejected("照片没有传完整，请重新发送", "truncated")


def _corrupt() -> PhotoRejected:
    return PhotoRejected("照片文件已损坏，无法打开，请重新拍一张", "corrupt")


def _inspect_jpeg(data: bytes) -> ImageInfo:
    """Walk the marker segments from SOI to EOI; the first SOF gives the size."""
    size = len(data)
    position = 2
    info: ImageInfo | None = None
    scanned = False
    while True:
        if position >= size:
            raise _truncated()
        if data[position] != 0xFF:
            raise _corrupt()
        while position < size and data[position] == 0xFF:  # fill bytes
            position += 1
        if position >= size:
            raise _truncated()
        marker = data[position]
        position += 1
        if marker == 0xD9:  # EOI; anything after it (phone trailers) is ignored
            break
        if marker in _JPEG_STANDALONE:
            continue
        if marker in (0x00, 0xD8):
            raise _corrupt()
        if position + 2 > size:
            raise _truncated()
        length = int.from_bytes(data[position : position + 2], "big")
        if length < 2:
            raise _corrupt()
        if position + length > size:
            raise _truncated()
        segment = data[position + 2 : position + length]
        position += length
        if marker in _JPEG_SOF and info is None:
            if len(segment) < 6:
                raise _corrupt()
            height = int.from_bytes(segment[1:3], "big")
            width = int.from_bytes(segment[3:5], "big")
            components = segment[5]
            if components not in (1, 3, 4) or len(segment) < 6 + 3 * components:
                raise _corrupt()
            info = _check_size("jpeg", width, height)
        elif marker == 0xDA:  # start of scan: entropy-coded data follows
            if info is None:
                raise _corrupt()
            scanned = True
            found = _JPEG_NEXT_MARKER.search(data, position)
            if found is None:
                raise _truncated()
            position = found.start()
    if info is None or not scanned:
        raise _corrupt()
    return info


def _inspect_png(data: bytes) -> ImageInfo:
    """Walk the chunks from IHDR to IEND, checking every CRC."""
    size = len(data)
    position = len(_PNG_SIGNATURE)
    info: ImageInfo | None = None
    has_data = False
    while True:
        if position + 8 > size:
            raise _truncated()
        length = int.from_bytes(data[position : position + 4], "big")
        kind = data[position + 4 : position + 8]
        if length > 0x7FFFFFFF:
            raise _corrupt()
        end = position + 12 + length
        if end > size:
            raise _truncated() if info is not None else _corrupt()
        body = data[position + 8 : position + 8 + length]
        crc = int.from_bytes(data[end - 4 : end], "big")
        if zlib.crc32(kind + body) != crc:
            raise _corrupt()
        if info is None:
            if kind != b"IHDR" or length != 13:
                raise _corrupt()
            width = int.from_bytes(body[0:4], "big")
            height = int.from_bytes(body[4:8], "big")
            bit_depth, colour_type, compression, filtering, interlace = body[8:13]
            if (
                bit_depth not in _PNG_BIT_DEPTHS.get(colour_type, ())
                or compression != 0
                or filtering != 0
                or interlace not in (0, 1)
            ):
                raise _corrupt()
            info = _check_size("png", width, height)
        elif kind == b"IHDR":
            raise _corrupt()
        elif kind == b"IDAT":
            has_data = True
        elif kind == b"IEND":
            break
        position = end
    if not has_data:
        raise _corrupt()
    return info
