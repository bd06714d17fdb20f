"""The original authors' hybrid descriptor without its CLIP part, as the benchmarks'
baseline: ranked on the raw files, as their service ranked them."""

import cv2
import numpy as np
from numpy.typing import NDArray

from app.evaluation import RankedQuery


def original_descriptor(data: bytes) -> NDArray[np.float32]:
    """The original authors' hybrid vector without its CLIP part: an 8x8 map of dark-pixel
    density and a 64-bit difference hash of the raw page, each unit length, weighted
    0.4 and 0.3 as they weighted them."""
    grey = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    _, dark = cv2.threshold(grey, 0, 1, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    density = cv2.resize(dark.astype(np.float32), (8, 8), interpolation=cv2.INTER_AREA).ravel()
    small = cv2.resize(grey, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    dhash = np.where(small[:, 1:] > small[:, :-1], 1.0, -1.0).ravel()

    def unit(vector: NDArray[np.float64]) -> NDArray[np.float64]:
        return vector / max(float(np.linalg.norm(vector)), 1e-12)

    return np.concatenate([0.4 * unit(density), 0.3 * unit(dhash)]).astype(np.float32)


def baseline_rankings(
    collection: dict[str, bytes], queries: list[tuple[bytes, str]]
) -> list[RankedQuery]:
    """Each query's (bytes, answer) ranking of ``collection`` (name -> bytes)."""
    ids = list(collection)
    vectors = np.stack([original_descriptor(collection[image_id]) for image_id in ids])
    ranked = []
    for data, answer in queries:
        scores = vectors @ original_descriptor(data)
        order = np.argsort(-scores)
        ranked.append(RankedQuery([(ids[i], float(scores[i])) for i in order], frozenset({answer})))
    return ranked
