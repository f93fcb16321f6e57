"""``posepipe``: pose estimation on images and videos from the command line (no AWS needed).

Each bad input gets one line on stderr naming the file and the reason; the other inputs of the
same command are still processed, and the exit status is 2 if any input failed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

EXIT_BAD_INPUT = 2

os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ start-up chatter
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, not {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        metavar="PATH",
        help="a MediaPipe pose landmarker .task (default: $POSEPIPE_MODEL or the built one)",
    )
    parser.add_argument(
        "--max-poses", type=_positive_int, default=4, metavar="N", help="most persons per frame (4)"
    )
    parser.add_argument(
        "--engine",
        choices=("mediapipe", "torch", "auto"),
        default="mediapipe",
        help="mediapipe: MediaPipe on the CPU (the default); torch: the same model ported to PyTorch, "
        "on a CUDA GPU when there is one, else on the CPU, where it is 2-3x slower than mediapipe; "
        "auto: torch on a CUDA GPU, else mediapipe",
    )


class _Parser(argparse.ArgumentParser):
    """argparse with its errors on one line, as posepipe's other errors are (usage with --help)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"posepipe: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    from posepipe.postprocess.tracking import SmoothingOptions

    parser = _Parser(prog="posepipe", description=__doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    image = commands.add_parser("image", help="keypoints and an annotated copy of images")
    image.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    image.add_argument("-o", "--out", type=Path, default=Path("posepipe-output"), help="output folder")
    _add_model_options(image)
    image.add_argument("--no-annotate", action="store_true", help="write keypoints only")
    image.add_argument(
        "--max-megapixels", type=float, default=40.0, metavar="MP", help="refuse larger images (40)"
    )

    video = commands.add_parser("video", help="per-frame keypoints, an annotated MP4 and a summary of videos")
    video.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    video.add_argument("-o", "--out", type=Path, default=Path("posepipe-output"), help="output folder")
    _add_model_options(video)
    video.add_argument(
        "--chunk-frames", type=_positive_int, metavar="N", help="frames per chunk (default: planned)"
    )
    video.add_argument(
        "--workers",
        type=_positive_int,
        default=os.cpu_count() or 1,
        metavar="N",
        help="worker processes (cores)",
    )
    video.add_argument(
        "--warmup-s",
        type=_non_negative_float,
        default=5.0,
        metavar="S",
        help="tracking warm-up per chunk (5)",
    )
    video.add_argument("--no-annotate", action="store_true", help="skip the annotated video")
    video.add_argument("--smoothing", choices=("on", "off"), default="on", help="One Euro smoothing (on)")
    defaults = SmoothingOptions()
    video.add_argument(
        "--smoothing-min-cutoff", type=_positive_float, default=defaults.min_cutoff, metavar="HZ",
        help=f"One Euro cut-off when still: lower removes more jitter ({defaults.min_cutoff})",
    )  # fmt: skip
    video.add_argument(
        "--smoothing-beta", type=_non_negative_float, default=defaults.beta, metavar="B",
        help=f"One Euro speed coefficient: higher lags less on fast moves ({defaults.beta})",
    )  # fmt: skip
    video.add_argument("--overlay", action="store_true", help="draw frame index and processing fps")
    video.add_argument("--no-progress", action="store_true", help="no progress bar")

    models = commands.add_parser("models", help="the pose model asset")
    model_commands = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    build = model_commands.add_parser("build", help="build pose_landmarker_full.task offline (if missing)")
    build.add_argument("--force", action="store_true", help="rebuild even if present")
    build.add_argument("--from-wheel", type=Path, metavar="WHL", help="a local mediapipe-0.10.21 wheel")
    model_commands.add_parser("path", help="print the model path in use")

    samples = commands.add_parser("samples", help="the sample media")
    sample_commands = samples.add_subparsers(dest="samples_command", required=True, metavar="ACTION")
    sample_commands.add_parser("fetch", help="find or download and verify every sample")
    sample_path = sample_commands.add_parser("path", help="print the path of one sample")
    sample_path.add_argument("name")

    serve = commands.add_parser("serve", help="run the cloud pipeline on this machine (no AWS account)")
    serve.add_argument("--host", default="127.0.0.1", help="loopback address to listen on (127.0.0.1)")

    ui = commands.add_parser("ui", help="the web app (Streamlit) over posepipe's API")
    ui.add_argument("--port", type=_positive_int, default=8501, help="port of the web app (8501)")
    ui.add_argument("--host", default="127.0.0.1", help="address the web app listens on (127.0.0.1)")
    ui.add_argument(
        "--api-url",
        default="http://127.0.0.1:3000",
        metavar="URL",
        help="posepipe's API: the local stack's (http://127.0.0.1:3000, `posepipe serve`) or a "
        "deployed stack's ApiUrl",
    )
    ui.add_argument(
        "--auth",
        choices=("none", "iam", "apikey"),
        default="none",
        help="none (the local stack); iam: SigV4 with an AWS profile; apikey: the key in $POSEPIPE_API_KEY",
    )
    ui.add_argument("--profile", help="AWS profile for --auth iam (default: the default credentials)")
    ui.add_argument("--region", help="AWS region of the API for --auth iam (default: the profile's)")

    export = commands.add_parser("export", help="convert a result to another format")
    export.add_argument("result", type=Path, metavar="RESULT_JSON")
    export.add_argument("--coco", action="store_true", required=True, help="COCO-17 keypoints")
    export.add_argument("-o", "--out", type=Path, help="output file (default: <result>.coco.json)")
    return parser


def _error(message: str) -> None:
    print(f"posepipe: error: {message}", file=sys.stderr)


def _run_images(args: argparse.Namespace) -> int:
    from posepipe.engines.base import InferenceOptions
    from posepipe.errors import InputError
    from posepipe.image_job import ImageJob, ImageJobOptions

    job = ImageJob(
        ImageJobOptions(
            inference=InferenceOptions(model_path=args.model, max_poses=args.max_poses, engine=args.engine),
            annotate=not args.no_annotate,
            max_pixels=int(args.max_megapixels * 1_000_000),
        )
    )
    failures = 0
    try:
        for path in args.paths:
            try:
                written = job.write(path, args.out)
            except InputError as exc:
                _error(str(exc))
                failures += 1
                continue
            print(" ".join(str(p) for p in written))
    finally:
        job.close()
    return EXIT_BAD_INPUT if failures else 0


def _run_videos(args: argparse.Namespace) -> int:
    from posepipe.engines.base import InferenceOptions
    from posepipe.errors import InputError
    from posepipe.postprocess.tracking import SmoothingOptions
    from posepipe.video.local import VideoJobOptions, run_video

    options = VideoJobOptions(
        inference=InferenceOptions(model_path=args.model, max_poses=args.max_poses, engine=args.engine),
        chunk_frames=args.chunk_frames,
        warmup_s=args.warmup_s,
        workers=args.workers,
        annotate=not args.no_annotate,
        smoothing=SmoothingOptions(
            enabled=args.smoothing == "on",
            min_cutoff=args.smoothing_min_cutoff,
            beta=args.smoothing_beta,
            world_min_cutoff=args.smoothing_min_cutoff,
            world_beta=args.smoothing_beta,
        ),
        overlay=args.overlay,
        progress=not args.no_progress and sys.stderr.isatty(),
    )
    failures = 0
    for path in args.paths:
        try:
            report = run_video(path, args.out, options)
        except InputError as exc:
            _error(str(exc))
            failures += 1
            continue
        summary = report.summary
        print(
            f"{path}: {summary['frames']} frames, {summary['mean_persons_per_frame']:.2f} persons/frame, "
            f"{summary['fps_processed']} fps -> {report.out_dir}"
        )
    return EXIT_BAD_INPUT if failures else 0


def _run_models(args: argparse.Namespace) -> int:
    from posepipe.assets import pose_model as models
    from posepipe.assets.model_build import build_model

    if args.models_command == "build":
        existed = models.built_model_path().is_file()
        path = build_model(wheel=args.from_wheel, force=args.force)
        print(f"{'using cached' if existed and not args.force else 'built'} {path}")
    else:
        print(models.resolve_model_path(None))
    return 0


def _run_samples(args: argparse.Namespace) -> int:
    from posepipe.assets import samples

    if args.samples_command == "fetch":
        for name, path in samples.fetch_all().items():
            print(f"{name}: {path}")
    else:
        print(samples.sample_path(args.name))
    return 0


def _run_serve(args: argparse.Namespace) -> int:
    import logging
    import threading

    from posepipe.local_stack.stack import LocalStack

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    stack = LocalStack(host=args.host, on_event=lambda line: print(line, flush=True))
    try:
        stack.start()
    except OSError as exc:
        _error(f"cannot start the local stack: {exc} (is another `posepipe serve` running?)")
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


def _run_ui(args: argparse.Namespace) -> int:
    try:
        import streamlit  # noqa: F401
    except ImportError:
        _error("posepipe ui needs Streamlit: install posepipe's ui extra (pip install 'posepipe[ui]')")
        return EXIT_BAD_INPUT
    from posepipe.ui import settings

    if not args.api_url.startswith(("http://", "https://")):
        _error(f"--api-url must start with http:// or https://, not {args.api_url!r}")
        return EXIT_BAD_INPUT
    app = Path(__file__).resolve().parent / "ui" / "app.py"
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


def _run_export(args: argparse.Namespace) -> int:
    from posepipe.errors import InputError
    from posepipe.export.coco import to_coco
    from posepipe.outputs import write_files_atomically

    try:
        result = json.loads(args.result.read_text(encoding="utf-8"))
        coco = to_coco(result)
    except FileNotFoundError as exc:
        raise InputError(str(args.result), "file not found") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(str(args.result), f"not a posepipe result ({exc})") from exc
    out = args.out or args.result.with_name(args.result.name.removesuffix(".json") + ".coco.json")
    write_files_atomically({out: json.dumps(coco, separators=(",", ":")).encode()})
    print(out)
    return 0


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


def main(argv: Sequence[str] | None = None) -> int:
    from posepipe.errors import PosepipeError

    args = build_parser().parse_args(argv)
    if argv is None:  # run as a command (not called from Python): own the process's stderr
        silence_native_stderr()
    handlers = {
        "image": _run_images,
        "video": _run_videos,
        "models": _run_models,
        "samples": _run_samples,
        "export": _run_export,
        "serve": _run_serve,
        "ui": _run_ui,
    }
    try:
        return handlers[args.command](args)
    except PosepipeError as exc:
        _error(str(exc))
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        _error("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
