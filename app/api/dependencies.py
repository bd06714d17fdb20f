"""Typed FastAPI dependencies: the settings and what the lifespan built (the service, its
search, collection and encoder), the search a request asks for, the image an id names,
and the rule for who may change the collection."""

import hmac
import ipaddress
from collections.abc import Sequence
from typing import Annotated

from fastapi import Depends, Path, Query, Request, Security
from fastapi.security import APIKeyHeader

from app.api.cross_site import foreign_origin
from app.api.http_errors import API_KEY_HEADER, language_of, shortened
from app.api.image_ids import file_name_of
from app.collection import Collection
from app.comparison import Comparison
from app.config import Settings
from app.encoder import Encoder
from app.errors import WriteRefusedError, WrongApiKeyError
from app.messages.catalogue import Language, message
from app.ranking import SearchMode, SearchQuery
from app.search import Search
from app.service import Service

_api_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    description="Needed to change the collection when API_KEY is set.",
)


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def get_language(request: Request) -> Language:
    return language_of(request)


SettingsDep = Annotated[Settings, Depends(get_settings)]
LanguageDep = Annotated[Language, Depends(get_language)]
ServiceDep = Annotated[Service, Depends(get_service)]


def get_search(service: ServiceDep) -> Search:
    return service.search


def get_collection(service: ServiceDep) -> Collection:
    return service.collection


def get_encoder(service: ServiceDep) -> Encoder:
    return service.encoder


def get_comparison(service: ServiceDep) -> Comparison:
    return service.comparison


SearchDep = Annotated[Search, Depends(get_search)]
ComparisonDep = Annotated[Comparison, Depends(get_comparison)]
CollectionDep = Annotated[Collection, Depends(get_collection)]
EncoderDep = Annotated[Encoder, Depends(get_encoder)]


def get_search_query(
    search: SearchDep,
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
    return search.defaults.query(top_k, min_similarity, mode, turns)


SearchQueryDep = Annotated[SearchQuery, Depends(get_search_query)]


def get_file_name(
    collection: CollectionDep,
    image_id: Annotated[
        str,
        Path(
            description="The image's id as answers give it; percent-encoding it once more "
            "(as URL builders do) is fine."
        ),
    ],
) -> str:
    """The collection file an id in the path names (``app.api.image_ids``)."""
    return file_name_of(image_id, collection.holds)


# A sync dependency: FastAPI runs it in a worker thread, off the event loop (SQLite).
FileNameDep = Annotated[str, Depends(get_file_name)]


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def in_networks(host: str | None, networks: Sequence[Network]) -> bool:
    """Whether a client address lies in one of ``networks`` (an IPv4 client reached over
    IPv6, ``::ffff:10.1.2.3``, counts as its IPv4 address)."""
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return any(
        address in network or (mapped is not None and mapped in network) for network in networks
    )


def require_write_access(
    request: Request,
    settings: SettingsDep,
    api_key: Annotated[str | None, Security(_api_key_header)],
) -> None:
    """A client may change the collection when the page that sent it, if any, is allowed
    (``app.api.cross_site``) and its address is in WRITE_ALLOWED_NETWORKS or it sends
    API_KEY (compared in constant time). Behind a reverse proxy, the address is
    X-Forwarded-For's only where uvicorn trusts the proxy (--forwarded-allow-ips)."""
    _refuse_cross_site(request, settings)
    host = request.client.host if request.client else None
    if in_networks(host, settings.write_allowed_networks):
        return
    client = {"client": shortened(host or "unknown"), "networks": settings.write_networks_text}
    if settings.api_key is None:
        raise WriteRefusedError(message("write_no_key", **client))
    if api_key is None:
        raise WrongApiKeyError(message("write_missing_key", **client))
    if not hmac.compare_digest(api_key.encode(), settings.api_key.get_secret_value().encode()):
        raise WrongApiKeyError(message("write_wrong_key", **client))


def _refuse_cross_site(request: Request, settings: Settings) -> None:
    own = [str(request.base_url)]
    if settings.public_base_url is not None:
        own.append(settings.public_base_url)
    foreign = foreign_origin(
        request.headers.get("origin"),
        request.headers.get("referer"),
        own,
        settings.cors_origins,
        settings.cors_origin_regex,
    )
    if foreign is not None:
        raise WriteRefusedError(message("write_cross_site", origin=shortened(foreign)))
