"""The service's log: one format, with timestamps, and one level (LOG_LEVEL) for our
lines and uvicorn's.

uvicorn installs its own handlers (no timestamps) before it imports the app; they are
removed here so that its lines go through the root logger's format like ours. With
REQUEST_LOG on, our request line (which has the duration) replaces uvicorn's access log.
"""

import logging

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


def configure_logging(level: str, request_log: bool = False) -> None:
    logging.basicConfig(level=level, format=LOG_FORMAT)
    # basicConfig leaves the level alone where the root logger has handlers already (a
    # host application's, pytest's).
    logging.getLogger().setLevel(level)
    for name in UVICORN_LOGGERS:
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
        uvicorn_logger.setLevel(level)
    logging.getLogger("uvicorn.access").disabled = request_log
