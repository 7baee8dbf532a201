"""The run's last word: a stage that failed fails the run, is recorded (``failures/<task>.json``)
and is announced as a ``stage_failure`` alert."""
from __future__ import annotations

import contextlib
import hashlib
from datetime import datetime

from driftline.config import ModelConfig
from driftline.pipeline.summary import STAGES, TASK_WORDS
from driftline.store import Store, StoreError, as_utc, interval_key

#: The check of a stage-failure alert (its subject is the task).
STAGE_FAILURE = "stage_failure"


def record_stage_failure(store: Store, model: str, start: datetime, task: str, error: BaseException | str,
                         inputs: list[str] | tuple = (), next_step: str | None = None) -> dict:
    """``driftline.store.violations.record_stage_failure`` for the model's interval starting ``start``."""
    from driftline.store.violations import record_stage_failure as record

    return record(store, Store.run_prefix(model, start), task, error, inputs, next_step)


def clear_stage_failure(store: Store, model: str, start: datetime, task: str) -> None:
    from driftline.store.violations import clear_stage_failure as clear

    clear(store, Store.run_prefix(model, start), task)


def check_run(cfg: ModelConfig, store: Store, start: datetime, completed: dict[str, bool], send=None,
              report_url=None, run_id: str | None = None) -> dict:
    """The run's last word: which stages did not complete (``completed``: task -> it returned
    its result), why (their failure records), and one alert per failed stage -- "monitoring
    for churn 2026-10-06 could not evaluate drift: <reason>" -- on the model's routes, sent
    once (the same failure on a re-run is not sent again); when every stage completed, the
    stage-failure incidents still open for the interval are resolved. Returns ``failed``
    (the tasks that failed or did not run), ``summary``, ``lines`` and ``delivery``.

    With ``run_id``, it then releases the run's lease. A run that never held it -- refused
    because another run was evaluating the interval, or overtaken by one -- says so and
    touches nothing: the interval's failures and alerts are that other run's."""
    from driftline.store.lease import read_lease, release

    start = as_utc(start)
    lease = read_lease(store, cfg.name, start) if run_id is not None else None
    if lease is not None and lease["holder"] != run_id:
        failed = [t for t in STAGES if not completed.get(t)]
        summary = (f"run {run_id} does not hold {cfg.name} {interval_key(start)}: run {lease['holder']} has the "
                   f"interval's lease" + (f" (released {lease['released_at']})" if lease.get("released_at") else
                                          f" until {lease['expires_at']}")
                   + "; this run was refused or overtaken, so its verdict is that run's and it sends nothing")
        return {"failed": failed, "summary": summary, "refused": True, "messages": 0,
                "lines": [summary, f"- tasks of this run that did not complete: {', '.join(failed) or 'none'}"],
                "delivery": {"summary": "nothing to send", "failed": []}}
    try:
        return _check_run(cfg, store, start, completed, send, report_url)
    finally:
        if run_id is not None:
            with contextlib.suppress(StoreError):  # not released, it frees at its expiry (lease_ttl)
                release(store, cfg.name, start, run_id)


def _check_run(cfg: ModelConfig, store: Store, start: datetime, completed: dict[str, bool], send,
               report_url) -> dict:
    from driftline.stages.alerts import dispatch, read_events

    key = interval_key(start)
    from driftline.store.violations import stage_failures

    failures = stage_failures(store, Store.run_prefix(cfg.name, start))
    missing = [t for t in STAGES if not completed.get(t)]
    failed = sorted(set(missing) | set(failures), key=lambda t: (list(STAGES).index(t) if t in STAGES else 99, t))
    lines, messages = [], []
    for task in failed:
        rec = failures.get(task)
        if rec:
            lines.append(f"- {task} FAILED: {rec.get('error')}"
                         + (f" (reading {', '.join(rec['inputs'])})" if rec.get("inputs") else ""))
            lines.append(f"  next: {rec.get('next')}")
        elif task in missing:
            lines.append(f"- {task} did not run (a stage it needs failed)" if failures else
                         f"- {task} did not complete and left no failure record (its worker may have been "
                         f"killed: see its log)")
    for task, rec in failures.items():
        what = TASK_WORDS.get(task, task.replace("_", " "))
        skipped = [t for t in missing if t not in failures]
        text = (f"monitoring for {cfg.name} {key} could not {what}: {rec.get('error')}"
                + (f"; not run because of it: {', '.join(skipped)}" if skipped else "")
                + f". Next: {rec.get('next')}")
        incident_key = "|".join([cfg.name, STAGE_FAILURE, task, key])
        error_id = hashlib.sha256(str(rec.get("error")).encode()).hexdigest()[:8]
        messages.append({"id": f"{incident_key}|firing|{error_id}", "event": "firing", "model": cfg.name,
                         "check": STAGE_FAILURE, "subject": task, "severity": "critical", "interval": key,
                         "incident": key, "incident_key": incident_key,
                         "title": f"[driftline] CRITICAL {cfg.name}: monitoring could not {what} ({key})",
                         "text": text, "links": {"artifacts": store.uri(Store.run_prefix(cfg.name, start))}})
    if not failed:  # a re-run that completed resolves the interval's stage-failure incidents
        try:
            events = read_events(store, cfg.name)
        except (StoreError, ValueError):
            events = []
        opened = {e["incident_key"]: e for e in events
                  if e.get("check") == STAGE_FAILURE and e.get("interval") == key and e["event"] == "firing"}
        closed = {e["incident_key"] for e in events if e.get("check") == STAGE_FAILURE and e["event"] == "resolved"}
        for ik, e in sorted(opened.items()):
            if ik not in closed:
                messages.append({**{k: e[k] for k in ("model", "check", "subject", "severity", "interval",
                                                     "incident", "incident_key")},
                                 "id": f"{ik}|resolved|{key}", "event": "resolved",
                                 "title": f"[driftline] RESOLVED {cfg.name}: monitoring of {key} ran fully",
                                 "text": f"monitoring for {cfg.name} {key} completed every stage on a re-run",
                                 "links": dict(e.get("links") or {})})
    if report_url is not None:
        for m in messages:
            m["links"] = {"report": report_url(key), **(m.get("links") or {})}
    delivery = dispatch(cfg, store, messages, send) if messages else {"summary": "nothing to send", "failed": []}
    summary = (f"run {cfg.name} {key}: {len(failed)} stage(s) did not complete: {', '.join(failed)}" if failed
               else f"run {cfg.name} {key}: every stage completed")
    return {"failed": failed, "summary": summary, "lines": [summary, *lines, delivery["summary"]],
            "delivery": delivery, "messages": len(messages)}
