"""Run a driftline DAG over data intervals in-process with ``dag.test()``.

Used by the quickstart (the demo's intervals, one run each, as a backfill would produce
them) and by the end-to-end tests. For a real deployment use Airflow's own backfill
(``airflow backfill create --dag-id driftline_monitor_<model> --from-date ... --to-date ...``
or the UI's trigger dialog): the tasks are the same, keyed by the data interval.
"""
from __future__ import annotations

from datetime import datetime, timezone

from airflow.sdk import DAG


def get_dag(dag_id: str) -> DAG:
    from airflow.dag_processing.dagbag import DagBag

    from driftline_airflow.runtime import PROJECT_DIR

    bag = DagBag(dag_folder=str(PROJECT_DIR / "dags"))
    if dag_id not in bag.dag_ids:
        errors = "\n".join(f"{k}: {v}" for k, v in bag.import_errors.items())
        raise LookupError(f"DAG {dag_id!r} not found (have {sorted(bag.dag_ids)})" + (f"\nimport errors:\n{errors}" if errors else ""))
    return bag.get_dag(dag_id)


def run_interval(dag: DAG, start: datetime, end: datetime):
    """One dag.test() run over the data interval [start, end). Returns the DagRun.

    A manual run covers the data interval that ends at its logical date, so this asks for
    the interval's end; the run's data_interval_start is then start, which keys every artifact.
    """
    dr = dag.test(logical_date=end.astimezone(timezone.utc))
    if dr.data_interval_start != start:
        raise RuntimeError(f"{dag.dag_id}: asked for the interval starting {start}, got {dr.data_interval_start}")
    return dr
