"""The service's log: one format, with timestamps, and one level (LOG_LEVEL) for our
lines and uvicorn's.

uvicorn installs its own handlers (no timestamps) before it imports the app; they are
removed here so that its lines go through the root logger's format like ours. With
REQUEST_LOG on, our request line (which has the duration) replaces uvicorn's access log.
Control characters in a message (a request path's ``%0A``, an upload's file name) are
written escaped, so one record is one line and no client can forge a line of its own.
"""

import logging

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
# C0 and C1 control characters and Unicode's line and paragraph separators, as escapes.
CONTROL_ESCAPES = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))} | {
    ord("\n"): "\\n",
    ord("\r"): "\\r",
    ord("\t"): "\\t",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


class OneLineFormatter(logging.Formatter):
    """``LOG_FORMAT`` with the message's control characters escaped (a traceback, which
    the service writes itself, keeps its lines)."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging.Formatter's name
        record.message = record.message.translate(CONTROL_ESCAPES)
        return super().formatMessage(record)


def configure_logging(level: str, request_log: bool = False) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(OneLineFormatter(LOG_FORMAT))
    logging.basicConfig(level=level, handlers=[handler])
    # basicConfig leaves the level alone where the root logger has handlers already (a
    # host application's, pytest's).
    logging.getLogger().setLevel(level)
    for name in UVICORN_LOGGERS:
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
        uvicorn_logger.setLevel(level)
    logging.getLogger("uvicorn.access").disabled = request_log
