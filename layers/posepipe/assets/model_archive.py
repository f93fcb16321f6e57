"""The SageMaker endpoint's model data: one ``model.tar.gz`` of catalogue models and their manifest.

SageMaker takes a model's files as one gzip tar archive (the model's ``ModelDataUrl``, the
deployment's ``modelUri``) and unpacks it into ``/opt/ml/model``. :func:`pack_models` writes such
an archive from the models cache: each model's built file (checked against the catalogue's pinned
sha256) at the top of the archive, beside ``manifest.json``::

    {"format": 1,
     "models": {"centernet": {"file": "centernet.onnx", "sha256": "148a...", "bytes": 8119642}, ...}}

The archive is deterministic: members sorted by name, mtime 0, uid/gid 0, no owner names, mode
0o644, and a gzip header with mtime 0 and no file name, so the same models give the same bytes
(with the same zlib) wherever and whenever they are packed.

:func:`unpack_models` extracts such an archive and checks it: no unsafe member (an absolute path,
``..``, a link, a device), the manifest's files exactly the archive's files, and every file's
size and sha256 the manifest's. :func:`verify_unpacked` makes the same checks of a folder that
something else unpacked (SageMaker, into ``/opt/ml/model``). Either returns the
:class:`ArchiveManifest`, whose :meth:`~ArchiveManifest.files` maps model names to the unpacked
files (what :func:`posepipe.engines.topdown.models.topdown_models` takes as ``model_files``).
Every refusal is a :class:`ModelArchiveError` naming the archive or folder, the file and what was
expected.

Standard library only, plus the catalogue: no AWS here (the endpoint and the functions fetch).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import shutil
import stat
import tarfile
import tempfile
import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from posepipe.assets.catalogue import CATALOGUE, model_spec
from posepipe.errors import ModelError

MANIFEST_NAME = "manifest.json"
"""The manifest's member name, at the top of the archive (and of the unpacked folder)."""
FORMAT = 1
"""The manifest's ``format``: what :func:`unpack_models` and :func:`verify_unpacked` read."""
MAX_ARCHIVE_BYTES = 1 << 30
"""The most an archive may unpack to (every model of the catalogue is about 160 MB)."""
MAX_MEMBERS = 1000
"""The most members an archive may have."""
COMPRESS_LEVEL = 6
"""gzip's level (its command's default): the models' float weights hardly compress at any level,
and level 9 takes three times as long."""
_MAX_MANIFEST_BYTES = 1 << 20
_SHA256 = re.compile(r"[0-9a-f]{64}")
_BLOCK = 1 << 20


class ModelArchiveError(ModelError, ValueError):
    """A model archive (or unpacked folder) that is not what its manifest says, or not safe to
    unpack: the message names the archive or folder, the file, and the expected and actual sums."""


@dataclass(frozen=True)
class ArchivedModel:
    """One model of an archive: its catalogue ``name``, its ``file`` (a relative POSIX path in
    the archive), and that file's ``sha256`` (hex) and ``size`` in bytes (``bytes`` in JSON)."""

    name: str
    file: str
    sha256: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "sha256": self.sha256, "bytes": self.size}


@dataclass(frozen=True)
class ArchiveManifest:
    """What a model archive holds: its models, sorted by name (``manifest.json`` as an object)."""

    models: tuple[ArchivedModel, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """The models' catalogue names, sorted."""
        return tuple(model.name for model in self.models)

    def model(self, name: str) -> ArchivedModel:
        """The archive's model ``name``; :class:`KeyError` when it holds none by that name."""
        for model in self.models:
            if model.name == name:
                return model
        raise KeyError(name)

    def files(self, directory: Path) -> dict[str, Path]:
        """Model name -> its file, in the folder ``directory`` the archive was unpacked into."""
        return {model.name: directory / model.file for model in self.models}

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "models": {model.name: model.to_dict() for model in self.models}}

    def to_json(self) -> bytes:
        """``manifest.json``'s bytes: sorted keys, two-space indent, a final newline."""
        return (json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes, source: str) -> ArchiveManifest:
        """The manifest of ``data`` (``manifest.json``'s bytes), checked: format 1, every model
        with a safe relative ``file`` (no two the same, none ``manifest.json``), a lowercase hex
        ``sha256`` and a whole ``bytes``; :class:`ModelArchiveError` naming ``source`` otherwise."""
        where = f"{source}: {MANIFEST_NAME}"
        try:
            document = json.loads(data)
        except (UnicodeDecodeError, ValueError) as exc:
            raise ModelArchiveError(f"{where} is not JSON ({exc})") from None
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            found = document.get("format") if isinstance(document, dict) else type(document).__name__
            raise ModelArchiveError(f"{where}: format {found!r} is not {FORMAT}")
        entries = document.get("models")
        if not isinstance(entries, dict) or not entries:
            raise ModelArchiveError(f"{where}: 'models' is not an object of one model or more")
        models: list[ArchivedModel] = []
        seen: dict[str, str] = {}
        for name, entry in sorted(entries.items()):
            if not isinstance(entry, dict):
                raise ModelArchiveError(f"{where}: model {name!r} is not an object")
            file, sha256, size = entry.get("file"), entry.get("sha256"), entry.get("bytes")
            if not isinstance(file, str) or safe_member_path(file) != file or file == MANIFEST_NAME:
                raise ModelArchiveError(f"{where}: model {name!r} has an unsafe or invalid file {file!r}")
            if file in seen:
                raise ModelArchiveError(f"{where}: models {seen[file]!r} and {name!r} are both {file}")
            if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
                raise ModelArchiveError(f"{where}: model {name!r} has no sha256 (64 lowercase hex digits)")
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise ModelArchiveError(f"{where}: model {name!r} has no size ('bytes', a whole number)")
            seen[file] = name
            models.append(ArchivedModel(name=name, file=file, sha256=sha256, size=size))
        return cls(models=tuple(models))


