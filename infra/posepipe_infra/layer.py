"""The ``posepipe`` Lambda layer, built from ``layers/`` at synth time without Docker.

The layer holds the ``posepipe`` package and the wheels the zip functions import (the names in
``layers/layer-packages.txt``, at the versions pinned in ``requirements.lock``), installed for
the Lambda runtime's Python and Amazon Linux 2023 (manylinux wheels only, nothing compiled). The
wheels are downloaded once into a cache (``$POSEPIPE_CACHE/lambda-wheels``), so later synths run
offline. boto3 is the runtime's own.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

from posepipe_infra.paths import REPO

LAYER_RUNTIME = lambda_.Runtime.PYTHON_3_13
LAYER_PYTHON = "3.13"
PACKAGE_LIST = REPO / "layers" / "layer-packages.txt"
LOCK_FILE = REPO / "requirements.lock"
PACKAGE_SOURCE = REPO / "layers" / "posepipe"
# manylinux tags Amazon Linux 2023 (glibc 2.34) runs, newest first.
PLATFORMS = (
    "manylinux_2_34_x86_64", "manylinux_2_28_x86_64", "manylinux_2_27_x86_64",
    "manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux1_x86_64",
)  # fmt: skip


def _normal(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def pinned(names: list[str], source: str) -> list[str]:
    """``name==version`` for each of ``names``, the version from ``requirements.lock``."""
    pins: dict[str, str] = {}
    for line in LOCK_FILE.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[_normal(name)] = f"{name}=={version}"
    missing = [name for name in names if _normal(name) not in pins]
    if missing:
        raise ValueError(f"{source}: not pinned in requirements.lock: {', '.join(missing)}")
    return [pins[_normal(name)] for name in names]


def layer_requirements() -> list[str]:
    """``name==version`` for each package of the layer, the version from ``requirements.lock``."""
    wanted = [line.split("#", 1)[0].strip() for line in PACKAGE_LIST.read_text().splitlines()]
    return pinned([name for name in wanted if name], PACKAGE_LIST.name)


def wheel_cache() -> Path:
    base = os.environ.get("POSEPIPE_CACHE") or str(Path.home() / ".cache" / "posepipe")
    return Path(base) / "lambda-wheels" / f"cp{LAYER_PYTHON.replace('.', '')}"


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def _target_args() -> list[str]:
    args = ["--only-binary=:all:", "--no-deps", "--implementation", "cp", "--python-version", LAYER_PYTHON]
    for platform in PLATFORMS:
        args += ["--platform", platform]
    return args


def install_wheels(requirements: list[str], target: Path) -> None:
    """Install ``requirements`` (``name==version``, no dependencies) into ``target`` as wheels for
    the Lambda runtime, from the wheel cache; what the cache lacks is downloaded into it once."""
    cache = wheel_cache()
    cache.mkdir(parents=True, exist_ok=True)
    offline = ["--no-index", "--find-links", str(cache)]
    install = ["install", "--quiet", *_target_args(), *offline, "--target", str(target), *requirements]
    installed = _pip(*install)
    if installed.returncode != 0:  # not all in the cache yet: fetch them once
        fetched = _pip("download", "--quiet", *_target_args(), "--dest", str(cache), *requirements)
        if fetched.returncode != 0:
            raise RuntimeError(f"could not download the layer's wheels: {fetched.stderr.strip()[-2000:]}")
        installed = _pip(*install)
        if installed.returncode != 0:
            raise RuntimeError(f"could not install the layer's wheels: {installed.stderr.strip()[-2000:]}")


# The parts of the package the zip functions never import: the local stack (moto), the web app
# (Streamlit), the endpoint server (Flask) and the torch engine (PyTorch); none of their
# dependencies is in the layer either.
LEFT_OUT = frozenset({"local_stack", "ui", "cloud/endpoint", "engines/torch"})


def in_layer(path: Path) -> bool:
    """Whether ``path`` (relative to the package) goes into the layer."""
    if "__pycache__" in path.parts or path.suffix == ".pyc":
        return False
    return not any(path.as_posix() == left or path.as_posix().startswith(left + "/") for left in LEFT_OUT)


def _ignored(folder: str, names: list[str]) -> set[str]:
    relative = Path(folder).relative_to(PACKAGE_SOURCE)
    return {name for name in names if not in_layer(relative / name)}


def install_layer(output: Path) -> None:
    """Build the layer's content under ``output`` (``python/...``, as Lambda mounts it at /opt)."""
    target = output / "python"
    install_wheels(layer_requirements(), target)
    shutil.copytree(PACKAGE_SOURCE, target / "posepipe", ignore=_ignored, dirs_exist_ok=True)
    for cached in target.rglob("__pycache__"):
        shutil.rmtree(cached, ignore_errors=True)


def layer_fingerprint() -> str:
    """What the layer is built from: the package's files, the package list and their pins."""
    digest = hashlib.sha256()
    digest.update(f"python{LAYER_PYTHON}\n".encode())
    for line in layer_requirements():
        digest.update(f"{line}\n".encode())
    for path in sorted(PACKAGE_SOURCE.rglob("*")):
        if path.is_file() and in_layer(path.relative_to(PACKAGE_SOURCE)):
            digest.update(str(path.relative_to(PACKAGE_SOURCE)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


@jsii.implements(ILocalBundling)
class LocalLayerBundling:
    """CDK's local bundling hook: builds the layer in this process, never in Docker."""

    def try_bundle(self, output_dir: str, options: BundlingOptions) -> bool:
        install_layer(Path(output_dir))
        return True


def layer_code() -> lambda_.Code:
    """The layer's asset: bundled locally; its hash is :func:`layer_fingerprint`."""
    return lambda_.Code.from_asset(
        str(REPO / "layers"),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=layer_fingerprint(),
        bundling=BundlingOptions(
            image=DockerImage.from_registry("public.ecr.aws/sam/build-python3.13"),  # never run
            # jsii calls try_bundle(output_dir, options) positionally, not as the stub declares.
            local=LocalLayerBundling(),  # type: ignore[arg-type]
        ),
    )
