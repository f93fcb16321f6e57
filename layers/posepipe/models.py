"""The pose model asset: find it, or build it offline from the TFLite files that MediaPipe ships.

MediaPipe's Tasks API loads a ``.task`` bundle: a zip holding ``pose_detector.tflite`` and
``pose_landmarks_detector.tflite``, each carrying TFLite metadata that tells the Tasks image
pre-processing how to normalise pixels. Google serves official bundles (lite, full, heavy) from
its own storage; any of them can be used with ``--model`` or ``POSEPIPE_MODEL``.

Where those cannot be downloaded, :func:`build_model` makes ``pose_landmarker_full.task`` from
the raw BlazePose detector and BlazePose Full landmark models that the ``mediapipe==0.10.21``
wheel on PyPI carries, adding the metadata (an RGB image input, normalised with mean 0 and
std 255 to [0, 1]) with the flatbuffer schema modules that the current ``mediapipe`` ships.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from posepipe.errors import ModelError

MODEL_ENV = "POSEPIPE_MODEL"
CACHE_ENV = "POSEPIPE_CACHE"
BUILT_MODEL_NAME = "pose_landmarker_full.task"
TASK_SUFFIX = ".task"
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz")
MAX_MODEL_BYTES = 256 * 1024 * 1024
"""The largest model bundle (and model archive, unpacked) posepipe fetches: the official pose
landmarker bundles are 3 to 30 MB."""
_MAX_ARCHIVE_MEMBERS = 1000

SOURCE_WHEEL_VERSION = "0.10.21"
SOURCE_WHEEL_PLATFORM = "manylinux_2_28_x86_64"
DETECTOR_MEMBER = "mediapipe/modules/pose_detection/pose_detection.tflite"
LANDMARKS_MEMBER = "mediapipe/modules/pose_landmark/pose_landmark_full.tflite"
# sha256 of the two files as the 0.10.21 wheel carries them: the build refuses anything else.
DETECTOR_SHA256 = "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c"
LANDMARKS_SHA256 = "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f"

DETECTOR_BUNDLE_NAME = "pose_detector.tflite"
LANDMARKS_BUNDLE_NAME = "pose_landmarks_detector.tflite"

_TFLITE_FILE_IDENTIFIER = b"TFL3"
_METADATA_FILE_IDENTIFIER = b"M001"
_METADATA_BUFFER_NAME = "TFLITE_METADATA"
_TFLITE_BUFFER_ALIGNMENT = 16
_BUNDLE_ALIGNMENT = 64
_ZIP_LOCAL_HEADER_SIZE = 30
_ZIP_EXTRA_HEADER_SIZE = 4
_ZIPALIGN_EXTRA_ID = 0xD935  # the extra-field id Android's zipalign uses for padding


@dataclass(frozen=True)
class ModelInfo:
    """Where a model came from, as recorded in every result."""

    name: str
    path: str
    sha256: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "path": self.path, "sha256": self.sha256}


def cache_base() -> Path:
    """Where posepipe keeps what it builds or fetches: ``$POSEPIPE_CACHE`` or ``~/.cache/posepipe``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "posepipe"


def cache_dir() -> Path:
    """The folder of built models (and the wheel they are built from)."""
    return cache_base() / "models"


def built_model_path() -> Path:
    return cache_dir() / BUILT_MODEL_NAME


