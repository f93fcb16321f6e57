"""Image mode: photos through ``POST /images``, skeletons drawn here from the returned keypoints."""

from __future__ import annotations

import json
import mimetypes
import time
from collections.abc import Hashable
from pathlib import PurePath
from typing import Any

import streamlit as st

from posepipe.errors import PosepipeError
from posepipe.ui.client import ApiClient, ApiProblem, ImageAnswer
from posepipe.ui.monitor import FrameTiming, PerfMonitor, render_monitor
from posepipe.ui.results import angle_rows, color_hex, draw_result, image_persons, landmark_rows
from posepipe.ui.settings import UiSettings

IMAGE_TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff"]
_ANSWERS = "image_answers"
_KEPT_ANSWERS = 64


def render_image_mode(client: ApiClient, settings: UiSettings, monitor: PerfMonitor) -> None:
    files = st.file_uploader(
        "Photos (each one goes through POST /images)",
        type=IMAGE_TYPES,
        accept_multiple_files=True,
        key="image_files",
    )
    with st.expander("Performance", expanded=True):
        monitor_area = st.empty()
    for file in files or []:
        data = file.getvalue()
        content_type = file.type or mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        key = (
            file.file_id, len(data), settings.api_url, settings.auth, settings.max_poses,
            settings.model, settings.detector,
        )  # fmt: skip
        st.divider()
        render_image(client, settings, monitor, file.name, data, content_type, key)
    with monitor_area.container():
        render_monitor(monitor.snapshot())


def render_image(
    client: ApiClient,
    settings: UiSettings,
    monitor: PerfMonitor,
    name: str,
    data: bytes,
    content_type: str,
    key: Hashable,
) -> None:
    st.subheader(name)
    answers: dict[Hashable, ImageAnswer | ApiProblem] = st.session_state.setdefault(_ANSWERS, {})
    fresh = key not in answers
    if fresh:
        monitor.frame_sent()
        with st.spinner(f"Finding people in {name}…"):
            try:
                answers[key] = client.post_image(
                    data, content_type, max_poses=settings.max_poses, name=name,
                    model=settings.model, detector=settings.detector,
                )  # fmt: skip
            except ApiProblem as problem:
                answers[key] = problem
        while len(answers) > _KEPT_ANSWERS:
            del answers[next(iter(answers))]
    answer = answers[key]
    if isinstance(answer, ApiProblem):
        st.error(str(answer))
        return
    started = time.perf_counter()
    try:
        drawn = draw_result(data, answer.result, name)
    except PosepipeError as exc:
        st.error(f"The API answered for {name}, but it cannot be shown here: {exc}")
        return
    draw_s = time.perf_counter() - started
    if fresh:
        monitor.record(FrameTiming(0.0, answer.network_s, answer.inference_s or 0.0, draw_s))
        monitor.frame_rendered()
    persons = image_persons(answer.result)
    picture, facts = st.columns([3, 1])
    picture.image(drawn, caption=f"{name}: skeletons drawn from the API's keypoints", width="stretch")
    facts.metric("People", len(persons))
    legend = " ".join(
        f'<span style="color:{color_hex(p.id)}">■</span> person {p.id} ({p.score:.2f})' for p in persons
    )
    if legend:
        facts.markdown(legend, unsafe_allow_html=True)
    facts.caption(_timing_line(answer, draw_s))
    angles_tab, landmarks_tab, json_tab = st.tabs(["Joint angles", "Landmarks", "JSON"])
    with angles_tab:
        if not persons:
            st.info("No person found: no angles to show.")
        for person in persons:
            st.markdown(f"**Person {person.id}**: angles in degrees (3D from world landmarks, 2D as seen)")
            st.dataframe(angle_rows(person), hide_index=True, width="content")
    with landmarks_tab:
        for person in persons:
            st.markdown(f"**Person {person.id}**")
            st.dataframe(landmark_rows(person), hide_index=True, height=300)
    with json_tab:
        text = json.dumps(answer.result, indent=1)
        st.download_button(
            "Download keypoints (JSON)",
            text,
            file_name=f"{PurePath(name).stem}.pose.json",
            mime="application/json",
            key=f"download-{name}-{hash(key)}",
        )
        st.json(_without_landmarks(answer.result), expanded=False)


def _timing_line(answer: ImageAnswer, draw_s: float) -> str:
    server = "not reported" if answer.inference_s is None else f"{answer.inference_s * 1000:.0f} ms"
    return (
        f"round trip {answer.total_s * 1000:.0f} ms: server {server}, "
        f"network and API {answer.network_s * 1000:.0f} ms; drawing {draw_s * 1000:.0f} ms"
    )


def _without_landmarks(result: dict[str, Any]) -> dict[str, Any]:
    """The result with each person's landmark arrays summarised (st.json of 66 rows is unreadable)."""
    frames = []
    for frame in result["frames"]:
        persons = [
            {**person, "landmarks": f"[{len(person['landmarks'])} rows]",
             "world_landmarks": f"[{len(person['world_landmarks'])} rows]"}
            for person in frame["persons"]
        ]  # fmt: skip
        frames.append({**frame, "persons": persons})
    return {**result, "frames": frames}
