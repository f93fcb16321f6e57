"""The endpoint's model archive (``model.tar.gz``): packed deterministically from the real built
models with a manifest of their sha256, unpacked and verified, and refused, naming the file,
when a member is tampered with, extra, missing, unsafe or not a regular file."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest
from posepipe.assets import catalogue
from posepipe.assets.model_archive import (
    MANIFEST_NAME,
    ArchiveManifest,
    ModelArchiveError,
    pack_models,
    unpack_models,
    verify_unpacked,
)
from posepipe.assets.pose_model import file_sha256
from posepipe.cli.jobs import default_endpoint_models
from posepipe.engines.base import PoseEngineOptions
from posepipe.engines.topdown.models import topdown_models
from posepipe.errors import ModelError

from tests.support.cli import CliRun

ENDPOINT_MODELS = ["centernet", "movenet-lightning", "blazepose-full"]


@dataclass(frozen=True)
class Packed:
    """The endpoint's default models, packed once: the archive, its manifest and its members."""

    path: Path
    manifest: ArchiveManifest
    members: tuple[tuple[tarfile.TarInfo, bytes], ...]


@pytest.fixture(scope="module")
def packed(tmp_path_factory: pytest.TempPathFactory) -> Packed:
    for name in ENDPOINT_MODELS:
        catalogue.build(catalogue.model_spec(name))  # built already by `make model`: a no-op
    path = tmp_path_factory.mktemp("packed") / "model.tar.gz"
    manifest = pack_models(ENDPOINT_MODELS, path)
    with tarfile.open(path) as tar:
        members = tuple((member, tar.extractfile(member).read()) for member in tar)  # type: ignore[union-attr]
    return Packed(path, manifest, members)


Members = list[tuple[tarfile.TarInfo, bytes]]


