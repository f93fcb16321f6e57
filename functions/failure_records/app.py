"""The ``failure_records`` Lambda: the handler is :func:`posepipe.cloud.handlers.failure_records.handler`."""

from posepipe.cloud.handlers.failure_records import handler

__all__ = ["handler"]
