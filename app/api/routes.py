"""HTTP routes: parse the request, call one domain method in a worker thread, answer
with a schema."""

import math
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, File, Query, Request, Response, UploadFile
from starlette.concurrency import run_in_threadpool

from app.api.dependencies import (
    CollectionDep,
    FileNameDep,
    SearchQueryDep,
    SettingsDep,
    require_write_access,
    text_search_query,
)
from app.api.http_errors import BUSY_RESPONSE, ERROR_RESPONSES, NOT_FOUND_RESPONSE
from app.api.image_ids import public_id
from app.api.schemas import (
    TEXT_SCHEMA,
    AddImageResponse,
    DeletedResponse,
    ErrorResponse,
    HealthResponse,
    ImageCountResponse,
    ImageListItem,
    ImageListResponse,
    IndexingStatus,
    ReindexResponse,
    SearchResponse,
    SearchResult,
    StoredImage,
    TextSearchRequest,
    TextSearchResponse,
    UnprocessableResponse,
)
from app.collection import MAX_TEXT_CHARS, Collection, Match
from app.config import Settings
from app.errors import ConfirmationRequiredError, ImageTooLargeError
from app.storage.embedded.image_store import RESTORE_SAMPLES
from app.storage.store import ImageRecord

MAX_PAGE_SIZE = 100

router = APIRouter()

WRITE_ACCESS = [Depends(require_write_access)]
WRITE_RESPONSES: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorResponse, "description": "API_KEY is set and X-API-Key is wrong."},
    403: {"model": ErrorResponse, "description": "API_KEY is unset and the client is remote."},
}


def public_base_url(request: Request, settings: Settings) -> str:
    """PUBLIC_BASE_URL when set (behind a proxy), else the URL the client used."""
    return settings.public_base_url or str(request.base_url).rstrip("/")


def image_url(request: Request, settings: Settings, file_name: str) -> str:
    return f"{public_base_url(request, settings)}/static/{public_id(file_name)}"


def result_path(url: str, file_path: str, settings: Settings) -> str:
    """``path`` of answers: the file path, or the URL for frontends that show ``path``."""
    return url if settings.result_path == "url" else file_path


async def read_upload(upload: UploadFile, settings: Settings) -> bytes:
    """Read an upload, refusing more than MAX_UPLOAD_MB without reading further."""
    data = await upload.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise ImageTooLargeError(
            f"The upload is larger than the limit of {settings.max_upload_mb:g} MB (MAX_UPLOAD_MB)."
        )
    return data


def search_results(
    request: Request, settings: Settings, matches: list[Match]
) -> list[SearchResult]:
    results = []
    for match in matches:
        url = image_url(request, settings, match.id)
        results.append(
            SearchResult(
                id=public_id(match.id),
                similarity=match.similarity,
                distance=1.0 - match.similarity,
                concept_similarity=match.concept_similarity,
                shape_similarity=match.shape_similarity,
                turn=match.turn,
                path=result_path(url, match.path, settings),
                url=url,
                original_filename=match.original_filename,
            )
        )
    return results


def deleted_response(collection: Collection, deleted: int, message: str) -> DeletedResponse:
    if collection.folder.holds_samples:
        message += f" These were the repository's samples; restore them with `{RESTORE_SAMPLES}`."
    return DeletedResponse(deleted=deleted, deleted_count=deleted, message=message)


def list_item(
    request: Request, settings: Settings, collection: Collection, record: ImageRecord
) -> ImageListItem:
    return ImageListItem(
        id=public_id(record.id),
        image_path=collection.folder.display_path(record.id),
        original_filename=record.original_filename,
        sha256_hash=record.sha256,
        created_at=record.created_at,
        full_url=image_url(request, settings, record.id),
    )


@router.post(
    "/search-similar-images/",
    response_model=SearchResponse,
    responses={**ERROR_RESPONSES, **BUSY_RESPONSE},
    summary="Find the collection images most similar to an uploaded image",
)
async def search_similar_images(
    request: Request,
    settings: SettingsDep,
    collection: CollectionDep,
    query: SearchQueryDep,
    file: Annotated[UploadFile, File(description="The query image.")],
) -> SearchResponse:
    data = await read_upload(file, settings)
    matches = await run_in_threadpool(collection.search, data, query)
    return SearchResponse(results=search_results(request, settings, matches))


