"""Running the top-down engine's steps (:mod:`posepipe.engines.topdown.steps`) on its networks.

:func:`run_step` answers one step's requests one at a time: one frame of one stream.
:func:`run_steps` runs the steps of many frames (of many streams) in lock-step: in each round,
every step that is still running has one request waiting; the waiting requests of one kind
(the detector on whole frames, or one role's network on regions) go to the networks as one
batch, across frames, and each step gets its own answers back. The steps' decisions are the same
either way; only the networks' batches differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from posepipe.engines.topdown.person_boxes import PersonBox
from posepipe.engines.topdown.regions import Region, RegionLandmarks
from posepipe.engines.topdown.steps import Estimate, FindPersons, Request, Role, Step


class TopDownNetworks(Protocol):
    """The networks of a top-down engine, batched over frames: whatever runs them (ONNX Runtime
    and LiteRT on the CPU, or PyTorch on a GPU or the CPU).

    ``prepare`` turns RGB frames into whatever the networks read them from (NumPy arrays as they
    are, or tensors on the device): once per frame, whichever networks then run on it.
    """

    def prepare(self, images: Sequence[Any]) -> list[Any]: ...

    def find_persons(self, frames: Sequence[Any]) -> list[list[PersonBox]]:
        """The detector's boxes on each frame, best score first."""

    def estimate(
        self, role: Role, frames: Sequence[Any], regions: Sequence[Sequence[Region]]
    ) -> list[list[Any]]:
        """The ``role`` network's answer on each region of each frame (``regions[i]`` are
        ``frames[i]``'s): :class:`RegionLandmarks` for ``finder``, ``RegionKeypoints`` for
        ``second_opinion`` and ``pose``."""

    def describe(self) -> dict[str, Any]:
        """What runs the networks, for results (``runtime``, ``device``, ``dtype``...)."""


def run_step(step: Step, networks: TopDownNetworks, frame: Any) -> list[RegionLandmarks]:
    """One step's persons, its requests answered one by one (``frame``: a prepared frame)."""
    return run_steps([step], networks, [frame])[0]


def run_steps(
    steps: Sequence[Step], networks: TopDownNetworks, frames: Sequence[Any]
) -> list[list[RegionLandmarks]]:
    """The persons of each step (``steps[i]`` works on the prepared ``frames[i]``), their
    requests batched by kind in each round."""
    if len(steps) != len(frames):
        raise ValueError(f"{len(steps)} steps for {len(frames)} frames")
    results: list[list[RegionLandmarks] | None] = [None] * len(steps)
    waiting: dict[int, Request] = {}
    for index in range(len(steps)):
        _advance(steps, results, waiting, index, None, first=True)
    while waiting:
        answers = _answer_round(waiting, networks, frames)
        for index, answer in answers.items():
            _advance(steps, results, waiting, index, answer)
    return [r if r is not None else [] for r in results]


def _advance(
    steps: Sequence[Step],
    results: list[list[RegionLandmarks] | None],
    waiting: dict[int, Request],
    index: int,
    answer: Any,
    *,
    first: bool = False,
) -> None:
    try:
        waiting[index] = next(steps[index]) if first else steps[index].send(answer)
    except StopIteration as done:
        waiting.pop(index, None)
        results[index] = done.value


def _answer_round(
    waiting: dict[int, Request], networks: TopDownNetworks, frames: Sequence[Any]
) -> dict[int, Any]:
    """This round's answers: one network call per kind of request waiting."""
    answers: dict[int, Any] = {}
    detect = [index for index, request in waiting.items() if isinstance(request, FindPersons)]
    if detect:
        boxes = networks.find_persons([frames[i] for i in detect])
        answers.update(zip(detect, boxes, strict=True))
    by_role: dict[Role, list[int]] = {}
    for index, request in waiting.items():
        if isinstance(request, Estimate):
            by_role.setdefault(request.role, []).append(index)
    for role, indices in by_role.items():
        regions = []
        for i in indices:
            request = waiting[i]
            assert isinstance(request, Estimate)
            regions.append(request.regions)
        estimated = networks.estimate(role, [frames[i] for i in indices], regions)
        answers.update(zip(indices, estimated, strict=True))
    return answers
