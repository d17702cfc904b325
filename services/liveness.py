"""活体检测：一段自拍短视频里，是不是同一个真人、按顺序做了要求的动作，再与参照脸比对。

From each sampled frame (≤ 640 px, HOG detector): the face, its 68 landmarks and its 128-d
encoding. Each action is measured against the person's *own* first frames, never against an
absolute value — eyes narrow in a smile, some faces are rounder than others:

- 眨眼 blink: the eye aspect ratio drops well below its starting value, then comes back;
- 张嘴 open_mouth: the inner-lip gap grows against the mouth's width;
- 左转头 / 右转头 turn_left / turn_right: the nose tip moves towards one jaw end (the person's
  own left or right, as seen by the camera: not mirrored);
- 抬头 / 低头 head_up / head_down: the nose tip moves up or down between the eyes and the chin.

The actions must be seen in the order asked. A still photo (nothing moves), a video of other
actions, or frames of two different faces fail; then the best frame (the most frontal) is
matched to the reference face. No Flask, no database: :func:`check_frames` takes images and an
encoding and says what it saw.
"""

from __future__ import annotations

import io
import os
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from services import faces

__all__ = [
    "ACTIONS",
    "MAX_FRAMES",
    "Finding",
    "FrameMeasure",
    "LivenessResult",
    "VideoRejected",
    "check_frames",
    "choose_actions",
    "frames_from_video",
    "measure",
]

# The actions a check may ask for (their prompts: services/data/face_check.yaml).
ACTIONS = ("blink", "open_mouth", "turn_left", "turn_right", "head_up", "head_down")
# What a check asks by default: the ones that hold up on phone videos (pitch is noisier).
RANDOM_POOL = ("blink", "open_mouth", "turn_left", "turn_right")

MAX_FRAMES = 15  # sampled from the video: enough to see 2–3 actions, ~0.2 s each to analyse
MAX_SECONDS = 30.0  # a longer upload is not a selfie clip
BASELINE_FRAMES = 2  # the person's own resting face: the first frames of the clip

# Relative thresholds, against the person's own first frames (see bench/face_check.py).
BLINK_DROP = 0.70  # eyes closed: the eye aspect ratio below 70 % of its resting value
BLINK_REOPEN = 0.85  # and back above 85 % afterwards (a smile stays narrow)
MOUTH_OPEN_GAIN = 0.18  # inner-lip gap / mouth width grows by this much
YAW_TURN = 0.18  # nose position between the jaw ends moves by this fraction
PITCH_TURN = 0.08  # nose position between eyes and chin moves by this fraction
# A photo held up to the camera: the head's pose and the mouth do not move beyond the jitter
# of video compression (measured: yaw ±0.01, mouth ±0.02, eyes ±10 %).
STILL_POSE = 0.04
STILL_MOUTH = 0.05
STILL_EYES = 0.2
# Two frames of one clip farther apart than this are not the same face (same person in a
# low-light, turning clip: up to 0.62; different people: 0.79 and more).
SAME_FACE = 0.72
DARK = 45  # mean brightness (0–255) below which a face-less frame is "too dark"


class VideoRejected(ValueError):
    """Not a video we can read, or too long."""


@dataclass(frozen=True)
class FrameMeasure:
    """What one frame shows: a face or not, and its landmark measures."""

    faces: int
    brightness: float
    ear: float | None = None  # eye aspect ratio, both eyes averaged
    mar: float | None = None  # inner-lip gap / mouth width
    yaw: float | None = None  # -1 … 1: where the nose tip sits between the jaw ends
    pitch: float | None = None  # where the nose tip sits between the eyes and the chin
    encoding: np.ndarray | None = field(default=None, repr=False)

    @property
    def usable(self) -> bool:
        return self.faces == 1 and self.encoding is not None


@dataclass(frozen=True)
class Finding:
    """Why a check failed (``reason``, a code from :data:`REASONS`) or that it passed."""

    reason: str | None
    detail: str = ""


# The reasons a check fails, in the words the person reads (services/data/face_check.yaml
# carries the tips that go with each).
REASONS = (
    "bad_video",
    "too_dark",
    "no_face",
    "several_faces",
    "still",
    "action_not_seen",
    "different_faces",
    "no_reference",
    "not_same_person",
)


@dataclass
class LivenessResult:
    passed: bool
    reason: str | None  # one of REASONS when not passed
    actions_seen: list[str]
    distance: float | None = None
    frames: int = 0
    detail: str = ""

    def evidence(self) -> dict:
        """What a certification record keeps: no image, no encoding."""
        return {
            "distance": None if self.distance is None else round(self.distance, 3),
            "actions": self.actions_seen,
            "frames": self.frames,
        }


def choose_actions(count: int | None = None, rng: random.Random | None = None) -> list[str]:
    """2–3 different random actions from :data:`RANDOM_POOL`, never two turns the same way."""
    rng = rng or random.SystemRandom()
    count = count or rng.choice((2, 3))
    return rng.sample(RANDOM_POOL, count)


