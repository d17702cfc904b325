"""Hostile and tricky pictures, made at test time (issue 13 item 9): decompression bombs,
garbage behind a real header, EXIF tags to strip, a sideways phone photo."""

from __future__ import annotations

import functools
import io
import random
import struct
import zlib

from PIL import ExifTags, Image

from tests.support import FACES

JPEG = FACES / "obama.jpg"


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


def png_of(width: int, height: int, bit_depth: int = 8) -> bytes:
    """A real grey PNG of that size, made row by row (a 16-bit 11999×11999 one is 1.1 MB on
    disk and 288 MB of pixels: never held in memory here)."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    samples = width * bit_depth // 8
    row = b"\x00" + (bytes(range(256)) * (samples // 256 + 1))[:samples]  # stripes, not blank
    packer = zlib.compressobj(9)
    body = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", body)
        + png_chunk(b"IEND", b"")
    )


def garbage_behind_a_jpeg_header(seed: int = 0, size: int = 7 * 1024 * 1024) -> bytes:
    """obama.jpg's segments up to its start of scan, then random bytes for the picture."""
    data = JPEG.read_bytes()
    position = 2
    while data[position + 1] != 0xDA:
        position += 2 + struct.unpack(">H", data[position + 2 : position + 4])[0]
    position += 2 + struct.unpack(">H", data[position + 2 : position + 4])[0]
    return data[:position] + random.Random(seed).randbytes(size - position)


def jpeg_with_exif(image: Image.Image, **tags) -> bytes:
    """``image`` as a JPEG with EXIF tags: ``orientation=6``, ``gps=(lat, lon)``."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "TestPhone"
    if "orientation" in tags:
        exif[ExifTags.Base.Orientation] = tags["orientation"]
    if "gps" in tags:
        latitude, longitude = tags["gps"]
        gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
        gps[ExifTags.GPS.GPSLatitudeRef], gps[ExifTags.GPS.GPSLatitude] = "N", (latitude, 0, 0)
        gps[ExifTags.GPS.GPSLongitudeRef], gps[ExifTags.GPS.GPSLongitude] = "E", (longitude, 0, 0)
    output = io.BytesIO()
    image.save(output, "JPEG", quality=92, exif=exif.tobytes())
    return output.getvalue()


def jpeg_with_size(width: int, height: int) -> bytes:
    """obama.jpg with its frame header rewritten (walking the segments: the EXIF thumbnail
    inside APP1 has a start-of-frame marker of its own)."""
    data = bytearray(JPEG.read_bytes())
    position = 2
    while data[position + 1] != 0xC0:
        position += 2 + struct.unpack(">H", data[position + 2 : position + 4])[0]
    data[position + 5 : position + 9] = struct.pack(">HH", height, width)
    return bytes(data)


@functools.cache
def attacks() -> dict[str, bytes]:
    """The three fakes that were filed for staff review before Pillow decoded every photo."""
    return {
        "16-bit png 11999x11999": png_of(11_999, 11_999, 16),
        "74-byte png claiming 12000x12000": png_claiming(12_000, 12_000),
        "7 MB of garbage behind a jpeg header": garbage_behind_a_jpeg_header(),
    }


ATTACKS = (
    "16-bit png 11999x11999",
    "74-byte png claiming 12000x12000",
    "7 MB of garbage behind a jpeg header",
)
