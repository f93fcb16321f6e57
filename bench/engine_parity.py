"""How closely two runs of ``posepipe video`` agree: the torch engine (the deployed GPU endpoint's
code path) against the default CPU engine, on the same video.

Persons are matched frame by frame, greedily by the IoU of their boxes (at least 0.5). Reported:
the share of the reference's persons matched, and the median (and 95th percentile) distance
between matched persons' landmarks, in pixels. Issue 21's bar: at least 95 % matched and a
median of at most 1 px.

    python bench/engine_parity.py REFERENCE/keypoints.json CANDIDATE/keypoints.json [--json OUT]
    python bench/engine_parity.py --run [VIDEO] [--json OUT]   # runs both engines first
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "layers"))
MIN_MATCHED = 0.95
MAX_MEDIAN_PX = 1.0


def compare(reference: dict[str, Any], candidate: dict[str, Any]) -> dict[str, Any]:
    from posepipe.video.result_agreement import compare_results

    report = compare_results(reference, candidate)
    report["passes"] = report["matched_share"] >= MIN_MATCHED and report["median_px"] <= MAX_MEDIAN_PX
    return report


def run(video: Path, out: Path, engine: str) -> tuple[dict[str, Any], float]:
    command = Path(sys.executable).with_name("posepipe")
    started = time.perf_counter()
    subprocess.run(
        [
            str(command),
            "video",
            str(video),
            "-o",
            str(out),
            "--no-annotate",
            "--no-progress",
            "--engine",
            engine,
        ],
        check=True,
    )
    seconds = time.perf_counter() - started
    return json.loads((out / video.stem / "keypoints.json").read_text()), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, help="REFERENCE and CANDIDATE keypoints.json")
    parser.add_argument("--run", nargs="?", const="vtest.avi", help="run both engines on this video first")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.run:
        sys.path.insert(0, str(ROOT / "layers"))
        from posepipe.assets.samples import sample_path

        video = Path(args.run) if Path(args.run).exists() else sample_path(args.run)
        with tempfile.TemporaryDirectory() as work:
            reference, ref_s = run(video, Path(work) / "default", "mediapipe")
            candidate, cand_s = run(video, Path(work) / "torch", "torch")
        report = {**compare(reference, candidate), "reference_s": ref_s, "candidate_s": cand_s}
    else:
        if len(args.files) != 2:
            parser.error("give REFERENCE and CANDIDATE keypoints.json, or --run")
        reference, candidate = (json.loads(path.read_text()) for path in args.files)
        report = compare(reference, candidate)
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    sys.exit(0 if report["passes"] else 1)


if __name__ == "__main__":
    main()
