"""The pose model asset: where it is (``--model``, ``POSEPIPE_MODEL``, the cache), what it is,
and the one bundle of a model archive (SageMaker's ``model.tar.gz``).

MediaPipe's Tasks API loads a ``.task`` bundle: a zip holding ``pose_detector.tflite`` and
``pose_landmarks_detector.tflite``. Google serves official bundles (lite, full, heavy) from its
own storage; any of them can be used with ``--model`` or ``POSEPIPE_MODEL``. Where those cannot
be downloaded, :func:`posepipe.assets.model_build.build_model` makes ``pose_landmarker_full.task``
offline into the cache this module finds it in.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

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
