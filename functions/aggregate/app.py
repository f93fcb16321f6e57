"""The ``aggregate`` Lambda: the handler is :func:`posepipe.cloud.handlers.aggregate.handler`."""

from posepipe.cloud.handlers.aggregate import handler

__all__ = ["handler"]