def resolve_model_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The model to use: ``explicit``, else ``$POSEPIPE_MODEL``, else the built model in the cache."""
    chosen = explicit if explicit is not None else os.environ.get(MODEL_ENV) or None
    if chosen is not None:
        path = Path(chosen).expanduser()
        if not path.is_file():
            raise ModelError(f"{path}: model file not found")
        if not zipfile.is_zipfile(path):
            raise ModelError(f"{path}: not a MediaPipe .task bundle (expected a zip file)")
        return path
    path = built_model_path()
    if not path.is_file():
        raise ModelError(
            f"no model at {path}: run `posepipe models build`, or pass --model / set {MODEL_ENV}"
        )
    return path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_info(path: Path) -> ModelInfo:
    name = path.name.removesuffix(".task")
    return ModelInfo(name=name, path=str(path), sha256=file_sha256(path))


# --- building -------------------------------------------------------------------------------


def source_wheel(dest: Path | None = None) -> Path:
    """The ``mediapipe==0.10.21`` wheel in the cache, downloaded from PyPI the first time."""
    dest = dest or cache_dir()
    cached = sorted(dest.glob(f"mediapipe-{SOURCE_WHEEL_VERSION}-*.whl"))
    return cached[0] if cached else download_source_wheel(dest)


def download_source_wheel(dest: Path) -> Path:
    """Fetch the ``mediapipe==0.10.21`` wheel (not installed: only its model files are used)."""
    dest.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--python-version", "3.11", "--platform", SOURCE_WHEEL_PLATFORM,
        "-d", str(dest), f"mediapipe=={SOURCE_WHEEL_VERSION}",
    ]  # fmt: skip
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    wheels = sorted(dest.glob(f"mediapipe-{SOURCE_WHEEL_VERSION}-*.whl"))
    if completed.returncode != 0 or not wheels:
        tail = (completed.stderr or completed.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ModelError(f"could not download mediapipe=={SOURCE_WHEEL_VERSION} from PyPI: {tail[0]}")
    return wheels[0]


def read_source_models(wheel: Path) -> tuple[bytes, bytes]:
    """The raw detector and landmark TFLite files from the wheel, checked against known hashes."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            detector = archive.read(DETECTOR_MEMBER)
            landmarks = archive.read(LANDMARKS_MEMBER)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise ModelError(f"{wheel}: not a mediapipe {SOURCE_WHEEL_VERSION} wheel ({exc})") from exc
    for label, data, expected in (
        ("detector", detector, DETECTOR_SHA256),
        ("landmarks", landmarks, LANDMARKS_SHA256),
    ):
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected:
            raise ModelError(f"{wheel}: {label} model has sha256 {actual}, expected {expected}")
    return detector, landmarks


def image_input_metadata(model_name: str, output_names: list[str]) -> bytes:
    """TFLite metadata for a float model whose one input is an RGB image scaled to [0, 1]."""
    import flatbuffers
    from mediapipe.tasks.metadata import metadata_schema_py_generated as meta

    image_properties = meta.ImagePropertiesT()
    image_properties.colorSpace = meta.ColorSpaceType.RGB
    content = meta.ContentT()
    content.contentPropertiesType = meta.ContentProperties.ImageProperties
    content.contentProperties = image_properties
    normalization = meta.NormalizationOptionsT()
    normalization.mean = [0.0]
    normalization.std = [255.0]
    process_unit = meta.ProcessUnitT()
    process_unit.optionsType = meta.ProcessUnitOptions.NormalizationOptions
    process_unit.options = normalization
    stats = meta.StatsT()
    stats.max = [1.0]
    stats.min = [0.0]
    image = meta.TensorMetadataT()
    image.name = "image"
    image.description = "RGB image, float32, values in [0, 1]"
    image.content = content
    image.processUnits = [process_unit]
    image.stats = stats

    outputs = []
    for name in output_names:
        tensor = meta.TensorMetadataT()
        tensor.name = name
        outputs.append(tensor)
    subgraph = meta.SubGraphMetadataT()
    subgraph.inputTensorMetadata = [image]
    subgraph.outputTensorMetadata = outputs
    model = meta.ModelMetadataT()
    model.name = model_name
    model.description = "MediaPipe BlazePose, metadata added by posepipe"
    model.version = SOURCE_WHEEL_VERSION
    model.subgraphMetadata = [subgraph]
    model.minParserVersion = "1.0.0"

    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), _METADATA_FILE_IDENTIFIER)
    return bytes(builder.Output())


def output_tensor_names(tflite: bytes) -> list[str]:
    from mediapipe.tasks.metadata import schema_py_generated as schema

    model = schema.Model.GetRootAs(tflite, 0)
    graph = model.Subgraphs(0)
    return [graph.Tensors(graph.Outputs(i)).Name().decode() for i in range(graph.OutputsLength())]


