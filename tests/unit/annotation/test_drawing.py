"""draw_persons: colours by id, visibility, copies, overlay."""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt
import pytest
from posepipe.annotation.drawing import NEUTRAL_COLOR, PALETTE, DrawOptions, color_for_id, draw_persons
from posepipe.annotation.render import NOT_PROCESSED_NOTE
from posepipe.result import Person
from posepipe.skeleton import LANDMARK_INDEX, NUM_LANDMARKS, SKELETON

HEIGHT, WIDTH = 576, 768
SHOULDER, HIP, OTHER_SHOULDER = (
    LANDMARK_INDEX["left_shoulder"],
    LANDMARK_INDEX["left_hip"],
    LANDMARK_INDEX["right_shoulder"],
)


def blank() -> npt.NDArray[np.uint8]:
    return np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)


def torso(x: float, person_id: int, *, shoulder_visibility: float = 1.0) -> Person:
    """A person whose only visible segment is the left shoulder (x, 100) to the left hip (x, 300).

    The right shoulder, at (x + 120, 100), is visible at ``shoulder_visibility``; every other
    landmark sits in the bottom-right corner with visibility 0.
    """
    landmarks = np.zeros((NUM_LANDMARKS, 5), dtype=np.float32)
    landmarks[:, :2] = (WIDTH - 20, HEIGHT - 20)
    landmarks[:, 4] = 1.0
    landmarks[SHOULDER] = (x, 100, 0, 1, 1)
    landmarks[HIP] = (x, 300, 0, 1, 1)
    landmarks[OTHER_SHOULDER] = (x + 120, 100, 0, shoulder_visibility, 1)
    return Person(landmarks, np.zeros((NUM_LANDMARKS, 3), dtype=np.float32), score=0.9, id=person_id)


def test_palette_is_distinct_stable_and_cycles() -> None:
    assert len(PALETTE) >= 10
    for a, b in itertools.combinations(PALETTE, 2):
        assert sum(abs(p - q) for p, q in zip(a, b, strict=True)) > 60
    assert [color_for_id(i) for i in range(len(PALETTE))] == list(PALETTE)
    assert color_for_id(3) == color_for_id(3 + len(PALETTE))
    assert color_for_id(-1) == NEUTRAL_COLOR
    assert NEUTRAL_COLOR not in PALETTE


@pytest.mark.parametrize("antialias", [True, False])
def test_segment_is_drawn_in_the_persons_colour(antialias: bool) -> None:
    image = draw_persons(blank(), [torso(200, 4)], DrawOptions(antialias=antialias))
    color = list(color_for_id(4))
    assert image[200, 200].tolist() == color  # middle of the shoulder-hip segment
    column = image[150:250, 200]
    assert (column == color).all(axis=1).all()
    assert image[200, 260].tolist() == [0, 0, 0]  # well off the segment


def test_different_ids_get_different_colours() -> None:
    image = draw_persons(blank(), [torso(150, 0), torso(450, 1)])
    assert image[200, 150].tolist() == list(color_for_id(0))
    assert image[200, 450].tolist() == list(color_for_id(1))
    assert color_for_id(0) != color_for_id(1)


def test_untracked_person_is_neutral() -> None:
    image = draw_persons(blank(), [torso(200, -1)])
    assert image[200, 200].tolist() == list(NEUTRAL_COLOR)


def test_low_visibility_segments_are_not_drawn() -> None:
    options = DrawOptions(min_visibility=0.5)
    middle = (100, 260)  # between the shoulders, away from both landmarks' circles
    visible = draw_persons(blank(), [torso(200, 2, shoulder_visibility=0.9)], options)
    assert visible[middle].tolist() == list(color_for_id(2))
    faint = draw_persons(blank(), [torso(200, 2, shoulder_visibility=0.2)], options)
    assert faint[middle].tolist() == [0, 0, 0]
    # The low-visibility landmark itself is still marked, hollow: its ring is drawn, not its centre.
    assert faint[100, 320].tolist() == [0, 0, 0]
    assert faint[95:106, 315:326].any()


def test_copy_unless_inplace() -> None:
    source = blank()
    drawn = draw_persons(source, [torso(200, 0)])
    assert drawn is not source
    assert not source.any()
    assert drawn.any()
    same = draw_persons(source, [torso(200, 0)], inplace=True)
    assert same is source
    assert source.any()


def test_nothing_to_draw_is_an_unchanged_copy() -> None:
    source = np.full((HEIGHT, WIDTH, 3), 77, dtype=np.uint8)
    drawn = draw_persons(source, [])
    assert drawn is not source
    assert np.array_equal(drawn, source)


def test_overlay_text_in_the_corner() -> None:
    plain = draw_persons(blank(), [], frame_index=12, fps=9.5)
    assert not plain.any()  # overlay off by default
    with_fps = draw_persons(blank(), [], DrawOptions(show_fps=True), frame_index=12, fps=9.5)
    corner = with_fps[:60, :200]
    assert corner.any()
    assert not with_fps[100:, :].any()  # only the corner changes
    both = draw_persons(
        blank(), [], DrawOptions(show_fps=True, show_frame_index=True), frame_index=12, fps=9.5
    )
    assert np.count_nonzero(both[:60, :300]) > np.count_nonzero(with_fps[:60, :300])
    assert (corner == 255).any()  # white text over the dark box


def test_a_note_is_always_written_in_the_corner() -> None:
    """The annotated video's "not processed" note: shown whatever the overlay options say."""
    noted = draw_persons(blank(), [], note=NOT_PROCESSED_NOTE)
    assert (noted[:60, :] == 255).any()  # white text over the dark box
    assert not noted[100:, :].any()
    with_fps = draw_persons(blank(), [], DrawOptions(show_fps=True), fps=9.5, note=NOT_PROCESSED_NOTE)
    assert np.count_nonzero(with_fps[:60]) > np.count_nonzero(draw_persons(blank(), [], note="x")[:60])


def test_bad_landmarks_do_not_crash() -> None:
    person = torso(200, 0)
    person.landmarks[5, :2] = np.nan
    person.landmarks[6, :2] = (1e12, -1e12)
    person.landmarks[6, 3] = 1.0
    person.landmarks[SKELETON[0][0], 3] = np.nan
    drawn = draw_persons(blank(), [person])
    assert drawn[200, 200].tolist() == list(color_for_id(0))


def test_rejects_non_rgb_arrays() -> None:
    with pytest.raises(ValueError, match="uint8"):
        draw_persons(np.zeros((10, 10), dtype=np.uint8), [])
    with pytest.raises(ValueError, match="C-contiguous"):
        draw_persons(blank()[:, ::2], [], inplace=True)
