"""Search routes: by an uploaded drawing, by words, by a collection image; and what the
image tower sees of an upload."""

from typing import Annotated

from fastapi import APIRouter, File, Query, Request, Response, UploadFile
from starlette.concurrency import run_in_threadpool

from app.api.answers import read_upload, search_results
from app.api.dependencies import (
    EncoderDep,
    FileNameDep,
    SearchDep,
    SearchQueryDep,
    SettingsDep,
)
from app.api.http_errors import (
    BUSY_RESPONSE,
    ERROR_RESPONSES,
    JSON_BODY_RESPONSE,
    NOT_FOUND_RESPONSE,
)
from app.api.schemas import (
    TEXT_SCHEMA,
    ErrorResponse,
    SearchResponse,
    TextSearchRequest,
    TextSearchResponse,
    UnprocessableResponse,
)
from app.config import Settings
from app.encoder import MAX_TEXT_CHARS
from app.search import Search

router = APIRouter()


@router.post(
    "/search-similar-images/",
    response_model=SearchResponse,
    responses={**ERROR_RESPONSES, **BUSY_RESPONSE},
    summary="Find the collection images most similar to an uploaded image",
)
async def search_similar_images(
    request: Request,
    settings: SettingsDep,
    search: SearchDep,
    query: SearchQueryDep,
    file: Annotated[UploadFile, File(description="The query image.")],
) -> SearchResponse:
    data = await read_upload(file, settings)
    matches = await run_in_threadpool(search.search, data, query)
    return SearchResponse(results=search_results(request, settings, matches))


TEXT_RESPONSES: dict[int | str, dict[str, object]] = {
    **JSON_BODY_RESPONSE,
    404: {"model": ErrorResponse, "description": "Text search is off (TEXT_SEARCH=false)."},
    422: {
        "model": UnprocessableResponse,
        "description": f"The text is empty or longer than {MAX_TEXT_CHARS} characters, or "
        "the body is not JSON of this shape.",
    },
    **BUSY_RESPONSE,
}


async def text_search(
    request: Request, settings: Settings, search: Search, body: TextSearchRequest
) -> TextSearchResponse:
    query = search.defaults.text_query(body.top_k, body.min_similarity)
    matches, truncated = await run_in_threadpool(search.search_text, body.text, query)
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
    request: Request, settings: SettingsDep, search: SearchDep, body: TextSearchRequest
) -> TextSearchResponse:
    """The text is embedded by the checkpoint's CLIP text tower and compared with every
    image's CLIP vector (the concept part; words have no shape). Answers the image
    search's results, best first, with `shape_similarity` null."""
    return await text_search(request, settings, search, body)


@router.get(
    "/search-by-text",
    response_model=TextSearchResponse,
    responses=TEXT_RESPONSES,
    summary="The same text search from a browser's address bar: ?q=...",
)
async def search_by_text_in_address(
    request: Request,
    settings: SettingsDep,
    search: SearchDep,
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
    return await text_search(request, settings, search, body)


@router.get(
    "/images/{image_id}/similar",
    response_model=SearchResponse,
    responses={**NOT_FOUND_RESPONSE, **BUSY_RESPONSE},
    summary="The images most similar to one of the collection (itself left out)",
)
async def similar_images(
    request: Request,
    settings: SettingsDep,
    search: SearchDep,
    file_name: FileNameDep,
    query: SearchQueryDep,
) -> SearchResponse:
    matches = await run_in_threadpool(search.similar_to, file_name, query)
    return SearchResponse(results=search_results(request, settings, matches))


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
    encoder: EncoderDep,
    file: Annotated[UploadFile, File(description="Any image the search accepts.")],
) -> Response:
    data = await read_upload(file, settings)
    png = await run_in_threadpool(encoder.preview_png, data)
    return Response(content=png, media_type="image/png")
