"""The Streamlit script of ``posepipe ui``: the sidebar, the API check, and the three modes.

Run by ``posepipe ui`` (``streamlit run`` on this file); its initial settings come from the
environment (:meth:`posepipe.ui.settings.UiSettings.from_env`).
"""

from __future__ import annotations

import os
import time
from typing import Any, Literal

import streamlit as st

from posepipe.ui.client import ApiClient, ApiProblem
from posepipe.ui.image_mode import render_image_mode
from posepipe.ui.monitor import PerfMonitor
from posepipe.ui.settings import (
    DETECTORS,
    MAX_POSES_LIMIT,
    POSE_MODELS,
    ApiAuth,
    AuthKind,
    LiveSource,
    UiSettings,
)
from posepipe.ui.video_mode import render_video_mode

Mode = Literal["Image", "Video", "Live"]
MODES: tuple[Mode, ...] = ("Image", "Video", "Live")
API_CHECK_TTL_S = 5.0
AUTH_LABELS: dict[AuthKind, str] = {"none": "None", "iam": "IAM (SigV4)", "apikey": "API key"}
LIVE_SOURCE_LABELS: dict[LiveSource, str] = {"cloud": "Cloud (POST /images)", "local": "Local engine"}


def sidebar(initial: UiSettings) -> tuple[UiSettings, Mode]:
    """The sidebar's widgets; returns the settings they make and the chosen mode."""
    bar = st.sidebar
    bar.title("posepipe")
    mode: Mode = bar.radio("Mode", MODES, horizontal=True, key="mode") or "Image"
    api_url = bar.text_input("API URL", value=initial.api_url, key="api_url").strip().rstrip("/")
    kinds = list(AUTH_LABELS)
    kind: AuthKind = (
        bar.radio(
            "Authentication",
            kinds,
            index=kinds.index(initial.auth.kind),
            format_func=AUTH_LABELS.__getitem__,
            horizontal=True,
            key="auth_kind",
        )
        or "none"
    )
    profile = region = api_key = None
    if kind == "iam":
        profile = bar.text_input("AWS profile", value=initial.auth.profile or "", key="aws_profile") or None
        region = bar.text_input("AWS region", value=initial.auth.region or "", key="aws_region") or None
    elif kind == "apikey":
        api_key = bar.text_input("API key", value=initial.auth.api_key or "", type="password", key="api_key")
    max_poses = bar.slider(
        "Max poses",
        1,
        MAX_POSES_LIMIT,
        initial.max_poses,
        key="max_poses",
        help="Sent to POST /images (?max_poses) for photos and live cloud frames. Videos use the "
        "stack's own setting (POSEPIPE_MAX_POSES): POST /videos takes no options.",
    )
    model = _api_choice(
        bar, "Model", POSE_MODELS, initial.model, key="model",
        help="Sent to POST /images (?model) for photos and live cloud frames: BlazePose (33 "
        "landmarks and world landmarks) or MoveNet (COCO's 17 keypoints; MultiPose finds its "
        "persons itself, with no detector chosen). The API refuses a model it has not built.",
    )  # fmt: skip
    detector = _api_choice(
        bar, "Person detector", DETECTORS, initial.detector, key="detector",
        help="Sent to POST /images (?detector): centernet or nanodet find everyone; blazepose finds "
        "one near subject. `posepipe serve` uses centernet unless told otherwise.",
    )  # fmt: skip
    smoothing = bar.toggle(
        "Smoothing",
        value=initial.smoothing,
        key="smoothing",
        help="One Euro smoothing of landmarks over time.",
    )
    bar.caption(
        "Smoothing applies to the live mode (either source), done in this app: the API takes no "
        "smoothing option (the video pipeline always smooths; single images have nothing to smooth)."
    )
    live_source, jpeg_quality, max_in_flight = (
        initial.live_source,
        initial.jpeg_quality,
        initial.max_in_flight,
    )
    if mode == "Live":
        sources = list(LIVE_SOURCE_LABELS)
        live_source = (
            bar.radio(
                "Live poses from",
                sources,
                index=sources.index(initial.live_source),
                format_func=LIVE_SOURCE_LABELS.__getitem__,
                key="live_source",
            )
            or initial.live_source
        )
        jpeg_quality = bar.slider("JPEG quality (cloud)", 30, 95, initial.jpeg_quality, key="jpeg_quality")
        max_in_flight = bar.slider(
            "Frames in flight (cloud)", 1, 8, initial.max_in_flight, key="max_in_flight"
        )
    settings = UiSettings(
        api_url=api_url or initial.api_url,
        auth=ApiAuth(kind=kind, profile=profile, region=region, api_key=api_key or None),
        max_poses=max_poses,
        model=model,
        detector=detector,
        live_source=live_source,
        jpeg_quality=jpeg_quality,
        max_in_flight=max_in_flight,
        smoothing=smoothing,
    )
    return settings, mode


