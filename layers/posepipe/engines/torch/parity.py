"""Parity figures: how far the torch engine's persons are from MediaPipe's on the same image.

The issue's bounds (IMAGE mode, per matched person): median landmark distance at most 1 px,
95th percentile at most 3 px, world landmarks within 1 cm median. Used by the parity tests and
by ``bench/gpu_throughput.py --parity`` (which measures them for any device and dtype).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posepipe.result import Person

MEDIAN_PX_BOUND = 1.0
P95_PX_BOUND = 3.0
WORLD_MEDIAN_CM_BOUND = 1.0


@dataclass(frozen=True)
class PersonParity:
    """One reference person against the torch person nearest to it (mean landmark distance)."""

    median_px: float
    p95_px: float
    max_px: float
    world_median_cm: float

    @property
    def within_bounds(self) -> bool:
        return (
            self.median_px <= MEDIAN_PX_BOUND
            and self.p95_px <= P95_PX_BOUND
            and self.world_median_cm <= WORLD_MEDIAN_CM_BOUND
        )

    def __str__(self) -> str:
        return (
            f"median {self.median_px:.3f} px, p95 {self.p95_px:.3f} px, max {self.max_px:.3f} px, "
            f"world median {self.world_median_cm:.3f} cm"
        )


def compare_persons(reference: list[Person], persons: list[Person]) -> list[PersonParity] | None:
    """Each reference person's figures, or None when the two lists do not pair up one to one
    (different counts, or two reference persons nearest to the same torch person)."""
    if len(reference) != len(persons):
        return None
    figures, used = [], set()
    for ref in reference:
        distances = [float(np.linalg.norm(ref.xy - p.xy, axis=1).mean()) for p in persons]
        nearest = int(np.argmin(distances))
        if nearest in used:
            return None
        used.add(nearest)
        person = persons[nearest]
        pixels = np.linalg.norm(ref.xy - person.xy, axis=1)
        world = np.linalg.norm(ref.world_landmarks - person.world_landmarks, axis=1)
        figures.append(
            PersonParity(
                median_px=float(np.median(pixels)),
                p95_px=float(np.percentile(pixels, 95)),
                max_px=float(pixels.max()),
                world_median_cm=float(np.median(world) * 100),
            )
        )
    return figures
