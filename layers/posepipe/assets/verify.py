"""Whether a file is a pose model MediaPipe can run: loaded by its ``PoseLandmarker`` and run once."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from posepipe.errors import ModelError


def verify_model(path: Path, source: str | None = None) -> None:
    """Load ``path`` with MediaPipe's PoseLandmarker and run it once, or raise :class:`ModelError`
    (naming ``source``, where the model came from, else ``path``)."""
    import zipfile

    label = source or str(path)
    if not zipfile.is_zipfile(path):
        raise ModelError(f"{label}: not a MediaPipe .task bundle (expected a zip file)")
    try:
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions
        from mediapipe.tasks.python.vision import PoseLandmarker, PoseLandmarkerOptions

        options = PoseLandmarkerOptions(base_options=BaseOptions(model_asset_path=str(path)))
        with PoseLandmarker.create_from_options(options) as landmarker:
            blank = np.zeros((256, 256, 3), dtype=np.uint8)
            landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=blank))
    except Exception as exc:  # MediaPipe raises RuntimeError/ValueError with its own text
        raise ModelError(f"{label}: MediaPipe could not load the model: {exc}") from exc
