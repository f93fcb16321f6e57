"""The ``video_split`` Lambda: the handler is :func:`posepipe.cloud.handlers.video_split.handler`."""

from posepipe.cloud.handlers.video_split import handler

__all__ = ["handler"]
