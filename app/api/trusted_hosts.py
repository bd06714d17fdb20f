"""Which host names are this service: a request whose ``Host`` is not one of them answers
400 before anything else runs.

Why: a page on any site can make a clerk's browser resolve its own name to the service's
address (DNS rebinding); the browser then counts that page as the service itself, so the
same-origin rule, CORS and the write check would all let it read and delete the
collection. A name the operator did not list is refused, which that page cannot change.

Pipeline: ``Host`` (``host[:port]``, IPv6 in brackets) -> its name, lower-cased -> allowed
when it is listed in ALLOWED_HOSTS (``*`` lists every name; ``*.example.org`` its
subdomains) or is PUBLIC_BASE_URL's. Starlette's TrustedHostMiddleware matches the same
way but answers plain text in one language; this one answers JSON in the client's.
"""

from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from app.messages import catalogue

ANY_HOST = "*"


def host_name(host_header: str) -> str:
    """The name in a ``Host`` header, lower-cased, without its port; IPv6 keeps its
    brackets (``[::1]``)."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def trusted_hosts(allowed_hosts: Iterable[str], public_base_url: str | None) -> frozenset[str]:
    """ALLOWED_HOSTS, lower-cased, with PUBLIC_BASE_URL's name."""
    names = {host_name(name) for name in allowed_hosts}
    if public_base_url is not None:
        names.add(host_name(urlsplit(public_base_url).netloc.rsplit("@", 1)[-1]))
    return frozenset(names)


def is_trusted(name: str, trusted: frozenset[str]) -> bool:
    if ANY_HOST in trusted or name in trusted:
        return True
    return any(pattern.startswith("*.") and name.endswith(pattern[1:]) for pattern in trusted)


class TrustedHostMiddleware:
    def __init__(self, app: ASGIApp, trusted: frozenset[str]) -> None:
        self.app = app
        self.trusted = trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        name = host_name(headers.get(b"host", b"").decode("latin-1"))
        if is_trusted(name, self.trusted):
            await self.app(scope, receive, send)
            return
        language = catalogue.negotiate(headers.get(b"accept-language", b"").decode("latin-1"))
        detail = catalogue.render(catalogue.message("host_not_allowed", host=name), language)
        await JSONResponse({"detail": detail}, status_code=400)(scope, receive, send)
