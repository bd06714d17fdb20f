"""Score grid removers on synthetic scans with known ink and grid masks.

    .venv/bin/python -m bench.grid_removal [--quick]

Compares, in one run, the original method (Otsu, Canny 50/150, HoughLinesP 50/100/10,
5x5 dilation, Telea inpainting radius 3, at full resolution) with the service's
``prepare_for_embedding`` path (shrink to the working size, then ``without_grid``:
``remove_grid``, again at twice the working size where the strokes are at risk), and
prints per-style and per-size averages:

- grid: residual grid contrast on grid-only pixels, as a fraction of the input's;
- keep: ink retention on the stroke cores;
- spur: spurious dark pixels on the background, as a fraction of the background;
- iou: IoU of the output's dark pixels with the ink mask;
- ms: median time per image on one thread.
"""

import argparse
import statistics
import time
from collections import defaultdict
from collections.abc import Callable

import cv2
import numpy as np
from numpy.typing import NDArray

from app.imaging.preprocessing import PreprocessingOptions, to_working_size, without_grid
from bench.hough_baseline import remove_grid as hough_remove_grid
from bench.synthetic_scans import STYLES, Scan, ScanSpec, make_scan

SIDES = (300, 800, 1500, 2000)
SEEDS = (1, 2)
Remover = Callable[[NDArray[np.uint8]], NDArray[np.uint8]]


def service_remover(image: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """The service's grid removal: at working size, and again at twice it where the
    strokes are at risk (``app.imaging.preprocessing.without_grid``)."""
    return without_grid(image, to_working_size(image), PreprocessingOptions())


def _resize_mask(mask: NDArray[np.bool_], shape: tuple[int, ...]) -> NDArray[np.bool_]:
    if mask.shape == shape[:2]:
        return mask
    area = cv2.resize(mask.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
    return np.asarray(area >= 0.5, bool)


def score(scan: Scan, output: NDArray[np.uint8]) -> dict[str, float]:
    shape = output.shape
    source = scan.image
    if source.shape != shape:
        source = cv2.resize(source, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
    grey_in = cv2.cvtColor(source, cv2.COLOR_RGB2GRAY).astype(np.float32)
    grey_out = cv2.cvtColor(output, cv2.COLOR_RGB2GRAY).astype(np.float32)
    ink = _resize_mask(scan.ink, shape)
    core = _resize_mask(scan.ink_core, shape)
    grid = _resize_mask(scan.grid, shape)
    near_ink = cv2.dilate(ink.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    background = ~near_ink & ~grid
    paper_in, paper_out = np.median(grey_in[background]), np.median(grey_out[background])
    ink_level = np.median(grey_in[core]) if core.any() else np.median(grey_in[ink])
    dark_out = (paper_out - grey_out) > 0.5 * (paper_in - ink_level)
    result = {
        "keep": float(dark_out[core].mean()) if core.any() else 1.0,
        "spur": float(dark_out[~near_ink].mean()),
        "iou": float((dark_out & ink).sum() / max(1, (dark_out | ink).sum())),
    }
    if grid.any():
        before = paper_in - grey_in[grid].mean()
        after = paper_out - grey_out[grid].mean()
        result["grid"] = float(max(0.0, after) / max(before, 1e-6))
    return result


def time_ms(remover: Remover, image: NDArray[np.uint8], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        remover(image)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one seed, sides up to 1500")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    sides = SIDES[:3] if args.quick else SIDES
    seeds = SEEDS[:1] if args.quick else SEEDS
    removers: dict[str, Remover] = {"original": hough_remove_grid, "service": service_remover}
    rows: dict[tuple[str, str], list[dict[str, float]]] = defaultdict(list)
    for style in STYLES:
        for side in sides:
            for seed in seeds:
                scan = make_scan(ScanSpec(style, side, seed))
                for name, remover in removers.items():
                    metrics = score(scan, remover(scan.image))
                    metrics["ms"] = time_ms(remover, scan.image, 3 if name == "service" else 1)
                    for key in (f"style={style}", f"side={side}", "ALL"):
                        rows[(key, name)].append(metrics)

    columns = ("grid", "keep", "spur", "iou", "ms")
    print(f"{'group':<24}" + "".join(f"{n + ' ' + c:>15}" for c in columns for n in removers))
    groups = [f"style={style}" for style in STYLES] + [f"side={side}" for side in sides] + ["ALL"]
    for group in groups:
        cells = []
        for column in columns:
            for name in removers:
                values = [m[column] for m in rows[(group, name)] if column in m]
                cells.append(f"{statistics.fmean(values):>15.3f}" if values else f"{'-':>15}")
        print(f"{group:<24}" + "".join(cells))
    total = {name: rows[("ALL", name)] for name in removers}
    service = total["service"]
    plain = rows[("style=none", "service")]
    print(
        "\nservice: grid {:.3f} (target <= 0.05), keep {:.3f} (>= 0.97), iou {:.3f} (>= 0.90), "
        "plain-paper keep {:.3f} (>= 0.99) spur {:.4f}, 1500 px {:.1f} ms (<= 30)".format(
            statistics.fmean(m["grid"] for m in service if "grid" in m),
            statistics.fmean(m["keep"] for m in service),
            statistics.fmean(m["iou"] for m in service),
            statistics.fmean(m["keep"] for m in plain),
            statistics.fmean(m["spur"] for m in plain),
            statistics.median(m["ms"] for m in rows[("side=1500", "service")]),
        )
    )


if __name__ == "__main__":
    main()
