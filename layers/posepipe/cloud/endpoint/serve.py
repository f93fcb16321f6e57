"""Running the endpoint: gunicorn for SageMaker, or an in-process server for tests and local runs.

``python -m posepipe.cloud.endpoint serve`` (what the image's ``serve`` script runs, as SageMaker starts
a container with ``docker run IMAGE serve``) starts gunicorn on ``0.0.0.0:$SAGEMAKER_BIND_TO_PORT``
(8080 by default) with ``$SAGEMAKER_MODEL_SERVER_WORKERS`` workers, each loading the model itself
after the fork, and ``$POSEPIPE_SERVER_THREADS`` threads per worker (the invocations one worker
runs at once, ``$POSEPIPE_MAX_CONCURRENT``: more are refused at once with 503 ``over_capacity``,
which two spare threads answer, as they answer ``/ping`` while the others run). The defaults
depend on the engine (:func:`serving_plan`):

- the GPU engine (``$POSEPIPE_ENGINE`` ``torch``, or ``auto``, on a machine with NVIDIA GPUs):
  one worker per GPU, each pinned to its own GPU (``CUDA_VISIBLE_DEVICES`` set after the fork),
  with one thread per CPU core divided among the workers (at least 4): the chunks that run in one
  worker's threads share its GPU through one frame batcher, so more threads mean larger batches;
- otherwise (MediaPipe, or torch on the CPU): one worker per CPU, 2 threads each.

The master never imports torch or touches CUDA (a CUDA context does not survive a fork): GPUs are
counted from ``$CUDA_VISIBLE_DEVICES`` or the ``/dev/nvidiaN`` device files. SIGTERM stops
gunicorn gracefully: requests in flight get up to 25 s to finish, within the 30 s SageMaker waits
before SIGKILL.

``--dev`` serves from this process with werkzeug instead (no fork: what the local stack and the
tests use, also through :func:`start_background_server`).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from flask import Flask

from posepipe.cloud.endpoint.app import MAX_CONCURRENT_ENV, create_app, endpoint_state
from posepipe.cloud.endpoint.log import logger
from posepipe.cloud.http_servers import BackgroundServer, start_server_thread

PORT_ENV = "SAGEMAKER_BIND_TO_PORT"
WORKERS_ENV = "SAGEMAKER_MODEL_SERVER_WORKERS"
THREADS_ENV = "POSEPIPE_SERVER_THREADS"
TIMEOUT_ENV = "SAGEMAKER_MODEL_SERVER_TIMEOUT"
ENGINE_ENV = "POSEPIPE_ENGINE"
DEFAULT_PORT = 8080
DEFAULT_THREADS = 2
MIN_GPU_THREADS = 4
DEFAULT_TIMEOUT_S = 90  # above SageMaker's 60 s invocation limit: gunicorn never kills a worker first
SPARE_THREADS = 2  # gunicorn threads above the invocations a worker runs (see gunicorn_options)
GRACEFUL_TIMEOUT_S = 25  # SageMaker sends SIGKILL 30 s after SIGTERM


@dataclass
class EndpointServer(BackgroundServer):
    """The endpoint served from a thread of this process; ``stop()`` lets requests in flight end."""

    app: Flask | None = None

    def stop(self) -> None:
        super().stop()
        if self.app is not None:
            state = endpoint_state(self.app)
            state.close()
            state.cache.clear()


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


def visible_gpus(environ: Mapping[str, str] | None = None, dev: Path = Path("/dev")) -> list[str]:
    """The NVIDIA GPUs this container may use, as ``CUDA_VISIBLE_DEVICES`` names them, found
    without CUDA: ``$CUDA_VISIBLE_DEVICES`` when set, else the ``/dev/nvidiaN`` device files."""
    env = os.environ if environ is None else environ
    listed = env.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        names = [name.strip() for name in listed.split(",") if name.strip()]
        return [] if names and names[0].startswith("-") else names  # "-1": none
    numbers = sorted(int(m.group(1)) for f in _device_files(dev) if (m := re.fullmatch(r"nvidia(\d+)", f)))
    return [str(n) for n in numbers]


def _device_files(dev: Path) -> list[str]:
    try:
        return [entry.name for entry in dev.iterdir()]
    except OSError:
        return []


@dataclass(frozen=True)
class ServingPlan:
    """Workers and threads for ``serve``; ``gpus``: one per worker, in order, when serving on GPUs."""

    workers: int
    threads: int
    gpus: tuple[str, ...] = ()


def serving_plan(
    environ: Mapping[str, str] | None = None, gpus: Sequence[str] | None = None, cpus: int | None = None
) -> ServingPlan:
    """The default workers and threads (see the module docstring); explicit
    ``$SAGEMAKER_MODEL_SERVER_WORKERS`` / ``$POSEPIPE_SERVER_THREADS`` win."""
    env = os.environ if environ is None else environ
    cpus = cpus or os.cpu_count() or 1
    found = list(gpus) if gpus is not None else visible_gpus(env)
    engine = (env.get(ENGINE_ENV) or "auto").strip()
    on_gpu = engine in ("auto", "torch") and bool(found)
    workers_set = env.get(WORKERS_ENV, "").strip()
    threads_set = env.get(THREADS_ENV, "").strip()
    if on_gpu:
        workers = int(workers_set) if workers_set else len(found)
        threads = int(threads_set) if threads_set else max(MIN_GPU_THREADS, cpus // max(1, workers))
        return ServingPlan(workers, threads, tuple(found))
    workers = int(workers_set) if workers_set else cpus
    return ServingPlan(workers, int(threads_set) if threads_set else DEFAULT_THREADS)


def gunicorn_options(args: argparse.Namespace, gpus: Sequence[str] = ()) -> dict[str, Any]:
    """gunicorn's settings for ``serve`` (see the module docstring); with ``gpus``, each worker
    is pinned to one of them (worker slots are reused as workers are replaced)."""
    options: dict[str, Any] = {
        "bind": f"{args.host}:{args.port}",
        "workers": args.workers,
        "worker_class": "gthread",
        # spare threads answer the invocations over capacity at once (503 over_capacity) and /ping
        "threads": args.threads + SPARE_THREADS,
        "timeout": args.timeout,
        "graceful_timeout": GRACEFUL_TIMEOUT_S,
        "keepalive": 5,
        "accesslog": None,
        "errorlog": "-",
        "preload_app": False,  # each worker loads its engine after the fork, never before
        "control_socket_disable": True,  # gunicornc is not used; no socket in $HOME
    }
    if gpus:
        options["pre_fork"], options["post_fork"] = gpu_pinning_hooks(list(gpus))
    return options


def gpu_pinning_hooks(gpus: list[str]) -> tuple[Any, Any]:
    """gunicorn ``pre_fork`` / ``post_fork`` hooks giving each worker one GPU.

    ``pre_fork`` (in the master) picks the first slot no live worker holds; ``post_fork`` (in
    the new worker, before it loads anything) sets ``CUDA_VISIBLE_DEVICES`` to that slot's GPU.
    More workers than GPUs share them round-robin.
    """

    def pre_fork(server: Any, worker: Any) -> None:
        taken = [getattr(w, "posepipe_slot", -1) for w in server.WORKERS.values()]
        slot = next(i for i in range(len(taken) + 1) if taken.count(i) == 0)
        worker.posepipe_slot = slot

    def post_fork(server: Any, worker: Any) -> None:
        gpu = gpus[getattr(worker, "posepipe_slot", 0) % len(gpus)]
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
        logger.info("worker pinned to a GPU", extra={"pid": os.getpid(), "cuda_visible_devices": gpu})

    return pre_fork, post_fork


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
        prog="python -m posepipe.cloud.endpoint",
        description="posepipe's SageMaker real-time inference server.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve /ping and /invocations")
    serve.add_argument("--host", default="0.0.0.0", help="address to bind (default: all)")
    serve.add_argument(
        "--port", type=int, default=int(os.environ.get(PORT_ENV) or DEFAULT_PORT), help=f"${PORT_ENV} or 8080"
    )
    plan = serving_plan()
    serve.add_argument(
        "--workers", type=int, default=plan.workers,
        help=f"gunicorn worker processes (${WORKERS_ENV}; default: one per GPU for the GPU engine, "
        "else one per CPU)",
    )  # fmt: skip
    serve.add_argument(
        "--threads", type=int, default=plan.threads,
        help=f"threads (concurrent invocations) per worker (${THREADS_ENV}; default: the GPU engine "
        f"{MIN_GPU_THREADS} or more, one per CPU core of its share; else {DEFAULT_THREADS})",
    )  # fmt: skip
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
        # each worker runs --threads invocations at once and refuses the others (503 over_capacity)
        if not os.environ.get(MAX_CONCURRENT_ENV, "").strip():
            os.environ[MAX_CONCURRENT_ENV] = str(args.threads)
        run_gunicorn(gunicorn_options(args, serving_plan().gpus))
    return 0
