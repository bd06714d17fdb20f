"""Collection routes: add, list, read and delete images, and count them."""

import math
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from app.api.answers import (
    deleted_response,
    image_url,
    list_item,
    read_upload,
    result_path,
    search_results,
)
from app.api.dependencies import (
    CollectionDep,
    FileNameDep,
    LanguageDep,
    SearchQueryDep,
    SettingsDep,
    require_write_access,
)
from app.api.http_errors import (
    ERROR_RESPONSES,
    JSON_BODY_RESPONSE,
    NOT_FOUND_RESPONSE,
    WRITE_RESPONSES,
)
from app.api.image_ids import public_id
from app.api.schemas import (
    AddImageResponse,
    DeletedResponse,
    ErrorResponse,
    ImageCountResponse,
    ImageListItem,
    ImageListResponse,
    LabelUpdate,
    StoredImage,
    UnprocessableResponse,
)
from app.collection import MAX_LABEL_CHARS, spoken_name
from app.errors import ConfirmationRequiredError
from app.messages.catalogue import message

MAX_PAGE_SIZE = 100
MAX_FILTER_CHARS = 200

router = APIRouter()

WRITE_ACCESS = [Depends(require_write_access)]
LABEL_RESPONSE: dict[int | str, dict[str, object]] = {
    422: {
        "model": UnprocessableResponse,
        "description": f"A label over {MAX_LABEL_CHARS} characters, or a body or "
        "parameters of the wrong shape.",
    }
}


@router.post(
    "/images/",
    status_code=201,
    response_model=AddImageResponse,
    dependencies=WRITE_ACCESS,
    responses={
        **ERROR_RESPONSES,
        **WRITE_RESPONSES,
        **LABEL_RESPONSE,
        409: {"model": ErrorResponse, "description": "These exact bytes are already stored."},
    },
    summary="Add an image to the collection; answers the most similar existing images",
)
@router.post(
    "/add-image/",
    status_code=201,
    response_model=AddImageResponse,
    dependencies=WRITE_ACCESS,
    responses={
        **ERROR_RESPONSES,
        **WRITE_RESPONSES,
        **LABEL_RESPONSE,
        409: {"model": ErrorResponse},
    },
    summary="Alias of POST /images/ (the path the existing frontend calls)",
)
async def add_image(
    request: Request,
    settings: SettingsDep,
    collection: CollectionDep,
    query: SearchQueryDep,
    file: Annotated[UploadFile, File(description="The image to add.")],
    label: Annotated[
        str | None,
        Form(
            description="What the registry notes about it (a registration number, an "
            f"owner), at most {MAX_LABEL_CHARS} characters."
        ),
    ] = None,
) -> AddImageResponse:
    data = await read_upload(file, settings)
    record, similar = await run_in_threadpool(collection.add, data, file.filename, query, label)
    url = image_url(request, settings, record.id)
    return AddImageResponse(
        image=StoredImage(
            id=public_id(record.id),
            path=result_path(url, collection.folder.display_path(record.id), settings),
            url=url,
            sha256=record.sha256,
            original_filename=record.original_filename,
            label=record.label,
            name=record.name,
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
    q: Annotated[
        str | None,
        Query(
            max_length=MAX_FILTER_CHARS,
            description="Only the images whose label, original file name or id holds "
            "this text (case and accents aside).",
        ),
    ] = None,
) -> ImageListResponse:
    records, total, answered = await run_in_threadpool(collection.page, page, page_size, q)
    return ImageListResponse(
        images=[list_item(request, settings, collection.folder, record) for record in records],
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
    return list_item(request, settings, collection.folder, record)


@router.patch(
    "/images/{image_id}",
    response_model=ImageListItem,
    dependencies=WRITE_ACCESS,
    responses={
        **NOT_FOUND_RESPONSE,
        **WRITE_RESPONSES,
        **LABEL_RESPONSE,
        **JSON_BODY_RESPONSE,
    },
    summary="Change an image's label",
)
async def update_image(
    request: Request,
    settings: SettingsDep,
    collection: CollectionDep,
    file_name: FileNameDep,
    update: LabelUpdate,
) -> ImageListItem:
    record = await run_in_threadpool(collection.set_label, file_name, update.label)
    return list_item(request, settings, collection.folder, record)


@router.delete(
    "/images/{image_id}",
    response_model=DeletedResponse,
    dependencies=WRITE_ACCESS,
    responses={**NOT_FOUND_RESPONSE, **WRITE_RESPONSES},
    summary="Delete an image: its file and its vector",
)
async def delete_image(
    collection: CollectionDep, file_name: FileNameDep, language: LanguageDep
) -> DeletedResponse:
    record = await run_in_threadpool(collection.delete, file_name)
    text = message("deleted_one", name=spoken_name(record))
    # An upload has the file name it was sent with; the samples were never uploaded.
    return deleted_response(collection.folder, 1, text, language, record.original_filename is None)


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
    language: LanguageDep,
    confirm: Annotated[bool, Query(description="Must be true.")] = False,
) -> DeletedResponse:
    if not confirm:
        raise ConfirmationRequiredError(message("confirm_delete_all"))
    deleted = await run_in_threadpool(collection.delete_all)
    return deleted_response(
        collection.folder, deleted, message("deleted_all", count=deleted), language, True
    )


@router.get(
    "/image-count/",
    response_model=ImageCountResponse,
    summary="How many images the collection holds (the earlier backend's endpoint)",
)
async def image_count(collection: CollectionDep) -> ImageCountResponse:
    return ImageCountResponse(count=await run_in_threadpool(collection.count))
