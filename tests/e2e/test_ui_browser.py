"""The web app in a real browser: headless Chromium (Debian's, driven by Playwright) on
``posepipe ui``, against ``posepipe serve``.

Image mode uploads messi5.jpg; live mode streams Chromium's fake camera, fed from a clip of
vtest.avi (or from basketball1.png, two players, for the local engine), over WebRTC to the app,
which draws skeletons into the video it sends back. What the
page reports (persons, skeletons drawn, FPS) is checked, and so are the pictures themselves:
screenshots must carry skeleton-coloured pixels that the originals do not have. Screenshots are
kept under ``test-artifacts/``. Without Chromium at /usr/bin/chromium the tests fail, saying how
to install it (``make test`` installs it first).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support.clips import pad_mp4
from tests.support.paths import REPO
from tests.support.uibrowser import (
    CLIP_FPS,
    RGB,
    LiveStatus,
    another_chromium,
    camera_args,
    choose_live_source,
    choose_mode,
    chromium,
    clip_frames,
    decode_rgb,
    open_app,
    screenshot_rgb,
    serve_ui,
    skeleton_pixels,
    start_stream,
    stop_stream,
    stream_stopped,
    webrtc_frame,
    write_camera_clip,
)
from tests.support.uistack import PEOPLE_CLIP_FRAMES, StackProcess, write_people_clip

pytestmark = pytest.mark.browser

ARTIFACTS = REPO / "test-artifacts"
LIVE_WITHIN_S = 30.0
PLAYERS_DRAWN_WITHIN_S = 15.0
MIN_PLAYER_PIXELS = 1500  # skeleton pixels on each half of basketball1.png (drawn: some 4000-7000)
MAX_RESTARTS = 2


@pytest.fixture(scope="module")
def camera(tmp_path_factory: pytest.TempPathFactory, sample: Callable[[str], Path]) -> tuple[Path, list[RGB]]:
    """The fake camera's clip (5.4 s of vtest.avi, 384x288, 10 fps, Y4M) and its frames."""
    frames = clip_frames(sample("vtest.avi"))
    return write_camera_clip(frames, tmp_path_factory.mktemp("camera") / "vtest.y4m"), frames


@pytest.fixture(scope="module")
def app_url(local_stack: StackProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve_ui(local_stack.api_url, tmp_path_factory.mktemp("ui") / "ui.log") as url:
        yield url


@pytest.fixture(scope="module")
def browser(camera: tuple[Path, list[RGB]]) -> Iterator[Any]:
    with chromium(camera_args(camera[0])) as launched:
        yield launched


# What each page printed to its console (the webrtc component's iframe included), for failures.
CONSOLE: dict[int, list[str]] = {}


@contextmanager
def _app_page(browser: Any, app_url: str) -> Iterator[Any]:
    """A page on the app, its console kept in :data:`CONSOLE` while it is open."""
    page = open_app(browser, app_url)
    lines = CONSOLE.setdefault(id(page), [])
    page.on("console", lambda message: lines.append(f"{message.type}: {message.text}"))
    try:
        yield page
    finally:
        CONSOLE.pop(id(page), None)
        page.context.close()


@pytest.fixture
def page(browser: Any, app_url: str) -> Iterator[Any]:
    with _app_page(browser, app_url) as opened:
        yield opened


def _save(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))


def test_image_mode_shows_one_person_and_the_annotated_photo(
    page: Any, sample: Callable[[str], Path]
) -> None:
    photo = sample("messi5.jpg")
    page.locator("[data-testid='stFileUploader'] input[type=file]").set_input_files(str(photo))
    people = page.locator("[data-testid='stMetric']", has_text="People")
    people.wait_for()
    assert people.locator("[data-testid='stMetricValue']").inner_text().strip() == "1"
    image = page.locator("[data-testid='stImage']", has_text="skeletons drawn").locator("img")
    image.wait_for()
    assert image.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [548, 342]
    page.locator("[data-testid='stMain']").get_by_text("person 0 (").wait_for()  # its legend
    # The skeleton is really drawn over the photo: pixels in its colours that messi5.jpg lacks.
    original = decode_rgb(photo.read_bytes())
    image.scroll_into_view_if_needed()
    drawn = skeleton_pixels(screenshot_rgb(image), [original])
    assert drawn > 300, drawn
    _save(page, "ui-image.png")


