"""Videos made at test time from the face photos in tests/fixtures/faces (PyAV, no ffmpeg binary).

A head turn is a photo followed by its mirror image: the nose moves from one jaw end towards the
other, as when the person turns their head. The Chromium fake camera reads .y4m files.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

FACES = Path(__file__).parent / "fixtures" / "faces"
SIZE = (480, 640)  # width, height: a phone held upright


def photo(name: str, size: tuple[int, int] = SIZE) -> Image.Image:
    """A fixture photo fitted into ``size`` (letterboxed), as a phone frame would hold it."""
    with Image.open(FACES / name) as opened:
        image = ImageOps.exif_transpose(opened).convert("RGB")
    return ImageOps.pad(image, size, color=(90, 90, 90))


def mirrored(image: Image.Image) -> Image.Image:
    return ImageOps.mirror(image)


def head_turn(name: str, frames_each: int = 4) -> list[Image.Image]:
    """The photo, then its mirror: a head turning (the direction depends on the photo)."""
    image = photo(name)
    return [image] * frames_each + [mirrored(image)] * frames_each


def still(name: str, frames: int = 8) -> list[Image.Image]:
    return [photo(name)] * frames


def write_mp4(path: Path, frames: Sequence[Image.Image], fps: int = 4) -> Path:
    import av

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames[0].size
        stream.pix_fmt = "yuv420p"
        for image in frames:
            frame = av.VideoFrame.from_image(image)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def write_y4m(path: Path, frames: Sequence[Image.Image], fps: int = 10) -> Path:
    """YUV4MPEG2 for Chromium's --use-file-for-fake-video-capture (4:2:0, full range)."""
    width, height = frames[0].size
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for image in frames:
            y, cb, cr = (np.asarray(c) for c in image.convert("YCbCr").split())
            out.write(b"FRAME\n")
            out.write(y.tobytes())
            for plane in (cb, cr):
                out.write(plane[::2, ::2].tobytes())
    return path


def singing(start: int = 140, stop: int = 168) -> list[Image.Image]:
    """短片 short_hamilton_clip.mp4: a stretch where the singer's mouth opens (and the head
    turns), cropped around the face as a selfie would frame it."""
    import av

    with av.open(str(FACES / "short_hamilton_clip.mp4")) as container:
        frames = [frame.to_image() for frame in container.decode(video=0)]
    return [f.crop((80, 0, 440, 360)).resize((480, 480)) for f in frames[start:stop]]
