"""Cross-site writes: a page on any origin can make a clerk's browser send a form POST (a
multipart upload needs no CORS preflight), so a write's network or key says nothing about
which page asked for it. The browser says so itself, in ``Origin`` (or ``Referer``).

Pipeline: the request's ``Origin`` header, else the origin of its ``Referer``; neither
present (curl, scripts, servers) -> not judged here; present -> allowed when it is the
service's own origin (the request's scheme and ``Host``, or PUBLIC_BASE_URL's), is listed in
CORS_ORIGINS (``*`` lists every origin) or matches CORS_ORIGIN_REGEX, the rules the CORS
answers follow; anything else, ``null`` included (sandboxed frames, local files), is
foreign.
"""

import re
from collections.abc import Sequence
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of an absolute http(s) URL, lower-cased and without its
    default port (as browsers write ``Origin``); None for anything else."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    shown_port = "" if port in (None, DEFAULT_PORTS[scheme]) else f":{port}"
    return f"{scheme}://{host}{shown_port}"


def foreign_origin(
    origin: str | None,
    referer: str | None,
    own_origins: Sequence[str],
    cors_origins: Sequence[str],
    cors_origin_regex: str | None,
) -> str | None:
    """The origin a request came from when it is neither the service's own nor one the
    settings allow; None when it is allowed or the request names no origin."""
    if origin is None and referer is None:
        return None
    claimed = origin if origin is not None else referer or ""
    normalised = origin_of(claimed)
    if normalised is None:
        return claimed.strip() or "null"
    allowed = {origin_of(url) for url in (*own_origins, *cors_origins)}
    if "*" in cors_origins or normalised in allowed:
        return None
    if cors_origin_regex is not None and re.fullmatch(cors_origin_regex, normalised):
        return None
    return normalised
