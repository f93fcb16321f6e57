"""The commands that start servers: ``serve`` (the local stack) and ``ui`` (the web app)."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

from posepipe.cli.parser import EXIT_BAD_INPUT, report_error


def run_serve(args: argparse.Namespace) -> int:
    import logging
    import threading

    from posepipe.local_stack.stack import LocalStack

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    stack = LocalStack(host=args.host, on_event=lambda line: print(line, flush=True))
    try:
        stack.start()
    except OSError as exc:
        report_error(f"cannot start the local stack: {exc} (is another `posepipe serve` running?)")
        return 1
    config = stack.config
    print(
        "posepipe local stack is up (Ctrl-C stops it)\n"
        f"  S3, SQS, Step Functions (moto): {stack.s3_url}\n"
        f"  API:                            {stack.api_url}  (POST /images, POST /videos, GET /jobs/{{id}})\n"
        f"  endpoint container:             http://{args.host}:{stack.ports.endpoint}  (GET /ping; "
        f"engine: {os.environ.get('POSEPIPE_ENGINE', 'mediapipe')})\n"
        f"  input bucket:  {config.input_bucket}   output bucket: {config.output_bucket}\n"
        "try:\n"
        "  AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x aws --region us-east-1 \\\n"
        f"    --endpoint-url {stack.s3_url} s3 cp clip.mp4 s3://{config.input_bucket}/{config.videos_prefix}clip.mp4\n"
        f"  (results appear under s3://{config.output_bucket}/{config.videos_prefix}clip.mp4/)",
        flush=True,
    )
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()
        print("posepipe local stack stopped", flush=True)
    return 0


def run_ui(args: argparse.Namespace) -> int:
    try:
        import streamlit  # noqa: F401
    except ImportError:
        report_error("posepipe ui needs Streamlit: install posepipe's ui extra (pip install 'posepipe[ui]')")
        return EXIT_BAD_INPUT
    from posepipe.ui import settings

    if not args.api_url.startswith(("http://", "https://")):
        report_error(f"--api-url must start with http:// or https://, not {args.api_url!r}")
        return EXIT_BAD_INPUT
    app = Path(__file__).resolve().parents[1] / "ui" / "app.py"
    env = {
        **os.environ,
        settings.ENV_API_URL: args.api_url,
        settings.ENV_AUTH: args.auth,
        settings.ENV_PROFILE: args.profile or "",
        settings.ENV_REGION: args.region or "",
    }
    command = [
        sys.executable, "-m", "streamlit", "run", str(app),
        "--server.headless", "true",
        "--server.address", args.host,
        "--server.port", str(args.port),
        "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "viewer",
    ]  # fmt: skip
    print(f"posepipe ui: http://{args.host}:{args.port} (API: {args.api_url}; Ctrl-C stops it)", flush=True)
    try:
        stderr = sys.stderr.fileno()  # the terminal, not the descriptor 2 native logs go to
    except (AttributeError, OSError, ValueError):
        stderr = None
    # Ctrl-C (SIGINT) stops it even where it started with SIGINT ignored, as a shell without job
    # control starts background commands (`posepipe ui &` in a script, CI runners); set before
    # Streamlit starts, so that it does not inherit the ignoring either.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    process = subprocess.Popen(command, env=env, stderr=stderr)

    def stop_streamlit(signum: int, _: object = None) -> None:
        if process.poll() is None:
            process.send_signal(signum)

    signal.signal(signal.SIGTERM, stop_streamlit)
    try:
        return process.wait()
    except KeyboardInterrupt:  # a terminal's Ctrl-C reaches Streamlit too; a lone SIGINT does not
        _stop_child(process, signal.SIGINT)
        return 0


UI_STOP_GRACE_S = 10.0


def _stop_child(process: subprocess.Popen[bytes], first: int) -> None:
    """Stop ``process`` with ``first``, then SIGTERM, then SIGKILL, each after a grace period:
    Streamlit sometimes keeps running after a SIGINT (sessions still closing), and Ctrl-C must stop."""
    for signum in (first, signal.SIGTERM, signal.SIGKILL):
        if process.poll() is not None:
            return
        process.send_signal(signum)
        try:
            process.wait(timeout=UI_STOP_GRACE_S)
            return
        except subprocess.TimeoutExpired:
            continue