# --- frames ---------------------------------------------------------------------------------


def frames_from_video(
    source: str | os.PathLike | bytes, *, max_frames: int = MAX_FRAMES, max_side: int = 640
) -> list[np.ndarray]:
    """Up to ``max_frames`` RGB frames spread evenly over the clip, shrunk to ``max_side``."""
    import av

    stream = io.BytesIO(source) if isinstance(source, bytes | bytearray) else str(Path(source))
    try:
        with av.open(stream, mode="r") as container:
            if not container.streams.video:
                raise VideoRejected("no video stream")
            video = container.streams.video[0]
            video.thread_type = "AUTO"
            duration = _seconds(container, video)
            if duration is not None and duration > MAX_SECONDS:
                raise VideoRejected(f"video of {duration:.0f} s; at most {MAX_SECONDS:.0f} s")
            decoded = [_upright(frame) for frame in _bounded_frames(container, video)]
    except (av.error.FFmpegError, OSError, ValueError) as error:
        if isinstance(error, VideoRejected):
            raise
        raise VideoRejected(str(error)) from error
    if not decoded:
        raise VideoRejected("no frames")
    picks = np.linspace(0, len(decoded) - 1, num=min(max_frames, len(decoded)))
    return [faces.rgb_array(decoded[int(round(i))], max_side) for i in picks]


def _upright(frame):
    # Phones record sideways and note the turn in the stream's display matrix.
    image = frame.to_image()
    turn = int(getattr(frame, "rotation", 0) or 0) % 360
    return image.rotate(turn, expand=True) if turn else image


