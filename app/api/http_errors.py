"""The one place where domain errors become HTTP answers: ``{"detail": "..."}``, written
in the language the request's ``Accept-Language`` prefers (``app.messages``)."""

import contextlib
import json
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match, Mount

from app.api.schemas import ErrorResponse
from app.errors import (
    ConfirmationRequiredError,
    DuplicateImageError,
    ImageNotFoundError,
    ImageTooLargeError,
    InvalidImageError,
    InvalidLabelError,
    InvalidTextError,
    ServiceBusyError,
    ServiceError,
    StorageFullError,
    StoreDamagedError,
    TextSearchDisabledError,
    UnsupportedImageFormatError,
    WriteRefusedError,
    WrongApiKeyError,
)
from app.messages.catalogue import CATALOGUES, Language, message, negotiate, render

# How much of what a client sent (a field's value, an address, an Origin) an answer
# repeats: enough to recognise it, never a megabyte echoed back or logged.
MAX_ECHO_CHARS = 80
API_KEY_HEADER = "X-API-Key"

STATUS_BY_ERROR: dict[type[ServiceError], int] = {
    InvalidImageError: 400,
    ConfirmationRequiredError: 400,
    WrongApiKeyError: 401,
    WriteRefusedError: 403,
    ImageNotFoundError: 404,
    TextSearchDisabledError: 404,
    DuplicateImageError: 409,
    ImageTooLargeError: 413,
    UnsupportedImageFormatError: 415,
    InvalidTextError: 422,
    InvalidLabelError: 422,
    ServiceBusyError: 503,
    StoreDamagedError: 500,
    StorageFullError: 507,
}

# For the ``responses`` of routes, so /docs lists every answer.
ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorResponse, "description": "Empty, corrupt or truncated image."},
    413: {
        "model": ErrorResponse,
        "description": "Upload over MAX_UPLOAD_MB, or image over MAX_IMAGE_PIXELS.",
    },
    415: {"model": ErrorResponse, "description": "Not an image, or an unsupported format."},
}
BUSY_RESPONSE: dict[int | str, dict[str, object]] = {
    503: {
        "model": ErrorResponse,
        "description": "Still indexing, or too many queued requests; retry after the "
        "Retry-After header's seconds.",
    }
}
JSON_BODY_RESPONSE: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorResponse, "description": "The body is not UTF-8."}
}
NOT_FOUND_RESPONSE: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorResponse, "description": "No image with this id."}
}
WRITE_RESPONSES: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorResponse, "description": "API_KEY is set and X-API-Key is wrong."},
    403: {"model": ErrorResponse, "description": "API_KEY is unset and the client is remote."},
}


def shortened(text: str, limit: int = MAX_ECHO_CHARS) -> str:
    """``text``, cut to ``limit`` characters (an ellipsis says it was cut)."""
    return text if len(text) <= limit else f"{text[:limit]}…"


def status_for(error: ServiceError) -> int:
    for error_type in type(error).__mro__:
        if error_type in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[error_type]
    return 500


def language_of(request: Request) -> Language:
    """The language of the messages a request's answer carries."""
    return negotiate(request.headers.get("accept-language"))


def _headers_for(error: ServiceError) -> dict[str, str] | None:
    if isinstance(error, ServiceBusyError):
        return {"Retry-After": str(error.retry_after_s)}
    if isinstance(error, WrongApiKeyError):
        return {"WWW-Authenticate": API_KEY_HEADER}
    return None


async def _service_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    return JSONResponse(
        status_code=status_for(exc),
        content={"detail": exc.in_language(language_of(request))},
        headers=_headers_for(exc),
    )


HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


async def _method_not_allowed_handler(request: Request, exc: Exception) -> JSONResponse:
    """405 with every method the path has in ``Allow``: Starlette names only those of
    the first route whose path matches (``POST`` for ``/images/``, which also has GET
    and DELETE)."""
    assert isinstance(exc, HTTPException)
    routes = [route for route in request.app.router.routes if not isinstance(route, Mount)]
    allowed = [
        method
        for method in HTTP_METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes
        )
    ]
    return JSONResponse(
        status_code=405, content={"detail": exc.detail}, headers={"Allow": ", ".join(allowed)}
    )


async def _unparsable_body_handler(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 400 for a body it cannot parse, saying why when the body is not UTF-8
    (JSON must be; its own message does not say)."""
    assert isinstance(exc, HTTPException)
    detail = exc.detail
    if isinstance(exc.__cause__, UnicodeDecodeError):
        detail = render(
            message("body_not_utf8", reason=exc.__cause__.reason, position=exc.__cause__.start),
            language_of(request),
        )
    return JSONResponse(status_code=400, content={"detail": detail}, headers=exc.headers)


def _json_safe(value: Any) -> Any:
    """``value`` with every number JSON cannot hold (NaN, infinities: Python's JSON reader
    takes them, as ``1e400`` becomes one) written as the text a client sent."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_safe(item) for item in value]
    return value


async def _validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422, each error's ``msg`` in the request's language where the catalogue
    has its type (``field.<type>``), and its echo of the input cut to ``MAX_ECHO_CHARS``."""
    assert isinstance(exc, RequestValidationError)
    catalogue = CATALOGUES[language_of(request)]
    errors = []
    for error in _json_safe(jsonable_encoder(exc.errors())):
        template = catalogue.get(f"field.{error.get('type')}")
        if isinstance(template, str):
            # A context this template does not expect keeps Pydantic's own words.
            with contextlib.suppress(KeyError, IndexError):
                error["msg"] = template.format(**error.get("ctx", {}))
        if "input" in error:
            echoed = error["input"]
            text = echoed if isinstance(echoed, str) else json.dumps(echoed)
            if len(text) > MAX_ECHO_CHARS:
                error["input"] = shortened(text)
        errors.append(error)
    return JSONResponse(status_code=422, content={"detail": errors})


def register_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error_handler)
    app.add_exception_handler(RequestValidationError, _validation_error_handler)
    app.add_exception_handler(400, _unparsable_body_handler)
    app.add_exception_handler(405, _method_not_allowed_handler)
