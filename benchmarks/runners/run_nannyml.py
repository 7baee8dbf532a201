"""NannyML's UnivariateDriftCalculator on the benchmark data, in two stages like a stored baseline.

    .venvs/nannyml/bin/python runners/run_nannyml.py --stage fit --reference R.parquet --calculator C.pkl --features a,b,...
    .venvs/nannyml/bin/python runners/run_nannyml.py --stage calculate --current C.parquet --calculator C.pkl --features a,b,...

A fitted calculator is NannyML's stored baseline: ``fit`` reads the reference set, fits and stores
the calculator with NannyML's own ``FilesystemStore``; ``calculate`` loads it, reads the current
set and calculates, in a fresh process so its peak memory is the drift step's alone.

Default methods (jensen_shannon for continuous and categorical columns) and default thresholds:
mean + 3 standard deviations of the score over the reference chunks. Fit uses the default
chunker (10 chunks of the reference), which is what gives those thresholds a spread to measure;
fitted on one reference chunk the spread is 0, every threshold is 0.0 and every column alerts.
The current set is analysed as one chunk: the fitted calculator's chunker is swapped for
``CountBasedChunker(chunk_number=1)`` before ``calculate``. Drifted = the column's alert is True.
"""
from __future__ import annotations

import argparse
import os
import warnings

import nannyml as nml
import pandas as pd
import pyarrow.parquet  # noqa: F401 - pandas' Parquet engine, imported before the clock like the tool
from measure import Clock, emit
from nannyml.chunk import CountBasedChunker
from nannyml.io.store import FilesystemStore


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stage", choices=["fit", "calculate"], required=True)
    ap.add_argument("--reference")
    ap.add_argument("--current")
    ap.add_argument("--calculator", required=True, help="where the fitted calculator is stored (pickle)")
    ap.add_argument("--features", required=True, help="comma-separated feature columns")
    a = ap.parse_args()
    features = a.features.split(",")
    store = FilesystemStore(root_path=os.path.dirname(os.path.abspath(a.calculator)))
    name = os.path.basename(a.calculator)

    clock = Clock()
    if a.stage == "fit":
        clock.start()
        reference = pd.read_parquet(a.reference, columns=features)
        clock.lap("read")
        calc = nml.UnivariateDriftCalculator(column_names=features).fit(reference)
        clock.lap("fit")
        store.store(calc, filename=name)
        clock.lap("store")
        emit(clock.report("nannyml", sum(clock.laps.values()), [], stage="fit", version=nml.__version__,
                          pandas=pd.__version__, rows=len(reference)))
        return

    clock.start()
    calc = store.load(filename=name, as_type=nml.UnivariateDriftCalculator)
    clock.lap("load")
    current = pd.read_parquet(a.current, columns=features)
    clock.lap("read")
    calc.chunker = CountBasedChunker(chunk_number=1)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The resulting number of chunks is too low")
        result = calc.calculate(current)
    table = result.filter(period="analysis").to_df()
    clock.lap("calculate")
    seconds = sum(clock.laps.values())

    columns = {}
    for col in features:
        method = "jensen_shannon"
        columns[col] = {"method": method,
                        "score": float(table[(col, method, "value")].iloc[0]),
                        "threshold": float(table[(col, method, "upper_threshold")].iloc[0]),
                        "drifted": bool(table[(col, method, "alert")].iloc[0])}
    emit(clock.report("nannyml", seconds, [c for c, v in columns.items() if v["drifted"]], stage="calculate",
                      version=nml.__version__, pandas=pd.__version__, columns=columns, rows=len(current),
                      chunks=len(table)))


if __name__ == "__main__":
    main()
