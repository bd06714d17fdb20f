"""How a search ranks the collection: by concept (CLIP), by shape, or both, and over the
8 turns of the query when asked.

Every image is indexed once as the concatenation of its two unit vectors,
``[concept | shape]``. A query is the concatenation ``[w * concept | (1 - w) * shape]``,
so one exact inner product gives ``w * concept_similarity + (1 - w) * shape_similarity``
for any mode and any weight, without re-indexing: ``concept`` is ``w = 1``, ``shape`` is
``w = 0``, ``hybrid`` is ``w = HYBRID_CONCEPT_WEIGHT``.

Turns: the query's shape descriptor is turned 8 ways (no model, no image needed) while
its concept part stays upright (the model is not run again: a turns search costs about
what a plain one does); each image keeps its best turn.
"""

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray

from app.imaging.shape import SHAPE_DIMENSION, TURNS, turned_descriptor

UPRIGHT = TURNS[0]


class SearchMode(StrEnum):
    CONCEPT = "concept"
    SHAPE = "shape"
    HYBRID = "hybrid"


@dataclass(frozen=True)
class SearchQuery:
    top_k: int
    min_similarity: float
    mode: SearchMode = SearchMode.HYBRID
    turns: bool = False
    concept_weight: float = 0.3  # of the hybrid mode

    @property
    def weight(self) -> float:
        """The concept part's weight in this mode."""
        return {SearchMode.CONCEPT: 1.0, SearchMode.SHAPE: 0.0}.get(self.mode, self.concept_weight)

    @property
    def turn_names(self) -> tuple[str, ...]:
        return TURNS if self.turns else (UPRIGHT,)


@dataclass(frozen=True)
class QueryVectors:
    """A query's upright concept vector and its shape vector in every turn searched."""

    concept: NDArray[np.float32]
    shapes: dict[str, NDArray[np.float32]]
    words: bool = False  # the concept vector is a text's: there is no shape

    @classmethod
    def of(
        cls, concept: NDArray[np.float32], shape: NDArray[np.float32], query: SearchQuery
    ) -> "QueryVectors":
        return cls(concept, {turn: turned_descriptor(shape, turn) for turn in query.turn_names})

    @classmethod
    def of_words(cls, concept: NDArray[np.float32]) -> "QueryVectors":
        """A text's vector, to be searched in the concept mode (its shape part is zero)."""
        return cls(concept, {UPRIGHT: np.zeros(SHAPE_DIMENSION, np.float32)}, words=True)

    def rows(self, weight: float) -> NDArray[np.float32]:
        """One weighted index query per turn, in ``shapes``' order."""
        return np.stack(
            [
                np.concatenate([weight * self.concept, (1 - weight) * shape])
                for shape in self.shapes.values()
            ]
        ).astype(np.float32)


@dataclass(frozen=True)
class Hit:
    id: str
    similarity: float
    turn: str


def best_turns(turns: list[str], hits_per_turn: list[list[tuple[str, float]]]) -> list[Hit]:
    """Each image once, with its best turn's score (the first turn on ties), best first.

    When every turn's list holds its ``top_k`` best, the merged list's first ``top_k`` are
    the true ``top_k`` by best turn: any image ranked above one in some turn's list also
    ranks above it by best turn."""
    best: dict[str, Hit] = {}
    for turn, hits in zip(turns, hits_per_turn, strict=True):
        for image_id, score in hits:
            if image_id not in best or score > best[image_id].similarity:
                best[image_id] = Hit(image_id, score, turn)
    return sorted(best.values(), key=lambda hit: -hit.similarity)
