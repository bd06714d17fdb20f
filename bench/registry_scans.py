"""A registry-sized collection around the real scans, and queries with known answers.

Used by ``bench/retrieval.py --real-scans DIR``. The real scans are read from ``DIR``
(``../shared/real_scans``) and never copied into the repository; what is kept here, under
``bench/data/real_brands/``, are their clean stroke masks (``freeze_masks``: the service's
own cleaning and framing, then checked by eye), from which the queries are re-drawn.

- **registered**: every real scan as it is; each real brand once more with a standard
  addition beside it (a bar, a letter, a circle or an arc), drawn on new paper; and at
  least ``distractors`` registry-like brands: letters, digits and symbols in the 8 Hershey
  fonts, upright or italic, alone or in pairs, with bars and arcs; and chimeras (one
  real brand's top half on another's bottom half);
- **queries** (``Query.kind``): ``redrawn`` (a real brand re-drawn by another hand on new
  paper: a smooth warp, another pen width, up to 5 degrees of rotation and some shear;
  the answer is its scan), ``addition`` (the same with an addition beside it; the answer
  is the scan), ``converse`` (a plain re-drawing whose answer is the registered brand
  with an addition), ``turned`` (a re-drawing turned one of the 7 other ways), and
  ``related`` (a real scan whose answer is another real scan drawn with the same body
  and a different head, ``RELATED_BODIES``; the query's own brand, registered as it is
  and with an addition, is left out of its ranking);
- **held-out queries** (``held_out_queries``): the same kinds drawn with another seed, for
  checking that constants chosen on the queries above hold on others.
"""

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from app.imaging.decoding import decode_image
from app.imaging.preprocessing import prepare_for_embedding, prepare_with_core
from app.imaging.shape import shape_descriptor
from bench.brand_scans import PAPER_STYLES, TURNS, Redraw, ink_on_paper

DATA = Path(__file__).parent / "data" / "real_brands"
MASK_SIDE = 256
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
GLYPHS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789&+#$%"
FONTS = (
    cv2.FONT_HERSHEY_SIMPLEX,
    cv2.FONT_HERSHEY_PLAIN,
    cv2.FONT_HERSHEY_DUPLEX,
    cv2.FONT_HERSHEY_COMPLEX,
    cv2.FONT_HERSHEY_TRIPLEX,
    cv2.FONT_HERSHEY_COMPLEX_SMALL,
    cv2.FONT_HERSHEY_SCRIPT_SIMPLEX,
    cv2.FONT_HERSHEY_SCRIPT_COMPLEX,
)
ADDITIONS = ("bar", "letter", "circle", "arc")
# Real scans of one body with different heads, by eye: 21 and 23 (a chest crossed by an
# X), 29, 33 and 37 (a running figure; 37's head is crossed). Each asks for the other.
RELATED_BODIES = (("21", "23"), ("23", "21"), ("33", "37"), ("37", "33"), ("29", "37"),
                  ("37", "29"))  # fmt: skip
MAX_PIXELS = 100_000_000
# Squared paper's lines are at most this fraction of the page's side wide, however wide
# the pen (a real 1,500-pixel scan's thresholded lines are about 4 pixels, 0.27%): wider,
# a bold brand's page would be mostly grid, darker than its paper, and taken for a light
# drawing on dark paper.
MAX_GRID_WIDTH_FRACTION = 0.005

Mask = NDArray[np.bool_]


@dataclass(frozen=True)
class Query:
    data: bytes
    answer: str  # the registered file's name
    kind: str
    own: frozenset[str] = frozenset()  # registered files left out of its ranking


def real_scans(folder: Path) -> list[Path]:
    paths = (path for path in folder.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES)
    return sorted(paths, key=lambda path: (len(path.stem), path.stem))


def freeze_masks(folder: Path) -> None:
    """Write the clean stroke mask of every real scan of ``folder`` under ``DATA``."""
    DATA.mkdir(parents=True, exist_ok=True)
    for path in real_scans(folder):
        image = decode_image(path.read_bytes(), MAX_PIXELS, 896)
        framed = np.asarray(prepare_for_embedding(image).convert("L"))
        small = cv2.resize(framed, (MASK_SIDE, MASK_SIDE), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(DATA / f"{path.stem}.png"), np.where(small < 128, 255, 0).astype(np.uint8))