def embed_metadata(tflite: bytes, metadata: bytes) -> bytes:
    """``tflite`` with ``metadata`` stored as its ``TFLITE_METADATA`` buffer (replacing any)."""
    import numpy as np
    from mediapipe.tasks.metadata import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(tflite), 0)
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(metadata, dtype=np.uint8)
    model.buffers = [*(model.buffers or []), buffer]
    entry = schema.MetadataT()
    entry.name = _METADATA_BUFFER_NAME
    entry.buffer = len(model.buffers) - 1
    kept = [
        m
        for m in (model.metadata or [])
        if m.name not in (_METADATA_BUFFER_NAME.encode(), _METADATA_BUFFER_NAME)
    ]
    model.metadata = [*kept, entry]
    builder = _aligned_builder(len(tflite) + len(metadata) + 4096)
    builder.Finish(model.Pack(builder), _TFLITE_FILE_IDENTIFIER)
    return bytes(builder.Output())


def _aligned_builder(size: int) -> Any:
    """A flatbuffers builder that puts byte vectors (the weight buffers) on 16-byte boundaries.

    TFLite's schema asks for ``force_align: 16`` on buffer data, which the generated Python
    object API ignores; unaligned weights make TFLite copy them at load time, with a warning.
    """
    import flatbuffers
    import numpy as np

    class AlignedBuilder(flatbuffers.Builder):  # type: ignore[misc]
        def CreateNumpyVector(self, x: Any) -> Any:  # noqa: N802 (flatbuffers' name)
            if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 1:
                return super().CreateNumpyVector(x)
            builder: Any = self  # flatbuffers is untyped: its attributes are plain ints/bytearrays
            builder.StartVector(1, x.size, _TFLITE_BUFFER_ALIGNMENT)
            builder.head -= x.size
            builder.Bytes[builder.head : builder.head + x.size] = x.tobytes()
            builder.vectorNumElems = x.size
            return builder.EndVector()

    return AlignedBuilder(size)


def make_task_bundle(detector: bytes, landmarks: bytes, destination: Path) -> None:
    """Write a ``.task`` bundle with metadata-carrying copies of the two models."""
    detector_with_meta = embed_metadata(
        detector, image_input_metadata("pose_detector", output_tensor_names(detector))
    )
    landmarks_with_meta = embed_metadata(
        landmarks, image_input_metadata("pose_landmarks_detector", output_tensor_names(landmarks))
    )
    with zipfile.ZipFile(destination, "w", compression=zipfile.ZIP_STORED) as bundle:
        _write_aligned(bundle, DETECTOR_BUNDLE_NAME, detector_with_meta)
        _write_aligned(bundle, LANDMARKS_BUNDLE_NAME, landmarks_with_meta)


def _write_aligned(bundle: zipfile.ZipFile, name: str, data: bytes) -> None:
    """Store ``data`` uncompressed with its first byte on a 64-byte boundary of the zip file.

    MediaPipe maps the models straight out of the bundle, and TFLite wants its weights aligned
    (else it copies them, with a warning). Padding goes in the local header's extra field, as
    Android's zipalign does; the fixed date keeps rebuilt bundles byte-identical.
    """
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    assert bundle.fp is not None
    header_start = bundle.fp.tell()
    data_start = header_start + _ZIP_LOCAL_HEADER_SIZE + len(name.encode()) + _ZIP_EXTRA_HEADER_SIZE
    padding = -data_start % _BUNDLE_ALIGNMENT
    info.extra = struct.pack("<HH", _ZIPALIGN_EXTRA_ID, padding) + bytes(padding)
    bundle.writestr(info, data)


def verify_model(path: Path, source: str | None = None) -> None:
    """Load ``path`` with MediaPipe's PoseLandmarker and run it once, or raise :class:`ModelError`
    (naming ``source``, where the model came from, else ``path``)."""
    import numpy as np

    from posepipe.engine import PoseEngine, PoseEngineOptions

    label = source or str(path)
    if not zipfile.is_zipfile(path):
        raise ModelError(f"{label}: not a MediaPipe .task bundle (expected a zip file)")
    try:
        with PoseEngine(PoseEngineOptions(model_path=path)) as engine:
            engine.detect(np.zeros((256, 256, 3), dtype=np.uint8))
    except Exception as exc:  # MediaPipe raises RuntimeError/ValueError with its own text
        raise ModelError(f"{label}: MediaPipe could not load the model: {exc}") from exc


