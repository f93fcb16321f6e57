"""A clip composed from real photographed people who walk across each other, for the id tests.

Two people are cut out of the sample photos with OpenCV's GrabCut (a classical graph-cut
segmentation, seeded with the boxes labelled by eye in ``tests/fixtures/labels``): the player on
the left of ``basketball1.png`` ("A") and the footballer of ``messi5.jpg`` ("B"). They move across
a plain room at a walking pace (0.7 body heights a second, 25 frames a second): A from left to
right further back, B from right to left nearer the camera, so that B passes in front of A half
way through. A column stands between their paths, nearer than A and further than B: A walks
behind it, wholly hidden for about a second, and B passes in front of it.

The people slide rather than stride (each is one photograph); what the clip tests is who is who
when people cross and vanish, which a stride would not change. Where each person is, and how much
of them shows, is known from the composition itself: no model is asked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from tests.support.clips import encode_frames

LABELS = Path(__file__).resolve().parents[1] / "fixtures" / "labels" / "persons.json"
FPS = 25
FRAMES = 150
SIZE = (960, 400)  # width, height
SPEED = 0.7  # body heights a second
COLUMN = (600, 790)
A_SEEDS = (((0.42, 0.03), (0.42, 0.5)), ((0.3, 0.55), (0.24, 0.92)), ((0.62, 0.55), (0.69, 0.9)))
B_SEEDS = (((0.45, 0.1), (0.45, 0.6)),)  # x range of the column, in front of A's path and behind B's

Image = npt.NDArray[np.uint8]
Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Sprite:
    """A person cut out of a photo: their pixels and mask (True on the person), cropped to the mask."""

    rgb: Image
    mask: npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Walker:
    """Where one person is on each frame: ``boxes[f]`` their whole box (x0, y0, x1, y1), and
    ``shown[f]`` the fraction of their pixels that can be seen."""

    name: str
    boxes: list[Box]
    shown: list[float]


def labelled_box(file_name: str, index: int = 0) -> Box:
    """The ``index``-th box labelled by eye on a sample photo (left to right)."""
    doc = json.loads(LABELS.read_text())
    image_id = next(image["id"] for image in doc["images"] if image.get("file_name") == file_name)
    boxes = sorted(a["bbox"] for a in doc["annotations"] if a["image_id"] == image_id)
    x, y, w, h = boxes[index]
    return (x, y, x + w, y + h)


Segment = tuple[tuple[float, float], tuple[float, float]]


def cut_out(rgb: Image, box: Box, height: int, seeds: tuple[Segment, ...]) -> Sprite:
    """The person in ``box`` of a photo, segmented by GrabCut and scaled to ``height`` pixels.

    ``seeds`` are line segments known to be on the person, as fractions of the box (checked by eye
    on the photo: the face down the torso, each leg from hip to ankle); without them, GrabCut
    gives a dark shirt to a dark doorway behind it."""
    x0, y0, x1, y1 = (round(v) for v in box)
    mask = np.full(rgb.shape[:2], cv2.GC_BGD, np.uint8)  # outside the box: background
    mask[y0:y1, x0:x1] = cv2.GC_PR_FGD
    for (ax, ay), (bx, by) in seeds:
        start = (x0 + round(ax * (x1 - x0)), y0 + round(ay * (y1 - y0)))
        end = (x0 + round(bx * (x1 - x0)), y0 + round(by * (y1 - y0)))
        cv2.line(mask, start, end, cv2.GC_FGD, 3)
    background, foreground = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    cv2.grabCut(bgr, mask, (0, 0, 0, 0), background, foreground, 5, cv2.GC_INIT_WITH_MASK)
    person = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
    rows, cols = np.nonzero(person)
    r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    scale = height / (r1 - r0)
    size = (max(1, round((c1 - c0) * scale)), height)
    pixels = np.asarray(cv2.resize(rgb[r0:r1, c0:c1], size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
    alpha = cv2.resize(person[r0:r1, c0:c1].astype(np.uint8) * 255, size, interpolation=cv2.INTER_AREA)
    return Sprite(pixels, alpha >= 128)


def _room() -> Image:
    width, height = SIZE
    rng = np.random.default_rng(7)
    room = np.empty((height, width, 3), np.float32)
    room[:] = (196, 190, 178)  # wall
    room[250:] = (120, 112, 100)  # floor
    room += rng.normal(0, 3, room.shape).astype(np.float32)
    return np.clip(room, 0, 255).astype(np.uint8)


def _column(frame: Image) -> npt.NDArray[np.bool_]:
    """Draw the column and return where it is."""
    x0, x1 = COLUMN
    shade = np.linspace(70, 150, x1 - x0, dtype=np.float32)[None, :, None]
    frame[:330, x0:x1] = np.broadcast_to(shade, (330, x1 - x0, 3)).astype(np.uint8)
    where = np.zeros(frame.shape[:2], bool)
    where[:330, x0:x1] = True
    return where


def _place(sprite: Sprite, centre_x: float, feet_y: int) -> tuple[int, int]:
    return round(centre_x - sprite.rgb.shape[1] / 2), feet_y - sprite.rgb.shape[0]


def _paint(
    frame: Image, cover: npt.NDArray[np.int32], sprite: Sprite, at: tuple[int, int], label: int
) -> None:
    """Draw a sprite with its top left at ``at`` (clipped to the frame), marking ``cover``."""
    height, width = frame.shape[:2]
    x, y = at
    sx0, sy0 = max(0, -x), max(0, -y)
    sx1 = min(sprite.rgb.shape[1], width - x)
    sy1 = min(sprite.rgb.shape[0], height - y)
    if sx1 <= sx0 or sy1 <= sy0:
        return
    mask = sprite.mask[sy0:sy1, sx0:sx1]
    region = (slice(y + sy0, y + sy1), slice(x + sx0, x + sx1))
    frame[region][mask] = sprite.rgb[sy0:sy1, sx0:sx1][mask]
    cover[region][mask] = label


def make_crossing_clip(path: Path, media: Path) -> list[Walker]:
    """Write the clip (H.264 MP4) and say where each person is on each frame."""
    from posepipe.media.images import load_image

    a = cut_out(load_image(media / "basketball1.png").rgb, labelled_box("basketball1.png", 0), 190, A_SEEDS)
    b = cut_out(load_image(media / "messi5.jpg").rgb, labelled_box("messi5.jpg", 0), 170, B_SEEDS)
    step_a, step_b = SPEED * 190 / FPS, SPEED * 170 / FPS
    frames: list[Image] = []
    walkers = {name: Walker(name, [], []) for name in ("A", "B")}
    room = _room()
    for f in range(FRAMES):
        frame = room.copy()
        cover = np.zeros(frame.shape[:2], np.int32)
        at_a = _place(a, 90 + step_a * f, 320)
        at_b = _place(b, 870 - step_b * f, 390)
        _paint(frame, cover, a, at_a, 1)
        column = _column(frame)
        cover[column] = 0
        _paint(frame, cover, b, at_b, 2)
        frames.append(frame)
        for name, sprite, (x, y), label in (("A", a, at_a, 1), ("B", b, at_b, 2)):
            height, width = sprite.rgb.shape[:2]
            walkers[name].boxes.append((float(x), float(y), float(x + width), float(y + height)))
            walkers[name].shown.append(float((cover == label).sum()) / float(sprite.mask.sum()))
    encode_frames(path, frames, fps=FPS)
    return [walkers["A"], walkers["B"]]
