"""Ranking quality: is the right brand first? Shared by ``python -m app.cli.evaluate`` (a
registry's own labelled queries) and ``bench/retrieval.py`` (synthetic re-drawings).

For each query, the rank of its best-placed expected image in the full ranking of the
collection (1 = first) gives:

- top-1 and top-5: the share of queries whose expected image is first / in the first 5;
- MRR: the mean of 1 / rank;
- NAR, the normalised average rank: the mean of (rank - 1) / collection size; 0 is
  perfect, about 0.5 is chance.

For the "same brand?" decision, every (query, collection image) pair above a
``min_similarity`` threshold counts as a "yes": precision is the share of yeses that are
expected images, recall the share of expected images that get a yes.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

THRESHOLDS = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


@dataclass(frozen=True)
class RankedQuery:
    """One query's full ranking (``(id, similarity)``, best first) and its answers."""

    ranking: Sequence[tuple[str, float]]
    expected: frozenset[str]

    @property
    def rank(self) -> int:
        """Rank of the best-placed expected image; one past the end when none is there."""
        for position, (image_id, _) in enumerate(self.ranking, start=1):
            if image_id in self.expected:
                return position
        return len(self.ranking) + 1


@dataclass(frozen=True)
class RankingMetrics:
    queries: int
    top1: float
    top5: float
    mrr: float
    nar: float


def ranking_metrics(queries: Sequence[RankedQuery], collection_size: int) -> RankingMetrics:
    ranks = [query.rank for query in queries]
    count = max(1, len(ranks))
    return RankingMetrics(
        queries=len(ranks),
        top1=sum(rank == 1 for rank in ranks) / count,
        top5=sum(rank <= 5 for rank in ranks) / count,
        mrr=sum(1 / rank for rank in ranks) / count,
        nar=sum((rank - 1) / max(1, collection_size) for rank in ranks) / count,
    )


@dataclass(frozen=True)
class ThresholdFigures:
    threshold: float
    precision: float | None  # None when nothing is above the threshold
    recall: float


def precision_recall(
    queries: Sequence[RankedQuery], thresholds: Iterable[float] = THRESHOLDS
) -> list[ThresholdFigures]:
    relevant = sum(len(query.expected) for query in queries)
    figures = []
    for threshold in thresholds:
        yes = [
            image_id in query.expected
            for query in queries
            for image_id, similarity in query.ranking
            if similarity >= threshold
        ]
        figures.append(
            ThresholdFigures(
                threshold,
                sum(yes) / len(yes) if yes else None,
                sum(yes) / relevant if relevant else 0.0,
            )
        )
    return figures


def metrics_table(rows: dict[str, RankingMetrics]) -> str:
    """A Markdown table of ``rows`` (label -> metrics)."""
    lines = ["| | queries | top-1 | top-5 | MRR | NAR |", "| --- | --- | --- | --- | --- | --- |"]
    lines += [
        f"| {label} | {m.queries} | {m.top1:.3f} | {m.top5:.3f} | {m.mrr:.3f} | {m.nar:.4f} |"
        for label, m in rows.items()
    ]
    return "\n".join(lines)


def threshold_table(rows: dict[str, list[ThresholdFigures]]) -> str:
    """A Markdown table of precision / recall per threshold, one column per label."""
    labels = list(rows)
    lines = [
        "| min_similarity | "
        + " | ".join(f"{label} precision / recall" for label in labels)
        + " |",
        "| --- |" + " --- |" * len(labels),
    ]
    for index, threshold in enumerate(figure.threshold for figure in rows[labels[0]]):
        cells = []
        for label in labels:
            figure = rows[label][index]
            precision = "-" if figure.precision is None else f"{figure.precision:.3f}"
            cells.append(f"{precision} / {figure.recall:.3f}")
        lines.append(f"| {threshold:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
