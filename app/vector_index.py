"""FAISS vector index of the collection: exact inner product on unit vectors, which is
cosine similarity."""

import faiss
import numpy as np
from numpy.typing import NDArray


class VectorIndex:
    """Maps image ids to unit vectors and answers nearest-neighbour queries.

    Built once and then only read, so concurrent searches need no lock (FAISS searches on
    a flat index are thread-safe).
    """

    def __init__(self, dimension: int) -> None:
        self.dimension = dimension
        self._index = faiss.IndexFlatIP(dimension)
        self._ids: list[str] = []

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, ids: list[str], vectors: NDArray[np.float32]) -> None:
        """Add unit ``vectors`` (one row per id)."""
        if vectors.shape != (len(ids), self.dimension):
            raise ValueError(f"expected {len(ids)} vectors of dimension {self.dimension}")
        if ids:
            self._index.add(np.ascontiguousarray(vectors, dtype=np.float32))
            self._ids.extend(ids)

    def search(
        self, vector: NDArray[np.float32], top_k: int, min_similarity: float
    ) -> list[tuple[str, float]]:
        """Return up to ``top_k`` ``(id, similarity)`` pairs with similarity at least
        ``min_similarity``, best first."""
        if not self._ids or top_k < 1:
            return []
        query = np.ascontiguousarray(vector.reshape(1, self.dimension), dtype=np.float32)
        scores, positions = self._index.search(query, min(top_k, len(self._ids)))
        return [
            (self._ids[position], float(score))
            for score, position in zip(scores[0], positions[0], strict=True)
            if position >= 0 and score >= min_similarity
        ]
