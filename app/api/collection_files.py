"""``/static``: the collection's image files as they are in IMAGES_DIR, and nothing else
there: a name starting with a dot (an upload in progress, a delete's withdrawn file, the
collection marker, any hidden file) answers 404 as if it were not there."""

from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope


class CollectionFiles(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        if any(part.startswith(".") for part in path.replace("\\", "/").split("/")):
            raise HTTPException(status_code=404)
        return await super().get_response(path, scope)
