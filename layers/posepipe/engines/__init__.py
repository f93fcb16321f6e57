"""Pose engines: one interface (:mod:`posepipe.engines.base`), with MediaPipe Tasks and its PyTorch
port behind it."""
