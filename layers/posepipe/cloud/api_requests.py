"""Reading an API Gateway (REST, payload v1) request as posepipe's APIs do: the body's media type
and its bytes, base64 or not. Problems are :class:`posepipe.cloud.api_errors.ApiError` (4xx)."""

from __future__ import annotations

import base64
import binascii

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from posepipe.cloud.api_errors import ApiError


def media_type(event: APIGatewayProxyEvent) -> str:
    """The request's ``Content-Type`` without parameters, lower case (empty when there is none)."""
    return (event.headers.get("content-type") or "").split(";")[0].strip().lower()


def request_body(event: APIGatewayProxyEvent) -> bytes:
    """The body's bytes: base64-decoded when API Gateway marks it so (binary media types)."""
    body = event.body or ""
    if not event.is_base64_encoded:
        return body.encode("utf-8")
    try:
        return base64.b64decode(body, validate=True)
    except binascii.Error:
        raise ApiError(400, "bad_body", "the body is marked base64 but is not valid base64") from None
