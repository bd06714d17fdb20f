"""``/static``: the collection's image files as they are in IMAGES_DIR, and nothing else
there: a name starting with a dot (an upload in progress, a delete's withdrawn file, the
collection marker, any hidden file), a subfolder's file, or a file that is not a raster
image by its name (a page, an SVG: served on the page's own origin, either could run a
script there) answers 404 as if it were not there."""

import mimetypes
from typing import Final

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from app.folder_guard import require_collection_folder

RASTER_TYPES: Final = frozenset(
    {"image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp", "image/tiff"}
)


class CollectionFiles(StaticFiles):
    async def check_config(self) -> None:
        """Nothing: whether IMAGES_DIR is there is the folder guard's to answer, per
        request, as a 503 that says so (Starlette's check raises a bare 500)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        name = path.replace("\\", "/")
        if "/" in name or name.startswith(".") or mimetypes.guess_type(name)[0] not in RASTER_TYPES:
            raise HTTPException(status_code=404)
        # A moved or swapped IMAGES_DIR answers 503 saying so, not another folder's file.
        folder = scope["app"].state.service.folder
        await run_in_threadpool(require_collection_folder, folder)
        return await super().get_response(path, scope)
