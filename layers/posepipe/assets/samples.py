"""The sample media that the tests, the demo and the benchmark use, found or fetched and always verified.

Four files of OpenCV's own sample data (see ``shared/media/SOURCES.md``). :func:`sample_path`
looks in order in

1. ``$POSEPIPE_SAMPLES/<name>``, when that variable is set;
2. a ``shared/media`` folder beside the repository: ``<ancestor>/shared/media`` or
   ``<ancestor>/../shared/media`` for every ancestor of the working directory and of this module
   (skipped when ``$POSEPIPE_NO_SHARED_MEDIA`` is set to a non-empty value other than ``0``);
3. the cache, ``<cache>/samples/<name>``, where ``<cache>`` is ``$POSEPIPE_CACHE`` or
   ``~/.cache/posepipe`` as for the models;

and when none has it, fetches it into the cache: from Debian's ``opencv-doc`` package
(``apt-get download``, then only the sample files are unpacked from the package's data archive),
else from the OpenCV repository on GitHub. Every file's sha256 is checked, wherever it was found.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from posepipe.assets.pose_model import cache_base, file_sha256
from posepipe.errors import PosepipeError
from posepipe.outputs import write_files_atomically

SAMPLES: dict[str, str] = {
    "vtest.avi": "45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf",
    "messi5.jpg": "1d570e49654e84c7a943918537bd9e5e1ef82920152e147c834006e235be97c9",
    "basketball1.png": "ba06f6701f7260998b430c39b6557f775497e6ce7b1a74f0b7ea6af371bf54a6",
    "basketball2.png": "b3047772e0dc6c9d83c26f64894ca1a897f799f855c5574ac24b2ef934c2978e",
}
SAMPLES_ENV = "POSEPIPE_SAMPLES"
NO_SHARED_ENV = "POSEPIPE_NO_SHARED_MEDIA"
DEBIAN_PACKAGE = "opencv-doc"
DEBIAN_DATA_DIR = "usr/share/doc/opencv-doc/examples/data"
OPENCV_URL = "https://raw.githubusercontent.com/opencv/opencv/4.x/samples/data/{name}"
URL_TIMEOUT_S = 20.0
APT_TIMEOUT_S = 900.0


class SampleError(PosepipeError, RuntimeError):
    """A sample file that cannot be found, fetched or verified."""

    code = "samples"


def samples_cache_dir() -> Path:
    """``<cache>/samples``, beside the models (:func:`posepipe.assets.pose_model.cache_base`)."""
    return cache_base() / "samples"


def shared_media_dirs() -> list[Path]:
    """Existing ``shared/media`` folders near the working directory or this module, nearest first."""
    if _shared_disabled():
        return []
    found: list[Path] = []
    starts = [Path(__file__).resolve().parent]
    with contextlib.suppress(OSError):  # the working directory may have been removed
        starts.insert(0, Path.cwd())
    for start in starts:
        for ancestor in (start, *start.parents):
            for candidate in (ancestor / "shared" / "media", ancestor.parent / "shared" / "media"):
                resolved = candidate.resolve()
                if resolved.is_dir() and resolved not in found:
                    found.append(resolved)
    return found


def sample_path(name: str) -> Path:
    """The verified path of sample ``name``, fetching it into the cache when no folder has it.

    Raises :class:`SampleError` for an unknown name, a file whose sha256 is wrong (outside the
    cache: a wrong cached file is fetched again), or when every place fails; the message lists them.
    """
    tried: list[str] = []
    found = _find(name, tried)
    if found is not None:
        return found
    fetched, failures = _fetch([name])
    if name in fetched:
        return fetched[name]
    raise _not_found([name], tried + failures)


def fetch_all() -> dict[str, Path]:
    """Every sample's verified path, fetching those that are missing (one download for all)."""
    tried: list[str] = []
    paths = {name: _find(name, tried) for name in SAMPLES}
    missing = [name for name, path in paths.items() if path is None]
    if missing:
        fetched, failures = _fetch(missing)
        paths.update(fetched)
        if any(paths[name] is None for name in missing):
            raise _not_found([name for name in missing if paths[name] is None], tried + failures)
    return {name: path for name, path in paths.items() if path is not None}


def _find(name: str, tried: list[str]) -> Path | None:
    """The verified file from the folders and the cache, or None (what was tried goes to ``tried``)."""
    expected = _expected_sha256(name)
    env = os.environ.get(SAMPLES_ENV)
    if env:
        candidate = Path(env).expanduser() / name
        if candidate.is_file():
            return _verified(candidate, name, expected)
        tried.append(f"{candidate} (${SAMPLES_ENV}: not there)")
    shared = shared_media_dirs()
    for folder in shared:
        candidate = folder / name
        if candidate.is_file():
            return _verified(candidate, name, expected)
        tried.append(f"{candidate} (not there)")
    if not shared:
        why = f"${NO_SHARED_ENV} is set" if _shared_disabled() else "no such folder"
        tried.append(f"shared/media beside the repository for {name} ({why})")
    cached = samples_cache_dir() / name
    if not cached.is_file():
        tried.append(f"{cached} (not cached yet)")
        return None
    actual = file_sha256(cached)
    if actual == expected:
        return cached
    tried.append(f"{cached} (sha256 {actual}, expected {expected}: fetching again)")
    return None


def _not_found(names: list[str], tried: list[str]) -> SampleError:
    places = "\n  ".join(tried)
    return SampleError(f"sample {', '.join(names)} not found and could not be fetched; tried:\n  {places}")


def _shared_disabled() -> bool:
    return os.environ.get(NO_SHARED_ENV, "") not in ("", "0")


