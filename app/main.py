"""The FastAPI application: ``uvicorn app.main:app``.

``create_app`` builds the settings and the app; the lifespan loads the CLIP model and
indexes IMAGES_DIR once, before the first request is served.
"""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from app.config import Settings, load_settings
from app.grid_removal import GridRemovalParams
from app.http_errors import register_error_handlers
from app.image_store import ImageStore
from app.model import ImageEmbedder
from app.preprocessing import PreprocessingOptions
from app.routes import router
from app.search import SimilaritySearch
from app.upload_limit import UploadSizeLimitMiddleware


def build_search(settings: Settings) -> SimilaritySearch:
    """Load the model and index the collection (blocking; minutes for big collections)."""
    embedder = ImageEmbedder.load(settings.model_name, settings.device)
    search = SimilaritySearch(
        embedder,
        ImageStore(settings.images_dir),
        preprocessing=PreprocessingOptions(
            remove_grid=settings.grid_removal,
            working_side=settings.grid_working_side,
            grid=GridRemovalParams(
                ink_threshold_fraction=settings.grid_ink_threshold,
                min_grid_lines=settings.grid_min_lines,
                max_disc_fraction=settings.grid_max_disc_fraction,
            ),
        ),
        max_image_pixels=settings.max_image_pixels,
        batch_size=settings.embed_batch_size,
    )
    search.index_collection()
    return search


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    app.state.search = await to_thread.run_sync(build_search, settings)
    yield


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
    app = FastAPI(
        title="Image similarity search",
        description="Upload a drawing; get the most similar images of the collection, "
        "ranked by cosine similarity of CLIP embeddings after grid removal.",
        version="1.0.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.include_router(router)
    # The lifespan creates a missing folder before the first request.
    app.mount("/static", StaticFiles(directory=settings.images_dir, check_dir=False), name="static")
    register_error_handlers(app)
    # Added first, so it runs inside CORS and its 413 answers carry CORS headers.
    app.add_middleware(UploadSizeLimitMiddleware, max_upload_bytes=settings.max_upload_bytes)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_origin_regex=settings.cors_origin_regex,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["*"],
    )
    return app


app = create_app()
