"""One monitored interval, stage by stage, and the records a run leaves behind.

The DAG tasks and the CLI both call these functions, so a run from Airflow and a run from a
shell produce the same artifacts. ``record_run`` writes ``run.json`` (every stage's summary)
and the interval's row of the metrics history; the history is one small Parquet file per
interval under ``metrics/<model>/history/``, so re-running an interval replaces its own row
and parallel runs (a backfill) never contend for one file.
"""
from __future__ import annotations

import posixpath
import time
from datetime import datetime, timezone
from typing import Any

import pandas as pd
import pyarrow as pa

from driftline.baseline import resolve_baseline
from driftline.config import ModelConfig
from driftline.quality import run_quality
from driftline.store import Resolver, Store, interval_key

HISTORY_COLUMNS = {
    "model": pa.string(), "interval_start": pa.timestamp("us", tz="UTC"), "interval_end": pa.timestamp("us", tz="UTC"),
    "metric": pa.string(), "segment": pa.string(), "value": pa.float64(), "kind": pa.string(),
    "baseline_version": pa.string(), "computed_at": pa.timestamp("us", tz="UTC"),
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
    return pa.concat_tables(tables).to_pandas().sort_values(["interval_start", "metric", "segment"]).reset_index(drop=True)


#: What a run concludes from its batch. A re-run removes them before it ingests, so a stage
#: that fails on the re-run leaves no verdict of the previous batch behind.
VERDICT_ARTIFACTS = ("run.json", "quality.json", "gx_validation.json", "constraint_violations.json", "data_docs")


def run_ingest(cfg: ModelConfig, store: Store, start: datetime, end: datetime, resolver: Resolver | None = None) -> dict:
    from driftline.ingest import ingest_interval  # noqa: PLC0415 - keeps `import driftline.monitor` light

    store.check_reachable()
    prefix = Store.run_prefix(cfg.name, start)
    for name in VERDICT_ARTIFACTS:
        store.delete(posixpath.join(prefix, name))
    return ingest_interval(cfg, store, start, end, resolver=resolver)


def run_data_quality(cfg: ModelConfig, store: Store, start: datetime) -> dict:
    return run_quality(cfg, store, start, baseline=resolve_baseline(cfg, store))


def record_run(cfg: ModelConfig, store: Store, start: datetime, end: datetime, stages: dict[str, dict]) -> dict:
    """Write run.json and the interval's data-quality metrics; return the run's verdict."""
    prefix = Store.run_prefix(cfg.name, start)
    quality = stages.get("data_quality", {})
    ingest = stages.get("ingest", {})
    status = quality.get("status", "unknown")
    violations_rel = posixpath.join(prefix, "constraint_violations.json")
    violations = store.read_json(violations_rel).get("violations", []) if store.exists(violations_rel) else []
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
        "interval": interval_key(start), "status": status, "baseline": quality.get("baseline"),
        "violations": len(violations), "violation_checks": sorted({v["constraint_check_type"] for v in violations}),
        "recorded_at": now.isoformat(timespec="seconds"), "stages": stages,
        "artifacts": store.uri(prefix),
    }
    store.write_json(posixpath.join(prefix, "run.json"), run)
    return {k: run[k] for k in ("model", "interval", "status", "baseline", "violations", "violation_checks", "artifacts")}


def monitor_interval(cfg: ModelConfig, store: Store, start: datetime, end: datetime,
                     resolver: Resolver | None = None) -> dict:
    """Every stage of one interval, in order (the CLI's equivalent of one DAG run)."""
    t0 = time.perf_counter()
    stages = {"ingest": run_ingest(cfg, store, start, end, resolver)}
    stages["data_quality"] = run_data_quality(cfg, store, start)
    out = record_run(cfg, store, start, end, stages)
    out["seconds"] = round(time.perf_counter() - t0, 2)
    out["stages"] = stages
    return out


def summary_block(title: str, lines: list[str], artifacts: str | None = None) -> str:
    """The compact block each task logs last, for the on-call engineer."""
    width = max([len(title), *(len(x) for x in lines), len(artifacts or "") + 11]) if lines else len(title)
    bar = "=" * min(max(width, 40), 110)
    body = [bar, title, *(f"  {x}" for x in lines)]
    if artifacts:
        body.append(f"  artifacts: {artifacts}")
    body.append(bar)
    return "\n".join(body)


def interval_summary_lines(stage: str, result: dict[str, Any]) -> list[str]:
    """Lines for a stage's summary block (its one-line summary, then one line per finding)."""
    lines = [result.get("summary", f"{stage}: done")]
    lines += [f"- {f}" for f in result.get("findings", [])]
    return lines
