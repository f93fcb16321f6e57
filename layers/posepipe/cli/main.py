"""``posepipe``'s entry point: parse, keep native logs off the terminal, dispatch, one-line errors."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

from posepipe.cli import jobs, services
from posepipe.cli.parser import EXIT_BAD_INPUT, build_parser, report_error


def silence_native_stderr() -> None:
    """Keep native libraries' logging off the terminal; Python's own stderr stays on it.

    TFLite and MediaPipe's C++ code print start-up notices and glog warnings straight to file
    descriptor 2 ("Created TensorFlow Lite XNNPACK delegate", "Feedback manager requires...",
    "Using NORM_RECT without IMAGE_DIMENSIONS..."), from worker processes and at unpredictable
    frames, which would bury posepipe's one-line messages. Python's ``sys.stderr`` moves to a
    copy of the terminal's descriptor and descriptor 2 goes to /dev/null; worker processes
    inherit both. ``POSEPIPE_NATIVE_LOGS=1`` keeps the native output.
    """
    if os.environ.get("POSEPIPE_NATIVE_LOGS") == "1":
        return
    sys.stderr.flush()
    terminal = os.dup(2)
    encoding = sys.stderr.encoding
    sys.stderr = os.fdopen(terminal, "w", buffering=1, encoding=encoding, errors="backslashreplace")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)


def _run_upload(args: Any) -> int:
    from posepipe.cli.upload import run_upload  # requests and the API client: only for this command

    return run_upload(args)


def main(argv: Sequence[str] | None = None) -> int:
    from posepipe.errors import PosepipeError

    args = build_parser().parse_args(argv)
    if argv is None:  # run as a command (not called from Python): own the process's stderr
        silence_native_stderr()
    handlers = {
        "image": jobs.run_images,
        "video": jobs.run_videos,
        "models": jobs.run_models,
        "samples": jobs.run_samples,
        "export": jobs.run_export,
        "serve": services.run_serve,
        "ui": services.run_ui,
        "upload": _run_upload,
    }
    try:
        return handlers[args.command](args)
    except PosepipeError as exc:
        report_error(str(exc))
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        report_error("interrupted")
        return 130
