"""The README's pictures of the web app: docs/images/ui-image.png, ui-video.png and ui-live.png.

``make screenshots`` (or ``.venv/bin/python docs/screenshots.py``) starts ``posepipe serve`` and
``posepipe ui``, drives headless Chromium (Debian's, with Playwright) through the three modes on
the sample media, and saves one screenshot of each. The local stack's ports are fixed: stop any
other ``posepipe serve`` first.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from posepipe.assets.model_build import build_model  # noqa: E402
from posepipe.assets.samples import sample_path  # noqa: E402
from posepipe.media.decode import read_frames  # noqa: E402

from tests.support.clips import encode_frames  # noqa: E402
from tests.support.uibrowser import (  # noqa: E402
    LiveStatus,
    camera_args,
    choose_mode,
    chromium,
    clip_frames,
    open_app,
    serve_ui,
    start_stream,
    write_camera_clip,
)
from tests.support.uistack import serve_stack  # noqa: E402

WIDTH, HEIGHT = 1280, 860
TALL = {"video": 1100, "live": 1280}  # the whole player; the live video, its status and monitor
VIDEO_FRAMES = (520, 620)  # 10 s of vtest.avi in which people walk near the camera


def image_mode(page: Any, out: Path) -> None:
    choose_mode(page, "Image")
    page.locator("[data-testid='stFileUploader'] input[type=file]").set_input_files(
        str(sample_path("messi5.jpg"))
    )
    page.locator("[data-testid='stMetric']", has_text="People").wait_for(timeout=120_000)
    page.locator("[data-testid='stExpander']", has_text="Performance").locator("summary").click()  # fold it
    picture = page.locator("[data-testid='stImage']", has_text="skeletons drawn")
    picture.scroll_into_view_if_needed()
    page.mouse.wheel(0, -120)  # the file's name above the picture
    time.sleep(1.0)
    page.screenshot(path=str(out))


def video_mode(page: Any, clip: Path, out: Path) -> None:
    choose_mode(page, "Video")
    page.locator("[data-testid='stFileUploader'] input[type=file]").set_input_files(str(clip))
    page.get_by_role("button", name="Upload and process").click()
    page.locator("[data-testid='stMetric']", has_text="Person-frames").wait_for(timeout=600_000)
    video = page.locator("video").first
    video.wait_for()
    video.evaluate(
        "v => new Promise(done => { v.addEventListener('seeked', done, {once: true}); v.currentTime = 1.5; })"
    )
    page.get_by_text("Persons per frame").scroll_into_view_if_needed()
    video.scroll_into_view_if_needed()
    page.mouse.move(WIDTH // 2, 300)
    page.mouse.wheel(0, -220)  # the job's figures above the player
    time.sleep(1.0)
    page.screenshot(path=str(out))


def live_mode(page: Any, out: Path) -> None:
    choose_mode(page, "Live")
    start_stream(page)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = LiveStatus.read(page)
        if status is not None and status.persons > 0 and status.skeleton_frames > 30 and status.fps > 0:
            break
        time.sleep(0.5)
    else:
        raise RuntimeError(f"no skeletons in the live video within 60 s: {LiveStatus.read(page)}")
    page.screenshot(path=str(out))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images", help="folder of the PNGs")
    parser.add_argument(
        "--modes", nargs="+", default=["image", "video", "live"], choices=["image", "video", "live"]
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    build_model()
    with tempfile.TemporaryDirectory(prefix="posepipe-screenshots-") as temp:
        work = Path(temp)
        vtest = sample_path("vtest.avi")
        camera = write_camera_clip(clip_frames(vtest), work / "camera.y4m")
        first, stop = VIDEO_FRAMES
        walk = encode_frames(work / "walk.mp4", [f.rgb for f in read_frames(vtest, first, stop)], fps=10)
        with (
            serve_stack(work / "serve.log") as stack,
            serve_ui(stack.api_url, work / "ui.log") as url,
            chromium(camera_args(camera)) as browser,
        ):
            for mode in args.modes:
                height = TALL.get(mode, HEIGHT)
                page = open_app(browser, url, width=WIDTH, height=height)
                out = args.out / f"ui-{mode}.png"
                if mode == "image":
                    image_mode(page, out)
                elif mode == "video":
                    video_mode(page, walk, out)
                else:
                    live_mode(page, out)
                page.context.close()
                print(f"{mode}: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