def test_video_mode_uploads_a_video_over_100_mb_in_parts_with_a_progress_bar(
    page: Any, tmp_path: Path, sample: Callable[[str], Path]
) -> None:
    """The web app's video mode on a 150 MB file (the people clip and a ``free`` box): POST
    /videos answers a multipart upload, the app sends its 3 parts (the progress bar says so) and
    the job runs to its annotated video."""
    clip = write_people_clip(tmp_path, sample("vtest.avi"))
    big = pad_mp4(clip, tmp_path / "long-walk.mp4", 150_000_000)
    choose_mode(page, "Video")
    page.locator("[data-testid='stFileUploader'] input[type=file]").set_input_files(str(big))
    page.get_by_role("button", name="Upload and process").click(timeout=120_000)
    uploaded = page.get_by_text("Uploaded long-walk.mp4 (150.0 MB, 3 parts): job ")
    uploaded.wait_for(timeout=180_000)
    job = uploaded.inner_text().rsplit("job ", 1)[1].strip()
    assert job.endswith("-long-walk.mp4"), job
    page.locator("[data-testid='stMain']").get_by_text(f"Job {job}", exact=True).wait_for(timeout=300_000)
    frames = page.locator("[data-testid='stMetric']", has_text="Frames").first
    assert frames.locator("[data-testid='stMetricValue']").inner_text().strip() == str(PEOPLE_CLIP_FRAMES)
    page.locator("video").first.wait_for(timeout=60_000)  # the annotated video, whole
    _save(page, "ui-video-multipart.png")


def _wait_for_skeletons(
    page: Any, source: str, since: LiveStatus | None = None, *, persons: int | None = None
) -> LiveStatus:
    """Until the page reports frames rendered with skeletons from ``source`` (more than ``since``),
    of ``persons`` persons when given."""
    deadline = time.monotonic() + LIVE_WITHIN_S
    status = LiveStatus.read(page)
    restarts = 0
    while time.monotonic() < deadline:
        if since is None and restarts < MAX_RESTARTS and stream_stopped(page):
            # streamlit-webrtc's page ends the stream on the first ICE "disconnected", a state
            # Chromium enters for a moment when the machine is busy; a user presses START again.
            restarts += 1
            start_stream(page)
        status = LiveStatus.read(page)
        if (
            status is not None
            and status.source == source
            and status.latest_source == source
            and status.persons > 0
            and (persons is None or status.persons == persons)
            and status.skeleton_frames > (since.skeleton_frames if since else 0)
            and status.answers > (since.answers if since else 0)
        ):
            return status
        time.sleep(0.5)
    _save(page, f"ui-live-{source}-failed.png")
    wanted = "" if persons is None else f" of {persons} persons"
    raise AssertionError(
        f"no skeleton{wanted} from {source} within {LIVE_WITHIN_S} s; the page says: {status} "
        f"(screenshot: {ARTIFACTS / f'ui-live-{source}-failed.png'}); the browser's console ended: "
        + " | ".join(CONSOLE.get(id(page), [])[-15:])
    )


def _video_skeleton_pixels(page: Any, frames: list[RGB], tries: int = 20) -> int:
    """The most skeleton pixels seen in screenshots of the video the app sends back."""
    video = webrtc_frame(page).locator("video")
    most = 0
    for _ in range(tries):
        most = max(most, skeleton_pixels(screenshot_rgb(video), frames))
        if most > 150:
            break
        time.sleep(0.2)
    return most


