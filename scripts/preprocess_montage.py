"""A montage of what the embedder sees for every image of a folder, beside the original.

    .venv/bin/python -m scripts.preprocess_montage ../shared/real_scans /tmp/montage.png

Each tile pair is the scan (reduced) and its preprocessed square (grid removed, framed),
the same ``prepare_for_embedding`` the service runs for ``POST /preprocess``; the file
name is written under each pair. For checking cleaning and framing by eye.
"""

import argparse
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from app.imaging.decoding import decode_image
from app.imaging.preprocessing import PreprocessingOptions, prepare_for_embedding

TILE = 224
COLUMNS = 4
LABEL_HEIGHT = 18
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}
MAX_PIXELS = 100_000_000


def pair(path: Path) -> NDArray[np.uint8]:
    """The scan and its preprocessed square side by side, with the name below."""
    image = decode_image(path.read_bytes(), MAX_PIXELS, 2 * PreprocessingOptions().working_side)
    original = np.asarray(image, np.uint8)
    scale = TILE / max(original.shape[:2])
    small = cv2.resize(original, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    left = np.full((TILE, TILE, 3), 255, np.uint8)
    left[: small.shape[0], : small.shape[1]] = small
    right = np.asarray(prepare_for_embedding(image), np.uint8)
    tile = np.full((TILE + LABEL_HEIGHT, 2 * TILE + 6, 3), 200, np.uint8)
    tile[:TILE, :TILE] = left
    tile[:TILE, TILE + 6 :] = right
    cv2.putText(tile, path.name, (4, TILE + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
    return tile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("output", type=Path)
    args = parser.parse_args()
    paths = sorted(
        (p for p in args.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES),
        key=lambda p: (len(p.stem), p.stem),
    )
    tiles = [pair(path) for path in paths]
    blank = np.full_like(tiles[0], 255)
    tiles += [blank] * (-len(tiles) % COLUMNS)
    rows = [np.hstack(tiles[i : i + COLUMNS]) for i in range(0, len(tiles), COLUMNS)]
    cv2.imwrite(str(args.output), cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR))
    print(f"{len(paths)} images -> {args.output}")


if __name__ == "__main__":
    main()
