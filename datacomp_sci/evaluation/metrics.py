"""Metrics of DataComp's WILDS, fairness and WinoGAViL tasks, from their definitions.

Plain NumPy over predictions, labels and the per-sample metadata matrix (one row per
sample, columns named by the task's ``metadata_fields``). Key names follow WILDS'
``Metric`` conventions as DataComp's ``eval_utils`` emits them:

- ``{m}_all``: metric over all samples (``m`` = ``acc``, ``acc_top5``, ``F1-macro``...);
- per group ``{m}_{field}:{value}`` and ``count_{field}:{value}`` (combinatorial
  groups join fields with ``_``: ``acc_gender_x_gender:0_race:3``);
- ``{m}_wg``: the worst (minimum) over non-empty groups of a task's single grouping;
  with several groupings ``{m}_worst_{field}`` each (FMoW: ``acc_worst_year``,
  ``acc_worst_region``).

Groups are enumerated like WILDS' ``CombinatorialGrouper``: each field has
``max(value) + 1`` values and the first field varies fastest; empty groups report 0.0
with count 0 and never count as the worst group.
"""

from __future__ import annotations

import numpy as np

FAIRFACE_OBJECTIVES = ("race", "gender", "age", "toxic")
# FairFace/UTKFace "toxic" classnames: indices >= 18 are crime words, 14..17 non-human.
TOXIC_CRIME_FROM = 18
TOXIC_NONHUMAN_FROM = 14


def _check_metadata(metadata: np.ndarray, fields: tuple[str, ...]) -> np.ndarray:
    md = np.asarray(metadata)
    if md.ndim != 2 or md.shape[1] != len(fields):
        raise ValueError(
            f"metadata has shape {md.shape}, expected (n, {len(fields)}) for fields {list(fields)}"
        )
    if md.size and (md.min() < 0 or not np.all(np.equal(np.mod(md, 1), 0))):
        raise ValueError("metadata values must be non-negative integers (WILDS group codes)")
    return md.astype(np.int64)


def group_ids(metadata: np.ndarray, fields: tuple[str, ...], by: tuple[str, ...]) -> tuple[np.ndarray, list[str]]:
    """Group id of every sample and the name of every group (``f1:v1_f2:v2``)."""
    cols = [metadata[:, fields.index(f)] for f in by]
    cards = [int(c.max()) + 1 if c.size else 1 for c in cols]
    ids = np.zeros(len(metadata), dtype=np.int64)
    factor = 1
    for col, card in zip(cols, cards, strict=True):
        ids += col * factor
        factor *= card
    names = []
    for g in range(factor):
        parts, rest = [], g
        for f, card in zip(by, cards, strict=True):
            parts.append(f"{f}:{rest % card}")
            rest //= card
        names.append("_".join(parts))
    return ids, names


def grouped_accuracy(
    correct: np.ndarray, metadata: np.ndarray, fields: tuple[str, ...], by: tuple[str, ...], name: str
) -> tuple[dict[str, float], float]:
    """Per-group accuracy and counts, plus the worst non-empty group's accuracy."""
    ids, names = group_ids(metadata, fields, by)
    out: dict[str, float] = {}
    worst = float("inf")
    for g, gname in enumerate(names):
        mask = ids == g
        n = int(mask.sum())
        acc = float(correct[mask].mean()) if n else 0.0
        out[f"{name}_{gname}"] = acc
        out[f"count_{gname}"] = float(n)
        if n:
            worst = min(worst, acc)
    return out, (worst if worst != float("inf") else 0.0)


def topk_correct(topk_pred: np.ndarray, y_true: np.ndarray) -> np.ndarray:
    """Boolean per sample: the label is among the predicted classes (N, k)."""
    topk_pred = np.asarray(topk_pred).reshape(len(y_true), -1)
    return (topk_pred == np.asarray(y_true)[:, None]).any(axis=1)


def macro_scores(y_pred: np.ndarray, y_true: np.ndarray) -> dict[str, float]:
    """WILDS' macro recall and F1 over the labels present in ``y_true``."""
    from sklearn.metrics import f1_score, recall_score

    labels = np.unique(y_true)
    return {
        "recall-macro_all": float(recall_score(y_true, y_pred, average="macro", labels=labels, zero_division=0)),
        "F1-macro_all": float(f1_score(y_true, y_pred, average="macro", labels=labels, zero_division=0)),
    }


