"""What the storage layer holds and answers, shared by the interface (``app.storage.store``),
both backends and the domain: image records, the keys vectors are stored under, the
vector space a collection searches, and a search's query and hits."""

import unicodedata
from dataclasses import dataclass, field, replace
from datetime import datetime

import numpy as np
from numpy.typing import NDArray


def folded(text: str) -> str:
    """``text`` as the collection's filter compares it: case and accents ignored
    ("Peña" finds "PENA")."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(character for character in decomposed if not unicodedata.combining(character))


@dataclass(frozen=True)
class ImageRecord:
    id: str
    sha256: str
    size: int
    mtime_ns: int
    original_filename: str | None
    created_at: datetime
    # What the registry's clerk wrote about it (a registration number, an owner).
    label: str | None = None

    @property
    def name(self) -> str:
        """What people call it: its label, else its original file name, else its id."""
        return self.label or self.original_filename or self.id

    @property
    def search_text(self) -> str:
        """What the collection's filter looks in: id, label and original file name."""
        return folded(" ".join(filter(None, (self.id, self.label, self.original_filename))))


@dataclass(frozen=True)
class EmbeddingKey:
    """What a vector depends on besides the bytes: what made it (a model's name, or the
    shape descriptor's version) and the preprocessing, and its length."""

    model: str
    preprocessing: str
    dimension: int


# The vectors of one file's bytes, by what they are keyed under.
Vectors = dict[EmbeddingKey, NDArray[np.float32]]


@dataclass(frozen=True)
class VectorQuery:
    """A search in the space: the query's concept (CLIP) vector, its shape vector in
    each turn searched (one list of hits per turn), and the concept half's weight."""

    concept: NDArray[np.float32]
    shapes: tuple[NDArray[np.float32], ...]
    weight: float


@dataclass(frozen=True)
class Fetch:
    """What a search answers with its best images, as qdrant's ``with_vectors``: the
    stored vectors under ``keys`` (a stroke mask for verification) of the first
    ``images`` images by their best row (``best_per_image``'s order), read by key, so
    the cost does not grow with the collection."""

    keys: tuple[EmbeddingKey, ...] = ()
    images: int = 0


NO_FETCH = Fetch()


@dataclass(frozen=True)
class Hit:
    """One image a search found: its record, the query's score (the weighted inner
    product), the two halves' cosine similarities to the query, and the stored vectors
    the search was asked to fetch with it (``Fetch``; empty for the others)."""

    record: ImageRecord
    similarity: float
    concept_similarity: float
    shape_similarity: float
    stored: Vectors = field(default_factory=dict, compare=False)


def best_per_image(rows: list[list[Hit]]) -> list[tuple[int, Hit]]:
    """Each image once, at its best row's hit (the first row on ties), with that row's
    number; best first.

    When every row's list holds its ``top_k`` best, the first ``top_k`` are the true
    ``top_k`` by best row: any image ranked above one in some row's list also ranks
    above it by best row."""
    best: dict[str, tuple[int, Hit]] = {}
    for row, hits in enumerate(rows):
        for hit in hits:
            held = best.get(hit.record.id)
            if held is None or hit.similarity > held[1].similarity:
                best[hit.record.id] = (row, hit)
    return sorted(best.values(), key=lambda found: -found[1].similarity)


def with_fetched(rows: list[list[Hit]], fetched: dict[str, Vectors]) -> list[list[Hit]]:
    """``rows`` with each hit's fetched vectors (by its bytes) attached."""
    return [
        [
            replace(hit, stored=found) if (found := fetched.get(hit.record.sha256)) else hit
            for hit in hits
        ]
        for hits in rows
    ]


@dataclass(frozen=True)
class VectorSpace:
    """What the collection searches: each image as ``[concept | shape]``, the
    concatenation of its two unit vectors. A query row is ``[w * concept | (1 - w) *
    shape]``, so one inner product gives ``w * concept_similarity + (1 - w) *
    shape_similarity`` for any weight without indexing again.

    With ``core``, an image whose drawing has a core (a brand with an addition beside
    it, ``app.imaging.framing``) is also searchable as ``[concept | core's shape]``, a
    second row under the same id: a search for the plain brand finds it. An image
    without one stores a zero core (computed, nothing to search).

    The only code that joins, splits or weights the two halves."""

    concept: EmbeddingKey
    shape: EmbeddingKey
    core: EmbeddingKey | None = None

    @property
    def dimension(self) -> int:
        return self.concept.dimension + self.shape.dimension

    @property
    def name(self) -> str:
        """Names the space in a store, so vectors of another model or pipeline never mix."""
        return f"{self.concept.model} + {self.shape.model} ({self.concept.preprocessing})"

    def vectors(self, concept: NDArray[np.float32], shape: NDArray[np.float32]) -> Vectors:
        return {self.concept: concept, self.shape: shape}

    def holds(self, vectors: Vectors) -> bool:
        return self.concept in vectors and self.shape in vectors

    def join(self, vectors: Vectors) -> NDArray[np.float32]:
        return np.concatenate([vectors[self.concept], vectors[self.shape]]).astype(np.float32)

    def join_core(self, vectors: Vectors) -> NDArray[np.float32] | None:
        """The image's second row, ``[concept | core's shape]``; None without a core."""
        core = None if self.core is None else vectors.get(self.core)
        if core is None or not core.any() or not self.holds(vectors):
            return None
        return np.concatenate([vectors[self.concept], core]).astype(np.float32)

    def split(self, joined: NDArray[np.float32]) -> Vectors:
        concept, shape = np.split(joined, [self.concept.dimension])
        return self.vectors(concept, shape)

    def rows(self, query: VectorQuery) -> NDArray[np.float32]:
        """One weighted row per turn, in ``query.shapes``' order."""
        weight = query.weight
        return np.stack(
            [
                np.concatenate([weight * query.concept, (1 - weight) * shape])
                for shape in query.shapes
            ]
        ).astype(np.float32)

    def merged(
        self, rows: list[list[Hit]], core_rows: list[list[Hit]], top_k: int
    ) -> list[list[Hit]]:
        """Each query row's hits among the images' rows and their cores' rows: each image
        once, at its better row, best first."""
        merged = []
        for hits, core_hits in zip(rows, core_rows, strict=True):
            best: dict[str, Hit] = {}
            for hit in hits + core_hits:
                held = best.get(hit.record.id)
                if held is None or hit.similarity > held.similarity:
                    best[hit.record.id] = hit
            merged.append(sorted(best.values(), key=lambda hit: -hit.similarity)[:top_k])
        return merged

    def hit(
        self,
        record: ImageRecord,
        similarity: float,
        joined: NDArray[np.float32],
        query: VectorQuery,
        turn: int,
    ) -> Hit:
        """The hit of a stored vector found by the query's row for ``turn``."""
        dimension = self.concept.dimension
        return Hit(
            record,
            similarity,
            float(joined[:dimension] @ query.concept),
            float(joined[dimension:] @ query.shapes[turn]),
        )
