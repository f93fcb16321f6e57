"""Sample media: found beside the repository, in $POSEPIPE_SAMPLES or the cache, or fetched from Debian."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from posepipe.assets import pose_model as models
from posepipe.assets import samples
from posepipe.assets.pose_model import file_sha256
from posepipe.assets.samples import (
    NO_SHARED_ENV,
    SAMPLES,
    SAMPLES_ENV,
    SampleError,
    fetch_all,
    sample_path,
    samples_cache_dir,
)

UNREACHABLE_URL = "http://127.0.0.1:9/{name}"  # the discard port: refused at once


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No $POSEPIPE_SAMPLES, no shared folder, an empty cache, a fake working directory, no GitHub."""
    monkeypatch.delenv(SAMPLES_ENV, raising=False)
    monkeypatch.setenv(NO_SHARED_ENV, "1")
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path / "cache"))
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    monkeypatch.setattr(samples, "OPENCV_URL", UNREACHABLE_URL)
    return tmp_path / "cache" / "samples"


@pytest.fixture
def shared_media(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checkout with ``shared/media`` beside it, as on the project's machines, built in tmp_path.

    The package's own location is moved into the fake checkout, so discovery is exercised the
    same whether or not this checkout really has a shared folder beside it.
    """
    media = tmp_path / "work" / "shared" / "media"
    media.mkdir(parents=True)
    for name in SAMPLES:
        shutil.copy(sample_path(name), media / name)
    module = tmp_path / "work" / "main" / "layers" / "posepipe" / "samples.py"
    module.parent.mkdir(parents=True)
    monkeypatch.setattr(samples, "__file__", str(module))
    monkeypatch.delenv(SAMPLES_ENV, raising=False)
    monkeypatch.delenv(NO_SHARED_ENV, raising=False)
    monkeypatch.chdir(tmp_path / "work" / "main")
    return media


def test_shared_folder_is_found_and_verified(shared_media: Path) -> None:
    assert shared_media.parts[-2:] == ("shared", "media")
    for name, sha256 in SAMPLES.items():
        path = sample_path(name)
        assert path == shared_media / name
        assert file_sha256(path) == sha256
    assert fetch_all() == {name: shared_media / name for name in SAMPLES}


def test_shared_folder_is_found_from_anywhere(
    shared_media: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # then only this module's own location leads to it
    assert sample_path("messi5.jpg") == shared_media / "messi5.jpg"


def test_shared_folder_beside_the_working_directory(
    shared_media: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "shared" / "media").mkdir(parents=True)
    shutil.copy(shared_media / "messi5.jpg", tmp_path / "shared" / "media")
    (tmp_path / "repo" / "tests").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "repo" / "tests")
    assert sample_path("messi5.jpg") == tmp_path / "shared" / "media" / "messi5.jpg"


def test_env_folder_comes_first_and_is_verified(
    shared_media: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(shared_media / "basketball1.png", tmp_path)
    monkeypatch.setenv(SAMPLES_ENV, str(tmp_path))
    assert sample_path("basketball1.png") == tmp_path / "basketball1.png"
    wrong = tmp_path / "messi5.jpg"
    wrong.write_bytes(b"not messi")
    with pytest.raises(SampleError, match="sha256 mismatch") as caught:
        sample_path("messi5.jpg")
    message = str(caught.value)
    assert str(wrong) in message
    assert SAMPLES["messi5.jpg"] in message
    assert file_sha256(wrong) in message


def test_unknown_sample() -> None:
    with pytest.raises(SampleError, match=re.escape("unknown sample 'nope.png'")):
        sample_path("nope.png")


def test_cache_shares_the_models_cache_base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path))
    assert samples_cache_dir() == tmp_path / "samples"
    assert samples_cache_dir().parent == models.cache_dir().parent
    monkeypatch.delenv(models.CACHE_ENV)
    assert samples_cache_dir().parent == models.cache_dir().parent


def test_every_place_is_named_when_all_fail(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(isolated.parent / "empty"))  # no apt-get here
    isolated.mkdir(parents=True)
    (isolated / "messi5.jpg").write_bytes(b"a stale, wrong file")
    with pytest.raises(SampleError) as caught:
        sample_path("messi5.jpg")
    message = str(caught.value)
    assert message.startswith("sample messi5.jpg not found and could not be fetched")
    assert NO_SHARED_ENV in message
    assert f"{isolated / 'messi5.jpg'} (sha256 " in message  # the wrong cached file is not used
    assert "Debian package opencv-doc (apt-get and dpkg-deb are needed" in message
    assert UNREACHABLE_URL.format(name="messi5.jpg") in message
    with pytest.raises(
        SampleError, match=re.escape("sample vtest.avi, messi5.jpg, basketball1.png, basketball2.png")
    ):
        fetch_all()


@pytest.mark.slow  # downloads opencv-doc from Debian's archive
def test_debian_package_fallback_really_fetches(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Downloads opencv-doc (about 96 MB; 1 to 2 s on a cloud machine near a Debian mirror).
    path = sample_path("messi5.jpg")
    assert path == isolated / "messi5.jpg"
    assert file_sha256(path) == SAMPLES["messi5.jpg"]
    # One download brought every sample, and nothing half-written is left behind.
    assert sorted(p.name for p in isolated.iterdir()) == sorted(SAMPLES)

    def no_download(names: list[str]) -> dict[str, Path]:
        raise AssertionError(f"downloaded again for {names}")

    monkeypatch.setattr(samples, "_fetch_debian", no_download)
    assert fetch_all() == {name: isolated / name for name in SAMPLES}
