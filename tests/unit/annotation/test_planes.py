"""Drawing where persons are: drawn_boxes bounds every drawn pixel, a crop drawn with its origin
equals the whole frame drawn, and PlaneAnnotator draws a decoded 4:2:0 frame as the RGB path
does while keeping every other sample as decoded."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest
from posepipe.annotation.drawing import DrawOptions, draw_persons, drawn_boxes
from posepipe.annotation.planes import PlaneAnnotator, even_disjoint_boxes
from posepipe.annotation.render import NOT_PROCESSED_NOTE
from posepipe.media.colour import YUVColour
from posepipe.media.decode import CompactFrame, read_compact_frames, read_frames
from posepipe.media.probe import probe
from posepipe.result import Person
from posepipe.skeleton import NUM_LANDMARKS

HEIGHT, WIDTH = 576, 768


def random_person(
    rng: np.random.Generator, person_id: int, size: tuple[int, int] = (HEIGHT, WIDTH)
) -> Person:
    """A person of random size and place (partly off the frame at times), with random visibility,
    a few landmarks far off the frame and, now and then, one that is not finite."""
    height, width = size
    centre = rng.uniform((-0.1 * width, -0.1 * height), (1.1 * width, 1.1 * height))
    extent = rng.uniform(20, 0.6 * height)
    landmarks = np.zeros((NUM_LANDMARKS, 5), dtype=np.float32)
    landmarks[:, :2] = centre + rng.normal(0, extent / 3, (NUM_LANDMARKS, 2))
    landmarks[:, 3] = rng.uniform(0, 1, NUM_LANDMARKS)
    landmarks[:, 4] = 1.0
    if rng.random() < 0.3:
        landmarks[rng.integers(NUM_LANDMARKS), :2] = rng.choice([-1e7, 1e7], 2)
    if rng.random() < 0.2:
        landmarks[rng.integers(NUM_LANDMARKS), 0] = np.nan
    return Person(landmarks, np.zeros((NUM_LANDMARKS, 3), dtype=np.float32), score=0.9, id=person_id)


OPTIONS = [
    DrawOptions(),
    DrawOptions(antialias=False),
    DrawOptions(line_thickness=7, point_radius=3, show_frame_index=True, show_fps=True),
    DrawOptions(point_radius=9, min_visibility=0.1, show_frame_index=True),
]


def _inside(boxes: list[tuple[int, int, int, int]], size: tuple[int, int]) -> npt.NDArray[np.bool_]:
    mask = np.zeros(size, dtype=bool)
    for x0, y0, x1, y1 in boxes:
        mask[y0:y1, x0:x1] = True
    return mask


@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("size", [(HEIGHT, WIDTH), (240, 320), (1080, 1920)])
def test_drawn_boxes_bound_every_drawn_pixel(options: DrawOptions, size: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(size) + hash(options) % 1000)
    background = np.full((*size, 3), 77, dtype=np.uint8)
    for trial in range(25):
        persons = [random_person(rng, i, size) for i in range(int(rng.integers(0, 5)))]
        note = NOT_PROCESSED_NOTE if trial % 5 == 0 else None
        overlay = {"frame_index": 10_000 + trial, "fps": 123.4, "note": note}
        drawn = draw_persons(background, persons, options, **overlay)  # type: ignore[arg-type]
        changed = np.any(drawn != background, axis=2)
        boxes = drawn_boxes(size, persons, options, **overlay)  # type: ignore[arg-type]
        assert not (changed & ~_inside(boxes, size)).any(), f"trial {trial}: drawn outside the boxes"
        for x0, y0, x1, y1 in boxes:
            assert 0 <= x0 < x1 <= size[1]
            assert 0 <= y0 < y1 <= size[0]


def test_boxes_grow_to_even_edges_and_merge_until_disjoint() -> None:
    boxes = [(3, 5, 11, 9), (10, 8, 21, 31), (40, 41, 45, 47), (700, 500, 769, 577)]
    merged = even_disjoint_boxes(boxes, (HEIGHT, WIDTH))
    assert sorted(merged) == [(2, 4, 22, 32), (40, 40, 46, 48), (700, 500, 768, 576)]
    rng = np.random.default_rng(5)
    for _ in range(50):
        corners = [[int(v) for v in rng.integers(0, 300, 4)] for _ in range(12)]
        many = [(min(a, c), min(b, d), max(a, c) + 1, max(b, d) + 1) for a, b, c, d in corners]
        merged = even_disjoint_boxes(many, (HEIGHT, WIDTH))
        assert all(v % 2 == 0 for box in merged for v in box)
        mask = _inside(merged, (HEIGHT, WIDTH))
        assert mask[_inside(many, (HEIGHT, WIDTH))].all()  # every input pixel is covered
        assert mask.sum() == sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in merged)  # no overlap


@pytest.mark.parametrize("options", OPTIONS)
def test_a_crop_drawn_at_its_origin_gets_the_whole_frames_pixels(options: DrawOptions) -> None:
    rng = np.random.default_rng(11)
    base = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    for trial in range(20):
        persons = [random_person(rng, i) for i in range(int(rng.integers(1, 5)))]
        overlay = {"frame_index": trial, "fps": 30.0, "note": None}
        whole = draw_persons(base, persons, options, **overlay)  # type: ignore[arg-type]
        boxes = drawn_boxes((HEIGHT, WIDTH), persons, options, **overlay)  # type: ignore[arg-type]
        for x0, y0, x1, y1 in even_disjoint_boxes(boxes, (HEIGHT, WIDTH)):
            crop = np.ascontiguousarray(base[y0:y1, x0:x1])
            draw_persons(
                crop, persons, options, **overlay, inplace=True,  # type: ignore[arg-type]
                origin=(x0, y0), frame_size=(HEIGHT, WIDTH),
            )  # fmt: skip
            assert np.array_equal(crop, whole[y0:y1, x0:x1]), (trial, (x0, y0, x1, y1))


def _to_rgb(planes: npt.NDArray[np.uint8], colour: YUVColour) -> npt.NDArray[np.uint8]:
    frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
    frame.colorspace, frame.color_range = colour.matrix, colour.color_range
    return np.asarray(frame.to_ndarray(format="rgb24"))


def test_plane_annotator_draws_as_the_rgb_path(sample: Callable[[str], Path]) -> None:
    video = sample("vtest.avi")
    info = probe(video)
    assert info.pix_fmt == "yuv420p"
    rgb_frames = {f.index: f.rgb for f in read_frames(video, 100, 130, info=info)}
    rng = np.random.default_rng(3)
    options = DrawOptions(show_frame_index=True, show_fps=True)
    drawn_anything = 0
    for kept in read_compact_frames(video, 100, 130, info=info):
        assert isinstance(kept, CompactFrame)
        colour = YUVColour.of_frame(kept.pixel_format, kept.colorspace, kept.color_range)
        # What the frame's samples mean when read: the very RGB read_frames gives.
        assert np.array_equal(_to_rgb(kept.planes, colour), rgb_frames[kept.index])
        persons = [random_person(rng, i) for i in range(int(rng.integers(0, 4)))]
        overlay = {"frame_index": kept.index, "fps": 55.5, "note": None}
        expected = draw_persons(rgb_frames[kept.index], persons, options, **overlay)  # type: ignore[arg-type]
        original = kept.planes.copy()
        PlaneAnnotator((HEIGHT, WIDTH), colour).draw(kept.planes, persons, options, **overlay)  # type: ignore[arg-type]

        regions = even_disjoint_boxes(
            drawn_boxes((HEIGHT, WIDTH), persons, options, **overlay),  # type: ignore[arg-type]
            (HEIGHT, WIDTH),
        )
        luma = _inside(regions, (HEIGHT, WIDTH))
        chroma = luma[::2, ::2]
        y, uv = kept.planes[:HEIGHT], kept.planes[HEIGHT:].reshape(2, HEIGHT // 2, WIDTH // 2)
        y0, uv0 = original[:HEIGHT], original[HEIGHT:].reshape(2, HEIGHT // 2, WIDTH // 2)
        # Outside the drawn regions, the decoder's samples are untouched.
        assert np.array_equal(y[~luma], y0[~luma])
        assert np.array_equal(uv[:, ~chroma], uv0[:, ~chroma])
        # Inside, the frame reads as the RGB path's drawing, to 4:2:0's own rounding.
        got = _to_rgb(kept.planes, colour).astype(np.int16)
        error = np.abs(got - expected.astype(np.int16))
        through_yuv = np.abs(_to_rgb(_rgb_to_planes(expected, colour), colour).astype(np.int16) - expected)
        assert error[luma].mean() <= through_yuv[luma].mean() + 0.5
        outside = error[~luma]
        assert outside.size == 0 or outside.mean() < 0.01  # chroma read across a region's edge
        drawn_anything += int(luma.any())
    assert drawn_anything == 30  # the overlay is on every frame


def _rgb_to_planes(rgb: npt.NDArray[np.uint8], colour: YUVColour) -> npt.NDArray[np.uint8]:
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    yuv = frame.reformat(format="yuv420p", dst_colorspace=colour.matrix, dst_color_range=colour.color_range)
    return np.asarray(yuv.to_ndarray())


def test_plane_annotator_checks_its_input() -> None:
    with pytest.raises(ValueError, match="even sizes"):
        PlaneAnnotator((575, 768), YUVColour(1, False))
    annotator = PlaneAnnotator((HEIGHT, WIDTH), YUVColour(1, False))
    with pytest.raises(ValueError, match="planes of shape"):
        annotator.draw(np.zeros((HEIGHT, WIDTH), dtype=np.uint8), [], DrawOptions())


@pytest.mark.parametrize(
    ("pixel_format", "colorspace", "color_range", "expected"),
    [
        ("yuv420p", 2, 0, YUVColour(6, False)),  # untagged: swscale reads BT.601, limited
        ("yuv420p", 5, 1, YUVColour(6, False)),
        ("yuv420p", 1, 1, YUVColour(1, False)),
        ("yuvj420p", 2, 0, YUVColour(6, True)),
        ("yuv420p", 1, 2, YUVColour(1, True)),
    ],
)
def test_colour_of_a_frame(pixel_format: str, colorspace: int, color_range: int, expected: YUVColour) -> None:
    assert YUVColour.of_frame(pixel_format, colorspace, color_range) == expected
