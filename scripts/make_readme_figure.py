"""Write docs/before_after.png: a scan from test_images/ beside what the embedder sees.

.venv/bin/python -m scripts.make_readme_figure
"""

from pathlib import Path

import numpy as np
from PIL import Image

from app.imaging.decoding import decode_image
from app.imaging.framing import EMBEDDER_SIDE
from app.imaging.preprocessing import prepare_for_embedding

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "test_images" / "imagen21_redrawn.jpg"


def main() -> None:
    scan = decode_image(SOURCE.read_bytes(), max_pixels=64_000_000)
    seen = prepare_for_embedding(scan)
    before = scan.resize((EMBEDDER_SIDE * 2, EMBEDDER_SIDE * 2), Image.Resampling.LANCZOS)
    after = seen.resize((EMBEDDER_SIDE * 2, EMBEDDER_SIDE * 2), Image.Resampling.NEAREST)
    gap = np.full((EMBEDDER_SIDE * 2, 16, 3), 200, np.uint8)
    pair = np.hstack([np.asarray(before), gap, np.asarray(after)])
    (ROOT / "docs").mkdir(exist_ok=True)
    Image.fromarray(pair).save(ROOT / "docs" / "before_after.png", optimize=True)


if __name__ == "__main__":
    main()
