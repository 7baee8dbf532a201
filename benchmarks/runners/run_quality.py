"""driftline's model-quality path on the benchmark data, one stage per fresh process.

    python runners/run_quality.py --stage baseline|ingest|merge|quality --data DIR [--cprofile OUT.pstats]

DIR is one dataset made by bench_quality.py: ``model.json`` (the model file, as a JSON document;
relative locations are under DIR), ``gt/`` (the label objects, SageMaker ground-truth JSONL,
one per arrival hour), ``store/`` (the store: the interval's ``batch.parquet``, the baseline)
and ``truth.json`` (what the answers must be, and the clock: ``now``).

Stages, each timed between ``start()`` and ``lap()``; imports are not timed:

- ``baseline``: ``create_baseline(cfg, store)`` from the training data (features, prediction
  columns and labels): statistics, drift profile and ``performance.json`` (metrics overall and
  per segment, the CBPE calibration). Made once; reported on its own.
- ``ingest``: ``sync_labels(cfg, store, now=...)``: every arrival day listed, read, parsed and
  written to ``labels/<model>/arrivals/<day>.parquet``. The harness removes ``labels/`` first,
  so every day is ingested.
- ``merge``: ``merge_interval(cfg, store, start, end, as_of=now)``: the interval's predictions
  joined with the latest label of each id.
- ``quality``: ``run_model_quality(cfg, store, start, end, as_of=now)``: the merge, realized
  metrics and the CBPE estimate (with its band) overall and per segment, and every write
  (merged.parquet, model_quality.json, labels.json, violations, history rows).

``parts`` in the output: wall seconds spent inside some library functions, exclusive (time in a
nested measured function counts for the inner one only), from thin wrappers installed before
the clock; ``other`` is the rest of the stage (the code between those calls). The wrappers are
called a few dozen times per stage: their cost does not show. For the merge, ``sorted`` and
``json.dumps`` are wrapped as ``driftline.stages.labels`` sees them (module globals shadowing the
builtin and the json module): merge_interval calls them once each, for its label digest.

``peak_hwm_mib``: this process's VmHWM. ``peak_rss_mib`` (measure.py's ``ru_maxrss``) is at
least the harness's resident set when it started this process: Linux carries the larger high-
water mark across exec, so a large parent inflates it.
"""
from __future__ import annotations

import argparse
import cProfile
import functools
import json
import shutil
import time
import types
from datetime import datetime
from importlib.metadata import version
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet  # noqa: F401
from measure import Clock, emit

import driftline.config
import driftline.pipeline.interval
import driftline.stages.baseline
import driftline.stages.data_quality
import driftline.stages.drift  # noqa: F401 - create_baseline imports it lazily
import driftline.stages.ingest
import driftline.stages.labels
import driftline.stages.model_quality
import driftline.stats.performance
from driftline.store import Store

# ---------------------------------------------------------------------------------------------
# Exclusive wall time inside chosen functions
# ---------------------------------------------------------------------------------------------
PARTS: dict[str, float] = {}
CALLS: dict[str, int] = {}
_STACK: list[list[float]] = []  # [start, seconds spent in nested measured calls]


