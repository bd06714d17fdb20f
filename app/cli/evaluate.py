"""Measure ranking on your own data, with the running configuration:

    .venv/bin/python -m app.cli.evaluate QUERIES_DIR LABELS.csv [--turns]

LABELS.csv has a header and one row per query file: ``query,expected`` where
``expected`` is the id (file name in IMAGES_DIR) of the collection image the query should
find, several separated by ``;``. The command reads the same settings as the service
(environment and ``.env``), brings the stored index up to date with IMAGES_DIR (as
``python -m app.cli.index build``), ranks the whole collection for every query in every mode
(concept, shape, hybrid with HYBRID_CONCEPT_WEIGHT) and prints, per mode, top-1, top-5,
MRR and NAR, then precision and recall of "same brand?" at a range of ``min_similarity``
thresholds (``app.evaluation``). Exit code 0, 1 on a configuration error, 2 on bad input.
"""

import argparse
import csv
import logging
import sys
from pathlib import Path

from app.config import load_settings
from app.errors import ServiceError
from app.evaluation import (
    RankedQuery,
    metrics_table,
    precision_recall,
    ranking_metrics,
    threshold_table,
)
from app.ranking import SearchMode, SearchQuery
from app.search import Search
from app.service import Service


def read_labels(path: Path) -> dict[str, frozenset[str]]:
    """Query file name -> expected collection ids, from the labels CSV."""
    with path.open(newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    if not rows or not {"query", "expected"} <= set(rows[0]):
        raise ValueError(f"{path} needs a header with the columns query,expected")
    labels: dict[str, frozenset[str]] = {}
    for row in rows:
        expected = frozenset(part.strip() for part in row["expected"].split(";") if part.strip())
        labels[row["query"].strip()] = labels.get(row["query"].strip(), frozenset()) | expected
    return labels


def evaluate(
    search: Search,
    size: int,
    queries: dict[Path, frozenset[str]],
    turns: bool,
    concept_weight: float,
) -> tuple[str, str]:
    """The metrics table and the threshold table for ``queries`` in every mode, ranking
    the whole collection (``size`` images)."""
    metrics, thresholds = {}, {}
    for mode in SearchMode:
        query = SearchQuery(size, -1.0, mode, turns, concept_weight)
        ranked = [
            RankedQuery(
                [(m.id, m.similarity) for m in search.search(path.read_bytes(), query)],
                expected,
            )
            for path, expected in queries.items()
        ]
        label = f"{mode.value}" + (f" (w={concept_weight:g})" if mode is SearchMode.HYBRID else "")
        metrics[label] = ranking_metrics(ranked, size)
        thresholds[label] = precision_recall(ranked)
    return metrics_table(metrics), threshold_table(thresholds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.cli.evaluate", description=__doc__)
    parser.add_argument("queries_dir", type=Path, help="folder of query images")
    parser.add_argument("labels", type=Path, help="CSV: query,expected (ids joined by ;)")
    parser.add_argument("--turns", action="store_true", help="also match turned queries")
    args = parser.parse_args(argv)
    try:
        labels = read_labels(args.labels)
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    missing = [name for name in labels if not (args.queries_dir / name).is_file()]
    if missing:
        print(f"error: not in {args.queries_dir}: {', '.join(missing)}", file=sys.stderr)
        return 2
    try:
        settings = load_settings()
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        service = Service.open(settings)
        try:
            service.reconciler.reconcile()
            searchable = service.store.searchable_ids()
            unknown = sorted(
                image_id
                for expected in labels.values()
                for image_id in expected
                if image_id not in searchable
            )
            if unknown:
                print(f"error: not in the collection: {', '.join(unknown)}", file=sys.stderr)
                return 2
            queries = {args.queries_dir / name: expected for name, expected in labels.items()}
            ranking, thresholds = evaluate(
                service.search,
                service.collection.count(),
                queries,
                args.turns,
                settings.hybrid_concept_weight,
            )
        finally:
            service.close()
    except ServiceError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    print(f"{len(queries)} queries, {len(searchable)} images in the collection")
    print(ranking)
    print()
    print('"Same brand?" at each min_similarity:')
    print(thresholds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
