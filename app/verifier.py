"""The verification stage of an image search: the first stage's best candidates, each
drawing aligned on the query's and ranked by how much of each the other covers.

Pipeline (``Verifier.rerank``): the first ``RERANK_CANDIDATES`` hits of the first stage
(the store's search, in the query's best turn) with their stored stroke masks, fetched
by the same store call (``Verifier.fetch``) -> each aligned on the query's mask
(``app.imaging.verification.verify``, in every turn searched, and their cores where
they have one: ``verify_drawings``) -> each one's ``Verdict`` -> those candidates
ordered conflicts first, then by ``Alignment.overlap`` (their coverages, or their
cores' match), ahead of the rest in the first stage's order. A candidate whose masks
are not stored yet (an index being rebuilt after ``STROKES_VERSION`` changed) keeps its
first-stage place after the verified ones.

Shape and hybrid searches are verified; a concept search ranks by CLIP alone, as asked.
"""

from dataclasses import dataclass

from app.imaging.verification import Alignment, Strokes, unpack, verify_drawings
from app.ranking import TurnedHit
from app.storage.types import EmbeddingKey, Fetch, Vectors
from app.verdict import Verdict, verdict_of


@dataclass(frozen=True)
class Verified:
    turned: TurnedHit
    alignment: Alignment | None = None  # None: not verified
    verdict: Verdict | None = None


class Verifier:
    """Re-ranks a search's first candidates by aligning their drawings on the query's."""

    def __init__(self, key: EmbeddingKey, candidates: int) -> None:
        self.key = key
        self.candidates = candidates
        # What a verified search asks the store for with its first candidates.
        self.fetch = Fetch((key,), candidates)

    def strokes(self, vectors: Vectors) -> Strokes | None:
        """The stroke masks among a drawing's vectors (stored, or just computed)."""
        stored = vectors.get(self.key)
        return None if stored is None else unpack(stored)

    def rerank(
        self, query: Strokes | None, hits: list[TurnedHit], turns: tuple[str, ...]
    ) -> list[Verified]:
        """``hits`` (best first) with the first ``candidates`` verified and re-ordered."""
        if query is None or not self.candidates:
            return [Verified(hit) for hit in hits]
        head, tail = hits[: self.candidates], hits[self.candidates :]
        masks = [(turned, self.strokes(turned.hit.stored)) for turned in head]
        unverified = [Verified(turned) for turned, mask in masks if mask is None]
        alignments = [
            (turned, verify_drawings(query, mask, turns))
            for turned, mask in masks
            if mask is not None
        ]
        verified = [
            Verified(turned, alignment, verdict_of(alignment)) for turned, alignment in alignments
        ]
        verified.sort(key=_conflicts_first)
        return verified + unverified + [Verified(hit) for hit in tail]


def _conflicts_first(item: Verified) -> tuple[bool, float]:
    assert item.alignment is not None and item.verdict is not None
    return not item.verdict.conflict, -item.alignment.overlap