def _timed(name: str, fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        frame = [time.perf_counter(), 0.0]
        _STACK.append(frame)
        try:
            return fn(*args, **kwargs)
        finally:
            _STACK.pop()
            elapsed = time.perf_counter() - frame[0]
            PARTS[name] = PARTS.get(name, 0.0) + elapsed - frame[1]
            CALLS[name] = CALLS.get(name, 0) + 1
            if _STACK:
                _STACK[-1][1] += elapsed
    return wrapper


def measure_parts(stage: str) -> None:
    """Wrap the library functions a stage spends its time in (module attributes: the library
    looks them up at call time, so its own calls go through the wrappers)."""
    L, MQ, P = driftline.stages.labels, driftline.stages.model_quality, driftline.stats.performance
    targets = [(Store, "read_parquet", "store.read_parquet"), (Store, "write_parquet", "store.write_parquet"),
               (Store, "write_json", "store.write_json"), (Store, "write_text", "store.write_text")]
    if stage == "ingest":
        targets += [(L, "_list_day", "list the day's objects"), (driftline.stages.ingest, "_fetch", "read the objects"),
                    (L._Reader, "read", "parse the lines (json, label)"), (L._Reader, "table", "build the Arrow table")]
    if stage in ("merge", "quality"):
        targets += [(L, "read_arrivals", "read arrivals (concat, cast)"),
                    (pd.DataFrame, "drop_duplicates", "latest label per id (pandas drop_duplicates)")]
        # merge_interval's digest of the matched (id, label) pairs: Python's sorted() and
        # json.dumps, as merge_interval finds them (driftline.stages.labels' globals, then builtins)
        L.sorted = _timed("label digest: sorted() of the (id, label) pairs", sorted)
        L.json = types.SimpleNamespace(**{**vars(json), "dumps": _timed("label digest: json.dumps", json.dumps)})
    if stage == "quality":
        targets += [(L, "merge_interval", "merge_interval (rest)"), (MQ, "resolve_baseline", "resolve baseline"),
                    (MQ, "load_reference", "load performance.json"), (MQ, "evaluate", "evaluate (pandas grouping)"),
                    (P, "realized_metrics", "realized metrics (sklearn)"),
                    (P, "estimate_metrics", "CBPE estimate + band"),
                    (MQ, "history_rows", "history rows"), (driftline.pipeline.interval, "write_history_rows", "write history"),
                    (driftline.stages.data_quality, "write_violations", "write violations")]
    if stage == "baseline":
        B = driftline.stages.baseline
        targets += [(B, "read_table", "read training data"), (B, "compute_statistics", "statistics"),
                    (B, "drift_artifacts", "drift profile"), (B, "_performance", "performance.json (metrics, calibration)")]
    for owner, attr, name in targets:
        setattr(owner, attr, _timed(name, getattr(owner, attr)))


def parts_report(total: float) -> dict:
    out = {k: round(v, 4) for k, v in sorted(PARTS.items(), key=lambda kv: -kv[1])}
    out["other"] = round(max(0.0, total - sum(PARTS.values())), 4)
    return out


def vm_hwm_mib() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024


# ---------------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stage", choices=["baseline", "ingest", "merge", "quality"], required=True)
    ap.add_argument("--data", required=True, type=Path, help="a dataset folder made by bench_quality.py")
    ap.add_argument("--cprofile", help="also write cProfile statistics of the timed work here (slows it down)")
    a = ap.parse_args()
    data = a.data.resolve()
    truth = json.loads((data / "truth.json").read_text())
    cfg = driftline.config.parse_model_config(json.loads((data / "model.json").read_text()), str(data / "model.json"),
                                              base_dir=data)
    store = Store(f"file://{data / 'store'}")
    now = datetime.fromisoformat(truth["now"])
    start = datetime.fromisoformat(truth["interval_start"])
    end = cfg.interval_end(start)
    if a.stage == "ingest":  # every day ingested afresh (a settled day would be skipped)
        shutil.rmtree(data / "store" / "labels", ignore_errors=True)
    if a.stage == "baseline":
        shutil.rmtree(data / "store" / "baselines", ignore_errors=True)

    measure_parts(a.stage)
    prof = cProfile.Profile() if a.cprofile else None
    clock = Clock()
    clock.start()
    if prof:
        prof.enable()
    if a.stage == "baseline":
        out = driftline.stages.baseline.create_baseline(cfg, store)
    elif a.stage == "ingest":
        out = driftline.stages.labels.sync_labels(cfg, store, now=now)
    elif a.stage == "merge":
        m = driftline.stages.labels.merge_interval(cfg, store, start, end, as_of=now)
        out = {**m.state(), "rows": m.table.num_rows, "columns": m.table.column_names}
    else:
        out = driftline.stages.model_quality.run_model_quality(cfg, store, start, end, as_of=now)
    seconds = clock.lap(a.stage)
    if prof:
        prof.disable()
        prof.dump_stats(a.cprofile)

    extra: dict = {"stage": a.stage, "rows": truth["rows"], "version": version("driftline"),
                   "pyarrow": pa.__version__, "parts": parts_report(seconds),
                   "calls": dict(sorted(CALLS.items())), "cprofile": bool(prof)}
    if a.stage == "baseline":
        extra["answer"] = {"version": out["version"], "summary": out["summary"]}
    elif a.stage == "ingest":
        extra["answer"] = {k: out[k] for k in ("labels", "quarantined", "listed")} | {"days": len(out["days_ingested"])}
    elif a.stage == "merge":
        extra["answer"] = {k: out[k] for k in ("predicted", "labelled", "overrides", "coverage", "rows", "digest")}
    else:
        doc = store.read_json(f"{Store.run_prefix(cfg.name, start)}/model_quality.json")
        seg = cfg.performance.segments[0]
        extra["answer"] = {
            "predicted": out["predicted"], "labelled": out["labelled"], "coverage": out["coverage"],
            "overrides": doc["overrides"], "status": out["status"], "violations": out["violations"],
            "realized": doc["overall"]["realized"]["metrics"],
            "estimated": {m: v["value"] for m, v in doc["overall"]["estimated"]["metrics"].items()},
            "segment_accuracy": {v: g["realized"]["metrics"]["accuracy"] for v, g in doc["segments"][seg].items()},
            "library_seconds": doc["seconds"], "summary": out["summary"]}
    result = clock.report("driftline", seconds, [], **extra)
    # This process's own high-water mark. ru_maxrss (peak_rss_mib) also counts the parent's
    # resident set at the moment it started this process (Linux keeps the larger across exec).
    result["peak_hwm_mib"] = round(vm_hwm_mib(), 1)
    result.pop("drifted")  # a drift runner's field: nothing drifts here
    emit(result)


if __name__ == "__main__":
    main()
