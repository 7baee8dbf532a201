"""One monitored interval, stage by stage, and the records a run leaves behind.

The DAG tasks and the CLI both call these functions, so a run from Airflow and a run from a
shell produce the same artifacts. ``record_run`` writes ``run.json`` (every stage's summary)
and the interval's row of the metrics history; the history is one small Parquet file per
interval under ``metrics/<model>/history/``, so re-running an interval replaces its own row
and parallel runs (a backfill) never contend for one file.

**One run of an interval at a time.** Every stage takes ``run_id`` (the Airflow run id, or
the CLI's): the first stage, ``run_ingest``, takes the interval's lease
(``driftline.lease``) before it clears anything, or refuses naming the run that holds it and
until when; every later stage checks that its run still holds the lease before it writes,
and keeps it renewed while it works; the run's end (``check_run``; ``monitor_interval`` for
the CLI) releases it. Without ``run_id`` (library callers, tests) no lease is involved.
"""
from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import os
import posixpath
import socket
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pandas as pd
import pyarrow as pa

from driftline.baseline import interval_baseline, pin_interval_baseline
from driftline.config import ModelConfig
from driftline.quality import run_quality
from driftline.store import Resolver, Store, StoreError, as_utc, interval_key

#: How long a run's lease outlives its last renewal when nothing renews it: a stage renews it
#: while it runs, so this is the longest expected pause between two tasks of a run (queued
#: for a worker, the scheduler restarting), and the longest a crashed run blocks its interval
#: (plus the label sensor's poke interval: ``lease_ttl``).
LEASE_TTL = timedelta(minutes=15)

HISTORY_COLUMNS = {
    "model": pa.string(), "interval_start": pa.timestamp("us", tz="UTC"), "interval_end": pa.timestamp("us", tz="UTC"),
    "metric": pa.string(), "segment": pa.string(), "value": pa.float64(), "kind": pa.string(),
    "baseline_version": pa.string(), "computed_at": pa.timestamp("us", tz="UTC"),
    # estimates carry their band; model-quality rows their label coverage and computation time
    "lower": pa.float64(), "upper": pa.float64(), "coverage": pa.float64(), "seconds": pa.float64(),
}


def history_prefix(model: str) -> str:
    return posixpath.join("metrics", model, "history")


def write_history_rows(store: Store, model: str, interval_start: datetime, source: str, rows: list[dict]) -> str:
    """Replace (model, interval, source)'s rows in the metrics history."""
    table = pa.Table.from_pylist(rows, schema=pa.schema(HISTORY_COLUMNS)) if rows else pa.schema(HISTORY_COLUMNS).empty_table()
    rel = posixpath.join(history_prefix(model), f"{interval_key(interval_start)}__{source}.parquet")
    return store.write_parquet(rel, table)


def read_history(store: Store, model: str) -> pd.DataFrame:
    """The whole metrics history of a model, one row per (interval, metric, segment)."""
    files = [n for n in store.listdir(history_prefix(model)) if n.endswith(".parquet")]
    tables = [store.read_parquet(posixpath.join(history_prefix(model), n)) for n in files]
    if not tables:
        return pa.schema(HISTORY_COLUMNS).empty_table().to_pandas()
    # files written before a column existed lack it: it reads as null
    tables = [t.cast(pa.schema([f for f in pa.schema(HISTORY_COLUMNS) if f.name in t.column_names]))
              for t in tables]
    out = pa.concat_tables(tables, promote_options="default").to_pandas()
    for name in HISTORY_COLUMNS:
        if name not in out:
            out[name] = None
    return out[list(HISTORY_COLUMNS)].sort_values(["interval_start", "metric", "segment", "kind"]).reset_index(drop=True)


def interval_history(store: Store, model: str, start: datetime) -> list[dict]:
    """The interval's rows of the metrics history (every stage's), as dicts."""
    key = interval_key(start)
    rows = []
    for name in store.listdir(history_prefix(model)):
        if name.startswith(key + "__") and name.endswith(".parquet"):
            rows += store.read_parquet(posixpath.join(history_prefix(model), name)).to_pylist()
    return rows


