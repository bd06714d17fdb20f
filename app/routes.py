"""HTTP routes: parse the request, call one domain method in a worker thread, answer
with a schema."""

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Query, Request, Response, UploadFile
from starlette.concurrency import run_in_threadpool

from app.config import Settings
from app.errors import ImageTooLargeError
from app.http_errors import ERROR_RESPONSES
from app.schemas import HealthResponse, SearchResponse, SearchResult
from app.search import SimilaritySearch

router = APIRouter()


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_search(request: Request) -> SimilaritySearch:
    search: SimilaritySearch = request.app.state.search
    return search


SettingsDep = Annotated[Settings, Depends(get_settings)]
SearchDep = Annotated[SimilaritySearch, Depends(get_search)]


def public_base_url(request: Request, settings: Settings) -> str:
    """PUBLIC_BASE_URL when set (behind a proxy), else the URL the client used."""
    return settings.public_base_url or str(request.base_url).rstrip("/")


async def read_upload(upload: UploadFile, settings: Settings) -> bytes:
    """Read an upload, refusing more than MAX_UPLOAD_MB without reading further."""
    data = await upload.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise ImageTooLargeError(
            f"The upload is larger than the limit of {settings.max_upload_mb:g} MB (MAX_UPLOAD_MB)."
        )
    return data


@router.post(
    "/search-similar-images/",
    response_model=SearchResponse,
    responses=ERROR_RESPONSES,
    summary="Find the collection images most similar to an uploaded image",
)
async def search_similar_images(
    request: Request,
    settings: SettingsDep,
    search: SearchDep,
    file: Annotated[UploadFile, File(description="The query image.")],
    top_k: Annotated[
        int | None,
        Query(ge=1, description="How many results at most (default TOP_K; capped at MAX_TOP_K)."),
    ] = None,
    min_similarity: Annotated[
        float | None,
        Query(
            ge=-1.0,
            le=1.0,
            allow_inf_nan=False,
            description="Leave out results below this cosine similarity "
            "(default SIMILARITY_THRESHOLD).",
        ),
    ] = None,
) -> SearchResponse:
    data = await read_upload(file, settings)
    limit = min(top_k or settings.top_k, settings.max_top_k)
    threshold = settings.similarity_threshold if min_similarity is None else min_similarity
    matches = await run_in_threadpool(search.search, data, limit, threshold)
    base = public_base_url(request, settings)
    return SearchResponse(
        results=[
            SearchResult(
                id=match.id,
                similarity=match.similarity,
                path=match.path,
                url=f"{base}/static/{quote(match.id)}",
            )
            for match in matches
        ]
    )


@router.post(
    "/preprocess",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}}, "description": "The PNG the embedder sees."},
        **ERROR_RESPONSES,
    },
    summary="Show what the embedder sees for an image: grid removed, framed, square",
)
async def preprocess(
    settings: SettingsDep,
    search: SearchDep,
    file: Annotated[UploadFile, File(description="Any image the search accepts.")],
) -> Response:
    data = await read_upload(file, settings)
    png = await run_in_threadpool(search.preview_png, data)
    return Response(content=png, media_type="image/png")


@router.get("/health", response_model=HealthResponse, summary="Liveness and index size")
async def health(settings: SettingsDep, search: SearchDep) -> HealthResponse:
    return HealthResponse(
        status="ok",
        model=settings.model_name,
        embedding_dimension=search.embedder.dimension,
        indexed_images=search.image_count,
    )
