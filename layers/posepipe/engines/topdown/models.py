"""Which model files a top-down engine runs, whatever runs them: the person detector, MoveNet
Lightning (the second opinion), BlazePose's landmark network (who is a person: the chosen
bundle's, else BlazePose Full) and the pose model.

:func:`topdown_models` resolves them from the engine's options: each catalogue model from the
models cache, or from ``model_files`` (catalogue name -> file), which is how the SageMaker
endpoint serves the models of its unpacked model archive.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from posepipe.assets.catalogue import CATALOGUE, resolve_model, spec_of
from posepipe.assets.pose_model import model_info
from posepipe.engines.base import GENERAL_DETECTORS, PoseEngineOptions
from posepipe.engines.topdown.steps import PoseKind
from posepipe.errors import EngineError

# The catalogue's pose models of COCO's 17 keypoints: MoveNet's.
MOVENET_MODELS = tuple(
    name for name, spec in CATALOGUE.items() if spec.kind == "pose" and spec.keypoints == 17
)
FINDER_MODEL = "blazepose-full"  # who is a person, when MoveNet is the pose network
SECOND_OPINION_MODEL = "movenet-lightning"


@dataclass(frozen=True)
class TopDownModels:
    """The files of one top-down engine; ``pose_path`` is None when the pose model is the
    finder's bundle or MoveNet Lightning (the second opinion's network)."""

    detector: str
    detector_path: Path
    second_opinion_path: Path
    finder_path: Path
    pose: PoseKind
    pose_path: Path | None
    model_block: dict[str, Any]  # the pose model as results name it: name, path, sha256

    def detector_block(self) -> dict[str, Any]:
        spec = CATALOGUE[self.detector]
        return {"name": spec.name, "sha256": spec.sha256}

    @staticmethod
    def second_opinion_block() -> dict[str, Any]:
        spec = CATALOGUE[SECOND_OPINION_MODEL]
        return {"name": spec.name, "sha256": spec.sha256}


def topdown_models(
    options: PoseEngineOptions, model_files: Mapping[str, Path] | None = None
) -> TopDownModels:
    """The model files for ``options`` (detector ``options.detector``, pose model
    ``options.model_path``: a catalogue name, a file, or None for the default bundle)."""
    if options.detector not in GENERAL_DETECTORS:
        raise EngineError(f"the top-down engine runs a general detector ({', '.join(GENERAL_DETECTORS)}), "
                          f"not {options.detector}")  # fmt: skip
    files = dict(model_files or {})

    def path_of(name: str) -> Path:
        return files[name] if name in files else CATALOGUE[name].built_path()

    spec = spec_of(options.model_path)
    if spec is not None and spec.name in MOVENET_MODELS:
        lightning = spec.name == SECOND_OPINION_MODEL
        pose_path = None if lightning else path_of(spec.name)
        shown = path_of(spec.name)
        return TopDownModels(
            detector=options.detector,
            detector_path=path_of(options.detector),
            second_opinion_path=path_of(SECOND_OPINION_MODEL),
            finder_path=path_of(FINDER_MODEL),
            pose="movenet-lightning" if lightning else "movenet",
            pose_path=pose_path,
            model_block={"name": spec.name, "path": str(shown), "sha256": spec.sha256},
        )
    if spec is not None and spec.name in files:
        bundle = files[spec.name]
    else:
        bundle = resolve_model(options.model_path)
    return TopDownModels(
        detector=options.detector,
        detector_path=path_of(options.detector),
        second_opinion_path=path_of(SECOND_OPINION_MODEL),
        finder_path=bundle,
        pose="blazepose",
        pose_path=None,
        model_block=model_info(bundle).to_dict(),
    )


def required_models(model: str, detector: str) -> list[str]:
    """The catalogue's models the top-down engine loads for pose model ``model`` (a catalogue
    name) with general detector ``detector``: the detector, MoveNet Lightning (the second
    opinion), BlazePose Full (who is a person, when the pose model is MoveNet) and the model."""
    names = [detector, SECOND_OPINION_MODEL] + [FINDER_MODEL] * (model in MOVENET_MODELS) + [model]
    return list(dict.fromkeys(names))
