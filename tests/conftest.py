"""Shared fixtures: the real model, the real sample media, and one run of the real pipeline.

Fixtures only; the helpers they use live in ``tests/support``. Two fixtures are defined beside
the helpers they belong to and registered here as plugins: ``default_app`` (the CDK app,
synthesized once) and ``local_stack`` (the session's ``posepipe serve``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.cli import CliRun, VideoRun, load_run, run_cli

pytest_plugins = ["tests.support.cdkapp", "tests.support.uistack"]

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def model_path() -> Path:
    """The built model (``make test`` builds it first; built here if missing)."""
    from posepipe.assets.model_build import build_model

    return build_model()


@pytest.fixture(scope="session")
def catalogue_models() -> dict[str, Path]:
    """Every model of the catalogue, built (``make test`` builds them first; built here if missing)."""
    from posepipe.assets import catalogue

    for spec in catalogue.CATALOGUE.values():
        catalogue.build(spec)
    return {name: spec.built_path() for name, spec in catalogue.CATALOGUE.items()}


@pytest.fixture(scope="session")
def sample() -> Callable[[str], Path]:
    """``sample("vtest.avi")``: the verified path of a sample file."""
    from posepipe.assets.samples import sample_path

    return sample_path


@pytest.fixture(scope="session")
def cli() -> Callable[..., CliRun]:
    return run_cli


@pytest.fixture(scope="session")
def vtest_default(
    tmp_path_factory: pytest.TempPathFactory, sample: Callable[[str], Path], model_path: Path
) -> VideoRun:
    """``posepipe video vtest.avi`` with every default (annotated, chunked, one worker per core)."""
    out = tmp_path_factory.mktemp("vtest-default")
    run = run_cli("video", sample("vtest.avi"), "-o", out)
    assert run.returncode == 0, run.stderr
    return load_run(out / "vtest")


@pytest.fixture(scope="session")
def vtest_one_chunk(
    tmp_path_factory: pytest.TempPathFactory, sample: Callable[[str], Path], model_path: Path
) -> VideoRun:
    """The whole of vtest.avi as one chunk: the reference chunked runs are compared with."""
    out = tmp_path_factory.mktemp("vtest-one-chunk")
    run = run_cli(
        "video", sample("vtest.avi"), "-o", out, "--workers", "1", "--chunk-frames", "100000", "--no-annotate"
    )
    assert run.returncode == 0, run.stderr
    return load_run(out / "vtest")


@pytest.fixture(scope="session")
def vtest_single_subject(
    tmp_path_factory: pytest.TempPathFactory, sample: Callable[[str], Path], model_path: Path
) -> VideoRun:
    """vtest.avi through BlazePose's own single-subject path (``--detector blazepose``, which the
    cloud pipeline still runs), as one chunk."""
    out = tmp_path_factory.mktemp("vtest-single-subject")
    run = run_cli(
        "video", sample("vtest.avi"), "-o", out, "--detector", "blazepose", "--workers", "1",
        "--chunk-frames", "100000", "--no-annotate",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    return load_run(out / "vtest")


# Fixtures that make a test need the local stack or PyTorch, however deep in its fixtures.
NEEDS = {"local_stack": "stack", "one_torch_thread": "torch"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark what a test needs by the fixtures it uses (modules mark the rest themselves)."""
    for item in items:
        for fixture, marker in NEEDS.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(marker)
