"""Are the verdicts right? ``app.verdict``'s constants, measured on the registry
benchmark's queries and checked on a held-out draw, through the HTTP service.

    .venv/bin/python -m bench.verdicts --real-scans ../shared/real_scans [--size 2000]

The registry is ``bench/registry_scale.py``'s (built once and cached: the 20 real scans,
each also registered with an addition, glyph brands and chimeras that share an exact
half of two real brands). Queries, each searched as the page checks a drawing
(``mode=shape``, the ``RERANK_CANDIDATES`` first results, all verified; ``turns=true``
for the turned ones):

- the calibration draw (``make_registry``'s queries) and a held-out draw
  (``held_out_queries``, other hands) of the real brands: re-drawn, with an addition,
  turned; their true conflicts are their own brand's scan (``same`` for a re-drawing,
  ``contains`` for one with an addition) and its registered version with an addition
  (``contained`` for a re-drawing). One with an addition against the registered one
  with another addition is counted apart ("both with additions"): the issue's targets
  do not name it;
- ``--unrelated`` new brands: the left half of a real brand beside the right half of
  another (drawn by new hands; the registry's chimeras are split top and bottom, so none
  is registered), every result of which is unrelated.

Every other result (a glyph brand, a chimera, another real brand) is unrelated, except
the real brands of one body with another head (``RELATED_BODIES``), counted apart. CLIP
plays no part: the verdicts come from the stroke masks alone.

Printed: per draw and relation, how often each verdict is given; the share of checks in
which an unrelated brand got a conflict verdict (per check) and of unrelated results
(per result); the raw scores are kept in ``bench/.cache/verdicts-N.json`` so that
``--fit`` can choose the constants again without a server.
"""

import argparse
import json
from collections import Counter
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from app.verdict import CALIBRATED, Thresholds, Verdict, verdict_of
from bench.registry_scale import build, served_environment
from bench.registry_scans import (
    RELATED_BODIES,
    Query,
    chimera,
    held_out_queries,
    load_masks,
    on_page,
    redraw_mask,
)
from bench.service_bench import CACHE, full_size_checkpoint, running_server

HELD_OUT_SEED = 4242
UNRELATED_SEED = 5151
CANDIDATES = 8
# A result's relations to its query that are conflicts (``relation``).
TRUE_CONFLICTS = ("same", "contains", "contained")


def unrelated_queries(number: int) -> list[Query]:
    """New brands that no registered one is: a real brand's left half beside another's
    right half, re-drawn on new paper. (Glyph brands would not do: the registry holds the
    same letters in the same fonts, true conflicts; nor its own top-and-bottom chimeras.)"""
    rng = np.random.default_rng(UNRELATED_SEED)
    masks = list(load_masks().values())
    queries = []
    for _ in range(number):
        first, second = rng.choice(len(masks), 2, replace=False)
        drawing = chimera(masks[first].T, masks[second].T).T  # left and right halves
        queries.append(Query(on_page(redraw_mask(drawing, rng), rng), "", "unrelated"))
    return queries


def _stem(file_name: str) -> str:
    """real_17.jpg and real_17_plus.png -> 17."""
    return file_name.removeprefix("real_").rsplit(".", 1)[0].removesuffix("_plus")


def relation(query: Query, result: str) -> str:
    """What ``result`` is to ``query``: the verdict it should get, or its relation."""
    if query.kind.startswith("unrelated") or not result.startswith("real_"):
        return "unrelated"
    kind = query.kind.split(",")[0]
    own, theirs = _stem(query.answer), _stem(result)
    if own != theirs:
        return "related body" if (own, theirs) in RELATED_BODIES else "unrelated"
    registered_addition = result.endswith("_plus.png")
    if kind == "addition":
        return "both with additions" if registered_addition else "contains"
    return "contained" if registered_addition else "same"


def collect(client: httpx.Client, draw: str, queries: list[Query]) -> list[dict[str, Any]]:
    """One row per verified result of each query."""
    rows = []
    seen = set()
    for number, query in enumerate(queries):
        if query.kind.startswith(("converse", "related")) or query.data in seen:
            continue  # a converse query is a re-drawn one's data; a related one is a scan
        seen.add(query.data)
        params = {"mode": "shape", "top_k": str(CANDIDATES), "min_similarity": "-1"}
        if query.kind.startswith("turned"):
            params["turns"] = "true"
        response = client.post(
            "/search-similar-images/", params=params, files={"file": ("q.png", query.data)}
        )
        response.raise_for_status()
        for result in response.json()["results"]:
            if result["overlap"] is None:
                continue
            rows.append(
                {
                    "draw": draw,
                    "check": number,
                    "kind": query.kind.split(",")[0],
                    "relation": relation(query, result["id"]),
                    "registered_covered": result["registered_covered"],
                    "query_covered": result["query_covered"],
                    "core_match": result["core_match"],
                    "overlap": result["overlap"],
                    "verdict": result["verdict"],
                }
            )
    return rows


