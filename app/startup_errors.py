"""Start-up errors an operator reads: one line, no traceback."""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import ServiceError


class OneLineStartupErrors:
    """ASGI wrapper for the served app: a ``ServiceError`` raised while the lifespan
    starts (the model cannot be loaded) reaches uvicorn as its one-line message, which
    uvicorn prints before exiting, instead of Starlette's traceback."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        held: list[Message] = []

        async def hold_failure(message: Message) -> None:
            if message["type"] == "lifespan.startup.failed":
                held.append(message)  # its text is a traceback; sent below if no better
            else:
                await send(message)

        try:
            await self.app(scope, receive, hold_failure)
        except ServiceError as exc:
            await send({"type": "lifespan.startup.failed", "message": exc.for_operator()})
        except BaseException:
            for message in held:
                await send(message)
            raise
