"""Every tower's vectors are unit vectors, so an inner product is a cosine similarity."""

import numpy as np
from numpy.typing import NDArray

# A zero row stays zero instead of becoming NaN.
MIN_NORM = 1e-12


def unit_rows(vectors: NDArray[np.float32]) -> NDArray[np.float32]:
    """Each row of ``vectors`` divided by its L2 norm."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.asarray(vectors / np.maximum(norms, MIN_NORM), np.float32)
