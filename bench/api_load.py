"""``POST /images`` under load: N requests at concurrency C against ``posepipe serve``.

Starts ``posepipe serve`` (the deployed configuration), sends ``--requests`` POST /images of one
photo from ``--concurrency`` threads at once (each a keep-alive session, as a client SDK would),
and prints the errors (any status but 200, or an answer without one frame of persons), the
latency percentiles and the rate. The target (issue 22): 10,000 requests at concurrency 16 with
0 errors. In the local stack one ``image_infer`` environment answers one request at a time (as one
Lambda container does): the rate is this machine's; AWS runs as many containers as requests.

    .venv/bin/python bench/api_load.py [--requests 10000] [--concurrency 16] [--image basketball1.png]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from posepipe.assets.samples import sample_path  # noqa: E402

from tests.support.uistack import API_URL, serve_stack  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--image", default="messi5.jpg", help="a sample image (posepipe samples path NAME)")
    args = parser.parse_args()
    image = sample_path(args.image)
    data = image.read_bytes()
    kind = "image/png" if image.suffix == ".png" else "image/jpeg"
    local = threading.local()
    outcomes: Counter[str] = Counter()
    latencies: list[float] = []
    lock = threading.Lock()

    def one(_: int) -> None:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        started = time.perf_counter()
        try:
            answer = session.post(f"{API_URL}/images", data=data, headers={"Content-Type": kind}, timeout=120)
            ok = answer.status_code == 200 and len(answer.json()["frames"]) == 1
            outcome = "ok" if ok else f"status {answer.status_code}"
        except Exception as exc:  # a connection refused or reset counts as an error
            outcome = type(exc).__name__
        elapsed = time.perf_counter() - started
        with lock:
            outcomes[outcome] += 1
            latencies.append(elapsed)

    with tempfile.TemporaryDirectory() as folder, serve_stack(Path(folder) / "serve.log", env={}):
        requests.post(f"{API_URL}/images", data=data, headers={"Content-Type": kind}, timeout=120)  # warm
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
            list(pool.map(one, range(args.requests)))
        wall = time.perf_counter() - started
    latencies.sort()
    errors = args.requests - outcomes["ok"]
    cut = statistics.quantiles(latencies, n=100)
    print(
        f"{args.requests} POST /images of {image.name} ({len(data)} bytes) at concurrency {args.concurrency}"
    )
    print(f"errors: {errors} ({dict(outcomes)})")
    print(
        f"latency: p50 {cut[49]:.3f} s, p95 {cut[94]:.3f} s, p99 {cut[98]:.3f} s, max {latencies[-1]:.3f} s"
    )
    print(f"wall: {wall:.1f} s, {args.requests / wall:.1f} requests/s")


if __name__ == "__main__":
    main()
