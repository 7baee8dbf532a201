#!/usr/bin/env python
"""Model-quality benchmark: ingesting ~1M late labels, merging them with 1M predictions and
computing the metrics, in driftline alone: seconds, peak memory, rows per second.

    .venv/bin/python benchmarks/bench_quality.py [--rows 1M] [--small-rows 100k] [--repeat 3]
        [--stages ingest,merge,quality] [--cprofile]

Run on demand, not in CI: with the defaults it takes about 2.5 minutes (the first run also
makes the data and the baselines, about 20 s more).

1. Makes each dataset (--rows, and --small-rows to show the scaling) under
   <data-root>/quality-<rows>/, reused while the generator is unchanged: a binary classifier's
   predictions for one daily interval (``batch.parquet`` in a local store, as ingestion leaves
   it), its labels as SageMaker ground-truth JSONL arriving over the next 3 days (one object per
   hour; ~96% of the predictions labelled, 1% of those labelled twice, the later label
   correcting the first, and labels for ids nobody predicted), the training data, and
   ``truth.json`` (the counts and metrics the answers must have). Then creates the baseline
   (``create_baseline``: its ``performance.json`` holds the calibration CBPE uses), timed once.
2. Runs runners/run_quality.py for each stage (``ingest``: sync_labels; ``merge``:
   merge_interval; ``quality``: run_model_quality), each in a fresh process that imports
   driftline first and then times the stage, --repeat times, round robin, so load from other
   jobs falls on every stage alike. The measurement (peak RSS, the process tree's PSS sampled
   every 50 ms, other jobs' CPU seconds) is bench_drift.py's ``run_runner``.
3. Checks each stage's answer against truth.json, and writes results/quality-<rows>.json
   (every run's numbers and where its time went) and results/quality-<rows>.md (the tables),
   and prints the tables. With --cprofile it also runs each stage once more under cProfile at
   --rows (not timed in the table) and keeps the top functions in the JSON.
"""
from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import multiprocessing
import os
import pstats
import shutil
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_drift as harness  # noqa: E402 - the drift benchmark's process runner and machine readings
from bench_drift import BenchError, log, parse_rows, rows_label, write_results  # noqa: E402

STAGES = ("ingest", "merge", "quality")
WHAT = {
    "ingest": "label ingestion: sync_labels, every arrival day (list, read, parse, write arrivals/<day>.parquet)",
    "merge": "merge_interval: read predictions and arrivals, latest label per id, join",
    "quality": "run_model_quality: merge + realized metrics + CBPE estimate (overall, 4 segments) + writes",
    "baseline": "create_baseline from 100k labelled training rows (statistics, drift profile, performance.json)",
}
SHORT = {"ingest": "label ingestion (sync_labels)", "merge": "merge (merge_interval)",
         "quality": "run_model_quality (merge + metrics + estimate + writes)"}

# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------
MODEL = "bench"
INTERVAL = datetime(2026, 10, 1, tzinfo=timezone.utc)      # one daily interval
FIRST_ARRIVAL = INTERVAL + timedelta(days=1)                 # labels arrive over the next 3 days
ARRIVAL_HOURS = 72
NOW = FIRST_ARRIVAL + timedelta(hours=ARRIVAL_HOURS + 6)     # every arrival day ended and settled
LABELLED, DUPLICATED, TRAIN_ROWS = 0.96, 0.01, 100_000
REGIONS, REGION_P = np.array(["north", "south", "east", "west"]), [0.4, 0.3, 0.2, 0.1]
MODEL_DOC = {
    "name": MODEL, "problem_type": "binary_classification", "start_date": INTERVAL.date().isoformat(),
    "features": [{"name": "x1", "type": "numeric"}, {"name": "x2", "type": "numeric"},
                 {"name": "amount", "type": "numeric"}, {"name": "tenure", "type": "integer"},
                 {"name": "region", "type": "categorical"}],
    "prediction": {"label": "pred", "probability": "proba"},
    "capture": {"uri": "capture"},
    "labels": {"uri": "gt", "format": "sagemaker_ground_truth", "column": "label", "delay": "3d"},
    "baseline": {"training_data": "train.parquet", "sample_rows": 0},
    "performance": {"segments": ["region"]},
}
GT_LINE = ('{"groundTruthData": {"data": "%d", "encoding": "CSV"}, "eventMetadata": {"eventId": "%s"}, '
           '"eventVersion": "0"}\n')


