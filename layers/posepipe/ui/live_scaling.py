"""Camera frames made small for pose estimation (and JPEG for the wire), and persons scaled back."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from posepipe.result import Person
from posepipe.ui.live_types import RGBFrame


def scale_down(rgb: RGBFrame, max_side: int) -> tuple[RGBFrame, float]:
    """``rgb`` with its longest side at most ``max_side`` (area interpolation), and the factor."""
    height, width = rgb.shape[:2]
    longest = max(height, width)
    if longest <= max_side:
        return rgb, 1.0
    factor = max_side / longest
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return np.ascontiguousarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)), factor


def encode_jpeg(rgb: RGBFrame, quality: int) -> bytes:
    """An RGB frame as JPEG bytes (OpenCV: several times faster than Pillow at camera sizes)."""
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"could not encode a {rgb.shape} frame as JPEG")
    return bytes(data.tobytes())


def unscale(persons: list[Person], factor: float) -> list[Person]:
    """Persons found in a frame scaled by ``factor``, in pixels of the original frame."""
    if factor == 1.0:
        return persons
    out = []
    for person in persons:
        landmarks = person.landmarks.copy()
        landmarks[:, :3] /= factor  # x, y, and z (which is in pixels at the scale of x)
        out.append(replace(person, landmarks=landmarks))
    return out
