"""The run record of an interval (``run.json``): assembled from the stages' results, clock-free
and digested so a re-run can show it reproduced the verdict; every execution appended to
``executions/``; a re-judgement appended with why."""
from __future__ import annotations

import hashlib
import json
import posixpath
from datetime import datetime, timezone
from typing import Any

from driftline.config import ModelConfig
from driftline.pipeline.stage import run_stage
from driftline.store import Store, interval_key
from driftline.store.history import write_history_rows


def counted_violations(store: Store, model: str, start: datetime, violations: list[dict]) -> tuple[list, dict]:
    """The violations that count against the run's verdict, and those a person marked false
    positive / expected (driftline.stages.feedback: they stay in constraint_violations.json)."""
    from driftline.stages.alerts import read_record, subject_of

    suppressed = {(a["check"], a["subject"]): a["feedback"] for g in ("data", "quality")
                  if (r := read_record(store, model, start, g)) for a in r["alerts"] if a["status"] == "suppressed"}
    return [v for v in violations if (v["constraint_check_type"], subject_of(v)) not in suppressed], suppressed


def record_run(cfg: ModelConfig, store: Store, start: datetime, end: datetime, stages: dict[str, dict],
               run_id: str | None = None) -> dict:
    """Write run.json and the interval's data-quality metrics; return the run's verdict (see
    ``_record_run``)."""
    with run_stage(cfg, store, start, run_id, "record_run"):
        return _record_run(cfg, store, start, end, stages)


def _record_run(cfg: ModelConfig, store: Store, start: datetime, end: datetime, stages: dict[str, dict]) -> dict:
    """Write run.json and the interval's data-quality metrics; return the run's verdict.

    ``status``: ``ok``; ``violations`` (counted ones: answered false positives and expected
    changes do not count); or ``no_data``, a verdict of its own for an interval with fewer than
    ``thresholds.min_rows`` rows (none, by default) where nothing was found: data quality,
    drift and model quality each say "no data" instead of judging an empty batch, and the
    label wait ended at once. A stage whose result is None (it failed, or did not run because a
    stage it needs failed) makes the run ``incomplete`` -- named in ``incomplete`` -- unless
    the stages that did run found counted violations: then it is ``violations``, still
    naming what is missing. Never ``ok`` with a stage missing."""
    prefix = Store.run_prefix(cfg.name, start)
    incomplete = [s_ for s_ in ("ingest", "data_quality", "drift", "model_quality", "alerts_data", "alerts_quality")
                  if s_ in stages and stages[s_] is None]
    stages = {k: v or {} for k, v in stages.items()}
    quality = stages.get("data_quality", {})
    ingest = stages.get("ingest", {})
    status = quality.get("status", "unknown")
    from driftline.store.violations import write_constraint_violations

    violations = write_constraint_violations(store, prefix)  # SageMaker's file: every stage's, once all are done
    counted, suppressed = counted_violations(store, cfg.name, start, violations)
    if status in ("ok", "no_data", "unknown") and counted:  # another stage (drift, a re-evaluation) found something
        status = "violations"
    elif status == "violations" and not counted:
        status = "ok"
    if incomplete and status != "violations":
        status = "incomplete"
    now = datetime.now(timezone.utc)
    base = {"model": cfg.name, "interval_start": start, "interval_end": end, "segment": "",
            "kind": "realized", "baseline_version": quality.get("baseline"), "computed_at": now}
    metrics = {
        "rows": ingest.get("rows", quality.get("rows", 0)),
        "records_seen": ingest.get("records_seen", 0),
        "quarantined": ingest.get("quarantined", 0),
        "violations": len(violations),
        "no_data": 1.0 if status == "no_data" else 0.0,
    }
    for v in violations:
        key = f"violations.{v['constraint_check_type']}"
        metrics[key] = metrics.get(key, 0) + 1
    write_history_rows(store, cfg.name, start, "data_quality",
                       [{**base, "metric": k, "value": float(v)} for k, v in sorted(metrics.items())])
    run = {
        "model": cfg.name, "interval_start": start.isoformat(), "interval_end": end.isoformat(),
        "interval": interval_key(start), "status": status, "incomplete": incomplete,
        "baseline": quality.get("baseline") or stages.get("ingest", {}).get("baseline"),
        "baseline_pin": _read_pin(store, prefix),
        "violations": len(counted), "violation_checks": sorted({v["constraint_check_type"] for v in counted}),
        "suppressed": [{"check": c, "subject": s_, **fb} for (c, s_), fb in sorted(suppressed.items())],
        "drifted_features": stages.get("drift", {}).get("drifted", []),
        "drift": stages.get("drift", {}).get("summary"),
        "model_quality": stages.get("model_quality", {}).get("summary"),
        "stages": {name: _clockless(st) for name, st in stages.items()},
        "artifacts": store.uri(prefix),
    }
    # run.json is the verdict: the same data, labels and baseline give the same bytes. When and
    # how long, and what changed since the interval's previous run, go to executions/.
    run["digest"] = _digest(run)
    execution = _record_execution(store, prefix, run, stages, now)
    store.write_json(posixpath.join(prefix, "run.json"), run)
    out = {k: run[k] for k in ("model", "interval", "status", "incomplete", "baseline", "violations",
                               "violation_checks", "drifted_features", "drift", "model_quality", "artifacts", "digest")}
    out["changed"] = execution.get("changed")
    return out