def _expected_sha256(name: str) -> str:
    try:
        return SAMPLES[name]
    except KeyError:
        raise SampleError(f"unknown sample {name!r} (known: {', '.join(SAMPLES)})") from None


def _verified(path: Path, name: str, expected: str) -> Path:
    actual = file_sha256(path)
    if actual != expected:
        raise SampleError(f"{path}: sha256 mismatch for sample {name}: expected {expected}, got {actual}")
    return path


def _fetch(names: list[str]) -> tuple[dict[str, Path], list[str]]:
    """Fetch ``names`` into the cache; returns the verified paths and one line per failed attempt."""
    fetched: dict[str, Path] = {}
    failures: list[str] = []
    try:
        fetched.update(_fetch_debian(names))
    except SampleError as exc:
        failures.append(f"Debian package {DEBIAN_PACKAGE} ({exc})")
    network_down: str | None = None
    for name in names:
        if name in fetched:
            continue
        url = OPENCV_URL.format(name=name)
        if network_down is not None:
            failures.append(f"{url} (skipped: {network_down})")
            continue
        try:
            fetched[name] = _fetch_url(name, url)
        except urllib.error.HTTPError as exc:
            failures.append(f"{url} (HTTP {exc.code})")
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            network_down = str(getattr(exc, "reason", exc))
            failures.append(f"{url} ({network_down})")
        except SampleError as exc:
            failures.append(f"{url} ({exc})")
    return fetched, failures


def _fetch_debian(names: list[str]) -> dict[str, Path]:
    """Download ``opencv-doc`` with apt and unpack the samples (all that verify) into the cache.

    Only the sample files are unpacked: ``dpkg-deb --fsys-tarfile`` streams the package's data
    archive, which is read until every sample has been seen (they come early in it).
    """
    apt, dpkg_deb = shutil.which("apt-get"), shutil.which("dpkg-deb")
    if apt is None or dpkg_deb is None:
        raise SampleError("apt-get and dpkg-deb are needed (Debian or Ubuntu)")
    with tempfile.TemporaryDirectory(prefix="posepipe-deb-") as work:
        try:
            done = subprocess.run(
                [apt, "download", DEBIAN_PACKAGE],
                cwd=work,
                capture_output=True,
                text=True,
                timeout=APT_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SampleError(f"apt-get download failed: {exc}") from None
        debs = sorted(Path(work).glob("*.deb"))
        if done.returncode != 0 or not debs:
            lines = [line for line in done.stderr.splitlines() if line.startswith("E:")] or [
                done.stderr.strip() or f"exit status {done.returncode}"
            ]
            hint = " (run apt-get update?)" if "Unable to locate" in done.stderr else ""
            raise SampleError(f"apt-get download {DEBIAN_PACKAGE} failed: {lines[-1]}{hint}")
        contents = _extract_members(dpkg_deb, debs[0], set(SAMPLES))
    fetched: dict[str, Path] = {}
    mismatched: list[str] = []
    for name, data in contents.items():
        actual = hashlib.sha256(data).hexdigest()
        if actual != SAMPLES[name]:
            mismatched.append(f"{name} has sha256 {actual}, expected {SAMPLES[name]}")
            continue
        fetched[name] = _write_atomic(samples_cache_dir() / name, data)
    missing = [name for name in names if name not in fetched]
    if missing:
        absent = [name for name in missing if name not in contents]
        problems = mismatched + ([f"{', '.join(absent)} not in {debs[0].name}"] if absent else [])
        raise SampleError("; ".join(problems))
    return fetched


def _extract_members(dpkg_deb: str, deb: Path, names: set[str]) -> dict[str, bytes]:
    """The sample files in a .deb (gunzipped when packed as ``<name>.gz``), by sample name."""
    wanted = {f"{DEBIAN_DATA_DIR}/{name}": name for name in names}
    wanted |= {f"{path}.gz": name for path, name in wanted.items()}
    found: dict[str, bytes] = {}
    # dpkg-deb's messages go to a file: killing it once the samples are read makes it complain.
    with (
        tempfile.TemporaryFile() as errors,
        subprocess.Popen(
            [dpkg_deb, "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE, stderr=errors
        ) as proc,
    ):
        assert proc.stdout is not None
        try:
            with tarfile.open(fileobj=proc.stdout, mode="r|") as archive:
                for member in archive:
                    name = wanted.get(member.name.removeprefix("./"))
                    if name is None or not member.isfile():
                        continue
                    handle = archive.extractfile(member)
                    if handle is None:
                        continue
                    data = handle.read()
                    found[name] = gzip.decompress(data) if member.name.endswith(".gz") else data
                    if len(found) == len(names):
                        break
        except tarfile.TarError as exc:
            errors.seek(0)
            detail = errors.read().decode(errors="replace").strip() or str(exc)
            raise SampleError(f"cannot read {deb.name}: {detail}") from None
        finally:
            if proc.poll() is None:
                proc.kill()  # the rest of the archive is not needed
    return found


def _fetch_url(name: str, url: str) -> Path:
    with urllib.request.urlopen(url, timeout=URL_TIMEOUT_S) as response:
        data: bytes = response.read()
    actual = hashlib.sha256(data).hexdigest()
    if actual != SAMPLES[name]:
        raise SampleError(f"downloaded sha256 {actual}, expected {SAMPLES[name]}")
    return _write_atomic(samples_cache_dir() / name, data)


def _write_atomic(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` whole or not at all."""
    try:
        write_files_atomically({path: data})
    except OSError as exc:
        raise SampleError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path
