"""The ``join_video`` Lambda: the handler is :func:`posepipe.cloud.handlers.join_video.handler`."""

from posepipe.cloud.handlers.join_video import handler

__all__ = ["handler"]