#: What a run concludes from its batch. A re-run removes them before it ingests, so a stage
#: that fails on the re-run leaves no verdict of the previous batch behind.
VERDICT_ARTIFACTS = ("run.json", "report.html", "bias.json", "alerts.data.json", "alerts.quality.json", "quality.json",
                     "gx_validation.json", "constraint_violations.json", "violations", "failures", "data_docs",
                     "drift.json", "current_profile.json", "profiles", "merged.parquet", "model_quality.json",
                     "labels.json")
#: What ingest writes: removed together when it fails half-way, so no batch is left without
#: its quarantine (records in = kept + quarantined holds for whatever a later stage reads).
INGEST_ARTIFACTS = ("batch.parquet", "quarantine.jsonl", "ingest.json")
#: Rows of the batch kept (sampled across partitions) for the multivariate checks.
MULTIVARIATE_ROWS = 5_000


def lease_ttl(cfg: ModelConfig) -> timedelta:
    """How long the model's run leases last without a renewal: ``LEASE_TTL``, plus the label
    sensor's poke interval for a model that waits for labels (each look renews the lease, so
    a run waiting days keeps it; a crashed one frees it within this time)."""
    return LEASE_TTL + (cfg.labels.poke_interval if cfg.labels is not None else timedelta(0))


def cli_run_id() -> str:
    """A run id for a run outside Airflow: who, where, which process (named when it holds a lease)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"cli:{user}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@contextlib.contextmanager
def run_stage(cfg: ModelConfig, store: Store, start: datetime, run_id: str | None, stage: str,
              first: bool = False) -> Iterator[None]:
    """A stage of run ``run_id`` under the interval's lease (``first``: the stage that takes
    it); without a run id, nothing to hold."""
    if run_id is None:
        yield
        return
    from driftline.lease import holding

    with holding(store, cfg.name, as_utc(start), run_id, stage, lease_ttl(cfg), first=first):
        yield


def run_ingest(cfg: ModelConfig, store: Store, start: datetime, end: datetime, resolver: Resolver | None = None,
               baseline: str | None = None, by: str | None = None, run_id: str | None = None) -> dict:
    """The run's first stage: take the interval's lease for ``run_id`` (or refuse: another run
    is evaluating it), pin the interval's baseline (``baseline``: a version asked for
    deliberately, recorded with ``by``; see ``driftline.baseline.pin_interval_baseline``),
    clear the previous run's verdict, ingest the captured records. When ingest fails, what it
    wrote is removed with it."""
    from driftline.ingest import ingest_interval  # noqa: PLC0415 - keeps `import driftline.monitor` light

    store.check_reachable()
    with run_stage(cfg, store, start, run_id, "ingest", first=True):
        pin = pin_interval_baseline(cfg, store, start, requested=baseline or None, by=by)  # before run.json goes
        prefix = Store.run_prefix(cfg.name, start)
        for name in VERDICT_ARTIFACTS:
            store.delete(posixpath.join(prefix, name))
        try:
            out = ingest_interval(cfg, store, start, end, resolver=resolver)
        except BaseException:
            for name in INGEST_ARTIFACTS:
                with contextlib.suppress(StoreError):  # the store may be what failed; the error says so
                    store.delete(posixpath.join(prefix, name))
            raise
    out["baseline"] = pin["version"]
    out["summary"] += f"; judged against baseline {pin['version']} ({_pin_note(pin)})"
    return out


def capture_ready_at(cfg: ModelConfig, end: datetime) -> datetime:
    """When the interval's capture is complete: objects are written up to ``capture.write_delay``
    after their records, so a run that reads before then (a scheduled one, right at the
    interval's end) would miss records a later backfill reads. The DAG waits for this instant
    (a sensor that gives its worker slot back) before ingesting."""
    return as_utc(end) + cfg.capture.write_delay


def _pin_note(pin: dict) -> str:
    last = (pin.get("changes") or [None])[-1]
    if last:
        return f"changed from {last['from']} by {last['by']} at {last['at']}"
    return f"pinned {pin['pinned_at']}: {pin['why']}"


def run_data_quality(cfg: ModelConfig, store: Store, start: datetime, run_id: str | None = None) -> dict:
    with run_stage(cfg, store, start, run_id, "data_quality"):
        return run_quality(cfg, store, start, baseline=interval_baseline(cfg, store, start))


# -- drift: partitions profiled in parallel, merged, compared with the baseline ---------------
def plan_partitions(cfg: ModelConfig, store: Store, start: datetime) -> list[dict]:
    """Row ranges of the interval's batch, ``drift.partition_rows`` each (at least one, so an
    empty batch still flows through the profiling and reaches a verdict)."""
    import pyarrow.parquet as pq

    prefix = Store.run_prefix(cfg.name, start)
    with store.reading(posixpath.join(prefix, "batch.parquet")) as f:
        rows = pq.ParquetFile(f).metadata.num_rows
    size = cfg.drift.partition_rows
    cuts = list(range(0, rows, size)) + [rows] if rows else [0, 0]
    return [{"index": i, "start": a, "stop": b, "rows": rows} for i, (a, b) in enumerate(zip(cuts, cuts[1:]))]


def profile_partition(cfg: ModelConfig, store: Store, start: datetime, part: dict, run_id: str | None = None) -> str:
    """Profile one row range of the batch like the baseline (same kinds, same bin edges) and
    draw its share of the multivariate sample. Returns the partition profile's path."""
    with run_stage(cfg, store, start, run_id, "profile_partition"):
        return _profile_partition(cfg, store, start, part)


