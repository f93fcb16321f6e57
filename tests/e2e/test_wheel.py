"""``posepipe serve`` from a wheel (``pip wheel .``) installed in a fresh virtual environment outside
the checkout: the handlers, the endpoint and the state machine come from the installed package.

The new environment gets the wheel alone (``--no-deps``); its dependencies are this environment's
(a ``.pth`` file), as pip would install them from requirements.lock. The stack listens on
127.0.0.2 so that it can run beside the session's own stack on 127.0.0.1.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest

from tests.support.paths import REPO
from tests.support.uistack import PEOPLE_CLIP_FRAMES, STACK_ENV, serve_stack, write_people_clip

pytestmark = [pytest.mark.slow, pytest.mark.stack]

HOST = "127.0.0.2"
API = f"http://{HOST}:3000"
S3 = f"http://{HOST}:4566"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``posepipe`` command of a fresh venv holding only the wheel built from this checkout."""
    root = tmp_path_factory.mktemp("wheel")
    wheels = root / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--quiet", "--wheel-dir", str(wheels)],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    (wheel,) = wheels.glob("posepipe-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    (Path(purelib) / "posepipe-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--quiet", str(wheel)],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr
    where = subprocess.run(
        [str(python), "-c", "import posepipe; print(posepipe.__file__)"],
        capture_output=True, text=True, check=True, cwd=root,
    ).stdout.strip()  # fmt: skip
    assert Path(where).is_relative_to(venv), where  # the wheel's package, not the checkout's
    return venv / "bin" / "posepipe"


@pytest.fixture(scope="module")
def wheel_stack(installed: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``posepipe serve --host 127.0.0.2`` run from the wheel, in a folder outside the checkout
    (the environment without PYTHONPATH: nothing of the checkout on the path)."""
    folder = tmp_path_factory.mktemp("outside")
    env = {**STACK_ENV, "PYTHONPATH": ""}
    with serve_stack(folder / "serve.log", env, command=[str(installed)], host=HOST, cwd=folder) as stack:
        yield stack.log


def test_post_images_answers_from_the_installed_package(
    wheel_stack: Path, sample: Callable[[str], Path]
) -> None:
    request = urllib.request.Request(
        f"{API}/images", data=sample("messi5.jpg").read_bytes(), headers={"Content-Type": "image/jpeg"}
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        result = json.load(response)
    assert result["schema"] == "posepipe.pose/2"
    assert len(result["frames"][0]["persons"]) == 1


def test_a_video_goes_through_the_whole_pipeline(
    wheel_stack: Path, sample: Callable[[str], Path], tmp_path: Path
) -> None:
    """Upload to the input bucket; the state machine, the endpoint and the aggregate write the
    outputs: all from the installed wheel."""
    s3 = boto3.client(
        "s3", endpoint_url=S3, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    key = f"videos/wheel-{uuid.uuid4().hex[:8]}.mp4"
    s3.upload_file(str(write_people_clip(tmp_path, sample("vtest.avi"))), "posepipe-input", key)
    summary_key = f"{key}/summary.json"
    deadline = time.monotonic() + 300
    while True:
        listed = s3.list_objects_v2(Bucket="posepipe-output", Prefix=f"{key}/")
        names = {item["Key"] for item in listed.get("Contents", [])}
        if summary_key in names:
            break
        assert time.monotonic() < deadline, (names, wheel_stack.read_text()[-3000:])
        time.sleep(1)
    assert {f"{key}/keypoints.json", f"{key}/annotated.mp4"} <= names
    summary = json.loads(s3.get_object(Bucket="posepipe-output", Key=summary_key)["Body"].read())
    assert summary["frames"] == PEOPLE_CLIP_FRAMES
    assert summary["person_frames"] > 0
