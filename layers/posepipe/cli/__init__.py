"""``posepipe``: pose estimation on images and videos from the command line (no AWS needed).

Each bad input gets one line on stderr naming the file and the reason; the other inputs of the
same command are still processed, and the exit status is 2 if any input failed.

:mod:`~posepipe.cli.parser` declares the commands and their options; :mod:`~posepipe.cli.jobs` runs
``image``, ``video``, ``export``, ``models`` and ``samples``; :mod:`~posepipe.cli.services` runs
``serve`` (the local stack) and ``ui`` (the web app); :mod:`~posepipe.cli.main` dispatches.
"""

from __future__ import annotations

import os

os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ start-up chatter
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

from posepipe.cli.main import main

__all__ = ["main"]