def load_masks() -> dict[str, Mask]:
    """The frozen masks, by the stem of their scan's file name."""
    if not DATA.is_dir():  # the masks are committed; freezing again is for new scans
        raise SystemExit(f"No masks under {DATA}: run with --freeze-masks first.")
    return {
        path.stem: np.asarray(np.asarray(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)) > 127)
        for path in sorted(DATA.glob("*.png"))
    }


def _stroke_width(mask: Mask) -> int:
    distance = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5)
    return max(2, round(2 * float(np.percentile(distance[mask], 95)))) if mask.any() else 4


def with_addition(mask: Mask, kind: str, rng: np.random.Generator) -> Mask:
    """``mask`` shrunk to make room, with an addition beside it on the right or below,
    drawn with the shrunk brand's pen (one hand draws both: a pen wider than the brand's
    would make the page's grid lines, sized from the widest strokes, as wide as it)."""
    side = mask.shape[0]
    canvas = np.zeros((side, side), np.uint8)
    shrunk = cv2.resize(mask.astype(np.uint8) * 255, (side * 3 // 4, side * 3 // 4))
    pen = _stroke_width(shrunk > 127)
    right = rng.random() < 0.5
    canvas[: shrunk.shape[0], : shrunk.shape[1]] = shrunk
    if not right:
        canvas = np.roll(canvas, side // 8, axis=1)
    centre = (side * 7 // 8, side // 3) if right else (side // 2, side * 7 // 8)
    size = side // 10
    cx, cy = centre
    if kind == "bar":
        ends = ((cx, cy - 2 * size), (cx, cy + 2 * size)) if right else (
            (cx - 2 * size, cy), (cx + 2 * size, cy))  # fmt: skip
        cv2.line(canvas, ends[0], ends[1], 255, pen, cv2.LINE_AA)
    elif kind == "circle":
        cv2.circle(canvas, centre, size, 255, pen, cv2.LINE_AA)
    elif kind == "arc":
        cv2.ellipse(canvas, centre, (size, size), 0, 200, 340, 255, pen, cv2.LINE_AA)
    else:
        glyph = str(rng.choice(list(GLYPHS[:23])))
        cv2.putText(canvas, glyph, (cx - size, cy + size), FONTS[0], size / 14, 255, pen)
    return np.asarray(canvas > 127, bool)


def glyph_brand(seed: int) -> Mask:
    """A letter, digit or symbol brand (one or two glyphs), sometimes with a bar or an arc."""
    rng = np.random.default_rng([seed, 23])
    canvas = np.zeros((MASK_SIDE, MASK_SIDE), np.uint8)
    text = "".join(rng.choice(list(GLYPHS), size=int(rng.integers(1, 3))))
    font = FONTS[int(rng.integers(len(FONTS)))] | (cv2.FONT_ITALIC if rng.random() < 0.3 else 0)
    thickness = int(rng.integers(4, 12))
    (width, height), _ = cv2.getTextSize(text, font, 1.0, thickness)
    scale = 0.7 * MASK_SIDE / max(width, height)
    (width, height), _ = cv2.getTextSize(text, font, scale, thickness)
    origin = ((MASK_SIDE - width) // 2, (MASK_SIDE + height) // 2)
    cv2.putText(canvas, text, origin, font, scale, 255, thickness, cv2.LINE_AA)
    extra = rng.random()
    if extra < 0.25:
        y = int(rng.choice([MASK_SIDE // 8, MASK_SIDE * 7 // 8]))
        cv2.line(canvas, (MASK_SIDE // 6, y), (MASK_SIDE * 5 // 6, y), 255, thickness)
    elif extra < 0.4:
        cv2.ellipse(canvas, (MASK_SIDE // 2, MASK_SIDE // 2), (MASK_SIDE * 2 // 5,) * 2, 0,
                    200, 340, 255, thickness)  # fmt: skip
    return np.asarray(canvas > 127, bool)


def chimera(top: Mask, bottom: Mask) -> Mask:
    """One brand's top half on another's bottom half."""
    half = MASK_SIDE // 2
    return np.concatenate([top[:half], bottom[half:]])


def _turned(mask: Mask, turn: str) -> Mask:
    turned = mask[:, ::-1] if turn.startswith("mirror") else mask
    quarters = {"rot90": 1, "rot180": 2, "rot270": 3}.get(turn.removeprefix("mirror_"), 0)
    return np.ascontiguousarray(np.rot90(turned, quarters))


def redraw_mask(mask: Mask, rng: np.random.Generator, turn: str = "upright") -> Mask:
    """``mask`` as another hand draws it: a smooth warp of 1-3% of the side, a pen
    0.6-1.5 times as wide, up to 5 degrees of rotation and some shear."""
    side = mask.shape[0]
    ink = _turned(mask, turn).astype(np.uint8) * 255
    pen = _stroke_width(mask)
    change = round(pen * (rng.uniform(0.6, 1.5) - 1) / 2)
    if change:
        disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(change) + 1,) * 2)
        ink = cv2.dilate(ink, disc) if change > 0 else cv2.erode(ink, disc)
    amplitude = side * rng.uniform(0.01, 0.03)
    fields = [
        cv2.GaussianBlur(rng.standard_normal((side, side)).astype(np.float32), (0, 0), side / 6)
        for _ in range(2)
    ]
    fields = [field / max(float(np.abs(field).max()), 1e-6) * amplitude for field in fields]
    grid_y, grid_x = np.mgrid[0:side, 0:side].astype(np.float32)
    ink = cv2.remap(ink, grid_x + fields[0], grid_y + fields[1], cv2.INTER_LINEAR)
    angle, shear = rng.uniform(-5, 5), rng.uniform(-0.08, 0.08)
    matrix = cv2.getRotationMatrix2D((side / 2, side / 2), angle, 1.0)
    matrix[0, 1] += shear
    ink = cv2.warpAffine(ink, matrix, (side, side))
    return np.asarray(ink > 127, bool)


def placed(
    mask: Mask, side: int, fill: float, rng: np.random.Generator
) -> tuple[NDArray[np.uint8], float]:
    """An ink page of ``side`` pixels with ``mask``'s drawing at ``fill`` of it, at a
    random place; and the scale it was drawn at."""
    size = max(8, round(side * fill))
    ys, xs = np.nonzero(mask)
    box = mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].astype(np.uint8) * 255
    scale = size / max(box.shape)
    drawn = cv2.resize(
        box, (max(1, round(box.shape[1] * scale)), max(1, round(box.shape[0] * scale)))
    )
    page = np.zeros((side, side), np.uint8)
    top = int(rng.integers(0, side - drawn.shape[0] + 1))
    left = int(rng.integers(0, side - drawn.shape[1] + 1))
    page[top : top + drawn.shape[0], left : left + drawn.shape[1]] = drawn
    return page, scale


def on_page(mask: Mask, rng: np.random.Generator, paper: str | None = None) -> bytes:
    """A PNG scan of ``mask`` at 40-85% of a new page, on new squared paper."""
    side = int(rng.choice([400, 800, 1500]))
    page, scale = placed(mask, side, rng.uniform(0.4, 0.85), rng)
    pen = max(2, round(_stroke_width(mask) * scale))
    redraw = Redraw(
        seed=int(rng.integers(2**31)),
        side=side,
        paper=paper or str(rng.choice(PAPER_STYLES)),
        border=bool(rng.random() < 0.3),
    )
    image = ink_on_paper(
        page, redraw, np.random.default_rng(redraw.seed), pen, MAX_GRID_WIDTH_FRACTION * side
    )
    buffer = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))[1]
    return buffer.tobytes()


def make_registry(scans: Path, folder: Path, distractors: int, redrawn: int = 4) -> list[Query]:
    """Write the registry into ``folder``; return the queries."""
    rng = np.random.default_rng(2027)
    masks = load_masks()
    scan_paths = {path.stem: path for path in real_scans(scans)}
    queries = []
    stems = [stem for stem in masks if stem in scan_paths]
    for stem in stems:
        path = scan_paths[stem]
        (folder / f"real_{path.name}").write_bytes(path.read_bytes())
        answer = f"real_{path.name}"
        mask = masks[stem]
        extended = f"real_{stem}_plus.png"
        registered_addition = str(rng.choice(ADDITIONS))
        (folder / extended).write_bytes(
            on_page(with_addition(mask, registered_addition, rng), rng, "light_grey")
        )
        # A query's addition differs from the registered one's: its answer is the scan.
        others = [kind for kind in ADDITIONS if kind != registered_addition]
        queries += brand_queries(mask, answer, extended, others, redrawn, rng)
    for asked, answer in RELATED_BODIES:
        if asked in stems and answer in stems:
            own = frozenset({f"real_{scan_paths[asked].name}", f"real_{asked}_plus.png"})
            data = scan_paths[asked].read_bytes()
            queries.append(Query(data, f"real_{scan_paths[answer].name}", "related", own))
    chimeras = max(1, distractors // 10)
    for number in range(distractors):
        if number < chimeras:
            first, second = rng.choice(len(stems), 2, replace=False)
            drawing = chimera(masks[stems[first]], masks[stems[second]])
        else:
            drawing = glyph_brand(number)
        (folder / f"other{number:05d}.png").write_bytes(on_page(redraw_mask(drawing, rng), rng))
    return queries


def brand_queries(
    mask: Mask,
    answer: str,
    extended: str,
    additions: list[str],
    redrawn: int,
    rng: np.random.Generator,
    suffix: str = "",
) -> list[Query]:
    """A real brand's ``redrawn`` and ``converse`` queries (``redrawn`` re-drawings), two
    ``addition`` ones (one of ``additions`` beside it) and a ``turned`` one; each kind
    named with ``suffix``."""
    queries = []
    for _ in range(redrawn):
        data = on_page(redraw_mask(mask, rng), rng)
        queries.append(Query(data, answer, "redrawn" + suffix))
        queries.append(Query(data, extended, "converse" + suffix))
    for _ in range(2):
        added = with_addition(mask, str(rng.choice(additions)), rng)
        queries.append(Query(on_page(redraw_mask(added, rng), rng), answer, "addition" + suffix))
    turn = str(rng.choice(TURNS[1:]))
    queries.append(Query(on_page(redraw_mask(mask, rng, turn), rng), answer, "turned" + suffix))
    return queries


def held_out_queries(scans: Path, seed: int, redrawn: int = 3) -> list[Query]:
    """Queries of the same kinds as ``make_registry``'s, drawn by other random hands
    (``seed``) for the same registry, their kinds named ``", held-out"``: the constants
    were chosen on ``make_registry``'s queries, so these say whether they hold on
    drawings they were not chosen on. Their additions may be of the registered one's kind
    (never the same drawing)."""
    rng = np.random.default_rng(seed)
    names = {path.stem: path.name for path in real_scans(scans)}
    return [
        query
        for stem, mask in load_masks().items()
        if stem in names
        for query in brand_queries(
            mask,
            f"real_{names[stem]}",
            f"real_{stem}_plus.png",
            list(ADDITIONS),
            redrawn,
            rng,
            ", held-out",
        )
    ]


def query_shapes(data: bytes) -> list[NDArray[np.float32]]:
    """The shape rows a search sends for a drawing, upright: the whole drawing and its
    core (``app.search.Search.by_vectors``)."""
    whole, core = prepare_with_core(decode_image(data, MAX_PIXELS, 896))
    parts = [whole] if core is None else [whole, core]
    return [shape_descriptor(np.asarray(part, np.uint8)) for part in parts]


def preprocessed(data: bytes) -> Image.Image:
    return prepare_for_embedding(decode_image(data, MAX_PIXELS, 896))
