"""Airflow glue shared by driftline's DAG files and plugins.

Everything Airflow-specific that the library must not know lives here: where the store is,
which Airflow connection reaches it, how library errors become task failures, and how a
broken model file becomes an import error without taking the other models down.

Settings, all from the environment (docker-compose and the README set them):

``DRIFTLINE_STORE_URL``      artifact store root (default: ``file://<project>/data/store``)
``DRIFTLINE_STORE_CONN_ID``  Airflow ``aws`` connection for ``s3://`` URLs (default ``aws_default``);
                             MinIO: put ``{"endpoint_url": "http://minio:9000"}`` in its extra
``DRIFTLINE_MONITORS_DIR``   folder of model YAML files (default: ``<project>/include/monitors``)
(defaults: driftline.config.default_store_url / default_monitors_dir, shared with the CLI)
"""
from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

from airflow.sdk import DAG

from driftline.config import ConfigError, LoadedConfigs, default_monitors_dir, default_store_url, load_all, project_dir

PROJECT_DIR = project_dir()
log = logging.getLogger("driftline")


def store_conn_id() -> str:
    return os.environ.get("DRIFTLINE_STORE_CONN_ID", "aws_default")


def resolver(conn_id: str | None = None):
    """url -> (fsspec filesystem, path), with s3:// credentials from an Airflow connection."""
    conn = conn_id or store_conn_id()

    def resolve(url: str):
        import fsspec

        if "://" not in url or url.startswith("file://"):
            return fsspec.core.url_to_fs(url)
        from airflow.sdk import ObjectStoragePath

        path = ObjectStoragePath(url, conn_id=conn)
        return path.fs, path.path

    return resolve


def get_store():
    from driftline.store import Store

    return Store(default_store_url(), resolver=resolver())


def load_configs() -> LoadedConfigs:
    return load_all(default_monitors_dir())


@contextlib.contextmanager
def fail_clearly() -> Iterator[None]:
    """Errors a retry cannot fix (bad config, no baseline, unreadable training data, too few
    labels to retrain on, an unknown model version, another run holding the interval) fail the
    task at once with their message; store errors are left to the task's retries."""
    from airflow.sdk.exceptions import AirflowFailException

    from driftline.stages.retrain import RetrainError
    from driftline.store.baselines import BaselineError
    from driftline.store.lease import LeaseError
    from driftline.store.models import ModelError
    from driftline.store.registry import RegistryError

    try:
        yield
    except (ConfigError, BaselineError, ModelError, RetrainError, RegistryError, LeaseError) as exc:
        log.error("%s", exc)
        raise AirflowFailException(str(exc)) from None


@contextlib.contextmanager
def stage(cfg, task_id: str, start, inputs: list[str] | tuple = ()) -> Iterator[None]:
    """A monitoring stage's body: errors a retry cannot fix fail the task at once
    (``fail_clearly``); any failure is recorded in the store for the run's ``check_run`` task
    (``failures/<task>.json``: the error, the inputs it was reading, the next step) and logged
    as a summary block; a success clears an earlier try's record. A run refused the
    interval's lease (another run is evaluating it) records nothing there: the folder is the
    other run's, and its check_run would take the record for a failure of its own."""
    from driftline.pipeline.check import clear_stage_failure, record_stage_failure
    from driftline.store.lease import LeaseError

    store = get_store()
    with fail_clearly():
        try:
            yield
        except BaseException as exc:
            hint = _next_step_for(exc)
            try:
                if not isinstance(exc, LeaseError):
                    record_stage_failure(store, cfg.name, start, task_id, exc, inputs, hint)
            except Exception as rec_exc:  # noqa: BLE001 - the store may be what failed; the task fails anyway
                log.warning("could not record the failure of %s in the store: %s", task_id, rec_exc)
            log_summary(f"{task_id} {cfg.name}: FAILED", [f"{type(exc).__name__}: {exc}"[:1000],
                                                          *(f"input: {i}" for i in inputs)],
                        next_step=hint, report=report_url(cfg.name, start))
            raise
    try:
        clear_stage_failure(store, cfg.name, start, task_id)
    except Exception as exc:  # noqa: BLE001 - a stale record is named by check_run, not worth a failure
        log.warning("could not clear an earlier failure record of %s: %s", task_id, exc)


def _next_step_for(exc: BaseException) -> str:
    from driftline.store import StoreError
    from driftline.store.baselines import BaselineError
    from driftline.store.lease import LeaseHeld, LeaseLost

    if isinstance(exc, LeaseHeld):
        return ("another run is evaluating this interval (named above): let it finish, or end it; then clear this "
                "run's ingest task if its verdict is still wanted")
    if isinstance(exc, LeaseLost):
        return "another run took this interval over and cleared this run's artifacts: clear this run from ingest"
    if isinstance(exc, ConfigError):
        return "fix the model file the error names (`driftline validate`), then clear the task"
    if isinstance(exc, BaselineError):
        return "build or restore the baseline the error names (`driftline baseline`), then clear the task"
    if isinstance(exc, StoreError):
        return "the store could not be reached or read: check the store's connection and the file named; retries follow"
    return "the traceback above names the input that caused it; fix that input or the code, then clear the task"


