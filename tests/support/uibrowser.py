"""Headless Chromium (Debian's ``chromium``, driven by Playwright) against ``posepipe ui``.

Shared by the browser tests (``tests/e2e/test_ui_browser.py``) and ``docs/screenshots.py``.
Playwright only drives the browser at :data:`CHROMIUM`: it never downloads one (``make browser``,
a prerequisite of ``make test``, installs Debian's package). The network may be closed, so
Chromium runs without its background services, and the camera is Chromium's fake device fed
from a Y4M clip of vtest.avi (:func:`write_camera_clip`).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import numpy.typing as npt
from posepipe.annotation.drawing import PALETTE
from posepipe.media.decode import read_frames

CHROMIUM = Path(os.environ.get("POSEPIPE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS: tuple[str, ...] = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)
# vtest.avi's stretch where a pedestrian walks near the camera, cropped around their path: a
# webcam-like 384x288 view in which a per-image detector (the cloud path) finds them nearly always.
CLIP_FIRST, CLIP_STOP = 526, 580
CLIP_CROP = (slice(288, 576), slice(96, 480))  # rows, columns
CLIP_FPS = 10
UI_START_TIMEOUT_S = 60.0
TIMEOUT_MS = 30_000  # every Playwright wait: a missing element fails the test, never hangs it

RGB = npt.NDArray[np.uint8]


def require_chromium() -> Path:
    """:data:`CHROMIUM`, checked to start; else an AssertionError that says how to install it."""
    if not CHROMIUM.is_file() or not os.access(CHROMIUM, os.X_OK):
        raise AssertionError(
            f"Debian's chromium is not installed at {CHROMIUM}: the browser tests drive it with Playwright. "
            "Install it with `make browser` (`make test` does so first), or set POSEPIPE_CHROMIUM."
        )
    try:
        version = subprocess.run(
            [str(CHROMIUM), "--headless", "--no-sandbox", "--version"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise AssertionError(f"{CHROMIUM} --version did not answer within 60 s") from None
    if version.returncode != 0:
        raise AssertionError(f"{CHROMIUM} does not start: {version.stderr.strip()[-500:]}")
    return CHROMIUM


def clip_frames(vtest: Path) -> list[RGB]:
    """The fake camera's frames (RGB, 384x288), as :func:`write_camera_clip` writes them."""
    rows, columns = CLIP_CROP
    return [np.ascontiguousarray(f.rgb[rows, columns]) for f in read_frames(vtest, CLIP_FIRST, CLIP_STOP)]


