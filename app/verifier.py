"""The verification stage of an image search: the first stage's best candidates, each
drawing aligned on the query's and ranked by how much of each the other covers.

Pipeline (``Verifier.rerank``): the first ``RERANK_CANDIDATES`` hits of the first stage
(the store's search, in the query's best turn) -> their stored stroke masks, in one
store call -> each aligned on the query's mask (``app.imaging.verification.verify``, in
every turn searched, and their cores where they have one: ``verify_drawings``) -> those
candidates ordered by ``Alignment.overlap`` (their coverages, or their cores' match),
ahead of the rest in the first stage's order. A
candidate whose masks are not stored yet (an index being rebuilt after
``STROKES_VERSION`` changed) keeps its first-stage place after the verified ones.

Shape and hybrid searches are verified; a concept search ranks by CLIP alone, as asked.
"""

from dataclasses import dataclass

from app.imaging.verification import Alignment, Strokes, unpack, verify_drawings
from app.ranking import TurnedHit
from app.storage.store import Store
from app.storage.types import EmbeddingKey, Vectors


@dataclass(frozen=True)
class Verified:
    turned: TurnedHit
    alignment: Alignment | None  # None: not verified


class Verifier:
    """Re-ranks a search's first candidates by aligning their drawings on the query's."""

    def __init__(self, store: Store, key: EmbeddingKey, candidates: int) -> None:
        self.store = store
        self.key = key
        self.candidates = candidates

    def query_strokes(self, vectors: Vectors) -> Strokes | None:
        stored = vectors.get(self.key)
        return None if stored is None else unpack(stored)

    def strokes(self, sha256s: set[str]) -> dict[str, Strokes]:
        stored = self.store.vectors(self.key, sha256s)
        return {sha256: unpack(values) for sha256, values in stored.items()}

    def rerank(
        self, query: Strokes | None, hits: list[TurnedHit], turns: tuple[str, ...]
    ) -> list[Verified]:
        """``hits`` (best first) with the first ``candidates`` verified and re-ordered."""
        if query is None or not self.candidates:
            return [Verified(hit, None) for hit in hits]
        head, tail = hits[: self.candidates], hits[self.candidates :]
        masks = self.strokes({turned.hit.record.sha256 for turned in head})
        checked = [turned for turned in head if turned.hit.record.sha256 in masks]
        unverified = [
            Verified(turned, None) for turned in head if turned.hit.record.sha256 not in masks
        ]
        verified = [
            Verified(turned, verify_drawings(query, masks[turned.hit.record.sha256], turns))
            for turned in checked
        ]
        verified.sort(key=lambda item: -item.alignment.overlap if item.alignment else 0.0)
        return verified + unverified + [Verified(hit, None) for hit in tail]
