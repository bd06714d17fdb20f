"""Typed FastAPI dependencies: the settings and the collection built in the lifespan, and
the rule for who may change the collection."""

import hmac
import ipaddress
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request, Security
from fastapi.security import APIKeyHeader

from app.collection import Collection
from app.config import Settings
from app.ranking import SearchMode, SearchQuery

API_KEY_HEADER = "X-API-Key"

_api_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    description="Needed to change the collection when API_KEY is set.",
)


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_collection(request: Request) -> Collection:
    collection: Collection = request.app.state.collection
    return collection


SettingsDep = Annotated[Settings, Depends(get_settings)]
CollectionDep = Annotated[Collection, Depends(get_collection)]


def get_search_query(
    settings: SettingsDep,
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
            description="Leave out results whose similarity (the mode's score) is below "
            "this (default SIMILARITY_THRESHOLD).",
        ),
    ] = None,
    mode: Annotated[
        SearchMode | None,
        Query(
            description="concept: CLIP only; shape: the shape descriptor only; hybrid: "
            "HYBRID_CONCEPT_WEIGHT x concept + the rest x shape (default SEARCH_MODE)."
        ),
    ] = None,
    turns: Annotated[
        bool,
        Query(
            description="Also match the query turned by 90, 180 and 270 degrees and "
            "mirrored; each result says which turn matched."
        ),
    ] = False,
) -> SearchQuery:
    """The ranking a request asks for, completed with the settings' defaults."""
    return SearchQuery(
        top_k=min(top_k or settings.top_k, settings.max_top_k),
        min_similarity=settings.similarity_threshold if min_similarity is None else min_similarity,
        mode=mode or settings.search_mode,
        turns=turns,
        concept_weight=settings.hybrid_concept_weight,
    )


SearchQueryDep = Annotated[SearchQuery, Depends(get_search_query)]


def is_loopback(host: str | None) -> bool:
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def require_write_access(
    request: Request,
    settings: SettingsDep,
    api_key: Annotated[str | None, Security(_api_key_header)],
) -> None:
    """With API_KEY set, the request must carry it (compared in constant time); without
    it, only clients on this machine may change the collection."""
    if settings.api_key is not None:
        expected = settings.api_key.get_secret_value().encode()
        if api_key is None or not hmac.compare_digest(api_key.encode(), expected):
            raise HTTPException(
                status_code=401,
                detail=f"Changing the collection needs the {API_KEY_HEADER} header with "
                "the service's API key.",
                headers={"WWW-Authenticate": API_KEY_HEADER},
            )
    elif not is_loopback(request.client.host if request.client else None):
        raise HTTPException(
            status_code=403,
            detail="API_KEY is not set, so the collection can only be changed from the "
            "service's own machine. Set API_KEY and send it in the "
            f"{API_KEY_HEADER} header.",
        )
