"""The ``render_segment`` Lambda: the handler is :func:`posepipe.cloud.handlers.render_segment.handler`."""

from posepipe.cloud.handlers.render_segment import handler

__all__ = ["handler"]