def _profile_partition(cfg: ModelConfig, store: Store, start: datetime, part: dict) -> str:
    import pyarrow.parquet as pq

    from driftline.profile import profile_parquet, sample_parquet

    from driftline.baseline import load_profile
    from driftline.drift_engine import specs_from

    profile, kinds, pkinds = load_profile(cfg, store, interval_baseline(cfg, store, start))
    prefix = Store.run_prefix(cfg.name, start)
    keep = min(1.0, MULTIVARIATE_ROWS / part["rows"]) if part["rows"] else 1.0
    with store.reading(posixpath.join(prefix, "batch.parquet")) as f:
        columns = pq.ParquetFile(f).schema_arrow.names
        # a feature missing from the batch (renamed upstream: data quality reports it) is left
        # out here and named "not checked" by the drift stage; every present one is profiled
        specs = specs_from(profile, [c for c in [*kinds, *pkinds] if c in columns])
        rows = (part["start"], part["stop"])
        prof = profile_parquet(f, specs, rows=rows)
        sampled = sample_parquet(f, keep, rows=rows, columns=list(specs),
                                 seed=[int(start.timestamp()), part["index"]]) if cfg.drift.multivariate else None
    rel = posixpath.join(prefix, "profiles", f"part-{part['index']:05d}.json")
    store.write_json(rel, prof.to_dict())
    if sampled is not None:
        store.write_parquet(rel.replace(".json", ".sample.parquet"), sampled)
    return rel


def run_drift(cfg: ModelConfig, store: Store, start: datetime, end: datetime, parts: list[str],
              run_id: str | None = None) -> dict:
    """Merge the partitions' profiles and compare the batch with the baseline: writes
    drift.json, current_profile.json, the drift violations and the drift metrics history."""
    with run_stage(cfg, store, start, run_id, "drift"):
        return _run_drift(cfg, store, start, end, parts)


