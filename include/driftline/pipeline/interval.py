"""One monitored interval, stage by stage, and the records a run leaves behind.

The DAG tasks and the CLI both call these functions, so a run from Airflow and a run from a
shell produce the same artifacts. ``record_run`` writes ``run.json`` (every stage's summary)
and the interval's row of the metrics history; the history is one small Parquet file per
interval under ``metrics/<model>/history/``, so re-running an interval replaces its own row
and parallel runs (a backfill) never contend for one file.

**One run of an interval at a time.** Every stage takes ``run_id`` (the Airflow run id, or
the CLI's): the first stage, ``run_ingest``, takes the interval's lease
(``driftline.store.lease``) before it clears anything, or refuses naming the run that holds it and
until when; every later stage checks that its run still holds the lease before it writes,
and keeps it renewed while it works; the run's end (``check_run``; ``monitor_interval`` for
the CLI) releases it. Without ``run_id`` (library callers, tests) no lease is involved.
"""
from __future__ import annotations

import contextlib
import posixpath
import time
from datetime import datetime, timezone

import pyarrow as pa

from driftline.config import ModelConfig
from driftline.pipeline.records import record_run
from driftline.pipeline.stage import cli_run_id, run_stage
from driftline.pipeline.summary import alert_brief
from driftline.stages.data_quality import run_quality
from driftline.store import Resolver, Store, StoreError, as_utc, interval_key
from driftline.store.baselines import interval_baseline, pin_interval_baseline
from driftline.store.history import write_history_rows

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


def run_ingest(cfg: ModelConfig, store: Store, start: datetime, end: datetime, resolver: Resolver | None = None,
               baseline: str | None = None, by: str | None = None, run_id: str | None = None) -> dict:
    """The run's first stage: take the interval's lease for ``run_id`` (or refuse: another run
    is evaluating it), pin the interval's baseline (``baseline``: a version asked for
    deliberately, recorded with ``by``; see ``driftline.store.baselines.pin_interval_baseline``),
    clear the previous run's verdict, ingest the captured records. When ingest fails, what it
    wrote is removed with it."""
    from driftline.stages.ingest import ingest_interval  # noqa: PLC0415 - keeps `import driftline.pipeline.interval` light

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

    from driftline.stages.baseline import load_profile
    from driftline.stages.drift import specs_from
    from driftline.stats.profile import profile_parquet, sample_parquet

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
    from driftline.stages.baseline import load_reference
    from driftline.stages.drift import compare, findings, violations
    from driftline.stats.profile import DatasetProfile, merge_all
    from driftline.store.violations import write_violations

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
    """One look of the label sensor (``driftline.stages.model_quality.label_wait``); each look renews
    the run's lease, so a run that waits days for its labels keeps its interval."""
    from driftline.stages.model_quality import label_wait

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
    from driftline.pipeline.reevaluate import reevaluate
    from driftline.stages.labels import sync_labels
    from driftline.stages.model_quality import run_model_quality

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
    """Evaluate one alert group (driftline.stages.alerts) for the interval -- and first for the earlier
    intervals in ``also`` (interval keys re-evaluated in this run), oldest first -- then deliver
    the new messages on the model's routes (``send``: route, message -> str; None delivers
    only to the log). Returns the records and the delivery summary; a failed route raises
    AlertDeliveryError after every other route was tried and recorded."""
    with run_stage(cfg, store, start, run_id, f"alert_{group}"):
        return _run_alerts(cfg, store, start, group, send, also, report_url)


def _run_alerts(cfg: ModelConfig, store: Store, start: datetime, group: str, send, also, report_url) -> dict:
    from driftline.stages.alerts import dispatch, evaluate_in_order, summary_lines
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


def write_report(cfg: ModelConfig, store: Store, start: datetime, run_id: str | None = None) -> str:
    """The run's report (``driftline.render.report.write_run_report``), under the run's lease."""
    from driftline.render.report import write_run_report

    with run_stage(cfg, store, start, run_id, "report"):
        return write_run_report(cfg, store, start)


def monitor_interval(cfg: ModelConfig, store: Store, start: datetime, end: datetime,
                     resolver: Resolver | None = None, baseline: str | None = None, by: str | None = None,
                     run_id: str | None = None) -> dict:
    """Every stage of one interval, in order (the CLI's equivalent of one DAG run), as run
    ``run_id`` (default: ``cli_run_id()``), which holds the interval's lease from ingest to
    the end, when it releases it -- also when a stage failed."""
    from driftline.store.lease import release

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


# -- a run whose stage failed is a failed run, and says so -------------------------------------
