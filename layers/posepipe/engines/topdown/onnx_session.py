"""ONNX Runtime sessions for the top-down engine's networks (CenterNet, NanoDet, MoveNet)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def onnx_session(model_path: str | Path, threads: int = 1) -> tuple[Any, str]:
    """A CPU session of the network at ``model_path`` with ``threads`` intra-op threads (one
    inter-op thread: posepipe runs one network at a time per process), and its input's name."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    return session, session.get_inputs()[0].name