# --- model archives (SageMaker's model.tar.gz) ----------------------------------------------


def unpack_model_archive(
    archive: Path, folder: Path, *, source: str | None = None, max_bytes: int = MAX_MODEL_BYTES
) -> Path:
    """Write the one ``.task`` bundle of the tar archive ``archive`` (gzip or not) into ``folder``.

    A SageMaker ``ModelDataUrl`` is such an archive. Only the bundle is written, under its base
    name; nothing else is extracted. Refused with :class:`ModelError` (naming ``source``, where
    the archive came from, else its path): not a tar archive; a member with an absolute path or
    a ``..`` component; no ``.task`` member, or several; a bundle that is a link or other special
    file; members unpacking to more than ``max_bytes`` in all; more than 1,000 members.
    """
    label = source or str(archive)
    destination: Path | None = None
    try:
        with tarfile.open(archive, "r:*") as tar:
            bundle = _archive_bundle(tar, label, max_bytes)
            stream = tar.extractfile(bundle)
            if stream is None:  # pragma: no cover (a regular file always has a stream)
                raise ModelError(f"{label}: {bundle.name} cannot be read")
            destination = folder / PurePosixPath(bundle.name).name
            with stream, destination.open("wb") as out:
                written = 0
                for block in iter(lambda: stream.read(1 << 20), b""):
                    written += len(block)
                    if written > max_bytes:
                        raise ModelError(f"{label}: {bundle.name} is over {max_bytes} bytes")
                    out.write(block)
    except (tarfile.TarError, EOFError, OSError, zlib.error, ModelError) as exc:
        if destination is not None:
            destination.unlink(missing_ok=True)
        if isinstance(exc, ModelError):
            raise
        raise ModelError(f"{label}: not a readable tar archive ({exc})") from exc
    return destination


def _archive_bundle(tar: tarfile.TarFile, label: str, max_bytes: int) -> tarfile.TarInfo:
    """The archive's one ``.task`` member, after checking every member's name and the total size."""
    bundles: list[tarfile.TarInfo] = []
    total = 0
    for count, member in enumerate(tar, start=1):
        if count > _MAX_ARCHIVE_MEMBERS:
            raise ModelError(f"{label}: more than {_MAX_ARCHIVE_MEMBERS} members; not a model archive")
        name = PurePosixPath(member.name)
        if name.is_absolute() or ".." in name.parts or "\\" in member.name:
            raise ModelError(f"{label}: member {member.name!r} has an unsafe path (absolute or with '..')")
        total += max(member.size, 0)
        if total > max_bytes:
            raise ModelError(f"{label}: unpacks to over {max_bytes} bytes; a model archive holds one bundle")
        if member.name.lower().endswith(TASK_SUFFIX) and not member.isdir():
            bundles.append(member)
    if len(bundles) != 1:
        found = ", ".join(b.name for b in bundles) if bundles else "none"
        raise ModelError(f"{label}: holds {len(bundles)} .task bundles ({found}); exactly one is needed")
    bundle = bundles[0]
    if not bundle.isfile():
        raise ModelError(f"{label}: {bundle.name} is a link or special file, not a regular .task file")
    return bundle


def build_model(destination: Path | None = None, wheel: Path | None = None, force: bool = False) -> Path:
    """Build (or reuse) the cached ``pose_landmarker_full.task``; returns its path."""
    destination = destination or built_model_path()
    if destination.is_file() and not force:
        return destination
    destination.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="posepipe-model-") as scratch:
        scratch_dir = Path(scratch)
        source = wheel or source_wheel()
        detector, landmarks = read_source_models(source)
        staged = scratch_dir / BUILT_MODEL_NAME
        make_task_bundle(detector, landmarks, staged)
        verify_model(staged)
        partial = destination.with_name(f".{destination.name}.{os.getpid()}.partial")
        shutil.copyfile(staged, partial)
        os.replace(partial, destination)
    return destination
