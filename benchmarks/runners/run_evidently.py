"""Evidently's DataDriftPreset on the benchmark data, default settings.

    .venvs/evidently/bin/python runners/run_evidently.py --reference R.parquet --current C.parquet --features a,b,...

Timed: reading both Parquet files (feature columns only) and ``Report([DataDriftPreset()]).run(...)``
plus turning the snapshot into a dict. Evidently picks each column's method itself (that is the
point of running it with defaults). The only non-default is ``include_tests=True`` on the Report:
the per-column "Value Drift" test status is where Evidently says drifted / not drifted (it is the
``drift_detected`` of its own column drift calculation); without tests the snapshot holds only scores.
"""
from __future__ import annotations

import argparse

import pandas as pd
import pyarrow.parquet  # noqa: F401 - pandas' Parquet engine, imported before the clock like the tool
from evidently import Report
from evidently import __version__ as evidently_version
from evidently.presets import DataDriftPreset
from measure import Clock, emit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reference", required=True)
    ap.add_argument("--current", required=True)
    ap.add_argument("--features", required=True, help="comma-separated feature columns")
    a = ap.parse_args()
    features = a.features.split(",")

    clock = Clock()
    clock.start()
    reference = pd.read_parquet(a.reference, columns=features)
    current = pd.read_parquet(a.current, columns=features)
    clock.lap("read")
    snapshot = Report([DataDriftPreset()], include_tests=True).run(current_data=current, reference_data=reference)
    result = snapshot.dict()
    clock.lap("report")
    seconds = sum(clock.laps.values())

    columns = {}
    for m in result["metrics"]:
        cfg = m["config"]
        if cfg.get("type", "").endswith("ValueDrift"):
            columns[cfg["column"]] = {"method": cfg.get("method"), "threshold": cfg.get("threshold"),
                                      "score": m["value"], "drifted": None}
    for t in result["tests"]:
        params = t["metric_config"]["params"]
        if params.get("type", "").endswith("ValueDrift"):
            columns[params["column"]]["drifted"] = t["status"] == "FAIL"
    emit(clock.report("evidently", seconds, [c for c, v in columns.items() if v["drifted"]],
                      version=evidently_version, pandas=pd.__version__, columns=columns,
                      rows=[len(reference), len(current)]))


if __name__ == "__main__":
    main()
