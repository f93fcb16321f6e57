"""Video mode: ``POST /videos``, the presigned upload (in parts over 100 MB) with a progress bar,
``GET /jobs/{id}`` until the job ends, then the annotated video, per-person joint angles and
trajectories, persons per frame."""

from __future__ import annotations

import io
import json
import time
import zipfile
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

import altair as alt
import numpy as np
import streamlit as st

from posepipe.analysis.angles import ANGLE_NAMES
from posepipe.export.motion_files import motion_files
from posepipe.export.plots import person_angles_png
from posepipe.ui.client import ApiClient, ApiProblem, JobStatus
from posepipe.ui.results import TRAJECTORY_LANDMARKS, VideoSeries, color_hex, video_series

VIDEO_TYPES = ["mp4", "mov", "m4v", "mkv", "webm", "avi", "mpg", "mpeg", "ts"]
POLL_INTERVAL_S = 1.0
JOB_TIMEOUT_S = 3600.0
_JOB = "video_job"
_OUTPUTS = "video_outputs"
_STATUS_WORDS = {
    "awaiting_upload": "waiting for the upload",
    "queued": "uploaded, queued",
    "running": "running (split, pose estimation per chunk, aggregate)",
    "succeeded": "succeeded",
    "failed": "failed",
    "timed_out": "timed out",
    "aborted": "aborted",
}


@dataclass(frozen=True)
class VideoOutputs:
    """A finished job's results, downloaded once."""

    status: JobStatus
    keypoints: dict[str, Any]
    keypoints_json: bytes
    annotated_mp4: bytes


def render_video_mode(client: ApiClient) -> None:
    file = st.file_uploader(
        "A video (uploaded to the pipeline through POST /videos: a presigned PUT, in parts over 100 MB)",
        type=VIDEO_TYPES,
        key="video_file",
    )
    if file is not None and st.button("Upload and process", type="primary", key="process_video"):
        try:
            st.session_state[_JOB] = upload_video(client, file.name, file.getvalue())
        except ApiProblem as problem:
            st.error(str(problem))
            return
    job: str | None = st.session_state.get(_JOB)
    if job is None:
        st.info("Choose a video, then press *Upload and process*.")
        return
    try:
        outputs = job_outputs(client, job)
    except ApiProblem as problem:
        st.error(str(problem))
        return
    if outputs is not None:
        render_outputs(job, outputs)


def upload_video(client: ApiClient, name: str, data: bytes) -> str:
    """An upload slot, then the upload with a progress bar (one PUT, or the parts of a multipart
    upload for a video over 100 MB); returns the job id."""
    slot = client.new_video(name, len(data))
    bar = st.progress(0.0, text=f"Uploading {name}…")
    last_shown = [0.0]

    def progress(sent: int, total: int) -> None:
        now = time.monotonic()
        if sent < total and now - last_shown[0] < 0.1:
            return
        last_shown[0] = now
        bar.progress(sent / total if total else 1.0, text=f"Uploading {name}: {_mb(sent)} of {_mb(total)}")

    client.send_video(slot, data, progress, name=name)
    how = f"{slot.multipart.part_count} parts" if slot.multipart else "one PUT"
    bar.progress(1.0, text=f"Uploaded {name} ({_mb(len(data))}, {how}): job {slot.job}")
    return slot.job


def job_outputs(client: ApiClient, job: str) -> VideoOutputs | None:
    """The job's results: followed until it ends, then downloaded (once per session and job)."""
    kept: dict[str, VideoOutputs] = st.session_state.setdefault(_OUTPUTS, {})
    if job in kept:
        return kept[job]
    status = follow_job(client, job)
    if not status.succeeded:
        st.error(status.failure())
        return None
    with st.spinner("Downloading the results…"):
        keypoints_json = client.download(status.results["keypoints"], name="keypoints.json")
        annotated = client.download(status.results["annotated"], name="annotated.mp4")
    try:
        keypoints = json.loads(keypoints_json)
    except ValueError:
        raise ApiProblem(f"The keypoints of job {job} are not JSON") from None
    kept[job] = VideoOutputs(status, keypoints, keypoints_json, annotated)
    return kept[job]


def follow_job(client: ApiClient, job: str) -> JobStatus:
    """``GET /jobs/{job}`` every second until the job ends, each change of status shown."""
    started = time.monotonic()
    with st.status(f"Job {job}", expanded=True) as box:
        seen = None
        while True:
            status = client.job_status(job)
            elapsed = time.monotonic() - started
            words = _STATUS_WORDS.get(status.status, status.status.replace("_", " "))
            if status.status != seen:
                st.write(f"{elapsed:5.1f} s: {words}")
                seen = status.status
            box.update(label=f"Job {job}: {words} ({elapsed:.0f} s)")
            if status.finished:
                break
            if elapsed > JOB_TIMEOUT_S:
                raise ApiProblem(f"The video job {job} did not end within {JOB_TIMEOUT_S / 60:.0f} minutes")
            time.sleep(POLL_INTERVAL_S)
        box.update(state="complete" if status.succeeded else "error", expanded=not status.succeeded)
    return status