def _run_drift(cfg: ModelConfig, store: Store, start: datetime, end: datetime, parts: list[str]) -> dict:
    from driftline.baseline import load_reference
    from driftline.drift_engine import compare, findings, violations
    from driftline.profile import DatasetProfile, merge_all
    from driftline.violations import write_violations

    prefix = Store.run_prefix(cfg.name, start)
    ref = interval_baseline(cfg, store, start)
    current = merge_all([DatasetProfile.from_dict(store.read_json(p)) for p in sorted(parts)])
    store.write_json(posixpath.join(prefix, "current_profile.json"), current.to_dict())
    identity = {"model": cfg.name, "interval_start": start.isoformat(), "interval_end": end.isoformat(),
                "baseline": ref.version, "rows": current.rows, "partitions": len(parts)}
    drift_uri = store.uri(prefix, "drift.json")
    if not cfg.drift.enabled or current.rows < cfg.thresholds.min_rows:
        status = "no_data" if cfg.drift.enabled else "disabled"
        why = "drift.enabled is false" if not cfg.drift.enabled else (
            f"{current.rows} rows (minimum {cfg.thresholds.min_rows})")
        store.write_json(posixpath.join(prefix, "drift.json"), {**identity, "checked": False, "status": status,
                                                                "why": why})
        write_violations(store, prefix, "drift", [])
        write_history_rows(store, cfg.name, start, "drift", [])  # an earlier run's rows of the interval go
        summary = (f"drift {cfg.name} {interval_key(start)}: NO DATA — {why}; not checked" if status == "no_data"
                   else f"drift not checked: {why}")
        return {"status": status, "summary": summary, "findings": [], "drift_uri": drift_uri,
                "baseline": ref.version, "drifted": []}
    reference = load_reference(cfg, store, ref)
    frame = None
    if current.rows <= cfg.drift.small_sample:
        frame = store.read_parquet(posixpath.join(prefix, "batch.parquet")).to_pandas()
    samples = [posixpath.join(prefix, "profiles", n) for n in store.listdir(posixpath.join(prefix, "profiles"))
               if n.endswith(".sample.parquet")]
    sample = pa.concat_tables([store.read_parquet(p) for p in sorted(samples)]).to_pandas() if samples else None
    result = compare(reference, current, cfg.drift, overrides={f.name: f.drift for f in cfg.features},
                     current_frame=frame, current_sample=sample)
    store.write_json(posixpath.join(prefix, "drift.json"), {**identity, **result})
    found = violations(result)
    write_violations(store, prefix, "drift", found)
    _drift_history(cfg, store, start, end, ref.version, result)
    ds = result.get("dataset") or {}
    return {"status": "drift" if found else "ok", "summary": result["summary"], "findings": findings(result),
            "drift_uri": drift_uri, "baseline": ref.version, "violations": len(found),
            "drifted": ds.get("drifted_features", []), "dataset_drift": ds.get("dataset_drift", False),
            "rows": current.rows}


def _drift_history(cfg: ModelConfig, store: Store, start: datetime, end: datetime, version: str, result: dict) -> None:
    base = {"model": cfg.name, "interval_start": start, "interval_end": end, "kind": "realized",
            "baseline_version": version, "computed_at": datetime.now(timezone.utc)}
    rows = []
    ds = result.get("dataset") or {}
    if ds:
        rows += [{**base, "metric": "drift.share", "segment": "", "value": float(ds["share"])},
                 {**base, "metric": "drift.drifted_features", "segment": "", "value": float(ds["drifted"])}]
    for group in ("features", "prediction"):
        for name, r in result.get(group, {}).items():
            if r.get("checked"):
                rows += [{**base, "metric": "drift.statistic", "segment": name, "value": float(r["statistic"])},
                         {**base, "metric": "drift.score", "segment": name, "value": float(r["score"])},
                         {**base, "metric": "missing_share", "segment": name,
                          "value": float(r["missing"]["current_share"])}]
    for k, v in (result.get("multivariate") or {}).items():
        if isinstance(v, dict) and "statistic" in v:
            rows.append({**base, "metric": f"drift.{k}", "segment": "", "value": float(v["statistic"])})
    write_history_rows(store, cfg.name, start, "drift", rows)


def look_for_labels(cfg: ModelConfig, store: Store, start: datetime, end: datetime, resolver: Resolver | None = None,
                    run_id: str | None = None) -> dict:
    """One look of the label sensor (``driftline.model_quality.label_wait``); each look renews
    the run's lease, so a run that waits days for its labels keeps its interval."""
    from driftline.model_quality import label_wait

    with run_stage(cfg, store, start, run_id, "wait_for_labels"):
        return label_wait(cfg, store, start, end, resolver=resolver)


def run_labels_and_quality(cfg: ModelConfig, store: Store, start: datetime, end: datetime,
                           resolver: Resolver | None = None, now: datetime | None = None,
                           waited: dict | None = None, run_id: str | None = None) -> dict:
    """Ingest the labels that arrived, evaluate this interval's model quality (the DAG's wait,
    if any, happened before: ``waited``), and re-evaluate earlier intervals whose labels changed."""
    with run_stage(cfg, store, start, run_id, "model_quality"):
        return _run_labels_and_quality(cfg, store, start, end, resolver, now, waited)


