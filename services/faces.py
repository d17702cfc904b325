"""人脸：读图、找脸、128 维特征、比对距离，以及每人一张“人脸建模”的参照脸。

face_recognition (dlib) does the work: the HOG detector only (the CNN one takes ~10 s a frame
on these machines), images shrunk to at most 640 px on their longer side first. An encoding is
taken only when exactly one face is in the picture: a photo with two people says nothing about
which one is the pensioner.

The reference face (人脸建模) is what a live check is matched against: from the roster photo
(the social-security-card photo, ``pension import-reference-faces``) or from the first approved
photo review. Only the 128 numbers and where they came from are stored, not the image.
"""

from __future__ import annotations

import io
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.db import Database
from services.models import Person, PhotoReview, ReferenceFace, utcnow
from services.photos import photo_path
from services.runtime import Runtime

__all__ = [
    "MAX_SIDE",
    "SOURCES",
    "BadImage",
    "encode_face",
    "face_distance",
    "face_locations",
    "import_reference_folder",
    "load_image",
    "reference_from_review",
    "reference_for",
    "save_reference",
]

log = logging.getLogger(__name__)

MAX_SIDE = 640  # px: enough for a face at arm's length; dlib's time grows with the pixels
SOURCES = ("roster_photo", "photo_review")
# Pillow's pixel limit (decompression bombs) is services/photos.py's, set on import there.


class BadImage(ValueError):
    """Not an image Pillow can read (or a decompression bomb)."""


def _face_recognition():
    # Imported on first use: loading dlib's models takes a second and most processes
    # (the web app, the console) never look at a face.
    import face_recognition

    return face_recognition


def load_image(source: str | os.PathLike | bytes, max_side: int = MAX_SIDE) -> np.ndarray:
    """An RGB array, upright (EXIF orientation applied), shrunk to ``max_side`` px at most."""
    stream = io.BytesIO(source) if isinstance(source, bytes | bytearray) else Path(source)
    try:
        with Image.open(stream) as opened:
            image = ImageOps.exif_transpose(opened)
            image = image.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise BadImage(str(error)) from error
    return rgb_array(image, max_side)


def rgb_array(image: Image.Image, max_side: int = MAX_SIDE) -> np.ndarray:
    """A Pillow image as the contiguous uint8 RGB array dlib wants, shrunk to ``max_side``."""
    if max(image.size) > max_side:
        image = image.copy()
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))


def face_locations(image: np.ndarray, upsample: int = 1) -> list[tuple[int, int, int, int]]:
    """Faces found by the HOG detector, as (top, right, bottom, left) boxes.

    ``upsample=1`` (photos) finds faces down to ~40 px and takes ~4× as long as ``0``
    (selfie video frames, where the face fills the picture: ~80 px and more).
    """
    return _face_recognition().face_locations(
        image, number_of_times_to_upsample=upsample, model="hog"
    )


def encode_face(
    image: np.ndarray, locations: Sequence[tuple[int, int, int, int]] | None = None
) -> np.ndarray | None:
    """The 128-d encoding of the one face in the image; None for no face or several."""
    if locations is None:
        locations = face_locations(image)
    if len(locations) != 1:
        return None
    return _face_recognition().face_encodings(image, known_face_locations=list(locations))[0]


def face_distance(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Euclidean distance of two encodings: same person ~0.3–0.45, different ones ~0.8–1.0."""
    return float(np.linalg.norm(np.asarray(a, dtype=float) - np.asarray(b, dtype=float)))


def reference_for(session: Session, person: Person) -> ReferenceFace | None:
    """The person's reference face, or None before 人脸建模."""
    return session.scalar(select(ReferenceFace).where(ReferenceFace.person_id == person.id))


def save_reference(
    session: Session, person: Person, encoding: Sequence[float] | np.ndarray, source: str
) -> ReferenceFace:
    """Store (or replace) the person's reference face; ``source`` is one of :data:`SOURCES`."""
    if source not in SOURCES:
        raise ValueError(f"unknown reference source {source!r}")
    values = [float(v) for v in np.asarray(encoding, dtype=float).ravel()]
    if len(values) != 128:
        raise ValueError("a face encoding has 128 numbers")
    reference = reference_for(session, person)
    if reference is None:
        reference = ReferenceFace(person_id=person.id)
        session.add(reference)
    reference.encoding = values
    reference.source = source
    reference.created_at = utcnow()
    session.flush()
    return reference


IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".heic", ".heif"})


@dataclass
class ReferenceImport:
    """What ``pension import-reference-faces`` did, file by file where staff must act."""

    imported: int = 0
    no_face: list[str] = field(default_factory=list)
    several_faces: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    unknown_person: list[str] = field(default_factory=list)

    @property
    def problems(self) -> int:
        return sum(
            len(names)
            for names in (self.no_face, self.several_faces, self.unreadable, self.unknown_person)
        )

    def format(self) -> str:
        lines = [f"导入参照人脸 {self.imported} 张；需人工处理 {self.problems} 个文件"]
        for label, names in (
            ("没有找到人脸", self.no_face),
            ("有多张人脸", self.several_faces),
            ("不是能读的图片", self.unreadable),
            ("名册里没有这个人员编号", self.unknown_person),
        ):
            if names:
                lines.append(f"{label}（{len(names)}）：{'、'.join(sorted(names))}")
        return "\n".join(lines)


def import_reference_folder(
    database: Database, folder: str | os.PathLike, *, progress: bool = False
) -> ReferenceImport:
    """人脸建模 from roster photos: each file named by the person number (``P0001.jpg``)."""
    files = sorted(
        p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    report = ReferenceImport()
    for path in _progress(files, progress):
        with database.session() as session:
            outcome = _import_one(session, path)
            if outcome == "imported":
                report.imported += 1
            else:
                getattr(report, outcome).append(path.name)
    return report


def _import_one(session: Session, path: Path) -> str:
    person = session.scalar(select(Person).where(Person.person_no == path.stem))
    if person is None:
        return "unknown_person"
    try:
        image = load_image(path)
    except BadImage:
        return "unreadable"
    locations = face_locations(image)
    if not locations:
        return "no_face"
    if len(locations) > 1:
        return "several_faces"
    save_reference(session, person, encode_face(image, locations), "roster_photo")
    return "imported"


def _progress(items: list, enabled: bool):
    from tqdm import tqdm

    show = enabled and sys.stderr is not None and sys.stderr.isatty()
    return tqdm(items, disable=not show, unit="张", desc="人脸建模", file=sys.stderr)


def reference_from_review(runtime: Runtime, review_id: int) -> ReferenceFace | None:
    """Job: 人脸建模 from an approved review photo, for a person who has no reference yet.

    Queued by the console once the approval has committed. The face on the photo is the one
    the reviewer compared with the ID card; a photo with no face or several gives none.
    """
    with runtime.database.session() as session:
        review = session.get(PhotoReview, review_id)
        person = session.get(Person, review.person_id) if review and review.person_id else None
        if person is None or review.status != "approved" or reference_for(session, person):
            return None
        try:
            image = load_image(photo_path(Path(runtime.config["PHOTO_DIR"]), review))
        except (BadImage, OSError, ValueError):
            log.warning("photo review #%s: photo unreadable, no reference face", review_id)
            return None
        encoding = encode_face(image)
        if encoding is None:
            log.info("photo review #%s: not exactly one face, no reference face", review_id)
            return None
        return save_reference(session, person, encoding, "photo_review")
