"""``/static``: the collection's image files as they are in IMAGES_DIR, and nothing else
there: a name starting with a dot (an upload in progress, a delete's withdrawn file, the
collection marker, any hidden file), a subfolder's file, or a file that is not a raster
image by its name (a page, an SVG: served on the page's own origin, either could run a
script there) answers 404 as if it were not there."""

import mimetypes
from typing import Final

from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

RASTER_TYPES: Final = frozenset(
    {"image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp", "image/tiff"}
)


class CollectionFiles(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        name = path.replace("\\", "/")
        if "/" in name or name.startswith(".") or mimetypes.guess_type(name)[0] not in RASTER_TYPES:
            raise HTTPException(status_code=404)
        return await super().get_response(path, scope)
