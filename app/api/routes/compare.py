"""Compare routes: an upload, or a second registered brand, laid over a registered brand
(``app.comparison``), answered as scores or as a PNG overlay."""

from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, File, Path, Query, Response, UploadFile
from starlette.concurrency import run_in_threadpool

from app.api.answers import read_upload
from app.api.dependencies import CollectionDep, ComparisonDep, FileNameDep, SettingsDep
from app.api.http_errors import ERROR_RESPONSES, NOT_FOUND_RESPONSE
from app.api.image_ids import file_name_of, public_id
from app.api.schemas import CompareResponse
from app.comparison import Compared
from app.verdict import verdict_of

router = APIRouter()


class AnswerFormat(StrEnum):
    JSON = "json"
    PNG = "png"


TurnsQuery = Annotated[
    bool, Query(description="Align the other drawing in each of the 8 turns of a square.")
]
FormatQuery = Annotated[
    AnswerFormat,
    Query(
        alias="format",
        description="json: the scores; png: the overlay (registered brand blue, the other "
        "drawing orange, black where they coincide).",
    ),
]
COMPARE_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"content": {"image/png": {}}, "description": "The scores, or the PNG overlay."},
}


def answer(compared: Compared, answer_format: AnswerFormat) -> CompareResponse | Response:
    if answer_format is AnswerFormat.PNG:
        return Response(content=compared.png(), media_type="image/png")
    alignment = compared.alignment
    return CompareResponse(
        registered_id=public_id(compared.registered_id),
        other_id=None if compared.other_id is None else public_id(compared.other_id),
        registered_covered=alignment.registered_covered,
        query_covered=alignment.query_covered,
        overlap=alignment.overlap,
        core_match=alignment.core_match,
        verdict=verdict_of(alignment),
        turn=alignment.turn,
        scale=alignment.scale,
        angle=alignment.angle,
    )


@router.post(
    "/images/{image_id}/compare",
    response_model=CompareResponse,
    responses={**ERROR_RESPONSES, **NOT_FOUND_RESPONSE, **COMPARE_RESPONSES},
    summary="Lay an uploaded drawing over a registered brand: scores or a PNG overlay",
)
async def compare_upload(
    settings: SettingsDep,
    comparison: ComparisonDep,
    file_name: FileNameDep,
    file: Annotated[UploadFile, File(description="The drawing to compare.")],
    turns: TurnsQuery = False,
    answer_format: FormatQuery = AnswerFormat.JSON,
) -> CompareResponse | Response:
    data = await read_upload(file, settings)
    compared = await run_in_threadpool(comparison.upload, file_name, data, turns)
    return answer(compared, answer_format)


@router.get(
    "/images/{image_id}/compare/{other_id}",
    response_model=CompareResponse,
    responses={**NOT_FOUND_RESPONSE, **COMPARE_RESPONSES},
    summary="Lay one registered brand over another: scores or a PNG overlay",
)
async def compare_registered(
    comparison: ComparisonDep,
    collection: CollectionDep,
    file_name: FileNameDep,
    other_id: Annotated[str, Path(description="The other registered brand's id.")],
    turns: TurnsQuery = False,
    answer_format: FormatQuery = AnswerFormat.JSON,
) -> CompareResponse | Response:
    other = await run_in_threadpool(file_name_of, other_id, collection.holds)
    compared = await run_in_threadpool(comparison.between, file_name, other, turns)
    return answer(compared, answer_format)
