"""Running the endpoint: gunicorn for SageMaker, or an in-process server for tests and local runs.

``python -m posepipe_endpoint serve`` (what the image's ``serve`` script runs, as SageMaker starts
a container with ``docker run IMAGE serve``) starts gunicorn on ``0.0.0.0:$SAGEMAKER_BIND_TO_PORT``
(8080 by default) with ``$SAGEMAKER_MODEL_SERVER_WORKERS`` workers (default: one per CPU), each
loading the model itself after the fork. Workers are threaded (``--threads``, 2 by default) so
that ``/ping`` answers while an invocation runs. SIGTERM stops gunicorn gracefully: requests in
flight get up to 25 s to finish, within the 30 s SageMaker waits before SIGKILL.

``--dev`` serves from this process with werkzeug instead (no fork: what the local stack and the
tests use, also through :func:`start_background_server`).
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

from flask import Flask
from posepipe.cloud.local.servers import BackgroundServer, start_server_thread

from posepipe_endpoint.app import create_app, endpoint_state
from posepipe_endpoint.log import logger

PORT_ENV = "SAGEMAKER_BIND_TO_PORT"
WORKERS_ENV = "SAGEMAKER_MODEL_SERVER_WORKERS"
TIMEOUT_ENV = "SAGEMAKER_MODEL_SERVER_TIMEOUT"
DEFAULT_PORT = 8080
DEFAULT_THREADS = 2
DEFAULT_TIMEOUT_S = 90  # above SageMaker's 60 s invocation limit: gunicorn never kills a worker first
GRACEFUL_TIMEOUT_S = 25  # SageMaker sends SIGKILL 30 s after SIGTERM


@dataclass
class EndpointServer(BackgroundServer):
    """The endpoint served from a thread of this process; ``stop()`` lets requests in flight end."""

    app: Flask | None = None

    def stop(self) -> None:
        super().stop()
        if self.app is not None:
            endpoint_state(self.app).cache.clear()


def start_background_server(
    host: str = "127.0.0.1", port: int = 0, *, app: Flask | None = None, ready_timeout_s: float | None = 120.0
) -> EndpointServer:
    """Serve ``app`` (default: :func:`create_app`) from a thread; port 0 picks a free port.

    Returns once the model is loaded (or ``ready_timeout_s`` passed; ``None`` does not wait).
    Raises ``RuntimeError`` when loading failed.
    """
    app = app or create_app()
    if ready_timeout_s is not None:
        state = endpoint_state(app)
        if not state.wait_until_loaded(ready_timeout_s) and state.failure is not None:
            raise RuntimeError(f"the endpoint's model failed to load: {state.failure}")
    server, thread = start_server_thread(app, host, port, name="endpoint-server")
    running = EndpointServer(server=server, thread=thread, app=app)
    logger.info("endpoint serving in-process", extra={"url": running.url})
    return running


def gunicorn_options(args: argparse.Namespace) -> dict[str, Any]:
    """gunicorn's settings for ``serve`` (see the module docstring)."""
    return {
        "bind": f"{args.host}:{args.port}",
        "workers": args.workers,
        "worker_class": "gthread",
        "threads": args.threads,
        "timeout": args.timeout,
        "graceful_timeout": GRACEFUL_TIMEOUT_S,
        "keepalive": 5,
        "accesslog": None,
        "errorlog": "-",
        "preload_app": False,  # each worker loads MediaPipe after the fork, never before
        "control_socket_disable": True,  # gunicornc is not used; no socket in $HOME
    }


def run_gunicorn(options: dict[str, Any]) -> None:
    """Run gunicorn with ``options`` until it is stopped (SIGTERM: graceful)."""
    from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped]

    class EndpointServer(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for name, value in options.items():
                self.cfg.set(name, value)

        def load(self) -> Flask:
            return create_app()

    EndpointServer().run()


def run_dev_server(host: str, port: int) -> None:
    """Serve in-process until SIGTERM or SIGINT, then stop gracefully."""
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server = start_background_server(host, port, ready_timeout_s=None)
    stopping.wait()
    logger.info("endpoint stopping")
    server.stop()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m posepipe_endpoint", description="posepipe's SageMaker real-time inference server."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve /ping and /invocations")
    serve.add_argument("--host", default="0.0.0.0", help="address to bind (default: all)")
    serve.add_argument(
        "--port", type=int, default=int(os.environ.get(PORT_ENV) or DEFAULT_PORT), help=f"${PORT_ENV} or 8080"
    )
    serve.add_argument(
        "--workers", type=int, default=int(os.environ.get(WORKERS_ENV) or os.cpu_count() or 1),
        help=f"gunicorn worker processes (${WORKERS_ENV} or one per CPU)",
    )  # fmt: skip
    serve.add_argument("--threads", type=int, default=DEFAULT_THREADS, help="threads per worker (2)")
    serve.add_argument(
        "--timeout", type=int, default=int(os.environ.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT_S),
        help=f"seconds before gunicorn restarts a stuck worker (${TIMEOUT_ENV} or {DEFAULT_TIMEOUT_S})",
    )  # fmt: skip
    serve.add_argument("--dev", action="store_true", help="serve in-process with werkzeug (no gunicorn)")
    args = parser.parse_args(argv)
    for name in ("workers", "threads", "timeout"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.dev:
        run_dev_server(args.host, args.port)
    else:
        run_gunicorn(gunicorn_options(args))
    return 0
