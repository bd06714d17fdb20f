"""Operations routes: liveness and indexing (/health), and reconciling by hand."""

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool

from app.api.dependencies import LanguageDep, ServiceDep, require_write_access
from app.api.http_errors import WRITE_RESPONSES
from app.api.schemas import HealthResponse, IndexingStatus, ReindexResponse, SearchDefaults
from app.folder_guard import folder_problem
from app.messages.catalogue import render

router = APIRouter()


@router.post(
    "/reindex",
    response_model=ReindexResponse,
    dependencies=[Depends(require_write_access)],
    responses=WRITE_RESPONSES,
    summary="Reconcile the index with IMAGES_DIR (for files copied there by hand)",
)
async def reindex(
    service: ServiceDep,
    confirm_removals: Annotated[
        bool,
        Query(
            description="Remove the records of files missing from IMAGES_DIR however many "
            "they are (else more than a quarter of the records is withheld), and of "
            "registered files that cannot be read (else always kept)."
        ),
    ] = False,
) -> ReindexResponse:
    reconcile = service.reconciler.reconcile
    report = await run_in_threadpool(reconcile, lambda: False, confirm_removals)
    return ReindexResponse(**asdict(report))


@router.get("/health", response_model=HealthResponse, summary="Liveness, index size, indexing")
async def health(service: ServiceDep, language: LanguageDep) -> HealthResponse:
    progress = service.progress
    encoder = service.encoder
    defaults = service.search.defaults
    problem = await run_in_threadpool(folder_problem, service.folder)
    status = "ok" if progress.ready else "indexing"
    return HealthResponse(
        status="folder_unavailable" if problem is not None else status,
        problem=render(problem, language) if problem is not None else None,
        model=service.settings.model_name,
        inference=encoder.image_tower.inference,
        embedding_dimension=encoder.image_tower.dimension,
        text_search=encoder.text_tower is not None,
        indexed_images=await run_in_threadpool(service.collection.count),
        indexing=IndexingStatus(
            running=progress.running,
            done=progress.done,
            total=progress.total,
            seconds_left=progress.seconds_left(),
        ),
        search_defaults=SearchDefaults(
            top_k=defaults.top_k,
            max_top_k=defaults.max_top_k,
            min_similarity=defaults.min_similarity,
            mode=defaults.mode,
        ),
    )
