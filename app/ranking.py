"""How a search ranks the collection: by concept (CLIP), by shape, or both, and over the
8 turns of the query when asked.

Every image is stored once as ``[concept | shape]``, and a query weights the two halves
(``app.storage.types.VectorSpace``), so one exact inner product gives
``w * concept_similarity + (1 - w) * shape_similarity`` for any mode and any weight,
without re-indexing: ``concept`` is ``w = 1``, ``shape`` is ``w = 0``, ``hybrid`` is
``w = HYBRID_CONCEPT_WEIGHT``.

Turns: the query's shape descriptor is turned 8 ways (no model, no image needed) while
its concept part stays upright (the model is not run again: a turns search costs about
what a plain one does); each image keeps its best turn.

Parts: a drawing's search also looks for the shape of its core (the brand without the
addition beside it), in every turn searched, and every image with a core is also stored
as its core's row (``app.storage.types.VectorSpace``), so that a brand and the same brand
with an addition find each other in the first stage whichever of the two is registered;
each image keeps its best row.
"""

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray

from app.imaging.shape import SHAPE_DIMENSION, TURNS, turned_descriptor
from app.storage.types import Hit, VectorQuery, best_per_image

UPRIGHT = TURNS[0]


class SearchMode(StrEnum):
    CONCEPT = "concept"
    SHAPE = "shape"
    HYBRID = "hybrid"


@dataclass(frozen=True)
class SearchQuery:
    top_k: int
    min_similarity: float
    mode: SearchMode
    turns: bool
    concept_weight: float  # of the hybrid mode

    @property
    def weight(self) -> float:
        """The concept part's weight in this mode."""
        return {SearchMode.CONCEPT: 1.0, SearchMode.SHAPE: 0.0}.get(self.mode, self.concept_weight)

    @property
    def turn_names(self) -> tuple[str, ...]:
        return TURNS if self.turns else (UPRIGHT,)


def image_query(
    concept: NDArray[np.float32],
    shape: NDArray[np.float32],
    query: SearchQuery,
    parts: tuple[NDArray[np.float32], ...] = (),
) -> tuple[VectorQuery, tuple[str, ...]]:
    """A drawing's search: its upright concept vector, its shape in every turn searched,
    then the shapes of its ``parts`` in every turn searched (in a shape or hybrid search);
    and each row's turn, for ``best_turns``."""
    if query.mode == SearchMode.CONCEPT:
        parts = ()
    shapes = tuple(
        turned_descriptor(vector, turn) for vector in (shape, *parts) for turn in query.turn_names
    )
    return VectorQuery(concept, shapes, query.weight), query.turn_names * (1 + len(parts))


def words_query(concept: NDArray[np.float32]) -> VectorQuery:
    """A text's search: its vector against the concept half only (words have no shape)."""
    return VectorQuery(concept, (np.zeros(SHAPE_DIMENSION, np.float32),), 1.0)


@dataclass(frozen=True)
class TurnedHit:
    hit: Hit
    turn: str  # the query's turn that matched best


def best_turns(turns: tuple[str, ...], hits_per_turn: list[list[Hit]]) -> list[TurnedHit]:
    """Each image once, with its best turn's hit (the first turn on ties), best first
    (``best_per_image``)."""
    if len(turns) != len(hits_per_turn):
        raise ValueError(f"{len(hits_per_turn)} lists of hits for {len(turns)} turns")
    return [TurnedHit(hit, turns[row]) for row, hit in best_per_image(hits_per_turn)]
