"""Bias metrics of a binary classifier for one facet, with the meaning SageMaker Clarify gives them.

A *facet* splits the rows in two: ``d``, the group the check protects (the configured facet
values, e.g. ``sex == "female"``), and ``a``, every other row. With ``n`` counts of rows,
``n(1)`` / ``n(0)`` of observed positive / negative labels and ``n̂(1)`` / ``n̂(0)`` of
predicted ones, each per group:

=========  ====================================  =========================================
metric     formula                               reads
=========  ====================================  =========================================
CI         (n_a - n_d) / (n_a + n_d)             class imbalance: how under-represented d is
DPL        n_a(1)/n_a - n_d(1)/n_d               difference in positive proportions, labels
DPPL       n̂_a(1)/n_a - n̂_d(1)/n_d               ... in predicted labels
DI         (n̂_d(1)/n_d) / (n̂_a(1)/n_a)           disparate impact (1 is parity; < 0.8 the
                                                 "four-fifths rule")
DCA        n_a(1)/n̂_a(1) - n_d(1)/n̂_d(1)         difference in conditional acceptance
DCR        n_d(0)/n̂_d(0) - n_a(0)/n̂_a(0)         difference in conditional rejection
AD         accuracy_a - accuracy_d               accuracy difference
RD         recall_a - recall_d                   recall difference
=========  ====================================  =========================================

These are the definitions of Clarify's open-source implementation (``smclarify``:
``CI``, ``DPL``, ``DPPL``, ``DI``, ``DCO`` for DCA/DCR, ``AD``, ``RD``), signs included. Where
Clarify returns infinity (a zero denominator), driftline returns None with the reason. CI needs
only the facet, DPPL and DI the predictions, DPL the labels, the others both.

``compare_bias`` checks an interval's metrics against the baseline's: each metric may have an
absolute band (``max_abs``: |value| above it is a breach; for DI, ``min_di``) and a bound on its
change from the baseline (``max_change``).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from driftline.common.bounds import crossed, number

METRICS = ("CI", "DPL", "DPPL", "DI", "DCA", "DCR", "AD", "RD")
NEEDS_LABELS = {"DPL", "DCA", "DCR", "AD", "RD"}
NEEDS_PREDICTIONS = {"DPPL", "DI", "DCA", "DCR", "AD", "RD"}


def _bool(values, name: str) -> np.ndarray:
    a = np.asarray(values)
    if a.dtype == bool:
        return a
    if a.size and not np.isin(a, (0, 1)).all():
        raise ValueError(f"{name} must be 0/1 or boolean, got values {sorted(set(a.tolist()) - {0, 1})[:5]}")
    return a.astype(bool)


def _ratio(num: float, den: float, what: str) -> tuple[float | None, str | None]:
    return (num / den, None) if den else (None, f"{what} is zero")


def bias_metrics(in_d, y_pred=None, y_true=None) -> dict[str, Any]:
    """Clarify's bias metrics for the rows where ``in_d`` (the protected facet) vs the rest.

    Returns {"n_a", "n_d", "metrics": {name: float | None}, "undefined": {name: reason}}.
    ``y_pred`` and ``y_true`` are the predicted and observed labels (1 = the favourable outcome),
    either may be None; the metrics needing what is missing are None with a reason."""
    d = _bool(in_d, "in_d")
    pred = None if y_pred is None else _bool(y_pred, "y_pred")
    true = None if y_true is None else _bool(y_true, "y_true")
    for name, arr in (("y_pred", pred), ("y_true", true)):
        if arr is not None and arr.shape != d.shape:
            raise ValueError(f"{name} has {arr.size} values, the facet {d.size}")
    a = ~d
    n_a, n_d = int(a.sum()), int(d.sum())
    metrics: dict[str, float | None] = {}
    undefined: dict[str, str] = {}

    def put(name: str, value: float | None, why: str | None = None) -> None:
        metrics[name] = None if value is None else float(value)
        if value is None:
            undefined[name] = why or "undefined"

    if n_a == 0 or n_d == 0:
        why = f"the facet splits no rows into {'a' if n_a == 0 else 'd'}"
        for m in METRICS:
            put(m, None, why)
        return {"n_a": n_a, "n_d": n_d, "metrics": metrics, "undefined": undefined}
    put("CI", (n_a - n_d) / (n_a + n_d))
    if true is None:
        for m in sorted(NEEDS_LABELS):
            put(m, None, "no labels")
    else:
        put("DPL", true[a].mean() - true[d].mean())
    if pred is None:
        for m in sorted(NEEDS_PREDICTIONS):
            put(m, None, "no predictions")
    else:
        qa, qd = pred[a].mean(), pred[d].mean()
        put("DPPL", qa - qd)
        put("DI", *_ratio(qd, qa, "the predicted positive proportion of a"))
    if true is not None and pred is not None:
        def group(g: np.ndarray) -> dict[str, int]:
            t, p = true[g], pred[g]
            return {"n1": int(t.sum()), "n0": int((~t).sum()), "p1": int(p.sum()), "p0": int((~p).sum()),
                    "tp": int((t & p).sum()), "tn": int((~t & ~p).sum()), "n": int(g.sum())}
        ga, gd = group(a), group(d)
        ca, why_a = _ratio(ga["n1"], ga["p1"], "a's predicted positives")
        cd, why_d = _ratio(gd["n1"], gd["p1"], "d's predicted positives")
        put("DCA", None if ca is None or cd is None else ca - cd, why_a or why_d)
        ra, why_a = _ratio(ga["n0"], ga["p0"], "a's predicted negatives")
        rd, why_d = _ratio(gd["n0"], gd["p0"], "d's predicted negatives")
        put("DCR", None if ra is None or rd is None else rd - ra, why_a or why_d)
        put("AD", (ga["tp"] + ga["tn"]) / ga["n"] - (gd["tp"] + gd["tn"]) / gd["n"])
        rec_a, why_a = _ratio(ga["tp"], ga["n1"], "a's observed positives")
        rec_d, why_d = _ratio(gd["tp"], gd["n1"], "d's observed positives")
        put("RD", None if rec_a is None or rec_d is None else rec_a - rec_d, why_a or why_d)
    return {"n_a": n_a, "n_d": n_d, "metrics": metrics, "undefined": undefined}


#: Rows a bootstrap draw has at most (its standard error is scaled to the real row count).
BOOTSTRAP_ROWS = 20_000
BOOTSTRAP_DRAWS = 200


def bootstrap_se(in_d, y_pred=None, y_true=None, seed: int = 0) -> dict[str, float]:
    """Sampling standard error of each metric, by bootstrap. The metrics depend on the rows only
    through the counts of (group, prediction, label) combinations, so a draw is a multinomial
    draw of those (at most 8) counts -- the same as resampling rows, at no cost per row."""
    cols = [np.asarray(in_d, dtype=bool)] + [np.asarray(a, dtype=bool) for a in (y_pred, y_true) if a is not None]
    n = len(cols[0])
    if n == 0:
        return {}
    codes = sum(c.astype(np.int64) << i for i, c in enumerate(cols))
    combos, counts = np.unique(codes, return_counts=True)
    m = min(n, BOOTSTRAP_ROWS)
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {}
    for _ in range(BOOTSTRAP_DRAWS):
        k = rng.multinomial(m, counts / n)
        rows = np.repeat(combos, k)
        parts = [(rows >> i) & 1 for i in range(len(cols))]
        r = bias_metrics(parts[0].astype(bool), *(p.astype(bool) for p in parts[1:3]))
        for name, v in r["metrics"].items():
            if v is not None and np.isfinite(v):
                draws.setdefault(name, []).append(v)
    scale = np.sqrt(m / n)
    return {k: float(np.std(v, ddof=1) * scale) for k, v in draws.items() if len(v) > 10}


def compare_bias(metrics: dict[str, float | None], baseline: dict[str, float | None] | None,
                 thresholds: dict[str, dict], se: dict[str, float] | None = None,
                 baseline_se: dict[str, float] | None = None, z: float = 2.0) -> list[dict]:
    """Breaches of bias thresholds: per metric ``max_abs`` (|value| > bound), ``min_di`` (DI
    below it, e.g. 0.8) and ``max_change`` (|value - baseline| > bound). A None value, or a
    None baseline for max_change, is skipped. Returns one dict per breach with a sentence.

    With standard errors (``se`` of the interval's metrics, ``baseline_se`` of the baseline's),
    a breach must be beyond sampling noise: the value (or the change) must pass its bound by
    more than ``z`` standard errors -- a 100-row group moves DI by 0.3 by chance alone."""
    se, baseline_se = se or {}, baseline_se or {}
    out = []
    for name, rules in thresholds.items():
        unknown = set(rules) - {"max_abs", "min_di", "max_change"}
        if unknown:
            raise ValueError(f"bias threshold {name}: unknown rule(s) {sorted(unknown)} (max_abs, min_di, max_change)")
        value = metrics.get(name)
        if value is None:
            continue
        base = (baseline or {}).get(name)
        noise = z * se.get(name, 0.0)
        change_noise = z * float(np.hypot(se.get(name, 0.0), baseline_se.get(name, 0.0)))
        # max_abs and max_change are two-sided bands: the sentence names the side crossed
        if rules.get("max_abs") is not None and abs(value) - noise > rules["max_abs"]:
            bound = rules["max_abs"]
            out.append({"metric": name, "value": value, "baseline": base, "bound": bound, "rule": "max_abs",
                        "description": f"{name} {crossed(value, -bound, bound, sign=True)} "
                                       f"(allowed band ±{number(bound)})"})
        if rules.get("min_di") is not None and value + noise < rules["min_di"]:
            out.append({"metric": name, "value": value, "baseline": base, "bound": rules["min_di"], "rule": "min_di",
                        "description": f"{name} {crossed(value, lower=rules['min_di'])}"})
        if (rules.get("max_change") is not None and base is not None
                and abs(value - base) - change_noise > rules["max_change"]):
            step = rules["max_change"]
            # the side from the change itself: base + step can round past a value just beyond it
            op, side, bound = ("<", "lower", base - step) if value < base else (">", "upper", base + step)
            out.append({"metric": name, "value": value, "baseline": base, "bound": step,
                        "rule": "max_change",
                        "description": f"{name} {number(value, bound, sign=True)} {op} {side} bound "
                                       f"{number(bound, value, sign=True)} (baseline {number(base, sign=True)} "
                                       f"{op.replace('<', '-').replace('>', '+')} {number(step)}; moved "
                                       f"{number(value - base, sign=True)})"})
    return out


# -- bias drift of a monitored model ---------------------------------------------------------
BIAS_FILE = "bias.json"


def facet_mask(facet, values) -> np.ndarray:
    """Rows in the protected group d of a facet (config.BiasFacet): value in ``facet.values``, or
    value > ``facet.threshold`` (Clarify's rule for a continuous facet). Missing values are in a."""
    import pandas as pd

    s = pd.Series(values)
    if facet.threshold is not None:
        return (pd.to_numeric(s, errors="coerce") > facet.threshold).fillna(False).to_numpy(dtype=bool)
    wanted = {str(v).lower() if isinstance(v, bool) else str(v) for v in facet.values}
    text = s.map(lambda v: None if v is None or v != v else (str(v).lower() if isinstance(v, (bool, np.bool_))
                                                              else str(v)))
    return text.isin(wanted).to_numpy(dtype=bool)


def bias_report(cfg, frame, y_pred, y_true=None, labelled=None) -> dict:
    """Every configured facet's metrics on one dataset. Metrics that need only the facet and
    the predictions (CI, DPPL, DI) use every row; those that need labels, the labelled rows
    (``labelled``: a boolean mask, default all rows when y_true is given). A group with fewer
    than ``bias.min_rows`` rows makes the facet ``too_few_rows`` (recorded, never a violation)."""
    y_pred = np.asarray(y_pred)
    out: dict[str, Any] = {"facets": {}, "min_rows": cfg.bias.min_rows}
    for facet in cfg.bias.facets:
        d = facet_mask(facet, frame[facet.feature].to_numpy(dtype=object))
        whole = bias_metrics(d, y_pred=y_pred)
        entry = {"feature": facet.feature, "n_a": whole["n_a"], "n_d": whole["n_d"],
                 "metrics": {m: whole["metrics"][m] for m in ("CI", "DPPL", "DI")},
                 "undefined": {m: r for m, r in whole["undefined"].items() if m in ("CI", "DPPL", "DI")},
                 "labelled": 0}
        if y_true is not None:
            keep = np.ones(len(d), dtype=bool) if labelled is None else np.asarray(labelled, dtype=bool)
            if keep.any():
                part = bias_metrics(d[keep], y_pred=y_pred[keep], y_true=np.asarray(y_true)[keep])
                entry["labelled"] = int(keep.sum())
                entry["labelled_n_a"], entry["labelled_n_d"] = part["n_a"], part["n_d"]
                for m in sorted(NEEDS_LABELS):
                    entry["metrics"][m] = part["metrics"][m]
                    if m in part["undefined"]:
                        entry["undefined"][m] = part["undefined"][m]
            else:
                for m in sorted(NEEDS_LABELS):
                    entry["metrics"][m] = None
                    entry["undefined"][m] = "no labelled rows yet"
        entry["se"] = bootstrap_se(d, y_pred)
        if entry["labelled"]:
            entry["se"].update({m: v for m, v in bootstrap_se(d[keep], y_pred[keep], np.asarray(y_true)[keep]).items()
                                if m in NEEDS_LABELS})
        small = min(entry["n_a"], entry["n_d"]) < cfg.bias.min_rows
        small_labelled = y_true is not None and min(entry.get("labelled_n_a", 0),
                                                    entry.get("labelled_n_d", 0)) < cfg.bias.min_rows
        entry["status"] = "too_few_rows" if small else "ok"
        entry["labels_status"] = ("too_few_labels" if small_labelled else "ok") if y_true is not None else "no_labels"
        out["facets"][facet.label] = entry
    return out


def bias_violations(cfg, report: dict, reference: dict | None) -> list[dict]:
    """``bias_drift_check`` violations: the interval's metrics against the baseline's, with the
    configured rules (config.BiasSettings.rules). Groups below ``bias.min_rows`` raise nothing;
    label metrics only count when the labelled groups are large enough too."""
    out = []
    for label, entry in report.get("facets", {}).items():
        if entry.get("status") != "ok":
            continue
        metrics = dict(entry["metrics"])
        if entry.get("labels_status") != "ok":
            metrics = {m: v for m, v in metrics.items() if m not in NEEDS_LABELS}
        ref = (reference or {}).get("facets", {}).get(label) or {}
        for b in compare_bias(metrics, ref.get("metrics"), cfg.bias.rules, se=entry.get("se"),
                              baseline_se=ref.get("se")):
            out.append({"feature_name": f"{label}:{b['metric']}", "constraint_check_type": "bias_drift_check",
                        "description": f"bias [{label}] {b['description']}",
                        "details": {"facet": label, "feature": entry["feature"], **b}})
    return out
