"""The JSON errors of posepipe's HTTP APIs (``POST /images``, ``POST /videos``, ``GET /jobs/{id}``).

Every refusal is ``{"error": code, "message": ...}`` with a 4xx status; an unexpected failure is
a 500 whose message says nothing of the cause (which goes to the log). The handlers are
registered on a powertools resolver by :func:`register_error_handlers`.
"""

from __future__ import annotations

from collections.abc import Callable

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.metrics import MetricUnit

from posepipe.errors import InputError


class ApiError(Exception):
    """A request the API refuses: its status, error code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def json_error(status: int, code: str, message: str) -> Response[dict[str, str]]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body={"error": code, "message": message},
    )


def register_error_handlers(
    app: APIGatewayRestResolver,
    logger: Logger,
    metrics: Metrics,
    *,
    input_error: Callable[[InputError], ApiError],
    internal: ApiError,
) -> None:
    """JSON answers for :class:`ApiError`, :class:`InputError` (as ``input_error`` maps it), unknown
    routes (404) and anything else (``internal``, logged with its traceback)."""

    def refuse(exc: ApiError) -> Response[dict[str, str]]:
        metrics.add_metric(name="Errors", unit=MetricUnit.Count, value=1)
        logger.info("request refused", extra={"status": exc.status, "code": exc.code, "reason": exc.message})
        return json_error(exc.status, exc.code, exc.message)

    @app.exception_handler(ApiError)  # type: ignore[untyped-decorator]
    def on_api_error(exc: ApiError) -> Response[dict[str, str]]:
        return refuse(exc)

    @app.exception_handler(InputError)  # type: ignore[untyped-decorator]
    def on_input_error(exc: InputError) -> Response[dict[str, str]]:
        return refuse(input_error(exc))

    @app.not_found
    def on_not_found(exc: NotFoundError) -> Response[dict[str, str]]:
        event = app.current_event
        return json_error(404, "not_found", f"no route for {event.http_method} {event.path}")

    @app.exception_handler(Exception)  # type: ignore[untyped-decorator]
    def on_unexpected_error(exc: Exception) -> Response[dict[str, str]]:
        metrics.add_metric(name="Errors", unit=MetricUnit.Count, value=1)
        logger.exception("request failed")
        return json_error(internal.status, internal.code, internal.message)