def safe_member_path(name: str) -> str | None:
    """``name`` (an archive member's) as a normalized relative POSIX path, with any leading
    ``./`` dropped: ``""`` for the archive's top folder itself; None when it is unsafe to write
    (absolute, with a ``..`` component, a backslash or a NUL)."""
    if "\\" in name or "\0" in name:
        return None
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts:
        return None
    return "/".join(part for part in path.parts if part != ".")


# --- packing --------------------------------------------------------------------------------


def pack_models(names: Sequence[str], destination: Path) -> ArchiveManifest:
    """Write the catalogue models ``names`` (their built files, from the models cache) and their
    manifest as the gzip tar archive ``destination``, deterministically; returns the manifest.

    Each file is checked against the catalogue's pinned sha256 as it is read, and the archive is
    written whole or not at all. :class:`~posepipe.errors.ModelError` for an unknown or unbuilt
    model (run ``posepipe models build``); :class:`ModelArchiveError` for no models, or a file
    that is not its pinned build or changed while it was packed.
    """
    specs = [model_spec(name) for name in dict.fromkeys(names)]
    if not specs:
        raise ModelArchiveError(f"{destination}: no models to pack")
    by_file: dict[str, str] = {}
    for spec in specs:
        if spec.file_name == MANIFEST_NAME or spec.file_name in by_file:
            raise ModelArchiveError(f"{destination}: model {spec.name}'s file {spec.file_name} is taken")
        by_file[spec.file_name] = spec.name
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(f".{destination.name}.{os.getpid()}.partial")
    try:
        with ExitStack() as stack:
            handles: dict[str, IO[bytes]] = {}
            models: list[ArchivedModel] = []
            for spec in specs:
                path = spec.built_path()  # the pinned build, or what to run to get it
                handle = stack.enter_context(path.open("rb"))
                sha256, size = _digest(handle)
                if sha256 != spec.sha256:  # rebuilt since built_path() checked it
                    raise ModelArchiveError(
                        f"{path}: sha256 {sha256} is not model {spec.name}'s ({spec.sha256})"
                    )
                handles[spec.file_name] = handle
                models.append(ArchivedModel(spec.name, spec.file_name, sha256, size))
            manifest = ArchiveManifest(models=tuple(sorted(models, key=lambda model: model.name)))
            with partial.open("wb") as raw:
                _write_archive(raw, manifest, handles)
        os.replace(partial, destination)
    finally:
        partial.unlink(missing_ok=True)
    return manifest


def _write_archive(raw: IO[bytes], manifest: ArchiveManifest, handles: Mapping[str, IO[bytes]]) -> None:
    """Write the deterministic gzip tar of ``manifest`` and the open model files ``handles``
    (archive file name -> handle) to ``raw``."""
    # The gzip header gets no file name and mtime 0: tarfile's "w:gz" would write both.
    with (
        gzip.GzipFile(
            filename="", mode="wb", compresslevel=COMPRESS_LEVEL, fileobj=raw, mtime=0
        ) as compressed,
        tarfile.open(fileobj=compressed, mode="w", format=tarfile.USTAR_FORMAT) as tar,
    ):
        manifest_bytes = manifest.to_json()
        by_file = {model.file: model for model in manifest.models}
        for member in sorted([MANIFEST_NAME, *by_file]):
            if member == MANIFEST_NAME:
                tar.addfile(_member_info(member, len(manifest_bytes)), io.BytesIO(manifest_bytes))
                continue
            model = by_file[member]
            handle = handles[member]
            handle.seek(0)
            reader = _HashingReader(handle)
            tar.addfile(_member_info(member, model.size), reader)
            if reader.digest.hexdigest() != model.sha256 or reader.count != model.size:
                raise ModelArchiveError(f"{member}: model {model.name}'s file changed while it was packed")


