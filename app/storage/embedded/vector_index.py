"""FAISS vector index of the collection: inner product on unit vectors, which is cosine
similarity, under string ids that survive deletions.

The index lives in memory; ``app.storage.embedded.catalog`` persists the vectors, and
``app.storage.embedded.saved_index`` writes the index beside it, so a start loads it
instead of building it again (an HNSW graph of 100,000 images takes a minute).
"""

import threading
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from numpy.typing import NDArray

from app.storage.search_index import HNSW_EF_SEARCH

# The share of an HNSW graph's vectors that may be tombstones before it is rebuilt.
COMPACT_SHARE = 0.1


def make_faiss_index(dimension: int, factory: str, ef_search: int = HNSW_EF_SEARCH) -> faiss.Index:
    """An empty inner-product index from a ``faiss.index_factory`` string, wrapped so
    that vectors carry their own ids; an HNSW index explores ``ef_search`` candidates per
    query. Raises ``ValueError`` for unknown strings and for indexes that need training,
    which an index growing one image at a time cannot get."""
    try:
        inner = faiss.index_factory(dimension, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        raise ValueError(f"{factory!r} is not a FAISS index_factory string") from exc
    if not inner.is_trained:
        raise ValueError(f"{factory!r} needs training; use Flat or HNSW<M> (e.g. HNSW32)")
    hnsw = getattr(faiss.downcast_index(inner), "hnsw", None)
    if hnsw is not None:
        hnsw.efSearch = ef_search
    return faiss.IndexIDMap2(inner)


class VectorIndex:
    """Unit vectors under string ids; nearest-neighbour search by cosine similarity.

    Thread-safe: one lock covers FAISS and the id maps, so a search sees an add or a
    removal either entirely or not at all. Every call holds it for microseconds to
    milliseconds, so searches never wait long behind writes.

    An index that cannot remove vectors (HNSW) keeps a removed one in its graph as a
    tombstone that every search skips (a FAISS ``IDSelector``), and is rebuilt from the
    vectors that stay only once tombstones are ``COMPACT_SHARE`` of it: a rebuild takes
    about a minute at 100,000 images on 2 cores, so deleting one brand must not cost one.
    """

    def __init__(
        self, dimension: int, factory: str = "Flat", ef_search: int = HNSW_EF_SEARCH
    ) -> None:
        self.dimension = dimension
        self.factory = factory
        self.ef_search = ef_search
        self._index = self._empty()
        self._labels: dict[str, int] = {}  # image id -> FAISS id
        self._ids: dict[int, str] = {}  # FAISS id -> image id
        self._next_label = 0
        # Removed from the maps but still in an index that cannot remove (HNSW).
        self._tombstones: set[int] = set()
        self._skip: Any = None  # faiss.SearchParametersHNSW skipping the tombstones
        self._selectors: tuple[Any, ...] = ()  # what ``_skip`` points to, kept alive
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._labels)

    def __contains__(self, image_id: object) -> bool:
        return image_id in self._labels

    def ids(self) -> set[str]:
        with self._lock:
            return set(self._labels)

    def add(self, ids: list[str], vectors: NDArray[np.float32]) -> None:
        """Add unit ``vectors`` (one row per id); an id already present is replaced."""
        if vectors.shape != (len(ids), self.dimension):
            raise ValueError(f"expected {len(ids)} vectors of dimension {self.dimension}")
        if len(set(ids)) != len(ids):
            raise ValueError("ids must be distinct")
        if not ids:
            return
        with self._lock:
            self._remove_locked([image_id for image_id in ids if image_id in self._labels])
            labels = np.arange(self._next_label, self._next_label + len(ids), dtype=np.int64)
            self._next_label += len(ids)
            self._index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), labels)
            for image_id, label in zip(ids, labels.tolist(), strict=True):
                self._labels[image_id] = label
                self._ids[label] = image_id

    def remove(self, ids: list[str]) -> int:
        """Remove the given ids (unknown ones are ignored); return how many were removed."""
        with self._lock:
            return self._remove_locked([image_id for image_id in ids if image_id in self._labels])

    def clear(self) -> None:
        with self._lock:
            self._index = self._empty()
            self._labels.clear()
            self._ids.clear()
            self._bury(set())

    def search(
        self, vectors: NDArray[np.float32], top_k: int, min_similarity: float
    ) -> list[list[tuple[str, float]]]:
        """For each query row, up to ``top_k`` ``(id, similarity)`` pairs with similarity
        at least ``min_similarity``, best first."""
        queries = np.ascontiguousarray(vectors.reshape(-1, self.dimension), dtype=np.float32)
        with self._lock:
            if not self._labels or top_k < 1:
                return [[] for _ in range(len(queries))]
            scores, labels = self._index.search(
                queries, min(top_k, len(self._labels)), params=self._skip
            )
            ids = self._ids
            return [
                [
                    (ids[label], float(score))
                    for score, label in zip(row_scores, row_labels.tolist(), strict=True)
                    if label >= 0 and score >= min_similarity
                ]
                for row_scores, row_labels in zip(scores, labels, strict=True)
            ]

    def vectors(self, ids: list[str]) -> dict[str, NDArray[np.float32]]:
        """The stored vectors of those ``ids`` that are in the index."""
        with self._lock:
            return {
                image_id: np.asarray(self._index.reconstruct(self._labels[image_id]), np.float32)
                for image_id in ids
                if image_id in self._labels
            }

    def write(self, path: Path) -> None:
        """Write the index to ``path`` (FAISS's format) and its ids beside it
        (``path`` + ``.ids.npz``), as it is between two changes."""
        with self._lock:
            faiss.write_index(self._index, str(path))
            labels = np.fromiter(self._ids, np.int64, len(self._ids))
            ids = np.array([self._ids[label] for label in labels.tolist()], dtype=np.str_)
            with _ids_path(path).open("wb") as file:
                np.savez(file, labels=labels, ids=ids, next_label=np.int64(self._next_label))

    @classmethod
    def read(
        cls, path: Path, dimension: int, factory: str, ef_search: int = HNSW_EF_SEARCH
    ) -> "VectorIndex":
        """An index ``write`` wrote. Raises ``ValueError`` when the files do not hold an
        index of ``dimension`` whose ids match its vectors."""
        loaded = cls(dimension, factory, ef_search)
        try:
            index = faiss.read_index(str(path))
            with np.load(_ids_path(path)) as saved:
                labels, ids = saved["labels"].tolist(), saved["ids"].tolist()
                next_label = int(saved["next_label"])
        except (OSError, RuntimeError, KeyError, ValueError) as exc:
            raise ValueError(f"{path} is not a saved index ({exc})") from exc
        # read_index answers the saved type (IndexIDMap2); a downcast of it would not own it.
        stored = getattr(index, "id_map", None)
        tombstones = set() if stored is None else set(faiss.vector_to_array(stored).tolist())
        tombstones -= set(labels)
        if (
            index.d != dimension
            or stored is None
            or index.ntotal != len(labels) + len(tombstones)
            or len(set(ids)) != len(ids)
        ):
            raise ValueError(f"{path} does not hold {len(labels)} vectors of {dimension}")
        hnsw = getattr(faiss.downcast_index(getattr(index, "index", index)), "hnsw", None)
        if hnsw is not None:
            hnsw.efSearch = ef_search
        loaded._index = index
        loaded._ids = dict(zip(labels, ids, strict=True))
        loaded._labels = {image_id: label for label, image_id in loaded._ids.items()}
        loaded._next_label = next_label
        loaded._bury(tombstones)
        return loaded

    def _empty(self) -> faiss.Index:
        return make_faiss_index(self.dimension, self.factory, self.ef_search)

    def _remove_locked(self, ids: list[str]) -> int:
        if not ids:
            return 0
        labels = np.array([self._labels.pop(image_id) for image_id in ids], dtype=np.int64)
        for label in labels.tolist():
            del self._ids[label]
        try:
            self._index.remove_ids(labels)  # type: ignore[arg-type]  # SWIG accepts arrays
        except RuntimeError:
            # HNSW cannot remove vectors: searches skip them until they are too many.
            buried = self._tombstones | set(labels.tolist())
            if len(buried) > COMPACT_SHARE * (len(buried) + len(self._labels)):
                self._rebuild_locked()
            else:
                self._bury(buried)
        return len(ids)

    def _bury(self, tombstones: set[int]) -> None:
        """Make searches skip ``tombstones`` (FAISS ids still in the graph)."""
        self._tombstones = tombstones
        if not tombstones:
            self._skip, self._selectors = None, ()
            return
        # Only an HNSW index keeps tombstones (the factories allowed are Flat and HNSW);
        # faiss's type stubs lack its search parameters.
        skip = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]
        skip.efSearch = self.ef_search
        batch = faiss.IDSelectorBatch(np.fromiter(tombstones, np.int64, len(tombstones)))
        skip.sel = faiss.IDSelectorNot(batch)
        # SWIG keeps no reference from the selectors to what they wrap.
        self._selectors = (batch, skip.sel)
        self._skip = skip

    def _rebuild_locked(self) -> None:
        self._bury(set())
        kept = sorted(self._ids)
        vectors = [self._index.reconstruct(label) for label in kept]
        self._index = self._empty()
        if kept:
            self._index.add_with_ids(
                np.vstack(vectors).astype(np.float32), np.array(kept, dtype=np.int64)
            )


def _ids_path(path: Path) -> Path:
    return path.with_name(path.name + ".ids.npz")
