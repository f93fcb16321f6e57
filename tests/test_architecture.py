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

REPO = Path(__file__).resolve().parents[1]
# The applications and adapters above the core, each under a contract of its own.
ABOVE_THE_CORE = {"posepipe.cloud", "posepipe.ui", "posepipe.cli"}


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


def test_every_aws_adapter_is_held_to_the_adapters_contract() -> None:
    adapters = children(posepipe.cloud) - {"posepipe.cloud.local"}
    assert contract_sources("The AWS adapters") == adapters


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
        'source_modules = ["posepipe.engine"]\nforbidden_modules = ["posepipe.models"]\n'
    )
    checked = run_import_linter(config)
    assert checked.returncode == 1, checked.stdout
    assert "engine without models BROKEN" in checked.stdout
    assert "posepipe.engine -> posepipe.models" in checked.stdout
