"""The ``image_infer`` Lambda: the handler is :func:`posepipe.cloud.handlers.image_infer.handler`."""

from posepipe.cloud.handlers.image_infer import handler

__all__ = ["handler"]