def render_outputs(job: str, outputs: VideoOutputs) -> None:
    series = video_series(outputs.keypoints)
    source = outputs.keypoints["source"]
    stem = PurePath(source.get("uri", job)).stem or "video"
    st.subheader(f"Job {job}")
    for warning in outputs.status.warnings:  # part of the video failed: its frames are not processed
        st.warning(str(warning.get("message") or warning))
    frames, person_frames, people, duration = st.columns(4)
    frames.metric("Frames", len(series.t))
    person_frames.metric("Person-frames", int(np.nansum(series.persons_per_frame)))
    people.metric("People (ids)", len(series.tracks))
    duration.metric("Duration", f"{source.get('duration_s') or 0:.1f} s")
    video, downloads = st.columns([3, 1])
    video.video(outputs.annotated_mp4, format="video/mp4")
    downloads.download_button(
        "Download keypoints (JSON)",
        outputs.keypoints_json,
        file_name=f"{stem}.keypoints.json",
        mime="application/json",
        on_click="ignore",
        key="download_keypoints",
    )
    downloads.download_button(
        "Download annotated video (MP4)",
        outputs.annotated_mp4,
        file_name=f"{stem}.annotated.mp4",
        mime="video/mp4",
        on_click="ignore",
        key="download_video",
    )
    downloads.download_button(
        "Download motion analysis (ZIP)",
        lambda: analysis_zip(series),
        file_name=f"{stem}.motion.zip",
        mime="application/zip",
        on_click="ignore",
        key="download_motion",
        help="angles.csv, keypoints.csv, analysis.json, and per person OpenSim's .trc and .mot, a C3D "
        "and a plot (posepipe.export.motion_files, as `posepipe export --format all` writes them)",
    )
    st.markdown("**Persons per frame**")
    st.line_chart(
        {
            "t (s)": series.t.tolist(),
            "persons": [None if np.isnan(n) else n for n in series.persons_per_frame],
        },
        x="t (s)",
        y="persons",
        height=180,
    )
    if not series.tracks:
        st.info("No person was found in this video.")
        return
    render_angles(series)
    render_trajectories(series)


def render_angles(series: VideoSeries) -> None:
    st.markdown(
        "**Joint angles over time** (degrees, posepipe.analysis' conventions: 0 with the limb straight "
        "or along the trunk, positive in flexion; 3D from world landmarks where the model gives them; "
        "gaps up to 0.5 s filled, trajectories Butterworth-filtered where the frame rate allows)"
    )
    tracks = series.longest_tracks()
    chosen = st.selectbox(
        "Person",
        [track.id for track in tracks],
        format_func=lambda person_id: f"person {person_id} ({series.tracks[person_id].frames} frames)",
        key="angles_person",
    )
    track = series.tracks[chosen if chosen is not None else tracks[0].id]
    joints = st.multiselect(
        "Angles",
        ANGLE_NAMES,
        default=["left_knee", "right_knee", "left_hip", "right_hip"],
        key="angles_joints",
    )
    if joints:
        columns: dict[str, list[float | None]] = {"t (s)": track.t.tolist()}
        for joint in joints:
            columns[joint] = [
                None if np.isnan(value) else round(float(value), 2) for value in track.angles[joint]
            ]
        st.line_chart(columns, x="t (s)", y=list(joints), height=260)
    with st.expander(f"Person {track.id}: the analysis plot (as `posepipe video --analyze` draws it)"):
        st.image(person_angles_png(track.motion), width="stretch")


def analysis_zip(series: VideoSeries) -> bytes:
    """Every motion analysis file of the video, zipped."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in sorted(motion_files(series.analysis).items()):
            archive.writestr(name, data)
    return buffer.getvalue()


def render_trajectories(series: VideoSeries) -> None:
    st.markdown("**Keypoint trajectories** (pixels in the picture; each person in its colour)")
    landmark = st.selectbox("Keypoint", TRAJECTORY_LANDMARKS, key="trajectory_landmark") or "nose"
    rows = []
    for track in series.tracks.values():
        path = track.trajectory(landmark)
        rows += [
            {"person": f"person {track.id}", "t": t, "x": x, "y": y}
            for t, x, y in zip(path["t"], path["x"], path["y"], strict=True)
        ]
    if not rows:
        st.info(f"No person's {landmark.replace('_', ' ')} is visible enough to draw its path.")
        return
    names = [f"person {track.id}" for track in series.tracks.values()]
    colors = [color_hex(track.id) for track in series.tracks.values()]
    chart = (
        alt.Chart({"values": rows})
        .mark_line(point=alt.OverlayMarkDef(size=8))
        .encode(
            x=alt.X("x:Q", scale=alt.Scale(domain=[0, series.width]), title="x (px)"),
            y=alt.Y("y:Q", scale=alt.Scale(domain=[0, series.height], reverse=True), title="y (px)"),
            color=alt.Color("person:N", scale=alt.Scale(domain=names, range=colors)),
            order="t:Q",
            tooltip=["person:N", "t:Q", "x:Q", "y:Q"],
        )
        .properties(height=360)
    )
    st.altair_chart(chart, width="stretch")


def _mb(count: int) -> str:
    return f"{count / 1_000_000:.1f} MB"
