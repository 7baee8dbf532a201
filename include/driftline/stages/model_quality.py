"""Model quality of one interval: realized from the labels that have arrived, estimated before.

``run_model_quality`` merges the interval's predictions with its labels (driftline.stages.labels),
then, for the whole interval and for each value of each ``performance.segments`` column:

- **realized** metrics (driftline.stats.performance) on the labelled rows, when there are at least
  ``performance.min_samples`` of them; below that the result says ``not_enough_labels`` and
  raises nothing;
- **estimated** metrics on every prediction, labelled or not: CBPE for classifiers with a
  probability, direct loss estimation for regression, from the calibration fitted on the
  baseline's labelled holdout (``performance.json`` in the baseline), with an uncertainty band;
- the **estimate's error** (realized - estimated) once both exist, so the history shows how
  far the estimate was off (a large error while the features do not drift is the mark of
  concept drift, which no label-free estimate can see);
- **breaches** of the thresholds (absolute, or relative to the baseline's value, per segment
  where the baseline has the segment): realized ones become ``model_quality_check``
  violations; estimated ones, while the labels are not enough yet, become
  ``model_quality_estimate_check`` violations (an early warning, superseded by the realized
  verdict when the labels arrive).

Writes ``merged.parquet`` (predictions + label + arrival), ``model_quality.json``,
``labels.json`` (the label state the evaluation saw: coverage, digest, as-of time), the
stage's violations and its rows of the metrics history (``quality.<metric>`` per segment,
kind ``realized``/``estimated`` with band, coverage and computation time; ``labels.*``).

``reevaluate`` finds the intervals whose labels changed since they were evaluated and runs
the same evaluation again, so the history always reflects every label that has arrived; a
backfill evaluates the same labels and gives the same numbers.
"""
from __future__ import annotations

import posixpath
import time
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd

from driftline.config import ModelConfig
from driftline.store import Store, as_utc, interval_key
from driftline.store.baselines import interval_baseline

PERFORMANCE_FILE = "performance.json"
LOSS_ESTIMATOR_FILE = "loss_estimator.joblib"


# -- the baseline's side ----------------------------------------------------------------
def performance_reference(cfg: ModelConfig, frame: pd.DataFrame, predictions: dict[str, np.ndarray],
                          y_true: np.ndarray, seed: int = 0) -> tuple[dict, Any]:
    """What a baseline keeps for model quality, from labelled data the model did not train
    on: the realized metrics (overall and per segment) and the calibration the estimates
    use. Returns (performance.json document, LossEstimator for regression or None)."""
    from driftline.stats.performance import Calibrator, LossEstimator, realized_metrics

    p = cfg.prediction
    proba = predictions.get(p.probability) if p.probability else None
    y_pred = predictions[p.label]
    doc: dict[str, Any] = {"rows": int(len(y_true)), "threshold": p.threshold, "problem_type": cfg.problem_type,
                           "metrics": realized_metrics(cfg.problem_type, y_true, y_pred, proba, p.threshold),
                           "segments": {}}
    for seg in cfg.performance.segments:
        values = segment_values(frame[seg]).to_numpy()
        doc["segments"][seg] = {
            v: realized_metrics(cfg.problem_type, y_true[values == v], y_pred[values == v],
                                None if proba is None else proba[values == v], p.threshold)
            for v in sorted(set(values))}
    estimator = None
    if cfg.problem_type == "binary_classification" and proba is not None:
        doc["calibrator"] = Calibrator("binary_classification").fit(proba, y_true).to_dict()
    elif cfg.problem_type == "multiclass_classification" and proba is not None:
        correct = np.asarray(y_pred).astype(str) == np.asarray(y_true).astype(str)
        doc["calibrator"] = Calibrator("multiclass_classification").fit(proba, correct).to_dict()
    elif cfg.problem_type == "regression":
        estimator = LossEstimator(random_state=seed).fit(frame[cfg.feature_names], y_pred, y_true)
        doc["loss_estimator"] = LOSS_ESTIMATOR_FILE
    return doc, estimator


def load_reference(cfg: ModelConfig, store: Store, prefix: str) -> tuple[dict | None, Any]:
    rel = posixpath.join(prefix, PERFORMANCE_FILE)
    if not store.exists(rel):
        return None, None
    doc = store.read_json(rel)
    if doc.get("loss_estimator"):
        import io

        import joblib

        estimator = joblib.load(io.BytesIO(store.read_bytes(posixpath.join(prefix, doc["loss_estimator"]))))
        return doc, estimator
    return doc, None


