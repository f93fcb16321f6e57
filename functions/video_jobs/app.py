"""The ``video_jobs`` Lambda: the handler is :func:`posepipe.cloud.handlers.video_jobs.handler`."""

from posepipe.cloud.handlers.video_jobs import handler

__all__ = ["handler"]
