"""Load a Lambda handler module from ``functions/<name>/app.py`` as Lambda would (by file)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

FUNCTIONS = Path(__file__).resolve().parents[1] / "functions"
EVENTS = Path(__file__).resolve().parent / "events"


def load_handler_module(function: str) -> ModuleType:
    """A fresh import of ``functions/<function>/app.py`` (re-reads the environment)."""
    path = FUNCTIONS / function / "app.py"
    name = f"posepipe_function_{function}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
