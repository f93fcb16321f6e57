"""``posepipe upload FILE --api URL``: a video to posepipe's API, in parts when it is over 100 MB,
resuming an upload that was interrupted.

The job of a multipart upload is remembered in a small state file (``~/.cache/posepipe/uploads``,
one per file, API and version of the file: its path, size and modification time), written once
the upload starts and removed once it is complete; running the same command again finds it, asks
the API which parts S3 already holds (``GET /videos/{job}/upload``) and sends only the others.
The file itself is only read.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from posepipe.cli.parser import EXIT_BAD_INPUT, report_error
from posepipe.errors import InputError
from posepipe.ui.client import ApiClient, ApiProblem, MultipartUpload, ProgressCallback
from posepipe.ui.settings import ENV_API_KEY, ApiAuth

STATE_DIR_ENV = "POSEPIPE_UPLOAD_STATE_DIR"
POLL_INTERVAL_S = 2.0


def run_upload(args: argparse.Namespace) -> int:
    path: Path = args.file
    if not path.is_file():
        raise InputError(str(path), "no such file" if not path.exists() else "not a file")
    if not args.api_url.startswith(("http://", "https://")):
        report_error(f"--api must start with http:// or https://, not {args.api_url!r}")
        return EXIT_BAD_INPUT
    auth = ApiAuth(
        kind=args.auth, profile=args.profile, region=args.region, api_key=os.environ.get(ENV_API_KEY)
    )
    client = ApiClient(args.api_url, auth)
    try:
        job = upload_file(client, path, state_dir(), progress=_progress_printer(path.name))
        print(f"uploaded {path.name}: job {job} ({args.api_url.rstrip('/')}/jobs/{job})", flush=True)
        if not args.wait:
            return 0
        status = client.job_status(job)
        while not status.finished:
            time.sleep(POLL_INTERVAL_S)
            status = client.job_status(job)
    except ApiProblem as problem:
        report_error(str(problem))
        return 1
    if not status.succeeded:
        report_error(status.failure())
        return 1
    print(f"job {job} succeeded: {status.frames} frames, {status.person_frames} person-frames", flush=True)
    return 0


def state_dir() -> Path:
    """Where upload state files are kept (``$POSEPIPE_UPLOAD_STATE_DIR``, else the user's cache)."""
    configured = os.environ.get(STATE_DIR_ENV)
    if configured:
        return Path(configured)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "posepipe" / "uploads"


def upload_file(
    client: ApiClient, path: Path, states: Path, *, progress: ProgressCallback | None = None
) -> str:
    """Upload ``path`` through ``client``'s API, resuming the interrupted upload of this same file
    when its state file says there is one; returns the job id."""
    size = path.stat().st_size
    state_file = _state_file(states, client.base_url, path)
    resumed = _resume(client, state_file, path, size, progress)
    if resumed is not None:
        return resumed
    slot = client.new_video(path.name, size)
    if slot.multipart is None:
        client.send_video(slot, path, progress, name=path.name)
        return slot.job
    states.mkdir(parents=True, exist_ok=True)
    state = {"job": slot.job, "file": str(path.resolve()), "size_bytes": size, "api": client.base_url}
    state_file.write_text(json.dumps(state) + "\n", encoding="utf-8")
    client.send_parts(slot.job, slot.multipart, path, progress, name=path.name)
    state_file.unlink(missing_ok=True)
    return slot.job


def _resume(
    client: ApiClient, state_file: Path, path: Path, size: int, progress: ProgressCallback | None
) -> str | None:
    """The job of the interrupted upload in ``state_file``, finished; None when there is none."""
    try:
        state: dict[str, Any] = json.loads(state_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    job = str(state.get("job", ""))
    try:
        upload: MultipartUpload = client.upload_state(job)
    except ApiProblem as problem:
        if problem.code == "upload_complete":
            state_file.unlink(missing_ok=True)
            return job
        if problem.code in ("not_found", "not_multipart"):
            state_file.unlink(missing_ok=True)
            return None  # the slot expired or is not this kind: start again
        raise
    print(
        f"resuming the upload of {path.name} (job {job}): {len(upload.done)} of {upload.part_count} "
        "parts already uploaded",
        file=sys.stderr,
        flush=True,
    )
    client.send_parts(job, upload, path, progress, name=path.name)
    state_file.unlink(missing_ok=True)
    return job


def _state_file(states: Path, api_url: str, path: Path) -> Path:
    stat = path.stat()
    identity = f"{api_url.rstrip('/')}|{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    return states / f"{hashlib.sha256(identity.encode()).hexdigest()[:32]}.json"


def _progress_printer(name: str) -> ProgressCallback:
    """A line on stderr at every tenth of the upload."""
    shown = [-1]

    def show(sent: int, total: int) -> None:
        tenth = 10 * sent // total if total else 10
        if tenth != shown[0]:
            shown[0] = tenth
            print(f"  {name}: {sent / 1e6:.1f} of {total / 1e6:.1f} MB", file=sys.stderr, flush=True)

    return show
