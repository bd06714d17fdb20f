"""How the routes answer: image URLs and paths, search results, list items and delete
messages, read from what the domain returns; and reading an upload within its limit."""

from fastapi import Request, UploadFile

from app.api.image_ids import public_id
from app.api.schemas import DeletedResponse, ImageListItem, SearchResult
from app.config import Settings
from app.errors import ImageTooLargeError
from app.messages.catalogue import Language, Message, message, render
from app.search import Match
from app.storage.image_folder import RESTORE_SAMPLES, ImageFolder
from app.storage.types import ImageRecord


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
            message("upload_too_large", limit_mb=f"{settings.max_upload_mb:g}")
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
                registered_covered=match.registered_covered,
                query_covered=match.query_covered,
                overlap=match.overlap,
                core_match=match.core_match,
                verdict=match.verdict,
                path=result_path(url, match.path, settings),
                url=url,
                original_filename=match.original_filename,
                label=match.label,
                name=match.name,
            )
        )
    return results


def deleted_response(
    folder: ImageFolder, deleted: int, text: Message, language: Language, samples: bool
) -> DeletedResponse:
    """The answer to a delete; ``samples``: whether it removed the repository's samples
    (files of the sample folder that no upload brought), which the message then says."""
    said = render(text, language)
    if samples and folder.holds_samples:
        said += render(message("samples_note", command=RESTORE_SAMPLES), language)
    return DeletedResponse(deleted=deleted, deleted_count=deleted, message=said)


def list_item(
    request: Request, settings: Settings, folder: ImageFolder, record: ImageRecord
) -> ImageListItem:
    return ImageListItem(
        id=public_id(record.id),
        image_path=folder.display_path(record.id),
        original_filename=record.original_filename,
        label=record.label,
        name=record.name,
        sha256_hash=record.sha256,
        created_at=record.created_at,
        full_url=image_url(request, settings, record.id),
    )
