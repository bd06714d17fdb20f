"""Paths match exactly: Starlette's route patterns end in ``$``, which in Python also
matches before a final newline, so ``/health%0A`` would answer as ``/health``. A path with
a control character names nothing we serve; it is answered 404 before routing."""

import re

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")


class ExactPathMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _CONTROL_CHARACTER.search(scope["path"]):
            await JSONResponse({"detail": "Not Found"}, status_code=404)(scope, receive, send)
            return
        await self.app(scope, receive, send)
