"""Extra links on the monitoring DAG's tasks: the run's report and the model's history, served
by the driftline plugin (``plugins/driftline_plugin.py``) at ``<api base_url>/driftline/``.

In Airflow 3 the worker computes an operator link when the task ends (whatever its state) and
stores it as an XCom (``_link_<class>``); the UI reads it back, so the URL must be complete
here: it is built from ``[api] base_url`` (default ``/``, a path on the UI's own host).
"""
from __future__ import annotations

from urllib.parse import quote

import attrs
from airflow.sdk import BaseOperatorLink

from driftline.store import as_utc, interval_key

#: Where the plugin mounts the driftline app (also the external view's href).
URL_PREFIX = "/driftline"


def driftline_url(path: str = "") -> str:
    """``<[api] base_url>/driftline/<path>``; a root-relative URL when no base_url is set."""
    try:
        from airflow.configuration import conf

        base = conf.get("api", "base_url", fallback="") or ""
    except Exception:  # noqa: BLE001 - a link is worth less than the task that computes it
        base = ""
    return base.rstrip("/") + URL_PREFIX + "/" + path.lstrip("/")


def run_report_path(model: str, start) -> str:
    return f"models/{quote(model, safe='')}/runs/{interval_key(as_utc(start))}/report.html"


@attrs.define
class RunReportLink(BaseOperatorLink):
    """"driftline report": the HTML report of the run's interval."""

    model: str
    name = "driftline report"

    def get_link(self, operator, *, ti_key) -> str:
        start = ti_key.get_template_context()["data_interval_start"]
        return driftline_url(run_report_path(self.model, start))


@attrs.define
class HistoryLink(BaseOperatorLink):
    """"driftline history": the model's history view (its whole range)."""

    model: str
    name = "driftline history"

    def get_link(self, operator, *, ti_key) -> str:
        return driftline_url(f"models/{quote(self.model, safe='')}/history")


def add_links(dag, model: str) -> None:
    """Add both links to every (unmapped) task of a monitoring DAG, after the task's own."""
    for task in dag.tasks:
        if not getattr(task, "is_mapped", False):
            task.operator_extra_links = [*task.operator_extra_links, RunReportLink(model), HistoryLink(model)]
