"""Late labels: re-evaluate the intervals whose labels changed since they were judged, and bring
their run records up to date (appended with why, never a silent rewrite)."""
from __future__ import annotations

import posixpath
from datetime import datetime, timezone

from driftline.config import ModelConfig
from driftline.pipeline.records import counted_violations, rerecord_run
from driftline.stages.model_quality import run_model_quality
from driftline.store import Store, as_utc, interval_key


def reevaluate(cfg: ModelConfig, store: Store, now: datetime | None = None, skip: datetime | None = None) -> dict:
    """Re-evaluate every interval whose labels changed since its last evaluation: those with
    an arrival day in their label window ingested since, whose matched labels differ.
    ``skip``: an interval the caller evaluates itself."""
    from driftline.stages.labels import (
        arrival_manifests,
        interval_starts,
        label_window,
        merge_interval,
        reconcile_unknown,
    )

    if cfg.labels is None or not cfg.performance.enabled:
        return {"summary": f"reevaluate {cfg.name}: nothing to do (no labels or performance disabled)",
                "reevaluated": []}
    now = as_utc(now or datetime.now(timezone.utc))
    unknown = reconcile_unknown(cfg, store, now)
    from datetime import date

    ingested = {date.fromisoformat(k): m.get("ingested_at", "") for k, m in arrival_manifests(store, cfg.name).items()}
    done, unchanged = [], 0
    for start in interval_starts(store, cfg.name):
        if skip is not None and start == as_utc(skip):
            continue
        prefix = Store.run_prefix(cfg.name, start)
        state_rel = posixpath.join(prefix, "labels.json")
        if not store.exists(state_rel) or not store.exists(posixpath.join(prefix, "model_quality.json")):
            continue  # never evaluated: its own run will do it
        state = store.read_json(state_rel)
        end = cfg.interval_end(start)
        lo, hi = label_window(cfg, start, end)
        # only arrival days in the interval's label window, ingested after it was evaluated,
        # can change it (ingestion, not the arrival partition's hour, is what it saw)
        fresh = [d for d, at in ingested.items() if lo.date() <= d <= hi.date() and at > state.get("evaluated_at", "")]
        if not fresh:
            unchanged += 1
            continue
        merge = merge_interval(cfg, store, start, end, as_of=now)
        if merge.digest == state.get("digest"):
            store.write_json(state_rel, {**state, "as_of": now.isoformat(), "evaluated_at": now.isoformat()})
            unchanged += 1
            continue
        out = run_model_quality(cfg, store, start, end, as_of=now)
        _update_run(store, cfg.name, start, out)
        done.append({"interval": interval_key(start), "coverage": out["coverage"],
                     "was": state.get("coverage"), "status": out["status"]})
    summary = (f"reevaluate {cfg.name}: {len(done)} interval(s) re-evaluated"
               + (" (" + ", ".join(f"{d['interval']} {d['was'] or 0:.0%}->{d['coverage']:.0%}" for d in done[:6])
                  + (", ..." if len(done) > 6 else "") + ")" if done else "")
               + f"; {unchanged} unchanged; {unknown['summary']}")
    return {"summary": summary, "reevaluated": done, "unknown_ids": unknown["unknown"]}


def _update_run(store: Store, model: str, start: datetime, out: dict) -> None:
    """Keep run.json's verdict in step with a re-evaluation (answered alerts still do not count)."""


    prefix = Store.run_prefix(model, start)
    rel = posixpath.join(prefix, "run.json")
    if not store.exists(rel):
        return
    run = store.read_json(rel)
    from driftline.store.violations import write_constraint_violations

    # the re-evaluated model quality's violations in SageMaker's file, and counted for the verdict
    found, _ = counted_violations(store, model, start, write_constraint_violations(store, prefix))
    run["model_quality"] = out["summary"]
    run["violations"] = len(found)
    run["violation_checks"] = sorted({v["constraint_check_type"] for v in found})
    if run.get("status") in ("ok", "violations"):
        run["status"] = "violations" if found else "ok"
    run.setdefault("stages", {})["model_quality"] = out
    # a re-judgement, appended with why (executions/), not a silent rewrite of the verdict
    rerecord_run(store, prefix, run, "labels arrived since: model quality re-evaluated")
