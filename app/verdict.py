"""The verdict on a verified result: what a clerk is told about a registered brand and a
new drawing, in words, from how much of each one's strokes the other covers once aligned
(``app.imaging.verification.Alignment``).

Pipeline of ``verdict_of(scores)``:

1. both coverages at least ``same_covered``: ``same`` (the same brand, re-drawn);
2. one drawing's core (the brand without the addition beside it) matching the other
   drawing at least ``core_match``: ``contains`` when the registered brand is the better
   covered (the new drawing is the registered brand plus an addition), else
   ``contained`` (the registered brand is the new drawing plus an addition);
3. ``overlap`` at least ``similar_overlap``: ``similar`` (related: look at the overlay);
4. otherwise ``different``.

Every verdict but ``different`` is a conflict: the page asks about it before registering,
and the verification stage lists conflicts first. The thresholds (``CALIBRATED``) were
chosen on the registry benchmark's queries and checked on a held-out draw
(``bench/verdicts.py``; the table is in docs/ranking.md). They read the stroke masks only,
not CLIP.
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Protocol


class Scores(Protocol):
    """What a verdict is read from: an ``Alignment``'s numbers, or a search result's."""

    @property
    def registered_covered(self) -> float: ...
    @property
    def query_covered(self) -> float: ...
    @property
    def core_match(self) -> float: ...
    @property
    def overlap(self) -> float: ...


@dataclass(frozen=True)
class Thresholds:
    same_covered: float
    core_match: float
    similar_overlap: float


# On the registry benchmark (2,000 brands, the 20 real ones re-drawn, with additions both
# ways and turned): 0.988 of the true conflicts flagged, 0.99 of the re-drawings called
# "same", no check of an unrelated brand flagged. Held out: 0.990, and 2 of 120 checks
# flagged (a glyph brand's core matching a drawing with an addition).
CALIBRATED: Final = Thresholds(same_covered=0.96, core_match=0.955, similar_overlap=0.97)


class Verdict(StrEnum):
    SAME = "same"
    CONTAINS = "contains"
    CONTAINED = "contained"
    SIMILAR = "similar"
    DIFFERENT = "different"

    @property
    def conflict(self) -> bool:
        """Whether a clerk should look before registering the new drawing."""
        return self is not Verdict.DIFFERENT


def verdict_of(scores: Scores, thresholds: Thresholds = CALIBRATED) -> Verdict:
    """The verdict on a registered brand aligned on a new drawing (see the module)."""
    registered, query = scores.registered_covered, scores.query_covered
    if min(registered, query) >= thresholds.same_covered:
        return Verdict.SAME
    if scores.core_match >= thresholds.core_match:
        return Verdict.CONTAINS if registered >= query else Verdict.CONTAINED
    if scores.overlap >= thresholds.similar_overlap:
        return Verdict.SIMILAR
    return Verdict.DIFFERENT
