"""The one place where domain errors become HTTP answers: ``{"detail": "..."}``."""

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from app.errors import (
    ImageTooLargeError,
    InvalidImageError,
    ServiceError,
    UnsupportedImageFormatError,
)
from app.schemas import ErrorResponse

STATUS_BY_ERROR: dict[type[ServiceError], int] = {
    InvalidImageError: 400,
    ImageTooLargeError: 413,
    UnsupportedImageFormatError: 415,
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


def status_for(error: ServiceError) -> int:
    for error_type in type(error).__mro__:
        if error_type in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[error_type]
    return 500


async def _service_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    return JSONResponse(status_code=status_for(exc), content={"detail": exc.message})


def register_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error_handler)