#: Keys of a stage's result that say when or how long, or what a delivery did, rather than what
#: the interval is: kept in executions/, not in the verdict.
CLOCK_KEYS = frozenset({"seconds", "evaluated_at", "as_of", "recorded_at", "delivery", "labels_sync", "reevaluate",
                        "reevaluated"})


def _clockless(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clockless(v) for k, v in value.items() if k not in CLOCK_KEYS}
    if isinstance(value, list):
        return [_clockless(v) for v in value]
    return value


def _digest(run: dict) -> str:
    body = {k: v for k, v in run.items() if k not in ("digest", "artifacts")}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:16]


#: The verdict fields an execution compares with the interval's previous execution.
VERDICT_FIELDS = ("status", "incomplete", "baseline", "violations", "violation_checks", "drifted_features")


def rerecord_run(store: Store, prefix: str, run: dict, why: str) -> dict:
    """Write a changed verdict of an interval (e.g. re-evaluated as labels land): the stages'
    clock-free results, a new digest, and an execution record saying what changed and ``why``."""
    run["stages"] = {name: _clockless(st) for name, st in (run.get("stages") or {}).items()}
    run.pop("reevaluated_at", None)
    run["digest"] = _digest(run)
    execution = _record_execution(store, prefix, run, {}, datetime.now(timezone.utc), why=why)
    store.write_json(posixpath.join(prefix, "run.json"), run)
    return execution


def _record_execution(store: Store, prefix: str, run: dict, stages: dict, now: datetime,
                      why: str | None = None) -> dict:
    """Append this execution to ``executions/`` (one file each, never rewritten): when, the
    stages' timings and deliveries, the verdict's digest, and -- when the verdict differs from
    the previous execution's -- what changed and why (the baseline pin's changes say when a
    person asked for another baseline; otherwise the data, labels or feedback changed)."""
    folder = posixpath.join(prefix, "executions")
    previous = None
    names = sorted(n for n in store.listdir(folder) if n.endswith(".json"))
    for name in reversed(names):
        try:
            previous = store.read_json(posixpath.join(folder, name))
            break
        except (ValueError, OSError):
            continue
    record = {"interval": run["interval"], "recorded_at": now.isoformat(timespec="seconds"), "digest": run["digest"],
              "verdict": {k: run.get(k) for k in VERDICT_FIELDS},
              "timings": {n: st.get("seconds") for n, st in stages.items() if isinstance(st, dict) and "seconds" in st},
              "deliveries": {n: st.get("delivery") or st.get("summary") for n, st in stages.items()
                             if n.startswith("alerts_") and isinstance(st, dict)},
              "previous": previous.get("recorded_at") if previous else None, "changed": None}
    if previous and previous.get("digest") != run["digest"]:
        before = previous.get("verdict") or {}
        diffs = [f"{k}: {before.get(k)!r} -> {run.get(k)!r}" for k in VERDICT_FIELDS if before.get(k) != run.get(k)]
        pin = run.get("baseline_pin") or {}
        moved = [c for c in pin.get("changes", []) if c.get("at", "") > str(previous.get("recorded_at"))]
        why = why or (f"baseline changed from {moved[-1]['from']} to {moved[-1]['to']} by {moved[-1]['by']}"
                      if moved else "same baseline: the interval's data, labels or feedback changed since")
        record["changed"] = {"what": diffs or ["details only (same verdict fields)"], "why": why}
    stamp = now.strftime("%Y%m%dT%H%M%S%fZ")
    store.write_json(posixpath.join(folder, f"{stamp}.json"), record)
    return record


def _read_pin(store: Store, prefix: str) -> dict | None:
    from driftline.store.baselines import PIN_FILE

    rel = posixpath.join(prefix, PIN_FILE)
    return store.read_json(rel) if store.exists(rel) else None