def _run_labels_and_quality(cfg: ModelConfig, store: Store, start: datetime, end: datetime,
                            resolver: Resolver | None, now: datetime | None, waited: dict | None) -> dict:
    from driftline.labels import sync_labels
    from driftline.model_quality import reevaluate, run_model_quality

    synced = sync_labels(cfg, store, now=now, resolver=resolver) if cfg.labels else None
    out = run_model_quality(cfg, store, start, end, as_of=now, waited=waited)
    if cfg.labels:
        out["labels_sync"] = synced["summary"]
        again = reevaluate(cfg, store, now=now, skip=start)
        out["reevaluate"] = again["summary"]
        out["reevaluated"] = [d["interval"] for d in again["reevaluated"]]
    return out


def run_alerts(cfg: ModelConfig, store: Store, start: datetime, group: str, send=None,
               also: list[str] | tuple = (), report_url=None, run_id: str | None = None) -> dict:
    """Evaluate one alert group (driftline.alerts) for the interval -- and first for the earlier
    intervals in ``also`` (interval keys re-evaluated in this run), oldest first -- then deliver
    the new messages on the model's routes (``send``: route, message -> str; None delivers
    only to the log). Returns the records and the delivery summary; a failed route raises
    AlertDeliveryError after every other route was tried and recorded."""
    with run_stage(cfg, store, start, run_id, f"alert_{group}"):
        return _run_alerts(cfg, store, start, group, send, also, report_url)


def _run_alerts(cfg: ModelConfig, store: Store, start: datetime, group: str, send, also, report_url) -> dict:
    from driftline.alerts import dispatch, evaluate_in_order, summary_lines
    from driftline.store import parse_interval_key

    starts = sorted({*(parse_interval_key(k) for k in also), as_utc(start)})
    # later intervals evaluated before these are brought up to date (evaluate_in_order), so
    # backfills and out-of-order runs give the incidents an in-order run gives
    records = evaluate_in_order(cfg, store, starts, group)
    messages = [m for r in records for m in r["messages"]]
    if report_url is not None:  # the run report on the driftline page, next to the store's folder
        for m in messages:
            m["links"] = {"report": report_url(m["interval"]), **(m.get("links") or {})}
    lines = [x for r in records for x in summary_lines(r)]
    try:
        delivery = dispatch(cfg, store, messages, send)
    except Exception as exc:
        exc.summary_lines = [*lines, str(exc)]  # type: ignore[attr-defined]
        raise
    return {"group": group, "records": records, "messages": len(messages), "delivery": delivery,
            # the verdict (what fires), apart from what this execution delivered (a re-run
            # delivers nothing new: the same verdict, another delivery count)
            "summary": f"{group} alerts: " + "; ".join(
                f"{r['interval']} {sum(a['status'] == 'firing' for a in r['alerts'])} firing" for r in records),
            "lines": [*lines, delivery["summary"]],
            "firing": [a for r in records for a in r["alerts"] if a["status"] == "firing"]}


def counted_violations(store: Store, model: str, start: datetime, violations: list[dict]) -> tuple[list, dict]:
    """The violations that count against the run's verdict, and those a person marked false
    positive / expected (driftline.feedback: they stay in constraint_violations.json)."""
    from driftline.alerts import read_record, subject_of

    suppressed = {(a["check"], a["subject"]): a["feedback"] for g in ("data", "quality")
                  if (r := read_record(store, model, start, g)) for a in r["alerts"] if a["status"] == "suppressed"}
    return [v for v in violations if (v["constraint_check_type"], subject_of(v)) not in suppressed], suppressed


def record_run(cfg: ModelConfig, store: Store, start: datetime, end: datetime, stages: dict[str, dict],
               run_id: str | None = None) -> dict:
    """Write run.json and the interval's data-quality metrics; return the run's verdict (see
    ``_record_run``)."""
    with run_stage(cfg, store, start, run_id, "record_run"):
        return _record_run(cfg, store, start, end, stages)