def _member_info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info


class _HashingReader(io.RawIOBase):
    """A read-only stream over ``source`` that hashes (sha256) and counts what is read of it."""

    def __init__(self, source: IO[bytes]) -> None:
        super().__init__()
        self._source = source
        self.digest = hashlib.sha256()
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        self.digest.update(data)
        self.count += len(data)
        return data


def _digest(stream: IO[bytes]) -> tuple[str, int]:
    """The sha256 (hex) and length of what is left to read of ``stream``."""
    digest = hashlib.sha256()
    size = 0
    for block in iter(lambda: stream.read(_BLOCK), b""):
        digest.update(block)
        size += len(block)
    return digest.hexdigest(), size


# --- unpacking and verifying ----------------------------------------------------------------


def unpack_models(
    archive: Path, destination: Path, *, max_bytes: int = MAX_ARCHIVE_BYTES, pinned: bool = True
) -> ArchiveManifest:
    """Extract the model archive ``archive`` (gzip tar or plain tar) into the folder
    ``destination`` and check it; returns its manifest (see :meth:`ArchiveManifest.files`).

    Refused with :class:`ModelArchiveError`, leaving nothing in ``destination``: not a readable
    tar; a member with an unsafe path (absolute, ``..``), a link, a device or other special file,
    or twice in the archive; more than :data:`MAX_MEMBERS` members or ``max_bytes`` unpacked; no
    ``manifest.json`` or an invalid one; a file the manifest does not name, or a manifest file
    the archive lacks; a file whose size or sha256 is not the manifest's. With ``pinned`` (the
    default) every model must also be a catalogue model with the catalogue's pinned sha256.
    Directory members are allowed, and a leading ``./`` (``tar -C folder -czf x.tar.gz .``).
    """
    label = str(archive)
    destination.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=destination))
    try:
        manifest_bytes, found = _extract(archive, label, staging, max_bytes)
        if manifest_bytes is None:
            raise ModelArchiveError(f"{label}: no {MANIFEST_NAME} in the archive")
        manifest = ArchiveManifest.from_json(manifest_bytes, label)
        _check_files(label, manifest, found, pinned)
        (staging / MANIFEST_NAME).write_bytes(manifest_bytes)
        for relative in [*found, MANIFEST_NAME]:
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / relative, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def _extract(
    archive: Path, label: str, staging: Path, max_bytes: int
) -> tuple[bytes | None, dict[str, tuple[str, int]]]:
    """Write every regular file of ``archive`` but the manifest under ``staging`` in one pass,
    checking each member; the manifest's bytes (None if absent) and file -> (sha256, size)."""
    manifest_bytes: bytes | None = None
    found: dict[str, tuple[str, int]] = {}
    seen: set[str] = set()
    total = 0
    try:
        with tarfile.open(archive, mode="r|*") as tar:
            for count, member in enumerate(_members(tar), start=1):
                if count > MAX_MEMBERS:
                    raise ModelArchiveError(f"{label}: more than {MAX_MEMBERS} members; not a model archive")
                name = _checked_name(label, member)
                if member.isdir():
                    continue
                if name in seen:
                    raise ModelArchiveError(f"{label}: member {name} is in the archive twice")
                seen.add(name)
                total += member.size
                if total > max_bytes:
                    raise ModelArchiveError(f"{label}: unpacks to over {max_bytes} bytes")
                stream = tar.extractfile(member)
                if stream is None:  # pragma: no cover (a regular file always has a stream)
                    raise ModelArchiveError(f"{label}: member {name} cannot be read")
                with stream:
                    if name == MANIFEST_NAME:
                        if member.size > _MAX_MANIFEST_BYTES:
                            raise ModelArchiveError(
                                f"{label}: {MANIFEST_NAME} is over {_MAX_MANIFEST_BYTES} bytes"
                            )
                        manifest_bytes = stream.read()
                        continue
                    target = staging / name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with target.open("xb") as out:
                        found[name] = _copy(stream, out)
    except ModelArchiveError:
        raise
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise ModelArchiveError(f"{label}: not a readable tar archive ({exc})") from exc
    return manifest_bytes, found


