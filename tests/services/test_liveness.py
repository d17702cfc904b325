"""活体检测 on videos made at test time from the real faces in tests/fixtures/faces.

A head turn is a photo and its mirror; a moving mouth is a stretch of short_hamilton_clip.mp4;
a still is one photo repeated. Real dlib (HOG, ≤ 640 px), real PyAV decoding.
"""

from __future__ import annotations

import pytest

from services import faces, liveness
from tests import face_videos as fv


def reference(name: str):
    return faces.encode_face(faces.load_image(fv.FACES / name))


def frames(tmp_path_factory, name: str, images, fps: int = 4):
    path = fv.write_mp4(tmp_path_factory.mktemp("clips") / f"{name}.mp4", images, fps=fps)
    return liveness.frames_from_video(path)


@pytest.fixture(scope="module")
def kit_turning(tmp_path_factory):
    """Kit Harington's head turning to his left (the nose moves to the image's right)."""
    return frames(tmp_path_factory, "turn", fv.head_turn("kit_harington2.jpg"))


@pytest.fixture(scope="module")
def singing(tmp_path_factory):
    return frames(tmp_path_factory, "singing", fv.singing(), fps=15)


@pytest.fixture(scope="module")
def obama_right_then_left(tmp_path_factory):
    """Frontal, then turned to his right, then (the mirror) to his left."""
    turned = fv.photo("obama2.jpg")
    images = [fv.photo("obama.jpg")] * 3 + [turned] * 3 + [fv.mirrored(turned)] * 3
    return frames(tmp_path_factory, "right_left", images)


def test_the_asked_head_turn_passes_and_matches_the_reference(kit_turning):
    result = liveness.check_frames(
        kit_turning, ["turn_left"], reference("kit_harington_johnsnow.jpg")
    )
    assert result.passed, result
    assert result.actions_seen == ["turn_left"]
    assert result.distance < 0.6
    assert result.evidence()["actions"] == ["turn_left"]


def test_the_other_way_round_is_the_wrong_action(kit_turning):
    result = liveness.check_frames(
        kit_turning, ["turn_right"], reference("kit_harington_johnsnow.jpg")
    )
    assert not result.passed
    assert result.reason == "action_not_seen"
    assert result.detail == "turn_right"


def test_a_moving_mouth_passes_open_mouth(singing):
    result = liveness.check_frames(singing, ["open_mouth"], reference("lin_manuel_miranda.png"))
    assert result.passed, result


def test_a_blink_is_not_seen_in_a_video_without_one(singing):
    result = liveness.check_frames(singing, ["blink"], reference("lin_manuel_miranda.png"))
    assert (result.passed, result.reason) == (False, "action_not_seen")


def test_a_different_person_fails_the_match(kit_turning):
    result = liveness.check_frames(kit_turning, ["turn_left"], reference("biden.jpg"))
    assert not result.passed
    assert result.reason == "not_same_person"
    assert result.actions_seen == ["turn_left"]  # alive, but not the pensioner
    assert result.distance > 0.6


def test_actions_count_only_in_the_order_asked(obama_right_then_left):
    ref = reference("obama3.jpg")
    assert liveness.check_frames(obama_right_then_left, ["turn_right", "turn_left"], ref).passed
    wrong_order = liveness.check_frames(obama_right_then_left, ["turn_left", "turn_right"], ref)
    assert (wrong_order.reason, wrong_order.actions_seen) == ("action_not_seen", ["turn_left"])


def test_a_still_photo_fails(tmp_path_factory):
    still = frames(tmp_path_factory, "still", fv.still("obama.jpg"))
    result = liveness.check_frames(still, ["blink", "turn_left"], reference("obama3.jpg"))
    assert (result.passed, result.reason) == (False, "still")


def test_two_different_faces_across_frames_fail(tmp_path_factory):
    images = [fv.photo("obama.jpg")] * 3 + [fv.photo("biden.jpg")] * 3
    swapped = frames(tmp_path_factory, "swap", images)
    result = liveness.check_frames(swapped, ["turn_left"], reference("obama3.jpg"))
    assert (result.passed, result.reason) == (False, "different_faces")


def test_no_face_and_no_reference_are_said_apart(tmp_path_factory, kit_turning):
    empty = frames(tmp_path_factory, "empty", fv.still("no_face_suit.jpg", frames=6))
    assert liveness.check_frames(empty, ["blink"], None).reason == "no_face"
    assert liveness.check_frames(kit_turning, ["turn_left"], None).reason == "no_reference"


def test_what_is_not_a_video_is_refused():
    with pytest.raises(liveness.VideoRejected):
        liveness.frames_from_video(b"this is not a video" * 100)


def test_frames_are_few_and_small(singing):
    assert len(singing) <= liveness.MAX_FRAMES
    assert max(max(f.shape[:2]) for f in singing) <= 640


def test_random_actions_are_two_or_three_different_ones():
    for _ in range(20):
        asked = liveness.choose_actions()
        assert 2 <= len(asked) <= 3
        assert len(set(asked)) == len(asked)
        assert set(asked) <= set(liveness.ACTIONS)
