"""``posepipe ui``: starts the Streamlit app, or says in one line why it cannot."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.support.paths import REPO


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _posepipe_ui(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "posepipe.cli", "ui", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
        check=False,
        cwd=REPO,
    )


def test_without_streamlit_it_says_so_in_one_line(tmp_path: Path) -> None:
    shadow = tmp_path / "streamlit"
    shadow.mkdir()
    (shadow / "__init__.py").write_text("raise ImportError(\"No module named 'streamlit'\")\n")
    run = _posepipe_ui(env={"PYTHONPATH": str(tmp_path)})
    assert run.returncode == 2
    assert run.stderr == (
        "posepipe: error: posepipe ui needs Streamlit: "
        "install posepipe's ui extra (pip install 'posepipe[ui]')\n"
    )


def test_an_api_url_without_a_scheme_is_refused() -> None:
    run = _posepipe_ui("--api-url", "localhost:3000")
    assert run.returncode == 2
    assert (
        run.stderr == "posepipe: error: --api-url must start with http:// or https://, not 'localhost:3000'\n"
    )


def test_it_serves_the_app_until_interrupted() -> None:
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "posepipe.cli",
            "ui",
            "--port",
            str(port),
            "--api-url",
            "http://127.0.0.1:3999",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
    )
    try:
        deadline = time.monotonic() + 60
        health = None
        while health is None:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            assert time.monotonic() < deadline
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=5) as answer:
                    health = answer.read().decode()
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.3)
        assert health == "ok"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as answer:
            assert "<title>Streamlit</title>" in answer.read().decode()
    finally:
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=30)[0]
    assert process.returncode == 0, output
    assert output.startswith(
        f"posepipe ui: http://127.0.0.1:{port} (API: http://127.0.0.1:3999; Ctrl-C stops it)"
    )
