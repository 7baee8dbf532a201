"""The metrics history: one Parquet file per (model, interval, stage) under
``metrics/<model>/history/``, one row per (interval, metric, segment); a re-run replaces its
own file and nothing else."""
from __future__ import annotations

import posixpath
from datetime import datetime

import pandas as pd
import pyarrow as pa

from driftline.store import Store, interval_key

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