def write_archive(path: Path, members: Iterable[tuple[tarfile.TarInfo, bytes]], *, gz: bool = False) -> Path:
    """``members`` as a tar archive at ``path`` (gzip, at its fastest level, with ``gz``)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for info, data in members:
            info = _copy(info)
            if info.isreg():
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    path.write_bytes(gzip.compress(raw.getvalue(), compresslevel=1) if gz else raw.getvalue())
    return path


def _copy(info: tarfile.TarInfo) -> tarfile.TarInfo:
    copy = tarfile.TarInfo(info.name)
    for field in ("size", "mtime", "mode", "uid", "gid", "uname", "gname", "type", "linkname"):
        setattr(copy, field, getattr(info, field))
    return copy


def entry(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    return info


def variant(
    packed: Packed, tmp_path: Path, change: Callable[[Members], Members], *, gz: bool = False
) -> Path:
    return write_archive(tmp_path / "variant.tar", change(list(packed.members)), gz=gz)


def files_under(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


# --- packing ------------------------------------------------------------------------------


def test_the_endpoints_default_models_are_the_topdown_engines() -> None:
    assert default_endpoint_models() == ENDPOINT_MODELS


def test_the_archive_holds_the_models_and_their_manifest(packed: Packed) -> None:
    specs = {name: catalogue.CATALOGUE[name] for name in ENDPOINT_MODELS}
    assert packed.manifest.names == tuple(sorted(ENDPOINT_MODELS))
    names = [info.name for info, _ in packed.members]
    assert names == sorted([MANIFEST_NAME, *(spec.file_name for spec in specs.values())])
    manifest = json.loads(dict((info.name, data) for info, data in packed.members)[MANIFEST_NAME])
    assert manifest == {
        "format": 1,
        "models": {
            name: {"file": spec.file_name, "sha256": spec.sha256, "bytes": spec.path.stat().st_size}
            for name, spec in specs.items()
        },
    }
    assert ArchiveManifest.from_json(json.dumps(manifest).encode(), "test") == packed.manifest
    for info, data in packed.members:
        assert (info.mtime, info.uid, info.gid, info.uname, info.gname) == (0, 0, 0, "", "")
        assert (info.mode, info.type) == (0o644, tarfile.REGTYPE)
        if info.name != MANIFEST_NAME:
            assert (
                hashlib.sha256(data).hexdigest()
                == packed.manifest.model(
                    next(name for name, spec in specs.items() if spec.file_name == info.name)
                ).sha256
            )
    header = packed.path.read_bytes()[:10]
    assert header[:4] == b"\x1f\x8b\x08\x00"  # gzip, no file name in the header
    assert header[4:8] == bytes(4)  # mtime 0


def test_packing_twice_gives_the_same_bytes(packed: Packed, tmp_path: Path) -> None:
    again = tmp_path / "elsewhere" / "other-name.tar.gz"
    manifest = pack_models([*reversed(ENDPOINT_MODELS), "centernet"], again)  # order, repeats: no matter
    assert manifest == packed.manifest
    assert again.read_bytes() == packed.path.read_bytes()
    assert [path.name for path in again.parent.iterdir()] == ["other-name.tar.gz"]  # no partial left


def test_unknown_or_no_models_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="unknown model 'bogus'"):
        pack_models(["bogus"], tmp_path / "model.tar.gz")
    with pytest.raises(ModelArchiveError, match="no models to pack"):
        pack_models([], tmp_path / "model.tar.gz")
    assert not list(tmp_path.iterdir())


def test_models_pack_prints_the_archives_sha256(cli: Callable[..., CliRun], tmp_path: Path) -> None:
    catalogue.build(catalogue.model_spec("blazepose-detector"))
    out = tmp_path / "model.tar.gz"
    run = cli("models", "pack", "-o", out, "--models", "blazepose-detector")
    assert run.returncode == 0, run.stderr
    assert run.stdout == f"{file_sha256(out)}  {out}\n"
    assert "packed blazepose-detector" in run.stderr
    pack_models(["blazepose-detector"], tmp_path / "here.tar.gz")
    assert out.read_bytes() == (tmp_path / "here.tar.gz").read_bytes()
    refused = cli("models", "pack", "-o", tmp_path / "x.tar.gz", "--models", "bogus")
    assert refused.returncode != 0
    assert "unknown model 'bogus'" in refused.stderr


# --- unpacking ----------------------------------------------------------------------------


def test_unpacking_verifies_and_serves_the_models(packed: Packed, tmp_path: Path) -> None:
    out = tmp_path / "model"
    manifest = unpack_models(packed.path, out)
    assert manifest == packed.manifest
    assert files_under(out) == sorted([MANIFEST_NAME, *(m.file for m in manifest.models)])
    files = manifest.files(out)
    for name in ENDPOINT_MODELS:
        assert files[name].read_bytes() == catalogue.CATALOGUE[name].path.read_bytes()
    assert verify_unpacked(out) == manifest
    # The top-down engine runs the unpacked files, not the cache's.
    options = PoseEngineOptions(model_path=Path("blazepose-full"), detector="centernet")
    models = topdown_models(options, model_files=files)
    assert {models.detector_path, models.second_opinion_path, models.finder_path} == set(files.values())


def test_a_tampered_file_is_refused_naming_it(packed: Packed, tmp_path: Path) -> None:
    def flip(members: Members) -> Members:
        changed = []
        for info, data in members:
            if info.name == "centernet.onnx":
                middle = len(data) // 2
                data = data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]
            changed.append((info, data))
        return changed

    archive = variant(packed, tmp_path, flip, gz=True)
    tampered = dict((info.name, data) for info, data in flip(list(packed.members)))["centernet.onnx"]
    expected = catalogue.CATALOGUE["centernet"].sha256
    out = tmp_path / "model"
    with pytest.raises(ModelArchiveError) as refused:
        unpack_models(archive, out)
    message = str(refused.value)
    assert "centernet.onnx" in message
    assert hashlib.sha256(tampered).hexdigest() in message
    assert expected in message
    assert files_under(out) == []  # nothing is left of a refused archive


def test_a_file_and_manifest_changed_together_are_not_the_catalogues(packed: Packed, tmp_path: Path) -> None:
    """A consistent archive whose model is not the catalogue's pinned build: refused unless
    ``pinned=False``."""
    replacement = b"not centernet"

    def swap(members: Members) -> Members:
        manifest = json.loads(dict((i.name, d) for i, d in members)[MANIFEST_NAME])
        manifest["models"]["centernet"].update(
            sha256=hashlib.sha256(replacement).hexdigest(), bytes=len(replacement)
        )
        changed = {"centernet.onnx": replacement, MANIFEST_NAME: json.dumps(manifest).encode()}
        return [(info, changed.get(info.name, data)) for info, data in members]

    archive = variant(packed, tmp_path, swap)
    with pytest.raises(ModelArchiveError, match=r"centernet\.onnx .*not the catalogue's pinned"):
        unpack_models(archive, tmp_path / "pinned")
    manifest = unpack_models(archive, tmp_path / "any", pinned=False)
    assert manifest.files(tmp_path / "any")["centernet"].read_bytes() == replacement


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: [*m, (entry("extra.onnx"), b"extra")], "extra.onnx not in manifest.json"),
        (
            lambda m: [(i, d) for i, d in m if i.name != "movenet-lightning.onnx"],
            r"movenet-lightning\.onnx \(model movenet-lightning\) is in manifest\.json, not here",
        ),
        (lambda m: [(i, d) for i, d in m if i.name != MANIFEST_NAME], "no manifest.json in the archive"),
        (lambda m: [*m, m[0]], "member centernet.onnx is in the archive twice"),
        (
            lambda m: [(i, b'{"format": 2}' if i.name == MANIFEST_NAME else d) for i, d in m],
            "manifest.json: format 2 is not 1",
        ),
    ],
    ids=["extra", "missing", "no-manifest", "twice", "format"],
)
def test_an_archive_that_is_not_its_manifest_is_refused(
    packed: Packed, tmp_path: Path, change: Callable[[Members], Members], message: str
) -> None:
    out = tmp_path / "model"
    with pytest.raises(ModelArchiveError, match=message):
        unpack_models(variant(packed, tmp_path, change), out)
    assert files_under(out) == []


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (entry("../evil.onnx"), "unsafe path"),
        (entry("models/../../evil.onnx"), "unsafe path"),
        (entry("/tmp/evil.onnx"), "unsafe path"),
        (entry("evil.onnx", tarfile.SYMTYPE, "/etc/passwd"), "is a link"),
        (entry("evil.onnx", tarfile.LNKTYPE, "centernet.onnx"), "is a link"),
        (entry("evil", tarfile.CHRTYPE), "device or other special file"),
        (entry("evil", tarfile.FIFOTYPE), "device or other special file"),
    ],
    ids=["dotdot", "nested-dotdot", "absolute", "symlink", "hardlink", "device", "fifo"],
)
def test_unsafe_members_are_refused(
    packed: Packed, tmp_path: Path, member: tarfile.TarInfo, message: str
) -> None:
    archive = variant(packed, tmp_path, lambda members: [(member, b"evil"), *members])
    out = tmp_path / "deep" / "model"
    with pytest.raises(ModelArchiveError, match=message):
        unpack_models(archive, out)
    assert files_under(tmp_path) == ["deep", "deep/model", "variant.tar"]


def test_a_tar_of_an_unpacked_folder_unpacks(packed: Packed, tmp_path: Path) -> None:
    """``tar -C folder -czf model.tar.gz .``: a ``./`` folder member, ``./`` before every name."""
    members = [(entry(".", tarfile.DIRTYPE), b"")] + [
        (_renamed(i, "./" + i.name), d) for i, d in packed.members
    ]
    archive = write_archive(tmp_path / "model.tar.gz", members, gz=True)
    assert unpack_models(archive, tmp_path / "model") == packed.manifest


def _renamed(info: tarfile.TarInfo, name: str) -> tarfile.TarInfo:
    copy = _copy(info)
    copy.name = name
    return copy


def test_not_a_tar_archive_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(gzip.compress(b"not a tar archive" * 100))
    with pytest.raises(ModelArchiveError, match="not a readable tar archive"):
        unpack_models(archive, tmp_path / "model")


# --- what SageMaker unpacked --------------------------------------------------------------


@pytest.fixture
def unpacked(packed: Packed, tmp_path: Path) -> Path:
    folder = tmp_path / "opt-ml-model"
    with tarfile.open(packed.path) as tar:
        tar.extractall(folder, filter="data")  # as SageMaker unpacks the archive, by itself
    return folder


def test_verify_unpacked_refuses_a_modified_file(unpacked: Path, packed: Packed) -> None:
    assert verify_unpacked(unpacked) == packed.manifest
    path = unpacked / "movenet-lightning.onnx"
    data = bytearray(path.read_bytes())
    data[100] ^= 0x01
    path.write_bytes(data)
    with pytest.raises(ModelArchiveError) as refused:
        verify_unpacked(unpacked)
    message = str(refused.value)
    assert "movenet-lightning.onnx" in message
    assert hashlib.sha256(data).hexdigest() in message
    assert catalogue.CATALOGUE["movenet-lightning"].sha256 in message


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda folder: (folder / "extra.onnx").write_bytes(b"extra"), "extra.onnx not in manifest.json"),
        (lambda folder: (folder / "centernet.onnx").unlink(), r"centernet\.onnx \(model centernet\) is in"),
        (lambda folder: (folder / "link.onnx").symlink_to(folder / "centernet.onnx"), "link.onnx is a link"),
        (lambda folder: (folder / MANIFEST_NAME).unlink(), "no manifest.json"),
        (
            lambda folder: (folder / "centernet.onnx").write_bytes(b"short"),
            r"centernet\.onnx \(model centernet\) has sha256 [0-9a-f]{64} \(5 bytes\)",
        ),
    ],
    ids=["extra", "missing", "symlink", "no-manifest", "truncated"],
)
def test_verify_unpacked_refuses_a_folder_that_is_not_its_manifest(
    unpacked: Path, change: Callable[[Path], object], message: str
) -> None:
    change(unpacked)
    with pytest.raises(ModelArchiveError, match=message):
        verify_unpacked(unpacked)
