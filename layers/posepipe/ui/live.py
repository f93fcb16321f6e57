"""The live webcam mode: the browser's camera over WebRTC (streamlit-webrtc), poses drawn over it.

The frames go through :class:`posepipe.ui.live_frames.LivePoseSource` (the cloud path or the
local top-down engine, as the sidebar says at that moment), kept in the session so that a
rerun (a change in the sidebar) reconfigures it without restarting the stream. The performance
monitor and a status line are refreshed every second while the stream plays.

No STUN or TURN server is configured (``iceServers: []``): the browser and the app meet through
their host candidates, which is what a local app needs, and the network may be closed.
"""

from __future__ import annotations

from typing import Any

from posepipe.ui.client import ApiClient
from posepipe.ui.live_frames import LivePoseSource, process_video_frame
from posepipe.ui.live_types import LiveOptions, LiveStats
from posepipe.ui.monitor import PerfMonitor, render_monitor
from posepipe.ui.settings import UiSettings

SESSION_KEY = "posepipe_live_source"
STREAM_KEY = "posepipe-live"
REFRESH_S = 1.0
RTC_CONFIGURATION: dict[str, Any] = {"iceServers": []}
MEDIA_CONSTRAINTS: dict[str, Any] = {"video": True, "audio": False}

SOURCE_LABELS = {
    "cloud": "cloud: JPEG frames to POST /images",
    "local": "local: the top-down engine (CenterNet + BlazePose, tracking) on this machine",
}


def live_source(
    session: Any, client: ApiClient, settings: UiSettings, monitor: PerfMonitor
) -> LivePoseSource:
    """The session's frame path (made on first use), given this run's client, monitor and options."""
    source = session.get(SESSION_KEY)
    if not isinstance(source, LivePoseSource):
        source = LivePoseSource(client, monitor, LiveOptions.from_settings(settings))
        session[SESSION_KEY] = source
    source.set_client(client)
    source.monitor = monitor
    source.configure(LiveOptions.from_settings(settings))
    return source


def status_line(stats: LiveStats, fps: float) -> str:
    """One line on the frame path, for the page (and the browser tests, which read it)."""
    return (
        f"Source: **{stats.source}** · {fps:.1f} fps rendered · persons: {stats.persons} · "
        f"skeletons drawn on {stats.skeleton_frames} frames · answers: {stats.answers} "
        f"({stats.stale} stale), latest from {stats.latest_source or 'none'} · in flight: {stats.in_flight}"
    )


def render_live_mode(client: ApiClient, settings: UiSettings, monitor: PerfMonitor) -> None:
    """The live mode's page: the stream, its status line and the performance monitor."""
    import streamlit as st
    from streamlit_webrtc import WebRtcMode, webrtc_streamer

    source = live_source(st.session_state, client, settings, monitor)
    st.caption(
        f"Poses from {SOURCE_LABELS[settings.live_source]} (switch in the sidebar, also while the "
        "stream runs). Press START and allow the camera."
    )

    def on_frame(frame: Any) -> Any:
        return process_video_frame(source, frame)

    context = webrtc_streamer(
        key=STREAM_KEY,
        mode=WebRtcMode.SENDRECV,
        rtc_configuration=RTC_CONFIGURATION,
        media_stream_constraints=MEDIA_CONSTRAINTS,
        video_frame_callback=on_frame,
        async_processing=True,
    )
    playing = bool(context.state.playing)
    if not playing:
        source.local.release()  # the local engine's memory and threads, until the next stream

    @st.fragment(run_every=REFRESH_S if playing else None)
    def live_panel() -> None:
        snapshot = monitor.snapshot()
        stats = source.stats()
        st.markdown(status_line(stats, snapshot.fps))
        if stats.last_error:
            st.warning(f"{stats.errors} frame(s) failed; the latest: {stats.last_error}")
        render_monitor(snapshot)

    live_panel()