def generator_stamp() -> str:
    """Changes whenever the data would: the generator's source and its constants."""
    src = inspect.getsource(make_rows) + inspect.getsource(uuids) + inspect.getsource(make_data)
    return hashlib.sha256((src + json.dumps(MODEL_DOC) + GT_LINE + str(NOW)).encode()).hexdigest()[:16]


def uuids(rng: np.random.Generator, n: int) -> np.ndarray:
    """n random UUID-shaped strings (what SageMaker's inference ids look like), vectorised."""
    raw = np.frombuffer(rng.bytes(16 * n), dtype=np.uint8).reshape(n, 16)
    nibbles = np.empty((n, 32), dtype=np.uint8)
    nibbles[:, 0::2], nibbles[:, 1::2] = raw >> 4, raw & 15
    hexed = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)[nibbles]
    out = np.full((n, 36), ord("-"), dtype=np.uint8)
    for a, b, c in ((0, 8, 0), (9, 13, 8), (14, 18, 12), (19, 23, 16), (24, 36, 20)):
        out[:, a:b] = hexed[:, c:c + b - a]
    return out.view("S36").ravel().astype("U36")


def make_rows(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Features, the model's score and predicted label, and the true label.

    The model's score is sigmoid(logit); the truth is drawn from a slightly flatter, shifted
    logit (a calibrated-ish model: a little overconfident, a little worse in region west)."""
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    amount = rng.lognormal(3.0, 1.0, n)
    tenure = rng.poisson(24, n).astype("int64")
    region = REGIONS[rng.choice(4, n, p=REGION_P)]
    logit = -0.4 + 1.3 * x1 - 0.9 * x2 + 0.25 * (np.log(amount) - 3.0) + 0.02 * (tenure - 24)
    proba = 1 / (1 + np.exp(-logit))
    true_logit = 0.85 * logit + np.where(region == "west", 0.6 * rng.normal(size=n), 0.0) + 0.05
    truth = (rng.random(n) < 1 / (1 + np.exp(-true_logit))).astype("int64")
    return {"x1": x1, "x2": x2, "amount": amount, "tenure": tenure, "region": region, "proba": proba,
            "pred": (proba >= 0.5).astype("int64"), "label": truth}


def _accuracy(truth: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean(truth == pred)) if truth.size else float("nan")


def make_data(n: int, folder: Path) -> dict:
    """Write the dataset into folder (emptied first); returns its truth.json."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sklearn.metrics import roc_auc_score

    from driftline.store import Store

    t0 = time.perf_counter()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rng = np.random.default_rng(20261001 + n)
    (folder / "model.json").write_text(json.dumps(MODEL_DOC, indent=2) + "\n")

    train = make_rows(rng, TRAIN_ROWS)
    pq.write_table(pa.table(train), folder / "train.parquet")

    # the interval's predictions, in inference-time order
    rows = make_rows(rng, n)
    ids = uuids(rng, n)
    if len(np.unique(ids)) != n:
        raise BenchError("generated inference ids collide (re-run with another seed)")
    micros = np.sort(rng.integers(0, 86_400 * 10**6, n))
    times = pa.array(micros + int(INTERVAL.timestamp() * 10**6), pa.timestamp("us", tz="UTC"))
    batch = pa.table({"inference_id": pa.array(ids, pa.string()), "inference_time": times,
                      **{k: rows[k] for k in ("x1", "x2", "amount", "tenure", "region", "pred", "proba")}})
    store = Store(f"file://{folder / 'store'}")
    store.write_parquet(f"{Store.run_prefix(MODEL, INTERVAL)}/batch.parquet", batch)

    # labels: ~96% of the ids, each in one arrival hour of the next 3 days; 1% of those a second
    # time, later, the first label wrong and the second (the truth) correcting it; some for ids
    # nobody predicted
    truth = rows["label"]
    labelled = np.flatnonzero(rng.random(n) < LABELLED)
    hour = rng.integers(0, ARRIVAL_HOURS, labelled.size)
    can_fix = np.flatnonzero(hour < ARRIVAL_HOURS - 1)
    fixed = np.sort(rng.choice(can_fix, int(round(DUPLICATED * labelled.size)), replace=False))
    fix_hour = hour[fixed] + 1 + (rng.random(fixed.size) * (ARRIVAL_HOURS - 1 - hour[fixed])).astype("int64")
    first_label = truth[labelled].copy()
    first_label[fixed] = 1 - first_label[fixed]
    n_unknown = max(50, n // 2000)
    unknown_ids = uuids(rng, n_unknown)
    lines_id = np.concatenate([ids[labelled], ids[labelled[fixed]], unknown_ids])
    lines_label = np.concatenate([first_label, truth[labelled[fixed]], rng.integers(0, 2, n_unknown)])
    lines_hour = np.concatenate([hour, fix_hour, rng.integers(0, ARRIVAL_HOURS, n_unknown)])
    order = np.lexsort((rng.random(lines_hour.size), lines_hour))  # by hour, shuffled within it
    bounds = np.searchsorted(lines_hour[order], np.arange(ARRIVAL_HOURS + 1))
    gt_bytes = 0
    for h in range(ARRIVAL_HOURS):
        idx = order[bounds[h]:bounds[h + 1]]
        at = FIRST_ARRIVAL + timedelta(hours=h)
        d = folder / "gt" / at.strftime("%Y/%m/%d/%H")
        d.mkdir(parents=True, exist_ok=True)
        text = "".join(GT_LINE % (lab, rid) for lab, rid in zip(lines_label[idx].tolist(), lines_id[idx].tolist()))
        (d / f"ground-truth-{at:%Y%m%d%H}.jsonl").write_text(text)
        gt_bytes += len(text)

    # what the answers must be: every labelled id ends with its true label
    pred = rows["pred"][labelled]
    y = truth[labelled]
    seg = rows["region"][labelled]
    doc = {
        "generator": generator_stamp(), "rows": n, "model": MODEL, "interval_start": INTERVAL.isoformat(),
        "now": NOW.isoformat(), "label_lines": int(lines_id.size), "label_objects": ARRIVAL_HOURS,
        "label_bytes": gt_bytes, "labelled": int(labelled.size), "overrides": int(fixed.size),
        "unknown_ids": n_unknown, "train_rows": TRAIN_ROWS,
        "accuracy": _accuracy(y, pred), "roc_auc": float(roc_auc_score(y, rows["proba"][labelled])),
        "segment_accuracy": {r: _accuracy(y[seg == r], pred[seg == r]) for r in sorted(REGIONS)},
        "seconds_to_make": round(time.perf_counter() - t0, 1),
    }
    (folder / "truth.json").write_text(json.dumps(doc, indent=2) + "\n")
    return doc


def ensure_data(n: int, root: Path, regenerate: bool) -> tuple[Path, dict, bool]:
    folder = root / f"quality-{rows_label(n)}"
    truth_file = folder / "truth.json"
    if not regenerate and truth_file.exists():
        truth = json.loads(truth_file.read_text())
        if truth.get("generator") == generator_stamp():
            return folder, truth, False
    log(f"data: making {rows_label(n)} predictions and their labels under {folder}")
    # in a process of its own: the harness stays small, and a runner's ru_maxrss, which counts
    # the harness's resident set at the moment it was started, stays the runner's own
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        truth = pool.apply(make_data, (n, folder))
    log(f"data: {truth['label_lines']:,} label lines in {truth['label_objects']} objects "
        f"({truth['label_bytes'] / 2**20:.0f} MiB) in {truth['seconds_to_make']} s")
    return folder, truth, True


def warm_page_cache(folder: Path) -> None:
    """Read every input file once, so each stage reads from memory, not from whichever disk state it met."""
    for p in sorted((folder / "gt").rglob("*.jsonl")) + sorted((folder / "store" / "runs").rglob("*.parquet")):
        harness.warm_page_cache(p)


# ---------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------
def run_stage(stage: str, folder: Path, tag: str, cprofile: Path | None = None) -> dict:
    args = ["--stage", stage, "--data", str(folder)] + (["--cprofile", str(cprofile)] if cprofile else [])
    return harness.run_runner(sys.executable, "quality", args, folder / "work" / f"{tag}.log")


def check(stage: str, answer: dict, truth: dict) -> list[str]:
    """What differs from truth.json: [] when the stage's answer is right."""
    want: dict = {}
    if stage == "ingest":
        want = {"labels": truth["label_lines"], "quarantined": 0}
    elif stage in ("merge", "quality"):
        want = {"predicted": truth["rows"], "labelled": truth["labelled"], "overrides": truth["overrides"]}
    bad = [f"{k} {answer.get(k)} (want {v})" for k, v in want.items() if answer.get(k) != v]
    if stage == "quality":
        got = {"accuracy": answer["realized"]["accuracy"], "roc_auc": answer["realized"]["roc_auc"],
               **{f"accuracy[{r}]": v for r, v in answer["segment_accuracy"].items()}}
        exp = {"accuracy": truth["accuracy"], "roc_auc": truth["roc_auc"],
               **{f"accuracy[{r}]": v for r, v in truth["segment_accuracy"].items()}}
        bad += [f"{k} {got.get(k)} (want {v})" for k, v in exp.items()
                if got.get(k) is None or abs(got[k] - v) > 1e-9]
    return bad


def throughput(stage: str, truth: dict, seconds: float) -> tuple[float, str]:
    if stage == "ingest":
        return truth["label_lines"] / seconds, "label lines"
    return truth["rows"] / seconds, "predictions"


def peak_mib(run: dict) -> float:
    """A run's peak memory: its own high-water mark (VmHWM), or the sampled PSS if larger."""
    return max(run["peak_hwm_mib"], run["harness"]["tree_peak_pss_mib_sampled"])


def summarise(stage: str, truth: dict, runs: list[dict]) -> dict:
    secs = [r["seconds"] for r in runs]
    med = statistics.median(secs)
    rate, unit = throughput(stage, truth, med)
    part_names = list(dict.fromkeys(k for r in runs for k in r["parts"]))
    parts = {k: statistics.median(r["parts"].get(k, 0.0) for r in runs) for k in part_names}
    problems = sorted({p for r in runs for p in check(stage, r["answer"], truth)})
    return {"stage": stage, "rows": truth["rows"], "what": WHAT[stage], "seconds": med, "seconds_min": min(secs),
            "seconds_all": [round(s, 4) for s in secs], "peak_rss_mib": max(peak_mib(r) for r in runs),
            "ru_maxrss_mib": max(r["peak_rss_mib"] for r in runs), "rss_after_imports_mib": max(r["rss_after_imports_mib"] for r in runs),
            "rows_per_second": rate, "rate_unit": unit,
            "other_cpu_seconds": [r["harness"]["other_cpu_seconds"] for r in runs],
            "parts_median": dict(sorted(parts.items(), key=lambda kv: -kv[1])),
            "answer": runs[-1]["answer"], "right": not problems, "problems": problems}


def top_functions(path: Path, n: int = 15) -> dict:
    """The top functions of a cProfile dump, by own time and by cumulative time."""
    st = pstats.Stats(str(path))
    total = st.total_tt

    def name(fn) -> str:
        file, line, func = fn
        return f"{func} ({'/'.join(Path(file).parts[-2:])}:{line})" if file != "~" else func

    rows = [(name(fn), tt, ct, nc) for fn, (cc, nc, tt, ct, _) in st.stats.items()]
    own = sorted(rows, key=lambda r: -r[1])[:n]
    cum = sorted(rows, key=lambda r: -r[2])[:n]
    fmt = lambda r: {"function": r[0], "own_s": round(r[1], 3), "cumulative_s": round(r[2], 3), "calls": r[3]}  # noqa: E731
    return {"total_s": round(total, 3), "by_own_time": [fmt(r) for r in own], "by_cumulative_time": [fmt(r) for r in cum]}


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------
def rate_text(x: float) -> str:
    return f"{x / 1e6:.2f}M" if x >= 1e6 else f"{x / 1e3:.0f}k"


def markdown(doc: dict) -> str:
    rep = doc["repeat"]
    rows = doc["table"]
    out = [f"| stage | predictions | label lines | what is timed | seconds (median of {rep}) | min s | peak RSS MiB "
           f"| rows/s | vs {rows_label(doc['data']['small_rows'])} | other jobs CPU-s | answer right |"
           if doc["data"]["small_rows"] else
           f"| stage | predictions | label lines | what is timed | seconds (median of {rep}) | min s | peak RSS MiB "
           f"| rows/s | - | other jobs CPU-s | answer right |",
           "|---|---:|---:|---|---:|---:|---:|---:|---:|---|---|"]
    for r in rows:
        small = next((s for s in rows if s["stage"] == r["stage"] and s["rows"] == doc["data"]["small_rows"]), None)
        ratio = "-" if small is None or small is r else f"{r['seconds'] / small['seconds']:.1f}x"
        lines = doc["truths"][str(r["rows"])]["label_lines"]
        out.append(f"| {r['stage']} | {rows_label(r['rows'])} | {lines:,} | {SHORT[r['stage']]} | {r['seconds']:.2f} "
                   f"| {r['seconds_min']:.2f} | {r['peak_rss_mib']:.0f} | {rate_text(r['rows_per_second'])} {r['rate_unit']}/s "
                   f"| {ratio} | {max(r['other_cpu_seconds']):.1f} | {'yes' if r['right'] else 'NO: ' + '; '.join(r['problems'])} |")
    big = doc["data"]["rows"]
    out += ["", f"Where the time goes at {rows_label(big)} (median seconds of each part; exclusive: a part nested in "
                f"another counts once; `other` is the stage's own code between the measured calls):", ""]
    for r in rows:
        if r["rows"] != big:
            continue
        total = r["seconds"]
        parts = ", ".join(f"{k} {v:.2f} s ({v / total:.0%})" for k, v in r["parts_median"].items() if v >= 0.005)
        out.append(f"- **{r['stage']}** ({total:.2f} s): {parts}")
    if doc.get("baseline"):
        b = doc["baseline"]
        out += ["", f"Baseline, made once per dataset and not in the table: `create_baseline` from "
                    f"{doc['truths'][str(big)]['train_rows']:,} labelled training rows took {b['seconds']:.2f} s, "
                    f"peak RSS {b['peak_rss_mib']:.0f} MiB."]
    return "\n".join(out)


def render(doc: dict) -> str:
    host, started = doc["machine"], datetime.fromisoformat(doc["started"])
    src = doc["driftline_source"]
    head = (f"{started:%Y-%m-%d %H:%M} UTC, {host['cpu']}, {host['cores']} cores, {host['memory_gib']} GiB, "
            f"{host['os']}; driftline {doc['versions']['driftline']} at {(src['commit'] or '?')[:7]}"
            + (f" (uncommitted changes under include/: {', '.join(src['uncommitted'])})" if src["uncommitted"] else "")
            + f", Python {host['python_driftline']}, pyarrow {doc['versions']['pyarrow']}, "
              f"pandas {doc['versions']['pandas']}, numpy {doc['versions']['numpy']}, "
              f"scikit-learn {doc['versions']['scikit-learn']}")
    cmd = f"`{doc['command']}`"
    return "\n".join([head, "", cmd, "", markdown(doc)]
                     + (["", "Errors:", "", *[f"- {k}: {v}" for k, v in doc["errors"].items()]] if doc["errors"] else []))


def versions() -> dict:
    from importlib.metadata import version

    return {p: version(p) for p in ("driftline", "pyarrow", "pandas", "numpy", "scikit-learn")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=parse_rows, default=parse_rows("1M"), help="predictions in the interval (default 1M)")
    ap.add_argument("--small-rows", default="100k", help="a second, smaller dataset for the scaling; 0 to skip (default 100k)")
    ap.add_argument("--stages", default=",".join(STAGES), help="comma-separated, from %(default)s")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each stage; median seconds and max peak RSS reported (default 3)")
    ap.add_argument("--cprofile", action="store_true",
                    help="one more run of each stage at --rows under cProfile (slower; not in the table), top functions in the JSON")
    ap.add_argument("--data-root", type=Path, default=Path(os.environ.get("DRIFTLINE_BENCH_DATA", HERE / "data")),
                    help="datasets go to <root>/quality-<rows>/ (default: DRIFTLINE_BENCH_DATA or %(default)s)")
    ap.add_argument("--regenerate", action="store_true", help="make the data again even if it is there")
    ap.add_argument("--results", type=Path, default=HERE / "results", help="where results go (default: %(default)s)")
    a = ap.parse_args(argv)
    stages = [s.strip() for s in a.stages.split(",") if s.strip()]
    if bad := [s for s in stages if s not in STAGES]:
        ap.error(f"--stages: unknown {', '.join(bad)}; choose from {', '.join(STAGES)}")
    if a.repeat < 1:
        ap.error("--repeat: at least 1")
    small = parse_rows(a.small_rows) if a.small_rows not in ("", "0") else None
    sizes = [s for s in dict.fromkeys([small, a.rows]) if s]
    started = datetime.now(timezone.utc)
    t_start = time.perf_counter()

    folders, truths, errors, baseline = {}, {}, {}, None
    for n in sizes:
        folder, truth, fresh = ensure_data(n, a.data_root, a.regenerate)
        folders[n], truths[n] = folder, truth
        if fresh or not (folder / "store" / "baselines" / MODEL).exists():
            try:
                b = run_stage("baseline", folder, f"baseline-{rows_label(n)}")
            except BenchError as exc:
                raise BenchError(f"creating the baseline of {folder} failed: {exc}") from None
            log(f"baseline {rows_label(n)}: {b['seconds']:.2f}s, peak {peak_mib(b):.0f} MiB")
            if n == a.rows:
                baseline = b
        # merge and quality read the arrivals ingestion writes: without ingest in this run, an earlier one must have left them
        if "ingest" not in stages and not (folder / "store" / "labels" / MODEL / "arrivals").exists():
            raise BenchError(f"{folder}: no ingested labels yet; include the ingest stage once (--stages ingest,...)")
        warm_page_cache(folder)

    runs: dict[tuple[int, str], list[dict]] = {(n, s): [] for n in sizes for s in stages}
    for i in range(a.repeat):
        for n in sizes:
            for stage in stages:
                if f"{stage}@{rows_label(n)}" in errors:
                    continue
                try:
                    r = run_stage(stage, folders[n], f"{stage}-{rows_label(n)}-{i + 1}")
                except BenchError as exc:
                    errors[f"{stage}@{rows_label(n)}"] = str(exc)
                    log(f"{stage} {rows_label(n)}: FAILED: {exc}")
                    continue
                runs[n, stage].append(r)
                bad = check(stage, r["answer"], truths[n])
                log(f"{stage} {rows_label(n)} run {i + 1}/{a.repeat}: {r['seconds']:.2f}s, peak "
                    f"{peak_mib(r):.0f} MiB, other jobs {r['harness']['other_cpu_seconds']:.1f} CPU-s"
                    + (f"; WRONG: {'; '.join(bad)}" if bad else ""))

    profiles = {}
    if a.cprofile:
        for stage in stages:
            dump = folders[a.rows] / "work" / f"{stage}-{rows_label(a.rows)}.pstats"
            try:
                r = run_stage(stage, folders[a.rows], f"{stage}-{rows_label(a.rows)}-cprofile", cprofile=dump)
            except BenchError as exc:
                errors[f"cprofile {stage}"] = str(exc)
                continue
            profiles[stage] = {"seconds_under_cprofile": round(r["seconds"], 3), **top_functions(dump)}
            log(f"{stage} {rows_label(a.rows)} under cProfile: {r['seconds']:.2f}s (profile in {dump})")

    table = [summarise(s, truths[n], runs[n, s]) for n in sizes for s in stages if runs[n, s]]
    doc = {"benchmark": "quality", "started": started.isoformat(timespec="seconds"),
           "command": " ".join(["python", *sys.argv] if argv is None else ["bench_quality.py", *argv]),
           "machine": harness.machine(), "versions": versions(), "driftline_source": harness.driftline_source(),
           "data": {"rows": a.rows, "small_rows": small, "root": str(a.data_root), "model": MODEL_DOC},
           "truths": {str(n): t for n, t in truths.items()}, "repeat": a.repeat, "stages": stages,
           "what": {s: WHAT[s] for s in [*stages, "baseline"]},
           "table": table, "baseline": None if baseline is None else
           {"seconds": baseline["seconds"], "peak_rss_mib": peak_mib(baseline), "parts": baseline["parts"]},
           "cprofile": profiles, "errors": errors, "total_seconds": round(time.perf_counter() - t_start, 1),
           "raw": {f"{s}@{rows_label(n)}": rs for (n, s), rs in runs.items()}}
    if doc["baseline"] is None:  # reused data: keep the baseline's numbers from the run that made it
        old = a.results / f"quality-{rows_label(a.rows)}.json"
        if old.exists():
            prev = json.loads(old.read_text())
            if prev.get("truths", {}).get(str(a.rows), {}).get("generator") == truths[a.rows]["generator"]:
                doc["baseline"] = prev.get("baseline")
    stem = write_results(a.results / f"quality-{rows_label(a.rows)}", doc, render(doc))
    print(f"\nwritten: {stem}.json, {stem}.md ({doc['total_seconds']:.0f} s in all)", file=sys.stderr)
    return 1 if errors or not all(r["right"] for r in table) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"bench_quality: {exc}", file=sys.stderr)
        sys.exit(2)
