"""Search: what a request asks for (its query, completed with the settings' defaults),
whether it may run now (readiness, admission), and its answer.

Pipeline of an image search: admission (a search slot, or 503 at once) -> the encoder
(bytes -> concept and shape vectors) -> the query in every turn asked
(``app.ranking``) -> one store call answering hits with their records and both halves'
similarities -> each image once, at its best turn -> the first candidates verified
(``app.verifier``), each with its ``Verdict``, conflicts first -> ``Match``es ordered by
``similarity`` (``listed``), best first.

Every method blocks; the HTTP layer calls them from worker threads.
"""

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from app.encoder import Encoder
from app.errors import ImageNotFoundError, IndexNotReadyError, ServiceBusyError
from app.imaging.verification import Strokes
from app.messages.catalogue import message
from app.metrics import SEARCHES_IN_PROGRESS, SEARCHES_REFUSED
from app.ranking import SearchMode, SearchQuery, best_turns, image_query, words_query
from app.reconciliation import IndexingProgress
from app.storage.image_folder import ImageFolder
from app.storage.store import Store
from app.storage.types import NO_FETCH, VectorQuery, Vectors
from app.verdict import Verdict
from app.verifier import Verified, Verifier

# What a client is told to wait when every search slot is taken.
BUSY_RETRY_AFTER_S = 1
# A text search's default threshold: none. CLIP's text-to-image cosines sit far below
# its image-to-image ones (about 0.1 to 0.4), so SIMILARITY_THRESHOLD does not apply.
TEXT_MIN_SIMILARITY = -1.0
# What a client is told to wait while the first indexing has not estimated its end.
INDEXING_RETRY_AFTER_S = 5
MAX_INDEXING_RETRY_AFTER_S = 60


class QueueFullError(ServiceBusyError):
    """Every search slot is taken."""


class Admission:
    """At most ``max_pending`` searches in flight (SEARCH_QUEUE_SIZE): overload answers
    503 at once instead of queueing forever."""

    def __init__(self, max_pending: int) -> None:
        self.max_pending = max_pending
        self._slots = threading.BoundedSemaphore(max_pending)

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one search slot, or raise ``QueueFullError`` at once."""
        if not self._slots.acquire(blocking=False):
            SEARCHES_REFUSED.inc()
            raise QueueFullError(
                message("search_busy", count=self.max_pending),
                retry_after_s=BUSY_RETRY_AFTER_S,
            )
        SEARCHES_IN_PROGRESS.inc()
        try:
            yield
        finally:
            SEARCHES_IN_PROGRESS.dec()
            self._slots.release()


@dataclass(frozen=True)
class QueryDefaults:
    """What a request leaves out (from ``Settings``): TOP_K, capped at MAX_TOP_K,
    SIMILARITY_THRESHOLD, SEARCH_MODE and HYBRID_CONCEPT_WEIGHT."""

    top_k: int
    max_top_k: int
    min_similarity: float
    mode: SearchMode
    concept_weight: float

    def query(
        self, top_k: int | None, min_similarity: float | None, mode: SearchMode | None, turns: bool
    ) -> SearchQuery:
        """An image search's ranking, completed with the defaults."""
        return SearchQuery(
            top_k=min(top_k or self.top_k, self.max_top_k),
            min_similarity=self.min_similarity if min_similarity is None else min_similarity,
            mode=mode or self.mode,
            turns=turns,
            concept_weight=self.concept_weight,
        )

    def text_query(self, top_k: int | None, min_similarity: float | None) -> SearchQuery:
        """A text search's ranking: the concept part only, and no threshold by default."""
        threshold = TEXT_MIN_SIMILARITY if min_similarity is None else min_similarity
        return self.query(top_k, threshold, SearchMode.CONCEPT, turns=False)


@dataclass(frozen=True)
class Match:
    id: str
    # The score the list is ordered by: a verified result's ``overlap``, else the mode's
    # first-stage score (never above a verified result listed before it).
    similarity: float
    path: str
    original_filename: str | None
    label: str | None
    name: str  # what people call it (``ImageRecord.name``)
    concept_similarity: float
    shape_similarity: float | None  # None for a text search: words have no shape
    turn: str | None  # the query's turn that matched, when turns were searched
    # The verification stage's, when it aligned this image on the query (else None):
    # the share of the registered drawing's strokes the query covers, the converse, and
    # both in one score (``Alignment.overlap``), by which verified results are ranked.
    registered_covered: float | None = None
    query_covered: float | None = None
    overlap: float | None = None
    core_match: float | None = None
    verdict: Verdict | None = None


def listed(matches: list[Match], min_similarity: float, top_k: int) -> list[Match]:
    """The results a client sees, from the verification stage's order: each ``similarity``
    capped at the one before it (a result the verification stage did not align follows
    the aligned ones, whatever its first-stage score), those below ``min_similarity``
    left out, at most ``top_k``."""
    shown: list[Match] = []
    for match in matches:
        if shown and match.similarity > shown[-1].similarity:
            match = replace(match, similarity=shown[-1].similarity)
        if match.similarity < min_similarity:
            break
        shown.append(match)
    return shown[:top_k]