def write_camera_clip(frames: Sequence[RGB], path: Path, fps: int = CLIP_FPS) -> Path:
    """``frames`` as a Y4M file (YUV 4:2:0), what Chromium's fake camera plays (in a loop)."""
    with av.open(str(path), "w", format="yuv4mpegpipe") as container:
        stream: Any = container.add_stream("wrapped_avframe", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        for rgb in frames:
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def camera_args(clip: Path) -> list[str]:
    """Chromium's fake camera, playing ``clip``, allowed without asking."""
    return [
        # Host candidates as addresses, not mDNS names (a closed network may have no mDNS).
        "--disable-features=WebRtcHideLocalIpsWithMdns",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={clip}",
    ]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def serve_ui(api_url: str, log: Path, port: int | None = None) -> Iterator[str]:
    """``posepipe ui`` on a free port until the block ends; its URL once Streamlit answers.

    It runs in a process group of its own and is stopped as Ctrl-C stops it (SIGINT to the
    group: the ``posepipe`` command and Streamlit under it).
    """
    port = port or free_port()
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "posepipe.cli", "ui", "--port", str(port), "--api-url", api_url],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + UI_START_TIMEOUT_S
        while not _healthy(url):
            assert process.poll() is None, f"posepipe ui exited with {process.returncode}:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"posepipe ui did not answer in time:\n{log.read_text()}"
            time.sleep(0.3)
        yield url
    finally:
        _stop_group(process)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    for sig, wait_s in ((signal.SIGINT, 20.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


@contextmanager
def chromium(extra_args: Sequence[str] = ()) -> Iterator[Any]:
    """A headless Chromium (Playwright's ``Browser``) with a fresh, temporary profile."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright, another_chromium(playwright.chromium, extra_args) as browser:
        yield browser


@contextmanager
def another_chromium(browser_type: Any, extra_args: Sequence[str] = ()) -> Iterator[Any]:
    """One more headless Chromium from a running Playwright's ``BrowserType`` (``browser.browser_type``
    of one that :func:`chromium` gave: Playwright's sync API runs one Playwright at a time), with
    other arguments (another fake camera)."""
    browser = browser_type.launch(
        executable_path=str(require_chromium()),
        args=[*CHROMIUM_ARGS, *extra_args],
        headless=True,
        timeout=TIMEOUT_MS * 2,
    )
    try:
        yield browser
    finally:
        browser.close()


def open_app(browser: Any, url: str, *, width: int = 1280, height: int = 1000) -> Any:
    """A new page (its own context) on the app, once the sidebar is drawn."""
    context = browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(url)
    page.get_by_text("posepipe · Image").wait_for()
    return page


def choose_mode(page: Any, mode: str) -> None:
    page.locator("[data-testid='stSidebar']").get_by_text(mode, exact=True).click()
    page.get_by_text(f"posepipe · {mode}").wait_for()


def choose_live_source(page: Any, source: str) -> None:
    label = {"cloud": "Cloud (POST /images)", "local": "Local engine"}[source]
    page.locator("[data-testid='stSidebar']").get_by_text(label, exact=True).click()
    page.get_by_text(f"Source: {source}").wait_for()


def webrtc_frame(page: Any) -> Any:
    """The streamlit-webrtc component (an iframe)."""
    return page.frame_locator("iframe[title*='webrtc']")


def start_stream(page: Any) -> None:
    frame = webrtc_frame(page)
    frame.get_by_role("button", name="START").click()
    frame.get_by_role("button", name="STOP").wait_for()


def stream_stopped(page: Any) -> bool:
    """The component shows START again: its stream ended."""
    return bool(webrtc_frame(page).get_by_role("button", name="START").is_visible())


def stop_stream(page: Any) -> None:
    frame = webrtc_frame(page)
    frame.get_by_role("button", name="STOP").click()
    frame.get_by_role("button", name="START").wait_for()


@dataclass(frozen=True)
class LiveStatus:
    """The live page's status line, parsed."""

    source: str
    fps: float
    persons: int
    skeleton_frames: int
    answers: int
    latest_source: str

    _PATTERN = re.compile(
        r"Source: (?P<source>\w+) · (?P<fps>[\d.]+) fps rendered · persons: (?P<persons>\d+) · "
        r"skeletons drawn on (?P<skeletons>\d+) frames · answers: (?P<answers>\d+) \(\d+ stale\), "
        r"latest from (?P<latest>\w+)"
    )

    @classmethod
    def read(cls, page: Any) -> LiveStatus | None:
        found = cls._PATTERN.search(page.locator("[data-testid='stMain']").inner_text())
        if found is None:
            return None
        return cls(
            source=found["source"],
            fps=float(found["fps"]),
            persons=int(found["persons"]),
            skeleton_frames=int(found["skeletons"]),
            answers=int(found["answers"]),
            latest_source=found["latest"],
        )


def screenshot_rgb(locator: Any) -> RGB:
    """An element's screenshot as RGB."""
    return decode_rgb(locator.screenshot())


def decode_rgb(data: bytes) -> RGB:
    """An encoded picture (PNG, JPEG) as RGB."""
    bgr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError("not a picture OpenCV can decode")
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8)


_SKELETON_COLOURS = np.array(
    [c for color in PALETTE for c in (color, tuple((v + 255) // 2 for v in color))], dtype=np.int16
)


def skeleton_pixels(shown: RGB, originals: Sequence[RGB]) -> int:
    """Pixels of ``shown`` (a picture as the page shows it, any scale) that a skeleton covers.

    ``shown`` is scaled to the originals' size and compared with the closest of them: a pixel
    counts when it differs from it a lot (far beyond video or JPEG noise) and is close to one of
    the skeleton colours (the palette's and its dots' tints). Footage in those colours (a red
    shirt) does not count, since it is in the original too.
    """
    height, width = originals[0].shape[:2]
    scaled = cv2.resize(shown, (width, height), interpolation=cv2.INTER_AREA).astype(np.int16)
    reference = min(originals, key=lambda o: float(np.abs(scaled - o.astype(np.int16)).mean()))
    changed = np.abs(scaled - reference.astype(np.int16)).max(axis=2) > 70
    distance = np.abs(scaled[:, :, None, :] - _SKELETON_COLOURS[None, None, :, :]).sum(axis=3).min(axis=2)
    return int((changed & (distance < 120)).sum())
