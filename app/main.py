"""The FastAPI application, built by a factory: ``uvicorn app.main:served_app --factory``.

Importing this module builds nothing and reads no environment. ``served_app`` reads the
settings (environment and ``.env``) and builds the app; ``create_app`` builds it from
given settings (tests, tools). The lifespan builds the service (``app.service``: the
towers and the stored index) before the first request, then reconciles IMAGES_DIR with
the index in the background: /health answers at once, and searches are served from the
stored index (or answer 503 with Retry-After until a first index exists).
"""

import asyncio
import logging
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from anyio import to_thread
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_fastapi_instrumentator import Instrumentator
from starlette.types import ASGIApp

from app import __version__
from app.api.collection_files import CollectionFiles
from app.api.exact_paths import ExactPathMiddleware
from app.api.http_errors import register_error_handlers
from app.api.request_log import RequestLogMiddleware
from app.api.routes import router
from app.api.security_headers import NoSniffMiddleware
from app.api.trusted_hosts import TrustedHostMiddleware, trusted_hosts
from app.api.upload_limit import UploadSizeLimitMiddleware
from app.config import Settings, load_settings, settings_file, settings_file_warnings
from app.errors import ServiceError
from app.log import configure_logging
from app.memory import limit_malloc_arenas
from app.service import Service
from app.startup_errors import OneLineStartupErrors
from app.storage.image_folder import RESTORE_SAMPLES

logger = logging.getLogger(__name__)

# The service's own page (plain HTML, CSS and JavaScript; no build step).
WEB_DIR = Path(__file__).resolve().parent / "web"
DOCS_ASSETS = "/docs-assets"


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    service = await to_thread.run_sync(Service.open, settings)
    if service.folder.holds_samples:
        logger.warning(
            "IMAGES_DIR=%s holds the repository's samples: adding and deleting images "
            "through the API change them. Restore them with `%s`, or set IMAGES_DIR to a "
            "folder of your own.",
            settings.images_dir,
            RESTORE_SAMPLES,
        )
    if settings.api_key is None:
        logger.warning(
            "API_KEY is not set: only clients in WRITE_ALLOWED_NETWORKS (%s) may add or "
            "delete images.",
            settings.write_networks_text,
        )
    app.state.service = service
    stopping = threading.Event()
    service.progress.begin()  # so /health says "indexing" before the thread starts
    reconcile = service.reconciler.reconcile
    indexing = asyncio.create_task(
        to_thread.run_sync(reconcile, stopping.is_set, settings.confirm_removals)
    )
    indexing.add_done_callback(_log_failure)
    try:
        yield
    finally:
        stopping.set()  # stops between batches; what is embedded so far is kept
        await asyncio.wait([indexing])
        service.close()


def _log_failure(task: "asyncio.Task[object]") -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("Indexing IMAGES_DIR failed", exc_info=task.exception())


def create_app(settings: Settings) -> FastAPI:
    configure_logging(settings.log_level, settings.request_log)
    limit_malloc_arenas()
    # /docs and /redoc load Swagger UI and ReDoc from the service (fastapi-offline ships
    # them), so they render where no CDN can be reached.
    app = FastAPIOffline(
        static_url=DOCS_ASSETS,
        title="Image similarity search",
        description="Upload a drawing; get the most similar registered brands, best first: "
        "found by the shape of their strokes and CLIP's concept after grid removal and "
        "framing, then the closest laid over the drawing, each with a verdict (the same "
        "brand, the brand plus an addition either way, similar, or different). Add, "
        "label, list and delete collection images at run time.",
        version=__version__,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.include_router(router)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html")

    app.mount("/web", StaticFiles(directory=WEB_DIR), name="web")
    # Requests by route and status, and latency per route, in a registry of this app's
    # (the instrumentator leaves a second app in one process uninstrumented otherwise),
    # which also serves the process-wide ones: app.metrics and the process collectors.
    registry = CollectorRegistry(auto_describe=False)
    registry.register(REGISTRY)
    Instrumentator(registry=registry, excluded_handlers=["/metrics"]).instrument(app).expose(
        app, include_in_schema=False
    )
    # A missing folder stops the start (app.folder_guard) before the first request.
    app.mount(
        "/static",
        CollectionFiles(directory=settings.images_dir, check_dir=False),
        name="static",
    )
    register_error_handlers(app)
    # Added first, so it runs inside CORS and its 413 answers carry CORS headers.
    app.add_middleware(UploadSizeLimitMiddleware, max_upload_bytes=settings.max_upload_bytes)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_origin_regex=settings.cors_origin_regex,
        allow_methods=["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=["*"],
    )
    app.add_middleware(ExactPathMiddleware)
    if settings.request_log:
        app.add_middleware(RequestLogMiddleware)
    app.add_middleware(
        TrustedHostMiddleware,
        trusted=trusted_hosts(settings.allowed_hosts, settings.public_base_url),
    )
    app.add_middleware(NoSniffMiddleware)  # outermost: every answer carries it
    return app


def __getattr__(name: str) -> ASGIApp:
    """``app.main:app``, the seed's run command (``uvicorn app.main:app``): the served
    app, built when first asked for, so that importing this module still builds nothing."""
    if name == "app":
        return served_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def served_app() -> ASGIApp:
    """The app uvicorn serves (``--factory``), from the environment and ``.env``: an
    invalid setting exits with its one-line message, and so does a start-up error."""
    try:
        app = create_app(load_settings())
    except ServiceError as exc:
        print(exc.for_operator(), file=sys.stderr)
        raise SystemExit(2) from None
    for warning in settings_file_warnings(settings_file()):
        logger.warning(warning)
    return OneLineStartupErrors(app)