@pytest.mark.parametrize("source", ["cloud", "local"])
def test_live_mode_draws_skeletons_over_the_camera(
    page: Any, camera: tuple[Path, list[RGB]], source: str
) -> None:
    frames = camera[1]
    choose_mode(page, "Live")
    if source == "local":
        choose_live_source(page, "local")
    start_stream(page)
    status = _wait_for_skeletons(page, source)  # frames rendered and answered, with skeletons
    drawn = _video_skeleton_pixels(page, frames)
    assert drawn > 150, f"the video shows no skeleton ({drawn} skeleton pixels); the page says {status}"
    metric = page.locator("[data-testid='stMetric']", has_text="Rendered FPS")
    float(metric.locator("[data-testid='stMetricValue']").inner_text())  # the monitor shows a number
    _save(page, f"ui-live-{source}.png")

    # Switched while the stream runs: the next frames go to the other source, with no restart.
    other = "local" if source == "cloud" else "cloud"
    choose_live_source(page, other)
    switched = _wait_for_skeletons(page, other, since=status)
    assert webrtc_frame(page).get_by_role("button", name="STOP").is_visible()  # never stopped
    assert _video_skeleton_pixels(page, frames) > 150, (
        f"no skeleton in the video after the switch: {switched}"
    )
    stop_stream(page)


@pytest.fixture(scope="module")
def players_camera(
    tmp_path_factory: pytest.TempPathFactory, sample: Callable[[str], Path]
) -> tuple[Path, RGB]:
    """A fake camera that shows basketball1.png (640x480: two players), still, and the picture."""
    still = decode_rgb(sample("basketball1.png").read_bytes())
    clip = write_camera_clip([still] * CLIP_FPS, tmp_path_factory.mktemp("players") / "basketball1.y4m")
    return clip, still


def test_live_local_finds_both_basketball_players(
    browser: Any, app_url: str, players_camera: tuple[Path, RGB]
) -> None:
    """The local source runs the engine ``posepipe video`` runs (the top-down engine, tracking):
    the page reports both players, and one video frame sent back shows a skeleton on each side,
    on each player (without skeletons each half counts some 200-600 such pixels, video noise)."""
    clip, still = players_camera
    width = still.shape[1]
    halves = (slice(0, width // 2), slice(width // 2, width))
    with (
        another_chromium(browser.browser_type, camera_args(clip)) as players,
        _app_page(players, app_url) as page,
    ):
        choose_mode(page, "Live")
        choose_live_source(page, "local")
        start_stream(page)
        status = _wait_for_skeletons(page, "local", persons=2)
        video = webrtc_frame(page).locator("video")
        best = (0, 0)
        deadline = time.monotonic() + PLAYERS_DRAWN_WITHIN_S
        while min(best) <= MIN_PLAYER_PIXELS and time.monotonic() < deadline:
            # The page's screenshot, judged by the video in it: what is kept is what was judged.
            png = page.screenshot()
            box = video.bounding_box()
            assert box is not None, "the video is not shown"
            top, left = round(box["y"]), round(box["x"])
            shown = decode_rgb(png)[top : top + round(box["height"]), left : left + round(box["width"])]
            scale = shown.shape[1] / width
            left_pixels, right_pixels = (
                skeleton_pixels(shown[:, round(c.start * scale) : round(c.stop * scale)], [still[:, c]])
                for c in halves
            )
            sides = (left_pixels, right_pixels)
            best = max(best, sides, key=min)
            if min(sides) > MIN_PLAYER_PIXELS:
                ARTIFACTS.mkdir(exist_ok=True)
                (ARTIFACTS / "ui-live-local-players.png").write_bytes(png)
            time.sleep(0.2)
        assert min(best) > MIN_PLAYER_PIXELS, (
            f"no video frame with a skeleton on each player: (left, right) skeleton pixels {best}; {status}"
        )
        assert (LiveStatus.read(page) or status).persons == 2, "both players, still found"
        stop_stream(page)