def log_summary(title: str, lines: list[str], artifacts: str | None = None, next_step: str | None = None,
                report: str | None = None) -> None:
    """Log the task's summary block (driftline.pipeline.summary.summary_block): what it checked and
    found, where the artifacts are, the report's link and the next step."""
    from driftline.pipeline.summary import summary_block

    log.info("\n%s", summary_block(title, lines, artifacts, next_step=next_step, report=report))


def report_url(model: str, start) -> str:
    """The run's report on the driftline page (``[api] base_url`` + /driftline/...)."""
    from driftline_airflow.links import driftline_url, run_report_path

    return driftline_url(run_report_path(model, start))


def report_url_of(model: str):
    """interval key -> that interval's report URL (for alert messages)."""
    from driftline.store import parse_interval_key

    return lambda key: report_url(model, parse_interval_key(key))


class ConfigErrorsDag(DAG):
    """A DAG that never loads: its validation raises the model files' errors.

    The DagBag records an import error for the factory file carrying this message (naming
    each broken YAML file, field and problem) and still loads every other DAG of the file,
    so one broken model file does not take the other models down.
    """

    def __init__(self, errors: dict[str, ConfigError], dag_id: str = "driftline_config_errors", **kwargs):
        self._config_errors = errors
        super().__init__(dag_id=dag_id, schedule=None, **kwargs)

    def validate(self) -> None:  # noqa: D102
        raise ModelFilesError(
            f"{len(self._config_errors)} driftline model file(s) could not be loaded; their DAGs are missing:\n"
            + "\n".join(str(e) for e in self._config_errors.values()))


def publish_model_dags(namespace: dict, build, dag_id_prefix: str, *, report_file_errors: bool) -> None:
    """Build one DAG per loaded model file into a DAG file's globals, as ``<prefix><model>``. A
    model whose DAG Airflow rejects does not hide the others: it becomes an import error of the
    file naming the model file (``report_file_errors``: the broken model files too -- one DAG file
    reports them, so each shows once)."""
    loaded = load_configs()
    errors = dict(loaded.errors) if report_file_errors else {}
    for name, cfg in loaded.models.items():
        try:
            dag = build(cfg)
            if dag is None:
                continue
            dag.validate()
        except Exception as exc:  # noqa: BLE001 - a model Airflow rejects must not hide the others
            errors[cfg.source] = ConfigError(cfg.source, [f"Airflow rejects the DAG {dag_id_prefix}{name} built "
                                                          f"from it: {exc}"])
        else:
            namespace[f"{dag_id_prefix}{name}"] = dag
    if errors:
        namespace["config_errors"] = ConfigErrorsDag(errors, dag_id=f"{dag_id_prefix}config_errors"
                                                     if not report_file_errors else "driftline_config_errors")


class ModelFilesError(ValueError):
    """One or more model YAML files are invalid (the message names each file and field)."""


def retraining_asset(model: str):
    """The Asset a monitoring run updates when the model's retraining policy holds; the
    model's retraining DAG is scheduled on it."""
    from airflow.sdk import Asset

    return Asset(name=f"driftline_retrain_{model}", uri=f"driftline://{model}/retraining")


def alerts_asset(model: str):
    """The Asset a monitoring run updates when alert incidents opened in it; the model's
    feedback DAG is scheduled on it and asks a person about each."""
    from airflow.sdk import Asset

    return Asset(name=f"driftline_alerts_{model}", uri=f"driftline://{model}/alerts")


def promoted_asset(model: str):
    """Updated when a retrained model is promoted: a deployment DAG can be scheduled on it."""
    from airflow.sdk import Asset

    return Asset(name=f"driftline_promoted_{model}", uri=f"driftline://{model}/promoted")


def alert_sender(context=None):
    """route, message -> delivered through Airflow's notifiers (driftline_airflow.notify)."""
    from driftline_airflow.notify import send

    return lambda route, message: send(route, message, context)


@contextlib.contextmanager
def logged_delivery_failure(title: str, artifacts: str | None = None) -> Iterator[None]:
    """A route that refused a message fails the task (its retry sends only what is missing),
    after the summary block is in the log."""
    from driftline.stages.alerts import AlertDeliveryError

    try:
        yield
    except AlertDeliveryError as exc:
        log_summary(title + ": DELIVERY FAILED", getattr(exc, "summary_lines", [str(exc)]), artifacts,
                    next_step="a route refused: check its Airflow connection (the error above names it); the retry, "
                              "or clearing this task, sends only what is missing")
        raise
