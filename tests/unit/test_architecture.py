"""The package's layering, as `make lint` enforces it with import-linter (contracts in
pyproject.toml): every module is under a contract, and a broken contract fails the build."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import posepipe
import posepipe.cloud

from tests.support.paths import REPO

# The applications and adapters above the core, each under a contract of its own.
ABOVE_THE_CORE = {"posepipe.cloud", "posepipe.local_stack", "posepipe.ui", "posepipe.cli"}
# What no core module may bring in, directly or through anything it imports.
NOT_IN_THE_CORE = {"boto3", "botocore", "aws_lambda_powertools", "moto", "streamlit", "streamlit_webrtc"}


def contracts() -> dict[str, dict[str, Any]]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {contract["name"]: contract for contract in config["contracts"]}


def contract_sources(fragment: str) -> set[str]:
    (contract,) = [c for name, c in contracts().items() if fragment in name]
    return set(contract["source_modules"])


def children(package: Any) -> set[str]:
    return {f"{package.__name__}.{info.name}" for info in pkgutil.iter_modules(package.__path__)}


def test_every_module_of_the_core_is_held_to_the_core_contract() -> None:
    assert contract_sources("The core knows nothing") == children(posepipe) - ABOVE_THE_CORE


def test_the_aws_adapters_contract_holds_the_whole_cloud_package() -> None:
    assert contract_sources("The AWS adapters") == {"posepipe.cloud"}
    assert "posepipe.local_stack" not in children(posepipe.cloud)


def test_every_part_of_the_package_has_its_place_in_the_layers() -> None:
    (layers,) = [c for c in contracts().values() if c["type"] == "layers"]
    named = {part.strip() for layer in layers["layers"] for part in layer.split("|")}
    assert named == children(posepipe)


def test_no_core_module_brings_in_aws_moto_or_streamlit() -> None:
    """Every module of the core imported in one fresh interpreter: none of them (nor anything
    they import) loads boto3, botocore, powertools, moto or Streamlit. One interpreter for all:
    if their union loads none of these, no single one of them does."""
    core = sorted(children(posepipe) - ABOVE_THE_CORE)
    code = (
        "import importlib, pkgutil, sys\n"
        f"core = {core!r}\n"
        "names = []\n"
        "for name in core:\n"
        "    module = importlib.import_module(name)\n"
        "    names.append(name)\n"
        "    if hasattr(module, '__path__'):\n"
        "        for info in pkgutil.walk_packages(module.__path__, name + '.'):\n"
        "            importlib.import_module(info.name)\n"
        "            names.append(info.name)\n"
        "print(len(names))\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({sorted(NOT_IN_THE_CORE)!r})))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=False)
    assert run.returncode == 0, run.stderr
    imported, found = run.stdout.split("\n")[:2]
    assert int(imported) > 40  # every module of media, assets, engines, video... was imported
    assert found == "[]"


def run_import_linter(config: Path) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).with_name("lint-imports")), "--no-logo", "--no-cache", str(config)]
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=120, check=False)


def test_the_contracts_hold() -> None:
    checked = run_import_linter(REPO / "pyproject.toml")
    assert checked.returncode == 0, checked.stdout
    assert f"Contracts: {len(contracts())} kept, 0 broken." in checked.stdout


def test_a_broken_contract_fails_the_check(tmp_path: Path) -> None:
    """A contract the code breaks (the MediaPipe engine does read the model's info) exits 1."""
    config = tmp_path / "broken.toml"
    config.write_text(
        '[tool.importlinter]\nroot_package = "posepipe"\n\n'
        "[[tool.importlinter.contracts]]\n"
        'name = "engine without models"\ntype = "forbidden"\n'
        'source_modules = ["posepipe.engines.mediapipe"]\n'
        'forbidden_modules = ["posepipe.assets.pose_model"]\n'
    )
    checked = run_import_linter(config)
    assert checked.returncode == 1, checked.stdout
    assert "engine without models BROKEN" in checked.stdout
    assert "posepipe.engines.mediapipe -> posepipe.assets.pose_model" in checked.stdout
