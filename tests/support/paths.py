"""Where things are: the repository, the tests and the JSON event fixtures, from this file's place."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
EVENTS = TESTS / "events"
