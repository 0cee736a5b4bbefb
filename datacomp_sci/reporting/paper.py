"""The published results of "Training CLIP models on Data from Scientific Papers"
(arXiv 2311.04711), as data: Table 3 (aggregates) and Table 4 (tasks that gain).

Small scale (ViT-B/32, 12.8M samples seen), DataComp's 38-task suite. ``report --paper``
prints these beside a user's runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from datacomp_sci.reporting.aggregate import AVERAGE, DIST_SHIFTS, IMAGENET, RETRIEVAL, VTAB

ARXIV_ID = "2311.04711"
TITLE = "Training CLIP models on Data from Scientific Papers"
SCALE = "small"
SUITE = "datacomp38"

#: Pool sizes (pairs) and mean caption lengths (characters) reported by the paper.
POOL_SIZES: dict[str, int] = {"commonpool": 11_778_443, "arxiv": 1_117_377, "pmc": 766_855}
CAPTION_CHARS: dict[str, float] = {"commonpool": 45.21, "arxiv": 266.96, "pmc": 464.91}
#: Natural mixing proportions (share of pool sizes), as the paper's 86 / 8 / 6 %.
MIX_PERCENT: dict[str, int] = {"commonpool": 86, "arxiv": 8, "pmc": 6}


@dataclass(frozen=True)
class PaperRow:
    """One row of Table 3."""

    training_data: str
    scores: dict[str, float]


@dataclass(frozen=True)
class PaperGain:
    """One row of Table 4: a task where CommonPool + arXiv + PMC beats CommonPool."""

    task_key: str
    task: str
    score: float
    baseline: float

    @property
    def delta(self) -> float:
        return self.score - self.baseline


BASELINE = "CommonPool"
MIXED = "CommonPool + arXiv + PMC"

TABLE3: tuple[PaperRow, ...] = (
    PaperRow(BASELINE, {IMAGENET: 0.028, DIST_SHIFTS: 0.037, VTAB: 0.145, RETRIEVAL: 0.113,
                        AVERAGE: 0.132}),
    PaperRow("arXiv + PMC", {IMAGENET: 0.002, DIST_SHIFTS: 0.007, VTAB: 0.098, RETRIEVAL: 0.058,
                             AVERAGE: 0.086}),
    PaperRow(MIXED, {IMAGENET: 0.017, DIST_SHIFTS: 0.026, VTAB: 0.153, RETRIEVAL: 0.098,
                     AVERAGE: 0.135}),
)

TABLE4: tuple[PaperGain, ...] = (
    PaperGain("fgvc_aircraft", "FGVC Aircraft", 0.0136, 0.0072),
    PaperGain("gtsrb", "GTSRB", 0.0801, 0.0418),
    PaperGain("vtab/clevr_count_all", "CLEVR Counts", 0.1465, 0.1437),
    PaperGain("vtab/kitti_closest_vehicle_distance", "KITTI Vehicle Distance", 0.3459, 0.3150),
    PaperGain("vtab/pcam", "PatchCamelyon", 0.6004, 0.4057),
    PaperGain("vtab/svhn", "SVHN", 0.1127, 0.0852),
    PaperGain("wilds/camelyon17", "Camelyon17", 0.7120, 0.3970),
)
