#!/usr/bin/env python3
"""``cdk synth`` / ``cdk deploy`` entry point (cdk.json: ``python3 infra/app.py``); see docs/DEPLOY.md."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from posepipe_infra.app import build_app
from posepipe_infra.settings import SettingsError

if __name__ == "__main__":
    try:
        app, _ = build_app()
    except SettingsError as err:
        print(f"posepipe: {err}", file=sys.stderr)
        sys.exit(2)
    app.synth()
