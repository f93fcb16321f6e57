"""Building BlazePose bundles offline from the TFLite files that registry packages ship.

:func:`build_model` makes ``pose_landmarker_full.task`` (the bundle MediaPipe's Tasks API loads:
a zip of ``pose_detector.tflite`` and ``pose_landmarks_detector.tflite``) from the raw BlazePose
detector and BlazePose Full landmark models that the ``mediapipe==0.10.21`` wheel on PyPI
carries; :func:`build_bundle` makes any of the three (lite, full, heavy) from that detector and
landmark model bytes (lite and heavy come from the npm package ``@mediapipe/pose``, see
:mod:`posepipe.assets.catalogue`), adding the TFLite metadata that tells the Tasks image
pre-processing how to normalise pixels (an RGB image input, normalised with mean 0 and std 255
to [0, 1]) with the flatbuffer schema modules that the current ``mediapipe`` ships; then
MediaPipe must load the result
(:func:`posepipe.engines.base.verify_model`) before it is cached where
:mod:`posepipe.assets.pose_model` finds it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from posepipe.assets.pose_model import BUILT_MODEL_NAME, built_model_path, cache_dir
from posepipe.assets.verify import verify_model
from posepipe.errors import ModelError

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
    """The raw detector and Full landmark TFLite files from the wheel, checked against known hashes."""
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


def detector_with_metadata(detector: bytes) -> bytes:
    """BlazePose's detector as a bundle holds it: with the image-input metadata MediaPipe Tasks reads."""
    return embed_metadata(detector, image_input_metadata("pose_detector", output_tensor_names(detector)))


def make_task_bundle(detector: bytes, landmarks: bytes, destination: Path) -> None:
    """Write a ``.task`` bundle with metadata-carrying copies of the two models."""
    detector_with_meta = detector_with_metadata(detector)
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


def build_model(destination: Path | None = None, wheel: Path | None = None, force: bool = False) -> Path:
    """Build (or reuse) the cached ``pose_landmarker_full.task``; returns its path."""
    destination = destination or built_model_path()
    if destination.is_file() and not force:
        return destination
    detector, landmarks = read_source_models(wheel or source_wheel())
    return build_bundle(detector, landmarks, destination)


def build_bundle(detector: bytes, landmarks: bytes, destination: Path) -> Path:
    """Write a ``.task`` bundle of the two models at ``destination`` once MediaPipe has loaded and
    run it: whole or not at all."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="posepipe-model-") as scratch:
        staged = Path(scratch) / BUILT_MODEL_NAME
        make_task_bundle(detector, landmarks, staged)
        verify_model(staged)
        partial = destination.with_name(f".{destination.name}.{os.getpid()}.partial")
        shutil.copyfile(staged, partial)
        os.replace(partial, destination)
    return destination
