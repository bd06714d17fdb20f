"""The one place where domain errors become HTTP answers: ``{"detail": "..."}``."""

from fastapi import FastAPI, Request
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
    InvalidTextError,
    ServiceBusyError,
    ServiceError,
    StorageFullError,
    TextSearchDisabledError,
    UnsupportedImageFormatError,
)

STATUS_BY_ERROR: dict[type[ServiceError], int] = {
    InvalidImageError: 400,
    ConfirmationRequiredError: 400,
    ImageNotFoundError: 404,
    TextSearchDisabledError: 404,
    DuplicateImageError: 409,
    ImageTooLargeError: 413,
    UnsupportedImageFormatError: 415,
    InvalidTextError: 422,
    ServiceBusyError: 503,
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
NOT_FOUND_RESPONSE: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorResponse, "description": "No image with this id."}
}
WRITE_RESPONSES: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorResponse, "description": "API_KEY is set and X-API-Key is wrong."},
    403: {"model": ErrorResponse, "description": "API_KEY is unset and the client is remote."},
}


def status_for(error: ServiceError) -> int:
    for error_type in type(error).__mro__:
        if error_type in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[error_type]
    return 500


async def _service_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    headers = {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, ServiceBusyError) else None
    return JSONResponse(
        status_code=status_for(exc), content={"detail": exc.message}, headers=headers
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
        detail = (
            f"The request body is not valid UTF-8 ({exc.__cause__.reason} at byte "
            f"{exc.__cause__.start}): send JSON encoded in UTF-8."
        )
    return JSONResponse(status_code=400, content={"detail": detail}, headers=exc.headers)


def register_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error_handler)
    app.add_exception_handler(400, _unparsable_body_handler)
    app.add_exception_handler(405, _method_not_allowed_handler)