def _seconds(container, video) -> float | None:
    if video.duration is not None and video.time_base is not None:
        return float(video.duration * video.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000
    return None


def _bounded_frames(container, video, limit: int = 30 * 60):
    # Never more frames than 30 s at 60 fps: a header may lie about the duration.
    for count, frame in enumerate(container.decode(video)):
        if count >= limit:
            raise VideoRejected("too many frames")
        if frame.time is not None and frame.time > MAX_SECONDS:
            raise VideoRejected(f"video longer than {MAX_SECONDS:.0f} s")
        yield frame


# --- measures -------------------------------------------------------------------------------


def measure(image: np.ndarray) -> FrameMeasure:
    """Detect, take landmarks and the encoding of one frame."""
    brightness = float(image.mean())
    # A selfie's face is large: the quick pass first, the finer one only when it finds none.
    locations = faces.face_locations(image, upsample=0) or faces.face_locations(image)
    if len(locations) != 1:
        return FrameMeasure(faces=len(locations), brightness=brightness)
    fr = faces._face_recognition()
    marks = fr.face_landmarks(image, face_locations=locations, model="large")[0]
    encoding = faces.encode_face(image, locations)
    return FrameMeasure(
        faces=1,
        brightness=brightness,
        ear=(_eye_ratio(marks["left_eye"]) + _eye_ratio(marks["right_eye"])) / 2,
        mar=_mouth_ratio(marks["top_lip"], marks["bottom_lip"]),
        yaw=_yaw(marks["chin"], marks["nose_bridge"], marks["nose_tip"]),
        pitch=_pitch(marks),
        encoding=encoding,
    )


def _dist(a, b) -> float:
    return float(np.hypot(a[0] - b[0], a[1] - b[1]))


def _eye_ratio(eye: Sequence[tuple[int, int]]) -> float:
    # Soukupová & Čech: (|p2−p6| + |p3−p5|) / (2 |p1−p4|)
    width = _dist(eye[0], eye[3]) or 1.0
    return (_dist(eye[1], eye[5]) + _dist(eye[2], eye[4])) / (2 * width)


def _mouth_ratio(top: Sequence[tuple[int, int]], bottom: Sequence[tuple[int, int]]) -> float:
    # face_recognition's lips: outer corners top[0] and top[6] (points 48, 54); inner top lip
    # top[8:11] (63, 62, 61) above the inner bottom lip bottom[10:7:-1] (65, 66, 67).
    width = _dist(top[0], top[6]) or 1.0
    gaps = [_dist(t, b) for t, b in zip(top[8:11], bottom[10:7:-1], strict=True)]
    return float(np.mean(gaps)) / width


def _yaw(chin, bridge, tip) -> float:
    # Nose (bridge bottom and tip centre) between the jaw ends: 0 frontal; positive when the
    # nose moves towards the image's right, i.e. the person turns to their own left.
    nose_x = (bridge[-1][0] + tip[2][0]) / 2
    left, right = chin[0][0], chin[16][0]
    span = (right - left) or 1.0
    return float((nose_x - left) / span * 2 - 1)


def _pitch(marks) -> float:
    eyes_y = np.mean([p[1] for p in marks["left_eye"] + marks["right_eye"]])
    chin_y = marks["chin"][8][1]
    tip_y = marks["nose_tip"][2][1]
    span = (chin_y - eyes_y) or 1.0
    return float((tip_y - eyes_y) / span)


# --- the check ------------------------------------------------------------------------------


def check_frames(
    frames: Iterable[np.ndarray],
    asked: Sequence[str],
    reference: Sequence[float] | np.ndarray | None,
    *,
    threshold: float = 0.6,
) -> LivenessResult:
    """Liveness over the frames, then the match of the best frame to ``reference``."""
    measures = [measure(frame) for frame in frames]
    return judge(measures, asked, reference, threshold=threshold)


def judge(
    measures: Sequence[FrameMeasure],
    asked: Sequence[str],
    reference: Sequence[float] | np.ndarray | None,
    *,
    threshold: float = 0.6,
) -> LivenessResult:
    """The verdict from measured frames (split from :func:`check_frames` for the bench)."""
    count = len(measures)
    finding = _face_problem(measures)
    if finding is not None:
        return LivenessResult(False, finding.reason, [], frames=count, detail=finding.detail)
    usable = [m for m in measures if m.usable]
    if _still(usable):
        return LivenessResult(False, "still", [], frames=count)
    if _farthest_apart(usable) > SAME_FACE:
        return LivenessResult(False, "different_faces", [], frames=count)
    seen = actions_in_order(usable, asked)
    if seen != list(asked):
        missing = asked[len(seen)]
        return LivenessResult(False, "action_not_seen", seen, frames=count, detail=missing)
    if reference is None:
        return LivenessResult(False, "no_reference", seen, frames=count)
    best = min(usable, key=lambda m: abs(m.yaw or 0.0))
    distance = faces.face_distance(best.encoding, reference)
    passed = distance <= threshold
    reason = None if passed else "not_same_person"
    return LivenessResult(passed, reason, seen, distance=distance, frames=count)


def _face_problem(measures: Sequence[FrameMeasure]) -> Finding | None:
    if not measures:
        return Finding("bad_video")
    with_one = [m for m in measures if m.faces == 1]
    if any(m.faces > 1 for m in measures) and len(with_one) < len(measures) / 2:
        return Finding("several_faces")
    if len(with_one) < max(BASELINE_FRAMES + 1, len(measures) // 2):
        dark = np.mean([m.brightness for m in measures]) < DARK
        return Finding("too_dark" if dark else "no_face")
    return None


def _still(usable: Sequence[FrameMeasure]) -> bool:
    def spread(name: str) -> float:
        return float(np.ptp([getattr(m, name) for m in usable]))

    eyes = spread("ear") / (float(np.mean([m.ear for m in usable])) or 1.0)
    return (
        spread("yaw") < STILL_POSE
        and spread("pitch") < STILL_POSE
        and spread("mar") < STILL_MOUTH
        and eyes < STILL_EYES
    )


def _farthest_apart(usable: Sequence[FrameMeasure]) -> float:
    """The largest distance between two frames' faces (0 for a single frame)."""
    encodings = np.array([m.encoding for m in usable])
    if len(encodings) < 2:
        return 0.0
    gaps = encodings[:, None, :] - encodings[None, :, :]
    return float(np.sqrt((gaps**2).sum(axis=-1)).max())


def actions_in_order(usable: Sequence[FrameMeasure], asked: Sequence[str]) -> list[str]:
    """The asked actions seen one after the other, each in frames after the previous one."""
    base = _baseline(usable)
    seen: list[str] = []
    start = BASELINE_FRAMES
    for action in asked:
        end = _first_frame_showing(action, usable, base, start)
        if end is None:
            break
        seen.append(action)
        start = end + 1
    return seen


def _baseline(usable: Sequence[FrameMeasure]) -> dict[str, float]:
    first = usable[:BASELINE_FRAMES]
    return {name: float(np.mean([getattr(m, name) for m in first])) for name in _MEASURES}


_MEASURES = ("ear", "mar", "yaw", "pitch")


def _first_frame_showing(
    action: str, usable: Sequence[FrameMeasure], base: dict[str, float], start: int
) -> int | None:
    for index in range(start, len(usable)):
        frame = usable[index]
        if action == "blink":
            closed = frame.ear < base["ear"] * BLINK_DROP
            if closed and any(m.ear > base["ear"] * BLINK_REOPEN for m in usable[index + 1 :]):
                return index
        elif _shows(action, frame, base):
            return index
    return None


def _shows(action: str, frame: FrameMeasure, base: dict[str, float]) -> bool:
    if action == "open_mouth":
        return frame.mar - base["mar"] > MOUTH_OPEN_GAIN
    if action == "turn_left":
        return frame.yaw - base["yaw"] > YAW_TURN
    if action == "turn_right":
        return base["yaw"] - frame.yaw > YAW_TURN
    if action == "head_up":
        return base["pitch"] - frame.pitch > PITCH_TURN
    if action == "head_down":
        return frame.pitch - base["pitch"] > PITCH_TURN
    raise ValueError(f"unknown action {action!r}")
