"""The Streamlit app (posepipe/ui/app.py) in Streamlit's AppTest, against a real ``posepipe serve``."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from pathlib import Path

import posepipe.ui
import pytest
from posepipe.analysis.angles import ANGLE_NAMES
from posepipe.ui.client import ApiClient
from posepipe.ui.monitor import PerfMonitor
from posepipe.ui.settings import DEFAULT_API_URL, ENV_API_URL, UiSettings
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import DownloadButton

from tests.support.uistack import PEOPLE_CLIP_FRAMES, StackProcess, write_people_clip

APP = str(Path(posepipe.ui.__file__ or "").parent / "app.py")
DEAD_URL = "http://127.0.0.1:3999"  # nothing listens there
STACK_DOWN = f"Nothing answers at {DEAD_URL}: start the local stack with `posepipe serve`"


def app_at(monkeypatch: pytest.MonkeyPatch, api_url: str) -> AppTest:
    """The app as ``posepipe ui --api-url api_url`` starts it, after its first run."""
    monkeypatch.setenv(ENV_API_URL, api_url)
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture
def app(local_stack: StackProcess, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    return app_at(monkeypatch, local_stack.api_url)


def metrics(at: AppTest) -> dict[str, str]:
    return {metric.label: metric.value for metric in at.metric}


class LivePageStandIn:
    """In place of ``posepipe.ui.live`` (streamlit-webrtc needs a real Streamlit server, which
    AppTest does not have; the browser tests run the real one): records what the app passes."""

    def __init__(self) -> None:
        self.calls: list[tuple[ApiClient, UiSettings, PerfMonitor]] = []

    def render_live_mode(self, client: ApiClient, settings: UiSettings, monitor: PerfMonitor) -> None:
        import streamlit as st

        self.calls.append((client, settings, monitor))
        st.markdown("the live page")


def test_the_modes_switch(app: AppTest, monkeypatch: pytest.MonkeyPatch) -> None:
    live = LivePageStandIn()
    module = types.ModuleType("posepipe.ui.live")
    module.render_live_mode = live.render_live_mode  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "posepipe.ui.live", module)

    assert app.title[0].value == "posepipe · Image"
    assert [u.label for u in app.file_uploader] == ["Photos (each one goes through POST /images)"]
    assert app.file_uploader[0].accept_multiple_files
    assert not app.error

    app.radio(key="mode").set_value("Video").run()
    assert app.title[0].value == "posepipe · Video"
    assert [u.label for u in app.file_uploader] == [
        "A video (uploaded to the pipeline through POST /videos: a presigned PUT, in parts over 100 MB)"
    ]
    assert not app.exception
    with pytest.raises(KeyError):
        app.radio(key="live_source")  # the live options appear in the live mode only

    app.radio(key="mode").set_value("Live").run()
    assert app.title[0].value == "posepipe · Live"
    assert app.radio(key="live_source").value == "cloud"
    assert not app.exception, [e.value for e in app.exception]
    assert "the live page" in [m.value for m in app.markdown]
    app.radio(key="live_source").set_value("local").run()
    app.slider(key="max_poses").set_value(2).run()
    (client, first, monitor), (_, second, same_monitor), (_, third, _) = live.calls
    assert client.base_url == first.api_url == DEFAULT_API_URL
    assert (first.live_source, second.live_source, third.max_poses) == ("cloud", "local", 2)
    assert monitor is same_monitor  # one monitor per session, kept across reruns

    app.radio(key="mode").set_value("Image").run()
    assert app.title[0].value == "posepipe · Image"


@pytest.mark.parametrize("mode", ["Image", "Video"])
def test_a_stack_that_is_down_is_a_readable_message(monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    at = app_at(monkeypatch, DEAD_URL)
    at.radio(key="mode").set_value(mode).run()
    assert [e.value for e in at.error] == [STACK_DOWN]
    assert [c.value for c in at.code] == ["posepipe serve"]
    assert not at.file_uploader  # nothing to upload to
    assert not at.exception


def test_an_api_url_without_a_scheme_is_a_readable_message(monkeypatch: pytest.MonkeyPatch) -> None:
    at = app_at(monkeypatch, DEAD_URL)
    at.text_input(key="api_url").set_value("localhost:3000").run()
    assert [e.value for e in at.error] == [
        "The API URL must start with http:// or https://, not 'localhost:3000'."
    ]
    assert not at.exception


def test_photos_through_the_stack_show_the_person_angles_and_a_refusal(
    app: AppTest, sample: Callable[[str], Path]
) -> None:
    photos = [
        ("messi5.jpg", sample("messi5.jpg").read_bytes(), "image/jpeg"),
        ("notes.jpg", b"Not a picture: a shopping list.\n", "image/jpeg"),
    ]
    app.file_uploader(key="image_files").set_value(photos).run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.subheader[0].value == "messi5.jpg"
    assert metrics(app)["People"] == "1"
    (picture,) = app.image  # the photo with the skeleton drawn from the API's keypoints
    assert picture.captions == ["messi5.jpg: skeletons drawn from the API's keypoints"]
    (refusal,) = app.error
    assert refusal.value.startswith("The API refused notes.jpg (422 bad_image): ")

    tables = [frame.value for frame in app.dataframe]
    (angles,) = [table for table in tables if "angle" in table.columns]
    assert list(angles["angle"]) == [name.replace("_", " ") for name in ANGLE_NAMES]
    found = angles["3D (°)"].dropna()
    assert len(found) >= 8  # Messi is in full view
    assert found.between(-180, 180).all()
    (landmarks,) = [table for table in tables if "landmark" in table.columns]
    assert len(landmarks) == 33
    assert [button.label for button in app.get("download_button") if isinstance(button, DownloadButton)] == [
        "Download keypoints (JSON)"
    ]

    monitor = metrics(app)
    assert (monitor["Frames sent"], monitor["Frames rendered"]) == ("2", "1")
    (stages,) = [table for table in tables if "stage" in table.columns]
    assert list(stages["stage"]) == ["encode", "network", "inference", "draw", "total"]
    assert stages.set_index("stage").loc["inference", "p50 (ms)"] > 0  # the server said how long

    app.run()  # a rerun shows the same answers without asking the API again
    assert metrics(app)["Frames sent"] == "2"
    assert metrics(app)["People"] == "1"


def test_a_video_through_the_stack_shows_the_annotated_video_and_the_charts(
    app: AppTest, sample: Callable[[str], Path], tmp_path: Path
) -> None:
    clip = write_people_clip(tmp_path, sample("vtest.avi"))
    app.radio(key="mode").set_value("Video").run()
    app.file_uploader(key="video_file").set_value((clip.name, clip.read_bytes(), "video/mp4")).run()
    app.button(key="process_video").click().run(timeout=180)
    assert not app.exception, [e.value for e in app.exception]
    assert not app.error, [e.value for e in app.error]
    shown = metrics(app)
    assert shown["Frames"] == str(PEOPLE_CLIP_FRAMES)
    assert int(shown["Person-frames"]) > 0
    assert int(shown["People (ids)"]) >= 1
    assert len(app.get("video")) == 1
    assert [button.label for button in app.get("download_button") if isinstance(button, DownloadButton)] == [
        "Download keypoints (JSON)",
        "Download annotated video (MP4)",
        "Download motion analysis (ZIP)",
    ]
    charts = app.get("vega_lite_chart")
    assert len(charts) == 3  # persons per frame, joint angles, trajectories
    assert len(app.image) == 1  # the core's angle plot of the chosen person (export.plots)
    person = app.selectbox(key="angles_person")
    assert person.value is not None