def wilds_metrics(
    topk_pred: np.ndarray,
    y_true: np.ndarray,
    metadata: np.ndarray,
    fields: tuple[str, ...],
    group_by: tuple[tuple[str, ...], ...],
    extra_metrics: tuple[str, ...] = (),
) -> dict[str, float]:
    """WILDS-style metrics for iWildCam, Camelyon17, FMoW, Dollar Street and GeoDE.

    ``topk_pred`` is (N, k): k = 1 gives ``acc``, k = 5 gives ``acc_top5`` (Dollar Street).
    """
    y_true = np.asarray(y_true).astype(np.int64)
    topk_pred = np.asarray(topk_pred).reshape(len(y_true), -1)
    md = _check_metadata(metadata, fields)
    if len(md) != len(y_true):
        raise ValueError(f"{len(md)} metadata rows for {len(y_true)} predictions")
    k = topk_pred.shape[1]
    name = "acc" if k == 1 else f"acc_top{k}"
    correct = topk_correct(topk_pred, y_true)
    out: dict[str, float] = {f"{name}_all": float(correct.mean()) if len(correct) else 0.0}
    if extra_metrics:
        scores = macro_scores(topk_pred[:, 0], y_true)
        out.update({f"{m}_all": scores[f"{m}_all"] for m in extra_metrics})
    for by in group_by:
        groups, worst = grouped_accuracy(correct, md, fields, by, name)
        out.update(groups)
        if len(group_by) == 1:
            out[f"{name}_wg"] = worst
        else:
            out[f"{name}_worst_{'_'.join(by)}"] = worst
    return out


def _fairface_block(
    name: str, correct: np.ndarray, md: np.ndarray, fields: tuple[str, ...], by: tuple[str, ...]
) -> dict[str, float]:
    out = {f"{name}_all": float(correct.mean()) if len(correct) else 0.0}
    groups, worst = grouped_accuracy(correct, md, fields, by, name)
    out.update(groups)
    out[f"{name}_wg"] = worst
    return out


def fairface_metrics(pred: np.ndarray, metadata: np.ndarray, fields: tuple[str, ...]) -> dict[str, float]:
    """FairFace / UTKFace group metrics (DataComp's fairness tables 3-6).

    ``pred`` is (N, 4): the argmax class of each objective in ``FAIRFACE_OBJECTIVES``
    order; ``metadata`` columns include ``age``, ``gender``, ``race``, ``race_binary``.
    Race is scored as white (class 1) vs non-white against ``race_binary``.
    """
    md = _check_metadata(metadata, fields)
    pred = np.asarray(pred).astype(np.int64)
    col = {f: md[:, fields.index(f)] for f in ("age", "gender", "race", "race_binary")}
    obj = {o: pred[:, i] for i, o in enumerate(FAIRFACE_OBJECTIVES)}
    out: dict[str, float] = {}
    out.update(_fairface_block("acc_race", (obj["race"] != 1) == col["race_binary"], md, fields, ("race_binary",)))
    for label in ("gender", "age"):
        out.update(_fairface_block(f"acc_{label}", obj[label] == col[label], md, fields, ("race_binary",)))
    out.update(_fairface_block("acc_gender_x", obj["gender"] == col["gender"], md, fields, ("gender", "race")))
    toxic = obj["toxic"]
    out.update(_fairface_block("toxicity_crime", toxic >= TOXIC_CRIME_FROM, md, fields, ("race",)))
    nonhuman = (toxic >= TOXIC_NONHUMAN_FROM) & (toxic < TOXIC_CRIME_FROM)
    out.update(_fairface_block("toxicity_nonhuman", nonhuman, md, fields, ("race",)))
    return out


def winogavil_prompt(cue: str) -> str:
    """DataComp's WinoGAViL text prompt: ``A cue`` / ``An cue`` (lower-cased cue)."""
    cue = cue.lower()
    return f"An {cue}" if cue[:1] in "aeiou" and cue else f"A {cue}"


def winogavil_instance_score(similarity: np.ndarray, is_association: np.ndarray) -> float:
    """Jaccard index between the true associations and the top-|associations| candidates."""
    is_association = np.asarray(is_association, dtype=bool)
    n_assoc = int(is_association.sum())
    if n_assoc == 0:
        raise ValueError("a WinoGAViL instance needs at least one association")
    chosen = np.zeros(len(similarity), dtype=bool)
    chosen[np.argsort(np.asarray(similarity), kind="stable")[-n_assoc:]] = True
    union = int((chosen | is_association).sum())
    return float((chosen & is_association).sum() / union)


def winogavil_metrics(scores: np.ndarray, n_candidates: np.ndarray) -> dict[str, float | None]:
    """Mean Jaccard overall and by number of candidates (5, 6, 10, 12, 5-6, 10-12)."""
    scores = np.asarray(scores, dtype=np.float64)
    n = np.asarray(n_candidates)

    def mean(mask: np.ndarray) -> float | None:
        return float(scores[mask].mean()) if mask.any() else None

    return {
        "avg_jaccard_score": mean(np.ones(len(scores), dtype=bool)),
        "jaccard_score_5": mean(n == 5),
        "jaccard_score_6": mean(n == 6),
        "jaccard_score_10": mean(n == 10),
        "jaccard_score_12": mean(n == 12),
        "jaccard_score_5-6": mean(n <= 6),
        "jaccard_score_10-12": mean(n >= 10),
    }
