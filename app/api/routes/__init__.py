"""HTTP routes, by resource: parse the request, call one domain method in a worker
thread, answer with a schema."""

from fastapi import APIRouter

from app.api.routes import compare, images, operations, search

router = APIRouter()
router.include_router(search.router)
router.include_router(images.router)
router.include_router(compare.router)
router.include_router(operations.router)