class Search:
    """Searches the store with what the encoder makes of a drawing or a text."""

    def __init__(
        self,
        encoder: Encoder,
        store: Store,
        folder: ImageFolder,
        progress: IndexingProgress,
        admission: Admission,
        defaults: QueryDefaults,
        verifier: Verifier,
    ) -> None:
        self.encoder = encoder
        self.verifier = verifier
        self.store = store
        self.folder = folder
        self.progress = progress
        self.admission = admission
        self.defaults = defaults

    def search(self, data: bytes, query: SearchQuery) -> list[Match]:
        """Up to ``top_k`` collection images at least ``min_similarity`` similar to the
        uploaded image in the query's mode (and best turn), best first."""
        self._require_ready()
        with self.admission.slot():
            vectors = self.encoder.encode(data)
        return self.by_vectors(vectors, query)

    def search_text(self, text: str, query: SearchQuery) -> tuple[list[Match], bool]:
        """Up to ``top_k`` collection images whose CLIP vectors are nearest the text's,
        at least ``min_similarity``, best first (concept only: words have no shape); and
        whether the text was cut to the text tower's tokens."""
        tokens = self.encoder.tokens(text)
        self._require_ready()
        with self.admission.slot():
            concept = self.encoder.text_concept(tokens)
        concept_only = replace(query, mode=SearchMode.CONCEPT, turns=False)
        matches = self._matches(
            words_query(concept), concept_only.turn_names, concept_only, None, words=True
        )
        return matches, tokens.truncated

    def similar_to(self, image_id: str, query: SearchQuery) -> list[Match]:
        """The images most similar to a collection image, from its stored vectors; the
        image itself is left out."""
        # Its stroke mask and its core's shape too, as stored (the mask packed), so that
        # the search is verified and looks for its brand without an addition.
        found = self.store.image(image_id, (self.verifier.key,))
        if found is None:
            raise ImageNotFoundError(message("image_not_found", id=image_id))
        stored = found[1]
        if not stored:
            raise ImageNotFoundError(message("image_not_indexed", id=image_id))
        wider = replace(query, top_k=query.top_k + 1)
        matches = self.by_vectors(stored, wider)
        return [match for match in matches if match.id != image_id][: query.top_k]

    def by_vectors(self, vectors: Vectors, query: SearchQuery) -> list[Match]:
        """The images most similar to a drawing's vectors, and to its core's shape when
        it has one (and its stroke mask, when they hold one: shape and hybrid searches
        are then verified)."""
        space = self.store.space
        core = vectors.get(space.core) if space.core is not None else None
        parts = (core,) if core is not None and core.any() else ()
        vector_query, labels = image_query(
            vectors[space.concept], vectors[space.shape], query, parts
        )
        strokes = self.verifier.strokes(vectors) if query.mode != SearchMode.CONCEPT else None
        return self._matches(vector_query, labels, query, strokes)

    def _matches(
        self,
        vectors: VectorQuery,
        labels: tuple[str, ...],
        query: SearchQuery,
        strokes: Strokes | None,
        words: bool = False,
    ) -> list[Match]:
        """The first stage and, for a drawing with its stroke mask, its first candidates'
        masks (one store call), then their verification. ``min_similarity`` applies to
        the listed ``similarity``: a verified search's first stage takes every candidate,
        since verification may raise or lower each one's score."""
        verifying = strokes is not None and self.verifier.candidates > 0
        wanted = max(query.top_k, self.verifier.candidates) if verifying else query.top_k
        fetch = self.verifier.fetch if verifying else NO_FETCH
        floor = -1.0 if verifying else query.min_similarity
        hits_per_turn = self.store.search(vectors, wanted, floor, fetch)
        first = best_turns(labels, hits_per_turn)[:wanted]
        ranked = self.verifier.rerank(strokes, first, query.turn_names)
        matches = [self._match(item, query, words) for item in ranked]
        return listed(matches, query.min_similarity, query.top_k)

    def _match(self, item: Verified, query: SearchQuery, words: bool) -> Match:
        hit, alignment = item.turned.hit, item.alignment
        turn = alignment.turn if alignment is not None else item.turned.turn
        return Match(
            id=hit.record.id,
            similarity=hit.similarity if alignment is None else alignment.overlap,
            path=self.folder.display_path(hit.record.id),
            original_filename=hit.record.original_filename,
            label=hit.record.label,
            name=hit.record.name,
            concept_similarity=hit.concept_similarity,
            shape_similarity=None if words else hit.shape_similarity,
            turn=turn if query.turns else None,
            registered_covered=None if alignment is None else alignment.registered_covered,
            query_covered=None if alignment is None else alignment.query_covered,
            overlap=None if alignment is None else alignment.overlap,
            core_match=None if alignment is None else alignment.core_match,
            verdict=item.verdict,
        )

    def _require_ready(self) -> None:
        progress = self.progress
        if not progress.ready:
            left = progress.seconds_left()
            raise IndexNotReadyError(
                message("indexing", done=progress.done, total=progress.total),
                retry_after_s=max(1, min(MAX_INDEXING_RETRY_AFTER_S, math.ceil(left)))
                if left is not None
                else INDEXING_RETRY_AFTER_S,
            )