def _members(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    while (member := tar.next()) is not None:
        yield member


def _checked_name(label: str, member: tarfile.TarInfo) -> str:
    """``member``'s safe relative path; :class:`ModelArchiveError` for an unsafe path, a link or
    a special file (anything but a regular file or a directory)."""
    name = safe_member_path(member.name)
    if name is None:
        raise ModelArchiveError(f"{label}: member {member.name!r} has an unsafe path (absolute or with '..')")
    if member.issym() or member.islnk():
        raise ModelArchiveError(f"{label}: member {member.name!r} is a link, not a file")
    if not (member.isreg() or member.isdir()):
        raise ModelArchiveError(f"{label}: member {member.name!r} is a device or other special file")
    if member.isdir() or name:
        return name
    raise ModelArchiveError(f"{label}: member {member.name!r} is a file with no name")


def _copy(stream: IO[bytes], out: IO[bytes]) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    for block in iter(lambda: stream.read(_BLOCK), b""):
        digest.update(block)
        size += len(block)
        out.write(block)
    return digest.hexdigest(), size


def _check_files(
    label: str, manifest: ArchiveManifest, found: Mapping[str, tuple[str, int]], pinned: bool
) -> None:
    """The manifest's files exactly ``found`` (file -> actual sha256 and size), each with the
    manifest's sum and size (and, with ``pinned``, the catalogue's)."""
    listed = {model.file: model for model in manifest.models}
    extra = sorted(set(found) - set(listed))
    if extra:
        raise ModelArchiveError(f"{label}: {', '.join(extra)} not in {MANIFEST_NAME}")
    for model in manifest.models:
        if model.file not in found:
            raise ModelArchiveError(
                f"{label}: {model.file} (model {model.name}) is in {MANIFEST_NAME}, not here"
            )
        sha256, size = found[model.file]
        if (sha256, size) != (model.sha256, model.size):
            raise ModelArchiveError(
                f"{label}: {model.file} (model {model.name}) has sha256 {sha256} ({size} bytes); "
                f"{MANIFEST_NAME} says sha256 {model.sha256} ({model.size} bytes)"
            )
    if pinned:
        _check_pinned(label, manifest)


def _check_pinned(label: str, manifest: ArchiveManifest) -> None:
    for model in manifest.models:
        spec = CATALOGUE.get(model.name)
        if spec is None:
            raise ModelArchiveError(
                f"{label}: model {model.name!r} is not in the catalogue ({', '.join(CATALOGUE)})"
            )
        if model.sha256 != spec.sha256:
            raise ModelArchiveError(
                f"{label}: {model.file} (model {model.name}) has sha256 {model.sha256}, "
                f"not the catalogue's pinned {spec.sha256}"
            )


def verify_unpacked(directory: Path, *, pinned: bool = True) -> ArchiveManifest:
    """Check the folder ``directory``, a model archive unpacked by something else (SageMaker
    unpacks ``model.tar.gz`` into ``/opt/ml/model``), against its ``manifest.json``; returns the
    manifest. The same checks as :func:`unpack_models`: the manifest's files exactly the folder's
    files (no links, no special files), each with the manifest's size and sha256 (and, with
    ``pinned``, the catalogue's); :class:`ModelArchiveError` otherwise."""
    label = str(directory)
    manifest_path = directory / MANIFEST_NAME
    if manifest_path.is_symlink() or not manifest_path.is_file():
        raise ModelArchiveError(f"{label}: no {MANIFEST_NAME} (a regular file) in the folder")
    if manifest_path.stat().st_size > _MAX_MANIFEST_BYTES:
        raise ModelArchiveError(f"{label}: {MANIFEST_NAME} is over {_MAX_MANIFEST_BYTES} bytes")
    manifest = ArchiveManifest.from_json(manifest_path.read_bytes(), label)
    listed = {model.file for model in manifest.models}
    found: dict[str, tuple[str, int]] = {}
    for root, folders, names in os.walk(directory):
        for name in sorted([*folders, *names]):
            path = Path(root) / name
            relative = path.relative_to(directory).as_posix()
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                raise ModelArchiveError(f"{label}: {relative} is a link, not a file")
            if stat.S_ISDIR(mode) or relative == MANIFEST_NAME:
                continue
            if not stat.S_ISREG(mode):
                raise ModelArchiveError(f"{label}: {relative} is a device or other special file")
            if relative in listed:
                with path.open("rb") as handle:
                    found[relative] = _digest(handle)
            else:
                found[relative] = ("", 0)  # refused as not in the manifest
    _check_files(label, manifest, found, pinned)
    return manifest
