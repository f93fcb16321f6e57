"""The commands that run jobs on this machine: ``image``, ``video``, ``export``, ``models``, ``samples``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from posepipe.cli.parser import EXIT_BAD_INPUT, report_error

if TYPE_CHECKING:
    from posepipe.analysis.cleaning import CleaningOptions
    from posepipe.engines.base import InferenceOptions


def inference_options(args: argparse.Namespace) -> InferenceOptions:
    """The engine options ``image`` and ``video`` share (``--model``, ``--max-poses``, ...)."""
    from posepipe.engines.base import DEFAULT_MAX_POSES, InferenceOptions, pair_detector

    detector = pair_detector(args.model, args.detector)
    return InferenceOptions(
        model_path=args.model,
        max_poses=args.max_poses or DEFAULT_MAX_POSES[detector],
        engine=args.engine,
        detector=detector,
        detect_every=args.detect_every,
    )


def cleaning_options(args: argparse.Namespace) -> CleaningOptions:
    """The motion analysis' cleaning steps (``--max-gap``, ``--cutoff``, ...)."""
    from posepipe.analysis.cleaning import CleaningOptions
    from posepipe.errors import EngineError

    try:
        return CleaningOptions(
            fill_gaps=not args.no_gap_filling,
            max_gap_s=args.max_gap,
            interpolation=args.interpolation,
            butterworth=not args.no_filter,
            order=args.filter_order,
            cutoff_hz=args.cutoff,
        )
    except ValueError as exc:
        raise EngineError(str(exc)) from None


def run_images(args: argparse.Namespace) -> int:
    from posepipe.errors import InputError
    from posepipe.image_job import ImageJob, ImageJobOptions

    job = ImageJob(
        ImageJobOptions(
            inference=inference_options(args),
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
                report_error(str(exc))
                failures += 1
                continue
            print(" ".join(str(p) for p in written))
    finally:
        job.close()
    return EXIT_BAD_INPUT if failures else 0


def run_videos(args: argparse.Namespace) -> int:
    from posepipe.errors import InputError
    from posepipe.postprocess.smoothing import SmoothingOptions
    from posepipe.video.local import VideoJobOptions, run_video

    options = VideoJobOptions(
        inference=inference_options(args),
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
        analysis_formats=("all",) if args.analyze else None,
        cleaning=cleaning_options(args),
    )
    failures = 0
    for path in args.paths:
        try:
            report = run_video(path, args.out, options)
        except InputError as exc:
            report_error(str(exc))
            failures += 1
            continue
        summary = report.summary
        print(
            f"{path}: {summary['frames']} frames, {summary['mean_persons_per_frame']:.2f} persons/frame, "
            f"{summary['fps_processed']} fps -> {report.out_dir}"
        )
    return EXIT_BAD_INPUT if failures else 0


def run_models(args: argparse.Namespace) -> int:
    from posepipe.assets import catalogue
    from posepipe.assets.model_build import build_model

    if args.models_command == "list":
        print(catalogue.listing())
    elif args.models_command == "build":
        specs = [catalogue.model_spec(name) for name in args.names] or list(catalogue.CATALOGUE.values())
        for spec in specs:
            if args.from_wheel is not None and spec.name == "blazepose-full":
                built = not spec.is_built() or args.force
                build_model(spec.path, wheel=args.from_wheel, force=args.force)
                spec.built_path()  # the pinned sha256, whatever wheel it came from
            else:
                built = catalogue.build(spec, force=args.force)
            print(f"{spec.name}: {'built' if built else 'using cached'} {spec.path}")
    elif args.models_command == "pack":
        return _pack_models(args)
    else:
        print(catalogue.resolve_model(args.name))
    return 0


def default_endpoint_models() -> list[str]:
    """The catalogue models the endpoint's default engine runs: the top-down engine's default
    detector (centernet) with BlazePose Full, and MoveNet Lightning (the second opinion)."""
    from posepipe.engines.base import DEFAULT_DETECTOR
    from posepipe.engines.topdown.models import FINDER_MODEL, required_models

    return required_models(FINDER_MODEL, DEFAULT_DETECTOR)


def _pack_models(args: argparse.Namespace) -> int:
    """``models pack``: build what is missing, write the archive, print its sha256 and path (one
    line, as ``sha256sum`` does: ``sha256sum -c`` checks it)."""
    from posepipe.assets import catalogue
    from posepipe.assets.model_archive import pack_models
    from posepipe.assets.pose_model import file_sha256

    names = list(dict.fromkeys(args.models or default_endpoint_models()))
    for spec in [catalogue.model_spec(name) for name in names]:
        if catalogue.build(spec):
            print(f"{spec.name}: built {spec.path}", file=sys.stderr)
    manifest = pack_models(names, args.output)
    print(f"packed {', '.join(manifest.names)} into {args.output}", file=sys.stderr)
    print(f"{file_sha256(args.output)}  {args.output}")  # as sha256sum writes it
    return 0


def run_samples(args: argparse.Namespace) -> int:
    from posepipe.assets import samples

    if args.samples_command == "fetch":
        for name, path in samples.fetch_all().items():
            print(f"{name}: {path}")
    else:
        print(samples.sample_path(args.name))
    return 0


def run_export(args: argparse.Namespace) -> int:
    from posepipe.errors import InputError
    from posepipe.outputs import write_files_atomically

    try:
        result = json.loads(args.result.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(str(args.result), "file not found") from exc
    except ValueError as exc:
        raise InputError(str(args.result), f"not JSON ({exc})") from exc
    if args.coco:
        return _export_coco(args, result)
    from posepipe.errors import EngineError
    from posepipe.export.motion_files import analysis_outputs, parse_formats

    try:
        formats = parse_formats(args.format)
    except ValueError as exc:
        raise EngineError(str(exc)) from None
    try:
        files, _ = analysis_outputs(result, formats, cleaning_options(args))
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(str(args.result), f"not a posepipe result ({exc})") from exc
    folder = args.out or args.result.parent
    write_files_atomically({folder / name: data for name, data in files.items()})
    for name in sorted(files):
        print(folder / name)
    return 0


def _export_coco(args: argparse.Namespace, result: dict[str, object]) -> int:
    from posepipe.errors import InputError
    from posepipe.export.coco import to_coco
    from posepipe.outputs import write_files_atomically

    try:
        coco = to_coco(result)
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(str(args.result), f"not a posepipe result ({exc})") from exc
    out = args.out or args.result.with_name(args.result.name.removesuffix(".json") + ".coco.json")
    write_files_atomically({out: json.dumps(coco, separators=(",", ":")).encode()})
    print(out)
    return 0