@dataclass(frozen=True)
class _Scores:
    """The numbers of a result that ``verdict_of`` reads."""

    registered_covered: float
    query_covered: float
    core_match: float
    overlap: float


def verdict(row: dict[str, Any], thresholds: Thresholds = CALIBRATED) -> Verdict:
    scores = _Scores(
        row["registered_covered"], row["query_covered"], row["core_match"], row["overlap"]
    )
    return verdict_of(scores, thresholds)


def figures(rows: list[dict[str, Any]], thresholds: Thresholds = CALIBRATED) -> dict[str, float]:
    """The targets' figures for ``rows``."""
    given = [(row, verdict(row, thresholds)) for row in rows]
    true = [
        v for row, v in given if row["relation"] in ("same", "contains", "contained", "conflict")
    ]
    unrelated = [(row, v) for row, v in given if row["relation"] == "unrelated"]
    checks = {(row["draw"], row["check"]) for row in rows}
    flagged = {(row["draw"], row["check"]) for row, v in unrelated if v.conflict}
    redrawn = [v for row, v in given if row["relation"] == "same"]
    return {
        "true conflict": _share([v.conflict for v in true]),
        "unrelated, per check": len(flagged) / len(checks),
        "unrelated, per result": _share([v.conflict for _, v in unrelated]),
        "re-drawn: same": _share([v is Verdict.SAME for v in redrawn]),
        "re-drawn: plus an addition": _share(
            [v in (Verdict.CONTAINS, Verdict.CONTAINED) for v in redrawn]
        ),
    }


def _share(flags: list[bool]) -> float:
    return sum(flags) / len(flags) if flags else float("nan")


def table(rows: list[dict[str, Any]]) -> None:
    verdicts = list(Verdict)
    print("| draw | relation | results | " + " | ".join(verdicts) + " |")
    print("| --- | --- | --- |" + " --- |" * len(verdicts))
    groups: dict[tuple[str, str], Counter[Verdict]] = {}
    for row in rows:
        groups.setdefault((row["draw"], row["relation"]), Counter())[verdict(row)] += 1
    for (draw, relation_), counts in sorted(groups.items()):
        total = sum(counts.values())
        shares = " | ".join(f"{counts[v] / total:.3f}" for v in verdicts)
        print(f"| {draw} | {relation_} | {total} | {shares} |")
    for draw in sorted({row["draw"] for row in rows}):
        mine = [row for row in rows if row["draw"] == draw]
        print(draw, {name: round(value, 4) for name, value in figures(mine).items()})


def fit(rows: list[dict[str, Any]]) -> Thresholds:
    """The thresholds that flag the most true conflicts (up to 0.995) less twice the
    share of checks of unrelated brands flagged, then call the most re-drawings the same
    brand and the fewest a brand plus an addition."""
    grid = np.round(np.arange(0.9, 1.0, 0.005), 3)

    def score(values: tuple[float, ...]) -> tuple[float, float]:
        found = figures(rows, Thresholds(*values))
        redrawn = found["re-drawn: same"] - found["re-drawn: plus an addition"]
        return min(found["true conflict"], 0.995) - 2 * found["unrelated, per check"], redrawn

    candidates = product(grid, grid, np.round(np.arange(0.94, 1.005, 0.005), 3))
    return Thresholds(*(float(value) for value in max(candidates, key=score)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--real-scans", type=Path, required=True)
    parser.add_argument("--size", type=int, default=2_000)
    parser.add_argument("--unrelated", type=int, default=100)
    parser.add_argument("--fit", action="store_true", help="choose the constants again")
    args = parser.parse_args()
    kept = CACHE / f"verdicts-{args.size}.json"
    if not kept.is_file():
        checkpoint = full_size_checkpoint()
        root, queries = build(args.real_scans, args.size, checkpoint)
        with (
            running_server(served_environment(root, checkpoint)) as server,
            httpx.Client(base_url=server.url, timeout=300) as client,
        ):
            rows = collect(client, "calibration", queries)
            rows += collect(client, "held-out", held_out_queries(args.real_scans, HELD_OUT_SEED))
            rows += collect(client, "unrelated", unrelated_queries(args.unrelated))
        kept.write_text(json.dumps(rows))
    rows = json.loads(kept.read_text())
    if args.fit:
        calibration = [row for row in rows if row["draw"] != "held-out"]
        print("fitted on the calibration draw and the unrelated checks:", fit(calibration))
    table(rows)


if __name__ == "__main__":
    main()
