"""When monitoring asks for a retraining: the ``retraining`` policy of a model file.

Evaluated in the model-quality stage of each run (it needs the labels). The policy holds when
retraining is enabled and any of its conditions holds:

- ``when.model_quality``: a realized ``model_quality_check`` alert fires in this run's quality
  evaluation (the interval itself, or an earlier one re-evaluated as its labels landed);
- ``when.drift``: dataset drift (``drift.json``: the share of drifted features at or above
  ``drift.drift_share``) in at least ``hold`` of the last ``of`` intervals;

and the recent window (``retraining.window`` before the interval's end) has at least
``when.min_labels`` labelled rows to train on, and no request was made in the ``cooldown``
before this interval. A request is recorded in
``models/<model>/retraining/requests/<interval>.json`` and the DAG then emits the model's
retraining Asset event; a re-run or a backfill of the interval finds the request already
emitted and emits nothing again. Times are interval times, not the wall clock, so a backfill
decides as the scheduled runs did.
"""
from __future__ import annotations

import posixpath
from datetime import datetime, timezone

from driftline.config import ModelConfig
from driftline.store import Store, as_utc, interval_key, parse_interval_key


def requests_prefix(model: str) -> str:
    return posixpath.join("models", model, "retraining", "requests")


def list_requests(store: Store, model: str) -> list[dict]:
    pre = requests_prefix(model)
    return [store.read_json(posixpath.join(pre, n)) for n in store.listdir(pre) if n.endswith(".json")]


def _labelled_in_window(cfg: ModelConfig, store: Store, start: datetime, end: datetime) -> int:
    from driftline.stages.labels import interval_starts

    lo = end - cfg.retraining.window
    total = 0
    for t in interval_starts(store, cfg.name):
        if lo <= t < end:
            rel = posixpath.join(Store.run_prefix(cfg.name, t), "labels.json")
            if store.exists(rel):
                total += int(store.read_json(rel).get("labelled") or 0)
    return total


def decide(cfg: ModelConfig, store: Store, start: datetime, evaluated: list[str]) -> dict:
    """Whether this run requests a retraining. ``evaluated``: the intervals (keys) whose
    quality alerts this run evaluated (driftline.stages.alerts.evaluate: the interval and the ones
    re-evaluated). Returns {"request": bool, "why": sentence, ...}; a new request is written to
    the store (not yet emitted)."""
    from driftline.stages.alerts import previous_starts, read_record

    quality_records = [r for k in evaluated if (r := read_record(store, cfg.name, parse_interval_key(k), "quality"))]

    start = as_utc(start)
    key = interval_key(start)
    pol = cfg.retraining
    if not pol.enabled:
        return {"request": False, "why": "retraining.enabled is false"}
    rel = posixpath.join(requests_prefix(cfg.name), f"{key}.json")
    if store.exists(rel):
        req = store.read_json(rel)
        if req.get("emitted"):
            return {"request": False, "why": f"retraining already requested by this interval ({req['why']})",
                    "id": key}
        return {"request": True, **req}
    reasons = []
    if pol.when.model_quality:
        firing = [a for r in quality_records for a in r.get("alerts", [])
                  if a["check"] == "model_quality_check" and a["status"] == "firing"]
        if firing:
            reasons.append("model quality: " + "; ".join(a["message"] for a in firing[:3]))
    if pol.when.drift:
        hold, of = pol.when.drift.hold, pol.when.drift.of
        starts = [start, *previous_starts(cfg, start, of - 1)]
        drifted = [t for t in starts if ((_drift(store, cfg.name, t).get("dataset") or {}).get("dataset_drift"))]
        if len(drifted) >= hold:
            reasons.append(f"dataset drift in {len(drifted)} of the last {of} intervals")
    if not reasons:
        return {"request": False, "why": "no retraining condition holds"}
    end = cfg.interval_end(start)
    labelled = _labelled_in_window(cfg, store, start, end)
    if labelled < pol.when.min_labels:
        return {"request": False, "why": f"{'; '.join(reasons)}, but only {labelled} labelled rows in the last "
                                         f"{pol.window} (retraining.when.min_labels {pol.when.min_labels})"}
    recent = sorted(r["interval"] for r in list_requests(store, cfg.name)
                    if start - pol.cooldown < parse_interval_key(r["interval"]) < start)
    if recent:
        return {"request": False, "why": f"{'; '.join(reasons)}, but retraining was requested for {recent[-1]}, "
                                         f"within the cooldown of {pol.cooldown}"}
    req = {"model": cfg.name, "id": key, "interval": key, "interval_start": start.isoformat(),
           "end": end.isoformat(), "window_days": pol.window.total_seconds() / 86400, "labelled": labelled,
           "reasons": reasons, "why": "; ".join(reasons), "emitted": False,
           "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    store.write_json(rel, req)
    return {"request": True, **req}


def mark_emitted(store: Store, model: str, request_id: str) -> dict:
    rel = posixpath.join(requests_prefix(model), f"{request_id}.json")
    req = store.read_json(rel)
    req["emitted"] = True
    req["emitted_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    store.write_json(rel, req)
    return req


def _drift(store: Store, model: str, start: datetime) -> dict:
    rel = posixpath.join(Store.run_prefix(model, start), "drift.json")
    return store.read_json(rel) if store.exists(rel) else {}