def segment_values(column: pd.Series) -> pd.Series:
    """The segment each row is in: its value as text ("(missing)" for none); a value longer
    than SHOWN_CHARS under its shown form (preview, length, hash), since segments name keys of
    model_quality.json, history rows and alert subjects, and the form keeps segments apart."""
    from driftline.common.limits import SHOWN_CHARS, shown

    values = column.astype("string").fillna("(missing)")
    long = values.str.len().gt(SHOWN_CHARS)
    if long.any():
        values = values.where(~long, values[long].map(shown))
    return values


# -- one group of rows ----------------------------------------------------------------------
def _labels(cfg: ModelConfig, df: pd.DataFrame) -> np.ndarray:
    return df[cfg.labels.column].to_numpy() if cfg.labels and cfg.labels.column in df else np.array([])


def _predicted(cfg: ModelConfig, df: pd.DataFrame) -> np.ndarray:
    col = df[cfg.prediction.label]
    if cfg.problem_type == "multiclass_classification":
        return col.astype("string").to_numpy()
    if cfg.problem_type == "binary_classification":
        return col.to_numpy(dtype="float64")
    return col.to_numpy(dtype="float64")


def simulations(n: int) -> int:
    """Draws behind an estimate's band: 500, fewer for large intervals (the band is narrow
    there, and the draws cost n x draws), never under 100."""
    return int(min(500, max(100, 50_000_000 // max(n, 1))))


def evaluate_group(cfg: ModelConfig, df: pd.DataFrame, reference: dict | None, estimator: Any,
                   baseline_metrics: dict | None, seed: int = 0) -> dict:
    """Realized and estimated metrics of one group of rows, and their breaches."""
    from driftline.stats.performance import Calibrator, compare_to_baseline, estimate_metrics, realized_metrics

    p, perf = cfg.prediction, cfg.performance
    label_col = cfg.labels.column if cfg.labels else None
    labelled = df[df[label_col].notna()] if label_col and label_col in df else df.iloc[0:0]
    n, k = len(df), len(labelled)
    out: dict[str, Any] = {"predicted": n, "labelled": k, "coverage": k / n if n else 0.0}
    thresholds = cfg.quality_thresholds
    baseline_values = (baseline_metrics or {}).get("metrics", {})

    # realized
    if not label_col:
        realized = {"status": "no_labels", "why": "the model file has no labels section"}
    elif k < perf.min_samples:
        realized = {"status": "not_enough_labels", "n": k, "min_samples": perf.min_samples,
                    "why": f"not enough labels: {k} of {n} predictions labelled, {perf.min_samples} needed"}
    else:
        proba = labelled[p.probability].to_numpy(dtype="float64") if p.probability else None
        y_true = labelled[label_col].to_numpy()
        if cfg.problem_type == "binary_classification":
            y_true = y_true.astype("int64")
        elif cfg.problem_type == "multiclass_classification":
            y_true = y_true.astype(str)
        realized = {"status": "ok", **realized_metrics(cfg.problem_type, y_true, _predicted(cfg, labelled),
                                                       proba, p.threshold)}
    out["realized"] = realized

    # estimated
    estimated: dict[str, Any]
    if not perf.estimate:
        estimated = {"status": "off", "why": "performance.estimate is false"}
    elif n == 0:
        estimated = {"status": "unavailable", "why": "no predictions"}
    elif cfg.problem_type == "regression":
        if estimator is None:
            estimated = {"status": "unavailable", "why": "the baseline has no loss estimator (it needs "
                                                         "baseline.model and labelled evaluation data)"}
        else:
            estimated = {"status": "ok", **estimator.estimate(df[cfg.feature_names], _predicted(cfg, df),
                                                              n_sim=simulations(n), seed=seed, band=perf.band)}
    elif not p.probability:
        estimated = {"status": "unavailable", "why": "the model emits no probability (prediction.probability)"}
    elif not reference or "calibrator" not in reference:
        estimated = {"status": "unavailable", "why": "the baseline has no calibration (it needs baseline.model "
                                                     "and labelled evaluation data)"}
    else:
        cal = Calibrator.from_dict(reference["calibrator"])
        estimated = {"status": "ok", **estimate_metrics(cfg.problem_type, cal,
                                                        df[p.probability].to_numpy(dtype="float64"),
                                                        p.threshold, n_sim=simulations(n), seed=seed,
                                                        band=perf.band)}
    out["estimated"] = estimated

    if realized.get("status") == "ok" and estimated.get("status") == "ok":
        out["estimate_error"] = {
            m: realized["metrics"][m] - e["value"] for m, e in estimated["metrics"].items()
            if e.get("value") is not None and realized["metrics"].get(m) is not None}

    # breaches: realized when there are enough labels, else the estimate
    if realized.get("status") == "ok":
        out["breaches"] = [{**b, "kind": "realized"} for b in
                           compare_to_baseline(realized["metrics"], baseline_values, thresholds)]
    elif estimated.get("status") == "ok":
        # an estimate breaches only when its whole band is past the bound: a small segment's
        # wide band is no alarm
        from driftline.stats.metric_names import HIGHER_IS_BETTER

        em = estimated["metrics"]
        values = {m: e.get("upper" if HIGHER_IS_BETTER.get(m, True) else "lower") for m, e in em.items()}
        out["breaches"] = [{**b, "kind": "estimated", "value": em[b["metric"]].get("value"),
                            "band": [em[b["metric"]].get("lower"), em[b["metric"]].get("upper")]}
                           for b in compare_to_baseline(values, baseline_values, thresholds)]
    else:
        out["breaches"] = []
    return out


def evaluate(cfg: ModelConfig, df: pd.DataFrame, reference: dict | None, estimator: Any, seed: int = 0) -> dict:
    """The interval overall and per segment."""
    overall = evaluate_group(cfg, df, reference, estimator, (reference or {}).get("metrics"), seed)
    segments: dict[str, dict[str, dict]] = {}
    for seg in cfg.performance.segments:
        if seg not in df:
            continue
        values = segment_values(df[seg])
        ref_seg = ((reference or {}).get("segments") or {}).get(seg, {})
        segments[seg] = {}
        for v in sorted(values.unique()):
            # a segment's thresholds are relative to the same segment in the baseline, where it exists
            base = ref_seg.get(v) or (reference or {}).get("metrics")
            segments[seg][v] = evaluate_group(cfg, df[values == v], reference, estimator, base, seed)
    return {"overall": overall, "segments": segments}


# -- violations, history, summary ---------------------------------------------------------
def violations(result: dict) -> list[dict]:
    out = []
    groups = [("", result["overall"])] + [(f"{seg}={v}", g) for seg, vals in result["segments"].items()
                                          for v, g in vals.items()]
    for segment, g in groups:
        for b in g.get("breaches", []):
            name = b["metric"] + (f"[{segment}]" if segment else "")
            if b["kind"] == "realized":
                check = "model_quality_check"
                desc = f"{b['description']} on {g['labelled']} labelled rows"
            else:
                check = "model_quality_estimate_check"
                lo, hi = b.get("band") or (None, None)
                band = f", band {lo:.3f}-{hi:.3f}" if lo is not None and hi is not None else ""
                desc = (f"estimated {b['metric']} {b['value']:.3f}{band}: the whole band is past the bound "
                        f"({b['description']}); {g['labelled']} of {g['predicted']} labelled so far")
            out.append({"feature_name": name, "constraint_check_type": check, "description": desc,
                        "details": {"metric": b["metric"], "segment": segment, "value": b["value"],
                                    "baseline": b.get("baseline"), "bound": b["bound"], "rule": b["rule"],
                                    "kind": b["kind"]}})
    return out


def history_rows(cfg: ModelConfig, start: datetime, end: datetime, version: str | None, result: dict,
                 seconds: float) -> list[dict]:
    now = datetime.now(timezone.utc)
    base = {"model": cfg.name, "interval_start": start, "interval_end": end, "baseline_version": version,
            "computed_at": now, "seconds": seconds, "lower": None, "upper": None}
    rows = []
    groups = [("", result["overall"])] + [(f"{seg}={v}", g) for seg, vals in result["segments"].items()
                                          for v, g in vals.items()]
    for segment, g in groups:
        common = {**base, "segment": segment, "coverage": g["coverage"]}
        for metric, value in (("labels.predicted", g["predicted"]), ("labels.labelled", g["labelled"]),
                              ("labels.coverage", g["coverage"])):
            rows.append({**common, "metric": metric, "kind": "realized", "value": float(value)})
        r = g["realized"]
        if r.get("status") == "ok":
            rows += [{**common, "metric": f"quality.{m}", "kind": "realized", "value": float(v)}
                     for m, v in r["metrics"].items() if v is not None]
        e = g["estimated"]
        if e.get("status") == "ok":
            rows += [{**common, "metric": f"quality.{m}", "kind": "estimated", "value": float(x["value"]),
                      "lower": x.get("lower"), "upper": x.get("upper")}
                     for m, x in e["metrics"].items() if x.get("value") is not None]
    if result.get("overrides") is not None:
        rows.append({**base, "segment": "", "coverage": result["overall"]["coverage"], "metric": "labels.overrides",
                     "kind": "realized", "value": float(result["overrides"])})
    return rows


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def headline(cfg: ModelConfig) -> list[str]:
    return {"binary_classification": ["accuracy", "roc_auc", "f1"],
            "multiclass_classification": ["accuracy", "f1_macro"],
            "regression": ["mae", "rmse"]}[cfg.problem_type]


def summary_line(cfg: ModelConfig, start: datetime, result: dict, waited: dict | None = None) -> str:
    g = result["overall"]
    parts = [f"labels {g['labelled']}/{g['predicted']} ({g['coverage']:.0%})"]
    if result.get("overrides"):
        parts.append(f"{result['overrides']} label override(s)")
    r, e = g["realized"], g["estimated"]
    heads = headline(cfg)
    if r.get("status") == "ok":
        parts.append("realized " + ", ".join(f"{m} {_fmt(r['metrics'].get(m))}" for m in heads))
    else:
        parts.append(r.get("why", r.get("status", "")))
    if e.get("status") == "ok":
        parts.append("estimated " + ", ".join(
            f"{m} {_fmt(e['metrics'][m]['value'])} [{_fmt(e['metrics'][m]['lower'])}-{_fmt(e['metrics'][m]['upper'])}]"
            for m in heads if m in e["metrics"] and e["metrics"][m].get("value") is not None))
    if waited and waited.get("timed_out"):
        parts.append(f"label wait ended at the delay ({cfg.labels.delay}) with partial coverage")
    return f"model_quality {cfg.name} {interval_key(start)}: " + "; ".join(parts)


def findings(result: dict) -> list[str]:
    return [v["description"] if not v["details"]["segment"] else f"[{v['details']['segment']}] {v['description']}"
            for v in violations(result)]


# -- the stage ------------------------------------------------------------------------------
def run_model_quality(cfg: ModelConfig, store: Store, start: datetime, end: datetime,
                      as_of: datetime | None = None, waited: dict | None = None, seed: int = 0) -> dict:
    """Evaluate the interval's model quality with the labels arrived by ``as_of`` (default:
    now) and write its artifacts (see module doc). Returns a small JSON-safe summary."""
    from driftline.stages.labels import merge_interval
    from driftline.store.violations import write_violations

    t0 = time.perf_counter()
    start, end = as_utc(start), as_utc(end)
    prefix = Store.run_prefix(cfg.name, start)
    uri = store.uri(prefix, "model_quality.json")
    if not cfg.performance.enabled:
        store.write_json(posixpath.join(prefix, "model_quality.json"), {"checked": False, "why": "performance.enabled is false"})
        write_violations(store, prefix, "model_quality", [])
        return {"status": "disabled", "summary": f"model_quality {cfg.name}: performance.enabled is false",
                "findings": [], "model_quality_uri": uri}
    ref = interval_baseline(cfg, store, start)
    reference, estimator = load_reference(cfg, store, ref.prefix)
    if cfg.labels is not None:
        merge = merge_interval(cfg, store, start, end, as_of=as_of)
        table, state = merge.table, merge.state()
    else:
        from driftline.stages.labels import read_predictions

        table = read_predictions(cfg, store, start)
        state = {"predicted": table.num_rows, "labelled": 0, "coverage": 0.0, "overrides": 0, "digest": "",
                 "as_of": as_utc(as_of or datetime.now(timezone.utc)).isoformat()}
    store.write_parquet(posixpath.join(prefix, "merged.parquet"), table)
    if table.num_rows < cfg.thresholds.min_rows:
        return _no_data(cfg, store, start, end, ref.version, state, waited, uri)
    df = table.to_pandas()
    result = evaluate(cfg, df, reference, estimator, seed=seed)
    result["overrides"] = state.get("overrides", 0)
    seconds = round(time.perf_counter() - t0, 3)
    found = violations(result)
    doc = {"model": cfg.name, "interval_start": start.isoformat(), "interval_end": end.isoformat(),
           "baseline": ref.version, "baseline_metrics": (reference or {}).get("metrics"),
           "thresholds": cfg.quality_thresholds, "min_samples": cfg.performance.min_samples,
           # what was judged, not when: the same predictions, labels and baseline give the same
           # bytes (the look's clock and the run time are in labels.json and executions/)
           "labels": {k: v for k, v in state.items() if k != "as_of"},
           "waited": {k: v for k, v in waited.items() if k in ("done", "timed_out", "deadline", "min_coverage")}
           if waited else None, **result, "violations": found}
    doc["summary"] = summary_line(cfg, start, result, waited)
    store.write_json(posixpath.join(prefix, "model_quality.json"), doc)
    # on the as-of clock, the one label ingestion stamps its days with (they differ when a
    # past time is replayed): re-evaluation compares the two
    store.write_json(posixpath.join(prefix, "labels.json"), {**state, "evaluated_at": state["as_of"]})
    write_violations(store, prefix, "model_quality", found)
    from driftline.store.history import write_history_rows

    write_history_rows(store, cfg.name, start, "model_quality",
                       history_rows(cfg, start, end, ref.version, result, seconds))
    bias = run_bias(cfg, store, start, end, ref, df) if cfg.bias.facets else None
    g = result["overall"]
    heads = headline(cfg)
    if bias:
        doc["summary"] += f"; {bias['summary']}"
    found = found + (bias["violations"] if bias else [])
    return {"status": "violations" if found else ("ok" if g["realized"].get("status") == "ok" else "estimated"),
            "summary": doc["summary"], "model_quality_uri": uri,
            "findings": (findings(result) + [v["description"] for v in (bias or {}).get("violations", [])])[:20],
            "coverage": g["coverage"], "labelled": g["labelled"], "predicted": g["predicted"],
            "violations": len(found), "baseline": ref.version,
            "realized": {m: g["realized"].get("metrics", {}).get(m) for m in heads} if g["realized"].get("status") == "ok" else None,
            "estimated": {m: g["estimated"]["metrics"][m]["value"] for m in heads
                          if m in g["estimated"].get("metrics", {})} if g["estimated"].get("status") == "ok" else None}


def _no_data(cfg: ModelConfig, store: Store, start: datetime, end: datetime, version: str, state: dict,
             waited: dict | None, uri: str) -> dict:
    """An interval with fewer predictions than ``thresholds.min_rows``: nothing to evaluate.
    Its records say so (status ``no_data``) and replace what an earlier run of the interval
    left: no violations, no metrics history, no bias."""
    from driftline.store.history import write_history_rows
    from driftline.store.violations import write_violations

    prefix = Store.run_prefix(cfg.name, start)
    n = state["predicted"]
    why = ("no predictions in the interval" if not n else
           f"{n} predictions (minimum {cfg.thresholds.min_rows}, thresholds.min_rows)")
    summary = f"model_quality {cfg.name} {interval_key(start)}: NO DATA — {why}; nothing to evaluate"
    base = {"model": cfg.name, "interval_start": start.isoformat(), "interval_end": end.isoformat(),
            "baseline": version, "status": "no_data", "checked": False, "why": why}
    store.write_json(posixpath.join(prefix, "model_quality.json"), {
        **base, "labels": state, "waited": waited, "evaluated_at": datetime.now(timezone.utc).isoformat(),
        "violations": [], "summary": summary})
    store.write_json(posixpath.join(prefix, "labels.json"), {**state, "evaluated_at": state["as_of"]})
    write_violations(store, prefix, "model_quality", [])
    write_history_rows(store, cfg.name, start, "model_quality", [])
    if cfg.bias.facets:
        from driftline.stats.bias import BIAS_FILE

        store.write_json(posixpath.join(prefix, BIAS_FILE), {**base, "facets": {}, "violations": []})
        write_violations(store, prefix, "bias", [])
        write_history_rows(store, cfg.name, start, "bias", [])
    return {"status": "no_data", "summary": summary, "model_quality_uri": uri, "findings": [],
            "coverage": state["coverage"], "labelled": state["labelled"], "predicted": n, "violations": 0,
            "baseline": version, "realized": None, "estimated": None}


def run_bias(cfg: ModelConfig, store: Store, start: datetime, end: datetime, ref, df: pd.DataFrame) -> dict:
    """Bias drift of the interval (driftline.stats.bias): every facet's Clarify metrics on the
    interval's predictions (and its labelled rows), against the baseline's ``bias.json``.
    Writes ``bias.json``, ``bias_drift_check`` violations and ``bias.<metric>`` history rows."""
    from driftline.stats.bias import BIAS_FILE, bias_report, bias_violations
    from driftline.store.history import write_history_rows
    from driftline.store.violations import write_violations

    prefix = Store.run_prefix(cfg.name, start)
    ref_rel = posixpath.join(ref.prefix, BIAS_FILE)
    reference = store.read_json(ref_rel) if store.exists(ref_rel) else None
    y_pred = _predicted(cfg, df)
    known = ~np.isnan(y_pred)
    y_true = None
    labelled = None
    if cfg.labels and cfg.labels.column in df:
        truth = pd.to_numeric(df[cfg.labels.column], errors="coerce").to_numpy(dtype="float64")
        labelled = ~np.isnan(truth)
        y_true = np.where(labelled, truth, 0).astype(bool)
    frame = df[known].reset_index(drop=True)
    report = bias_report(cfg, frame, y_pred[known].astype(bool), None if y_true is None else y_true[known],
                         None if labelled is None else labelled[known])
    found = bias_violations(cfg, report, reference)
    doc = {"model": cfg.name, "interval_start": start.isoformat(), "interval_end": end.isoformat(),
           "baseline": ref.version, "reference": (reference or {}).get("facets"), "rules": cfg.bias.rules,
           **report, "violations": found,
           "note": None if reference else f"baseline {ref.version} has no bias.json (built before bias facets "
                                          "were configured): only absolute rules apply"}
    store.write_json(posixpath.join(prefix, BIAS_FILE), doc)
    write_violations(store, prefix, "bias", found)
    now = datetime.now(timezone.utc)
    rows = [{"model": cfg.name, "interval_start": start, "interval_end": end, "metric": f"bias.{m}",
             "segment": label, "value": float(v), "kind": "realized", "baseline_version": ref.version,
             "computed_at": now} for label, e in report["facets"].items() for m, v in e["metrics"].items()
            if v is not None]
    write_history_rows(store, cfg.name, start, "bias", rows)
    parts = [f"{label}: " + ", ".join(f"{m} {_fmt(e['metrics'].get(m))}" for m in ("DPPL", "DI", "DPL", "AD")
                                      if e["metrics"].get(m) is not None)
             for label, e in report["facets"].items()]
    return {"summary": f"bias {'; '.join(parts)} ({len(found)} breach(es))", "violations": found,
            "bias_uri": store.uri(prefix, BIAS_FILE)}


def label_coverage(cfg: ModelConfig, store: Store, start: datetime, end: datetime,
                   as_of: datetime | None = None) -> dict:
    """Coverage of the interval's predictions by the labels arrived so far (what the wait polls)."""
    from driftline.stages.labels import merge_interval

    m = merge_interval(cfg, store, start, end, as_of=as_of)
    return {"predicted": m.predicted, "labelled": m.labelled, "coverage": m.coverage}


def label_wait(cfg: ModelConfig, store: Store, start: datetime, end: datetime, now: datetime | None = None,
               resolver=None) -> dict:
    """One look for the interval's labels: ingest what arrived, measure the coverage. Done
    when the coverage reaches labels.min_coverage or the wait reaches interval end +
    labels.delay (then ``timed_out``: the run goes on with the coverage it has) -- or at once
    when the interval has fewer predictions than ``thresholds.min_rows`` (none, by default):
    no label can change a "no data" verdict, so nothing holds the run open (``no_data``).
    ``summary``: the look in one line, for the task log."""
    from driftline.stages.labels import sync_labels

    now = as_utc(now or datetime.now(timezone.utc))
    sync_labels(cfg, store, now=now, resolver=resolver)
    cov = label_coverage(cfg, store, start, end, as_of=now)
    deadline = as_utc(end) + cfg.labels.delay
    no_data = cov["predicted"] < cfg.thresholds.min_rows
    enough = cov["coverage"] >= cfg.labels.min_coverage
    done = no_data or enough or now >= deadline
    head = (f"labels {cov['labelled']}/{cov['predicted']} ({cov['coverage']:.1%}), want {cfg.labels.min_coverage:.0%} "
            f"by {deadline.isoformat()}: ")
    state = ("no data: no predictions to label, nothing to wait for" if no_data and not cov["predicted"] else
             f"no data: {cov['predicted']} predictions (minimum {cfg.thresholds.min_rows}), nothing to wait for"
             if no_data else "enough" if enough else
             "deadline reached, going on with partial coverage" if done else
             f"waiting (next look in {cfg.labels.poke_interval})")
    return {**cov, "done": done, "timed_out": done and not enough and not no_data, "no_data": no_data,
            "deadline": deadline.isoformat(), "looked_at": now.isoformat(), "min_coverage": cfg.labels.min_coverage,
            "summary": head + state}


