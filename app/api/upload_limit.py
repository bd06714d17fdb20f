"""ASGI middleware that refuses request bodies over MAX_UPLOAD_MB with 413 before they are
read: from the Content-Length header when there is one, else by counting the bytes of a
chunked body as they arrive and stopping at the limit."""

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.messages import catalogue

# Room for the multipart boundaries and part headers around the file itself.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


class _BodyTooLargeError(Exception):
    pass


class UploadSizeLimitMiddleware:
    def __init__(self, app: ASGIApp, max_upload_bytes: int) -> None:
        self.app = app
        self.max_upload_bytes = max_upload_bytes
        self.max_body_bytes = max_upload_bytes + MULTIPART_OVERHEAD_BYTES

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        language = catalogue.negotiate(headers.get(b"accept-language", b"").decode("latin-1"))
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._refuse(send, language)
            return

        received = 0
        too_large = False
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    too_large = True
                    raise _BodyTooLargeError
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            # The app turns the aborted body read into its own error answer; replace it.
            if too_large:
                if message["type"] == "http.response.start" and not response_started:
                    response_started = True
                    await self._refuse(send, language)
                return
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except _BodyTooLargeError:
            if not response_started:
                await self._refuse(send, language)

    async def _refuse(self, send: Send, language: catalogue.Language) -> None:
        limit_mb = self.max_upload_bytes / (1024 * 1024)
        detail = catalogue.render(
            catalogue.message("upload_too_large", limit_mb=f"{limit_mb:g}"), language
        )
        body = json.dumps({"detail": detail}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