def write_report(cfg: ModelConfig, store: Store, start: datetime, run_id: str | None = None) -> str:
    """The run's report (``driftline.report.write_run_report``), under the run's lease."""
    from driftline.report import write_run_report

    with run_stage(cfg, store, start, run_id, "report"):
        return write_run_report(cfg, store, start)


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
    from driftline.violations import write_constraint_violations

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
    from driftline.baseline import PIN_FILE

    rel = posixpath.join(prefix, PIN_FILE)
    return store.read_json(rel) if store.exists(rel) else None


def monitor_interval(cfg: ModelConfig, store: Store, start: datetime, end: datetime,
                     resolver: Resolver | None = None, baseline: str | None = None, by: str | None = None,
                     run_id: str | None = None) -> dict:
    """Every stage of one interval, in order (the CLI's equivalent of one DAG run), as run
    ``run_id`` (default: ``cli_run_id()``), which holds the interval's lease from ingest to
    the end, when it releases it -- also when a stage failed."""
    from driftline.lease import release

    t0 = time.perf_counter()
    rid = run_id or cli_run_id()
    stages: dict[str, dict] = {}
    try:
        stages["ingest"] = run_ingest(cfg, store, start, end, resolver, baseline=baseline, by=by, run_id=rid)
        stages["data_quality"] = run_data_quality(cfg, store, start, run_id=rid)
        parts = [profile_partition(cfg, store, start, p, run_id=rid) for p in plan_partitions(cfg, store, start)]
        stages["drift"] = run_drift(cfg, store, start, end, parts, run_id=rid)
        stages["alerts_data"] = alert_brief(run_alerts(cfg, store, start, "data", run_id=rid))
        stages["model_quality"] = run_labels_and_quality(cfg, store, start, end, resolver=resolver, run_id=rid)
        stages["alerts_quality"] = alert_brief(run_alerts(cfg, store, start, "quality", run_id=rid,
                                                     also=stages["model_quality"].get("reevaluated", [])))
        out = record_run(cfg, store, start, end, stages, run_id=rid)
        out["report"] = write_report(cfg, store, start, run_id=rid)
    finally:
        with contextlib.suppress(StoreError):  # not released, it frees at its expiry (lease_ttl)
            release(store, cfg.name, as_utc(start), rid)
    out["seconds"] = round(time.perf_counter() - t0, 2)
    out["stages"] = stages
    return out


def alert_brief(alerts: dict) -> dict:
    """What run.json and XCom keep of an alert evaluation (the records are in the store)."""
    return {"summary": alerts["summary"], "delivery": alerts["delivery"]["summary"], "messages": alerts["messages"],
            "intervals": [r["interval"] for r in alerts["records"]],
            "firing": [{k: a[k] for k in ("check", "subject", "severity", "interval", "incident", "message")}
                       for a in alerts["firing"]][:50]}


def summary_block(title: str, lines: list[str], artifacts: str | None = None, next_step: str | None = None,
                  report: str | None = None) -> str:
    """The compact block each task logs last, for the on-call engineer: what was checked and
    found, then where the artifacts are, the next step a person should take, and the link to
    the run's report (on the driftline page)."""
    tail = [*([f"artifacts: {artifacts}"] if artifacts else []), *([f"report:    {report}"] if report else []),
            *([f"next:      {next_step}"] if next_step else [])]
    width = max([len(title), *(len(x) for x in lines), *(len(x) + 2 for x in tail)])
    bar = "=" * min(max(width, 40), 110)
    return "\n".join([bar, title, *(f"  {x}" for x in lines), *(f"  {x}" for x in tail), bar])


