"""Schemathesis hooks for ``tests/test_fuzzing.py`` (loaded by SCHEMATHESIS_HOOKS): every
other generated upload becomes a real PNG drawing, so adds succeed and the stateful
sequences reach the operations that follow an add (get, similar, delete)."""

import hashlib
from typing import Any

import schemathesis

from tests.conftest import drawing, encode


@schemathesis.hook
def map_body(context: schemathesis.HookContext, body: Any) -> Any:
    if isinstance(body, dict) and isinstance(body.get("file"), bytes | str):
        raw = body["file"].encode() if isinstance(body["file"], str) else body["file"]
        digest = hashlib.sha256(raw).digest()
        if digest[0] % 2 == 0:
            return {**body, "file": encode(drawing(seed=digest[1]), "PNG")}
    return body