TEXT_RESPONSES: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorResponse, "description": "The body is not UTF-8."},
    404: {"model": ErrorResponse, "description": "Text search is off (TEXT_SEARCH=false)."},
    422: {
        "model": UnprocessableResponse,
        "description": f"The text is empty or longer than {MAX_TEXT_CHARS} characters, or "
        "the body is not JSON of this shape.",
    },
    **BUSY_RESPONSE,
}


async def text_search(
    request: Request, settings: Settings, collection: Collection, body: TextSearchRequest
) -> TextSearchResponse:
    query = text_search_query(settings, body.top_k, body.min_similarity)
    matches, truncated = await run_in_threadpool(collection.search_text, body.text, query)
    return TextSearchResponse(
        results=search_results(request, settings, matches), text_truncated=truncated
    )


@router.post(
    "/search-by-text",
    response_model=TextSearchResponse,
    responses=TEXT_RESPONSES,
    summary="Find the collection images that a text describes (CLIP's text tower)",
)
async def search_by_text(
    request: Request, settings: SettingsDep, collection: CollectionDep, body: TextSearchRequest
) -> TextSearchResponse:
    """The text is embedded by the checkpoint's CLIP text tower and compared with every
    image's CLIP vector (the concept part; words have no shape). Answers the image
    search's results, best first, with `shape_similarity` null."""
    return await text_search(request, settings, collection, body)


@router.get(
    "/search-by-text",
    response_model=TextSearchResponse,
    responses=TEXT_RESPONSES,
    summary="The same text search from a browser's address bar: ?q=...",
)
async def search_by_text_in_address(
    request: Request,
    settings: SettingsDep,
    collection: CollectionDep,
    q: Annotated[
        str,
        Query(
            description="The text, as in the POST body.",
            examples=["a circle crossed by a vertical bar"],
            json_schema_extra=TEXT_SCHEMA,
        ),
    ],
    top_k: Annotated[int | None, Query(ge=1, description="As in the POST body.")] = None,
    min_similarity: Annotated[
        float | None,
        Query(ge=-1.0, le=1.0, allow_inf_nan=False, description="As in the POST body."),
    ] = None,
) -> TextSearchResponse:
    body = TextSearchRequest(text=q, top_k=top_k, min_similarity=min_similarity)
    return await text_search(request, settings, collection, body)


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
    collection: CollectionDep,
    file: Annotated[UploadFile, File(description="Any image the search accepts.")],
) -> Response:
    data = await read_upload(file, settings)
    png = await run_in_threadpool(collection.preview_png, data)
    return Response(content=png, media_type="image/png")


@router.post(
    "/images/",
    status_code=201,
    response_model=AddImageResponse,
    dependencies=WRITE_ACCESS,
    responses={
        **ERROR_RESPONSES,
        **WRITE_RESPONSES,
        409: {"model": ErrorResponse, "description": "These exact bytes are already stored."},
    },
    summary="Add an image to the collection; answers the most similar existing images",
)
@router.post(
    "/add-image/",
    status_code=201,
    response_model=AddImageResponse,
    dependencies=WRITE_ACCESS,
    responses={**ERROR_RESPONSES, **WRITE_RESPONSES, 409: {"model": ErrorResponse}},
    summary="Alias of POST /images/ (the path the existing frontend calls)",
)
async def add_image(
    request: Request,
    settings: SettingsDep,
    collection: CollectionDep,
    query: SearchQueryDep,
    file: Annotated[UploadFile, File(description="The image to add.")],
) -> AddImageResponse:
    data = await read_upload(file, settings)
    record, similar = await run_in_threadpool(collection.add, data, file.filename, query)
    url = image_url(request, settings, record.id)
    return AddImageResponse(
        image=StoredImage(
            id=public_id(record.id),
            path=result_path(url, collection.folder.display_path(record.id), settings),
            url=url,
            sha256=record.sha256,
            original_filename=record.original_filename,
            created_at=record.created_at,
        ),
        similar=search_results(request, settings, similar),
    )