def next_step(stage: str, result: dict[str, Any], model: str = "<model>") -> str:
    """What a person should do after this stage, in one line (the summary block's ``next:``)."""
    r = result or {}
    if stage == "ingest":
        if not r.get("objects_read"):
            return ("no captured data for this interval: if traffic was expected, check the capture location "
                    "and the endpoint's data capture; the run ends with a no-data verdict")
        broken = r.get("unreadable_objects")
        if broken:
            count = len(broken) if isinstance(broken, list) else broken  # ingest.json lists them, XCom counts
            return (f"{count} capture object(s) could not be read to their end (truncated or corrupt): their "
                    f"readable records were kept, the rest is in quarantine.jsonl; ask the producer "
                    f"to rewrite them, then re-run the interval")
        if r.get("quarantined"):
            return (f"{r['quarantined']} record(s) quarantined: read quarantine.jsonl (each with its reason) and fix "
                    f"the producer; they are kept, not counted in the verdict")
        if r.get("missing_columns"):
            return f"columns {r['missing_columns']} are missing from the captured records: check the producer's schema"
        return "nothing to do"
    if stage == "data_quality":
        if r.get("status") == "violations":
            return ("open the report's data-quality section (and its Data Docs) for the failed checks; if the "
                    "upstream change is intended, answer the alert 'expected' (driftline page or "
                    f"`driftline feedback --model {model}`)")
        if r.get("status") == "no_data":
            return "too few rows to check: nothing to do unless traffic was expected"
        return "nothing to do"
    if stage == "drift":
        if r.get("drifted"):
            lead = r["drifted"][0]
            return (f"open the report's drift drivers ({lead} first) and compare the distributions; if the change "
                    f"is real and expected, answer its alert 'expected' so the next baseline absorbs it "
                    f"(`driftline baseline --model {model} --absorb-feedback`)")
        return "nothing to do"
    if stage == "model_quality":
        if r.get("status") == "violations":
            return ("model quality below its threshold: read the report's model-quality section (per segment); the "
                    "retraining policy decides whether a challenger is trained")
        if r.get("status") == "estimated":
            return "labels not in yet: quality is estimated; it is re-evaluated when they land, nothing to do now"
        return "nothing to do"
    if stage == "alerts":
        if r.get("failed"):
            return ("a route refused: check its Airflow connection, then clear this task; only what is missing is "
                    "sent again")
        new = [a for a in r.get("firing", []) if a.get("incident") == a.get("interval")]
        if new:
            return (f"{len(new)} new incident(s): answer each (acknowledge / false positive / expected) in Airflow's "
                    f"Required Actions or on the driftline page")
        return "nothing to do"
    if stage == "run":
        if r.get("incomplete"):
            return (f"stages {', '.join(r['incomplete'])} did not complete: the verdict is partial; see check_run's "
                    f"block and the failed task's log")
        if r.get("status") == "violations":
            return "open the report for what failed and by how much; the alert tasks above say what was sent"
        if r.get("status") == "no_data":
            return "no data in this interval: check the capture if traffic was expected"
        return "nothing to do"
    return "nothing to do"


def interval_summary_lines(stage: str, result: dict[str, Any]) -> list[str]:
    """Lines for a stage's summary block (its one-line summary, then one line per finding)."""
    lines = [result.get("summary", f"{stage}: done")]
    lines += [f"- {f}" for f in result.get("findings", [])]
    return lines


# -- a run whose stage failed is a failed run, and says so -------------------------------------
#: The tasks of a monitoring run that must complete for its verdict to be whole, and what each does.
STAGES = {"ingest": "ingest the captured records", "data_quality": "validate data quality",
          "drift": "evaluate drift", "model_quality": "evaluate model quality",
          "alert_data": "evaluate and send the data alerts", "alert_quality": "evaluate and send the quality alerts",
          "record_run": "record the run's verdict", "report": "write the run's report"}
#: What the other tasks do, for failure messages.
TASK_WORDS = {**STAGES, "plan_partitions": "plan the drift partitions", "profile_partition": "profile the batch for drift",
              "wait_for_labels": "wait for the labels", "wait_for_capture": "wait for the capture"}
#: The check of a stage-failure alert (its subject is the task).
STAGE_FAILURE = "stage_failure"


def record_stage_failure(store: Store, model: str, start: datetime, task: str, error: BaseException | str,
                         inputs: list[str] | tuple = (), next_step: str | None = None) -> dict:
    """``driftline.violations.record_stage_failure`` for the model's interval starting ``start``."""
    from driftline.violations import record_stage_failure as record

    return record(store, Store.run_prefix(model, start), task, error, inputs, next_step)


def clear_stage_failure(store: Store, model: str, start: datetime, task: str) -> None:
    from driftline.violations import clear_stage_failure as clear

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
    from driftline.lease import read_lease, release

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
    from driftline.alerts import dispatch, read_events

    key = interval_key(start)
    from driftline.violations import stage_failures

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