def _api_choice(bar: Any, label: str, names: tuple[str, ...], initial: str, *, key: str, help: str) -> str:
    """A select box of ``names`` plus "the API's own" (the empty string: the parameter not sent)."""
    options = ["", *names]
    chosen = bar.selectbox(
        label,
        options,
        index=options.index(initial) if initial in options else 0,
        format_func=lambda name: name or "the API's own",
        key=key,
        help=help,
    )
    return str(chosen or "")


def session_client(settings: UiSettings) -> ApiClient:
    """One client per session and API (kept across reruns, so connections are reused)."""
    key = (settings.api_url, settings.auth)
    cached = st.session_state.get("client")
    if cached is None or cached[0] != key:
        cached = st.session_state["client"] = (key, ApiClient(settings))
    client: ApiClient = cached[1]
    return client


def session_monitor(name: str) -> PerfMonitor:
    """The session's performance monitor of one mode."""
    monitor = st.session_state.get(name)
    if not isinstance(monitor, PerfMonitor):
        monitor = st.session_state[name] = PerfMonitor()
    return monitor


def api_problem(client: ApiClient, *, force: bool = False) -> ApiProblem | None:
    """What is wrong with the API (``None`` when it answers), checked at most every few seconds."""
    key = (client.base_url, client.auth)
    checked = st.session_state.get("api_check")
    now = time.monotonic()
    if force or checked is None or checked[0] != key or now - checked[1] > API_CHECK_TTL_S:
        try:
            client.ping()
            problem = None
        except ApiProblem as exc:
            problem = exc
        checked = st.session_state["api_check"] = (key, now, problem)
    found: ApiProblem | None = checked[2]
    return found


def show_api_problem(problem: ApiProblem) -> None:
    st.error(str(problem))
    if "posepipe serve" in str(problem):
        st.markdown("Start the local stack in another terminal, then check again:")
        st.code("posepipe serve", language="bash")
    if st.button("Check again", key="check_api"):
        st.session_state.pop("api_check", None)
        st.rerun()


def render_live(client: ApiClient, settings: UiSettings) -> None:
    try:
        from posepipe.ui.live import render_live_mode
    except ModuleNotFoundError as exc:
        missing = exc.name or "a module"
        if missing.startswith("posepipe"):
            st.error("The live mode is not part of this installation of posepipe.")
        else:
            st.error(
                f"The live mode needs {missing}: install posepipe's ui extra (pip install 'posepipe[ui]')."
            )
        return
    render_live_mode(client, settings, session_monitor("live_monitor"))


def main() -> None:
    st.set_page_config(page_title="posepipe", layout="wide")
    try:
        initial = UiSettings.from_env(os.environ)
    except ValueError as exc:
        st.error(f"Ignoring the settings passed to the app: {exc}")
        initial = UiSettings()
    try:
        settings, mode = sidebar(initial)
    except ValueError as exc:  # a URL without http(s)://
        st.error(f"{str(exc)[0].upper()}{str(exc)[1:]}.")
        return
    st.sidebar.caption(f"API: {settings.api_url} · {settings.auth.describe()}")
    client = session_client(settings)
    st.title(f"posepipe · {mode}")
    problem = api_problem(client)
    if problem is not None:
        show_api_problem(problem)
        if mode != "Live":
            return
    if mode == "Image":
        render_image_mode(client, settings, session_monitor("image_monitor"))
    elif mode == "Video":
        render_video_mode(client)
    else:
        render_live(client, settings)


main()