@router.get(
    "/images/",
    response_model=ImageListResponse,
    summary="List the collection, newest first; a page past the end answers the last page",
)
async def list_images(
    request: Request,
    settings: SettingsDep,
    collection: CollectionDep,
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 20,
) -> ImageListResponse:
    records, total, answered = await run_in_threadpool(collection.page, page, page_size)
    return ImageListResponse(
        images=[list_item(request, settings, collection, record) for record in records],
        total=total,
        page=answered,
        requested_page=page,
        page_size=page_size,
        total_pages=math.ceil(total / page_size),
    )


@router.get(
    "/images/{image_id}",
    response_model=ImageListItem,
    responses=NOT_FOUND_RESPONSE,
    summary="One image of the collection",
)
async def get_image(
    request: Request, settings: SettingsDep, collection: CollectionDep, file_name: FileNameDep
) -> ImageListItem:
    record = await run_in_threadpool(collection.get, file_name)
    return list_item(request, settings, collection, record)


@router.get(
    "/images/{image_id}/similar",
    response_model=SearchResponse,
    responses={**NOT_FOUND_RESPONSE, **BUSY_RESPONSE},
    summary="The images most similar to one of the collection (itself left out)",
)
async def similar_images(
    request: Request,
    settings: SettingsDep,
    collection: CollectionDep,
    file_name: FileNameDep,
    query: SearchQueryDep,
) -> SearchResponse:
    matches = await run_in_threadpool(collection.similar_to, file_name, query)
    return SearchResponse(results=search_results(request, settings, matches))


@router.delete(
    "/images/{image_id}",
    response_model=DeletedResponse,
    dependencies=WRITE_ACCESS,
    responses={**NOT_FOUND_RESPONSE, **WRITE_RESPONSES},
    summary="Delete an image: its file and its vector",
)
async def delete_image(collection: CollectionDep, file_name: FileNameDep) -> DeletedResponse:
    await run_in_threadpool(collection.delete, file_name)
    return deleted_response(collection, 1, f"Deleted {public_id(file_name)}.")


@router.delete(
    "/images/",
    response_model=DeletedResponse,
    dependencies=WRITE_ACCESS,
    responses={
        400: {"model": ErrorResponse, "description": "confirm=true is missing."},
        **WRITE_RESPONSES,
    },
    summary="Delete the whole collection (needs confirm=true)",
)
async def delete_all_images(
    collection: CollectionDep,
    confirm: Annotated[bool, Query(description="Must be true.")] = False,
) -> DeletedResponse:
    if not confirm:
        raise ConfirmationRequiredError(
            "Deleting every image needs confirm=true (DELETE /images/?confirm=true)."
        )
    deleted = await run_in_threadpool(collection.delete_all)
    return deleted_response(collection, deleted, f"Deleted all {deleted} images.")


@router.get(
    "/image-count/",
    response_model=ImageCountResponse,
    summary="How many images the collection holds (the earlier backend's endpoint)",
)
async def image_count(collection: CollectionDep) -> ImageCountResponse:
    return ImageCountResponse(count=await run_in_threadpool(collection.current_count))


@router.post(
    "/reindex",
    response_model=ReindexResponse,
    dependencies=WRITE_ACCESS,
    responses=WRITE_RESPONSES,
    summary="Reconcile the index with IMAGES_DIR (for files copied there by hand)",
)
async def reindex(collection: CollectionDep) -> ReindexResponse:
    report = await run_in_threadpool(collection.reconcile)
    return ReindexResponse(**asdict(report))


@router.get("/health", response_model=HealthResponse, summary="Liveness, index size, indexing")
async def health(settings: SettingsDep, collection: CollectionDep) -> HealthResponse:
    progress = collection.progress
    return HealthResponse(
        status="ok" if collection.ready else "indexing",
        model=settings.model_name,
        inference=collection.embedder.inference,
        embedding_dimension=collection.embedder.dimension,
        text_search=collection.text_embedder is not None,
        indexed_images=await run_in_threadpool(collection.current_count),
        indexing=IndexingStatus(
            running=progress.running,
            done=progress.done,
            total=progress.total,
            seconds_left=progress.seconds_left(),
        ),
    )
