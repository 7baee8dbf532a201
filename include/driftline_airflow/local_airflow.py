"""Airflow's own components on this machine, and its REST API, for the quickstart and the tests.

The quickstart's runs must be runs a user would have made: created by Airflow's scheduler
from a backfill (the same logical dates, run ids and data intervals as a UI or CLI backfill),
executed by its executor with their task logs where the UI's log view reads them. So instead
of ``dag.test()``, :class:`LocalAirflow` starts the components ``airflow standalone`` starts
(api-server, scheduler, dag-processor, triggerer) on the project's ``AIRFLOW_HOME`` -- or uses
the ones already running there -- and drives them through the public REST API
(``/api/v2``), exactly as the UI does.

Authentication is Airflow's simple auth manager, as in ``airflow standalone``: its users are
``[core] simple_auth_manager_users`` and their passwords are read from the file it keeps
(``simple_auth_manager_passwords_file``, by default generated in ``AIRFLOW_HOME``).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlencode
from urllib.request import Request, urlopen

#: The body of the UI's Backfill dialog as it is sent when only the dates are filled in
#: (airflow-core's RunBackfillForm.tsx): "Missing Runs", one run at a time, forwards.
UI_BACKFILL_DEFAULTS = {"max_active_runs": 1, "reprocess_behavior": "none", "run_backwards": False}
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


class AirflowError(RuntimeError):
    """A component did not start, or the REST API refused a call (the message says which)."""


class LocalAirflow:
    """Start (or reuse) Airflow's components for ``home`` and call its REST API.

    ``port``: the API server's port (the UI and the tasks' Execution API). ``env``: extra
    environment for the components. ``user``: a user of the simple auth manager."""

    def __init__(self, home: Path, port: int = 8080, env: dict[str, str] | None = None, user: str = "admin",
                 log_dir: Path | None = None):
        self.home, self.port, self.user = Path(home), port, user
        self.base = f"http://127.0.0.1:{port}"
        self.log_dir = Path(log_dir or self.home / "logs" / "components")
        self.env = {**os.environ, "AIRFLOW_HOME": str(self.home),
                    "AIRFLOW__API__PORT": str(port),
                    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
                    **(env or {})}
        self.env.setdefault("AIRFLOW__API__BASE_URL", f"http://localhost:{port}")
        self.procs: list[subprocess.Popen] = []
        self.started = False
        self._token: str | None = None

    # -- components --------------------------------------------------------------------
    def healthy(self) -> dict | None:
        try:
            with urlopen(f"{self.base}/api/v2/monitor/health", timeout=3) as r:
                return json.loads(r.read())
        except (OSError, ValueError):
            return None

    def start(self, timeout: float = 240) -> LocalAirflow:
        """Start the components unless an API server with a healthy scheduler already answers
        on the port (``airflow standalone`` running for the same project): then use it."""
        health = self.healthy()
        if health and (health.get("scheduler") or {}).get("status") == "healthy":
            return self
        if health:
            raise AirflowError(f"an Airflow API server answers on port {self.port} but its scheduler is not "
                               f"healthy ({health}): start its scheduler, or stop it and run again")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for name in COMPONENTS:
            args = [name, "-H", "127.0.0.1", "-p", str(self.port), "-w", "1"] if name == "api-server" else [name]
            out = (self.log_dir / f"{name}.log").open("ab")
            self.procs.append(subprocess.Popen([sys.executable, "-m", "airflow", *args], env=self.env, stdout=out,
                                               stderr=subprocess.STDOUT, start_new_session=True))
        self.started = True
        deadline = time.monotonic() + timeout
        while True:
            health = self.healthy() or {}
            if all((health.get(c) or {}).get("status") == "healthy" for c in ("scheduler", "dag_processor",
                                                                                "triggerer", "metadatabase")):
                return self
            dead = [n for n, p in zip(COMPONENTS, self.procs) if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                self.stop()
                tails = "\n".join(f"--- {n}.log\n" + (self.log_dir / f"{n}.log").read_text(errors="replace")[-2000:]
                                  for n in (dead or COMPONENTS))
                raise AirflowError(f"Airflow did not come up on port {self.port} "
                                   f"({'exited: ' + ', '.join(dead) if dead else f'not healthy after {timeout:.0f} s'}; "
                                   f"logs in {self.log_dir}):\n{tails}")
            time.sleep(1)

    def stop(self) -> None:
        """Stop what :meth:`start` started (nothing when it reused running components)."""
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        self.procs = []

    def __enter__(self) -> LocalAirflow:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- REST API ----------------------------------------------------------------------
    def password(self) -> str:
        """The user's password from the simple auth manager's passwords file."""
        configured = self.env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")
        path = Path(configured) if configured else self.home / "simple_auth_manager_passwords.json.generated"
        try:
            return json.loads(path.read_text())[self.user]
        except (OSError, ValueError, KeyError) as exc:
            raise AirflowError(f"no password for Airflow user {self.user!r} in {path} ({exc})") from exc

    def token(self) -> str:
        if self._token is None:
            body = json.dumps({"username": self.user, "password": self.password()}).encode()
            req = Request(f"{self.base}/auth/token", data=body, method="POST",
                          headers={"Content-Type": "application/json"})
            with urlopen(req, timeout=30) as r:
                self._token = json.loads(r.read())["access_token"]
        return self._token

    def api(self, method: str, path: str, body: dict | None = None, query: dict | None = None,
            busy_timeout: float = 120) -> dict:
        """One REST call. A 503 (on SQLite, Airflow answers "Database is locked" while the
        scheduler writes) is tried again for up to ``busy_timeout`` seconds."""
        url = f"{self.base}/api/v2/{path.lstrip('/')}" + (f"?{urlencode(query, doseq=True)}" if query else "")
        deadline = time.monotonic() + busy_timeout
        while True:
            req = Request(url, method=method, data=json.dumps(body).encode() if body is not None else None,
                          headers={"Authorization": f"Bearer {self.token()}", "Content-Type": "application/json"})
            try:
                with urlopen(req, timeout=60) as r:
                    text = r.read()
                    return json.loads(text) if text else {}
            except HTTPError as exc:
                detail = exc.read().decode(errors="replace")[:2000]
                if exc.code == 503 and time.monotonic() < deadline:
                    time.sleep(2)
                    continue
                raise AirflowError(f"{method} {url}: HTTP {exc.code}: {detail}") from exc
            except URLError as exc:
                raise AirflowError(f"{method} {url}: {exc.reason}") from exc

    def unpause(self, dag_id: str) -> None:
        self.api("PATCH", f"dags/{quote(dag_id)}", {"is_paused": False})

    def wait_for_dag(self, dag_id: str, timeout: float = 180) -> dict:
        """The DAG as the API serves it, once the dag-processor has parsed it."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.api("GET", f"dags/{quote(dag_id)}")
            except AirflowError as exc:
                if "HTTP 404" not in str(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(2)

    def create_backfill(self, dag_id: str, from_date: str, to_date: str, **options) -> dict:
        """``POST /api/v2/backfills`` with the UI dialog's defaults (and the DAG's Params'
        defaults as the run conf, as the dialog's form sends them); ``options`` override."""
        dag = self.api("GET", f"dags/{quote(dag_id)}/details")
        conf = {k: (v.get("value") if isinstance(v, dict) else v) for k, v in (dag.get("params") or {}).items()}
        body = {"dag_id": dag_id, "from_date": from_date, "to_date": to_date, **UI_BACKFILL_DEFAULTS,
                "dag_run_conf": conf, **options}
        return self.api("POST", "backfills", body)

    def wait_backfill(self, backfill_id: int, timeout: float = 1800, progress=None) -> dict:
        """Wait until the backfill has completed; returns it."""
        deadline = time.monotonic() + timeout
        seen: dict[str, str] = {}
        while True:
            b = self.api("GET", f"backfills/{backfill_id}")
            if progress is not None:
                for run in self.dag_runs(b["dag_id"], run_type="backfill"):
                    key = run["dag_run_id"]
                    if run["state"] in ("success", "failed") and seen.get(key) != run["state"]:
                        seen[key] = run["state"]
                        progress(run)
            if b.get("completed_at"):
                return b
            if time.monotonic() > deadline:
                raise AirflowError(f"backfill {backfill_id} of {b['dag_id']} not complete after {timeout:.0f} s")
            time.sleep(3)

    def dag_runs(self, dag_id: str, run_type: str | None = None) -> list[dict]:
        query = {"order_by": "logical_date", "limit": 1000}
        if run_type:
            query["run_type"] = run_type
        return self.api("GET", f"dags/{quote(dag_id)}/dagRuns", query=query)["dag_runs"]

    def wait_idle(self, dag_ids: Iterable[str], timeout: float = 1800, settle: float = 10) -> None:
        """Wait until none of the DAGs has a queued or running run for ``settle`` seconds (an
        Asset event may queue a run a moment after the run that emitted it ended). Runs
        waiting on a person (human-in-the-loop tasks awaiting input) count as idle."""
        deadline = time.monotonic() + timeout
        quiet_since = None
        while True:
            busy = []
            for dag_id in dag_ids:
                for run in self.dag_runs(dag_id):
                    if run["state"] in ("queued", "running") and not self._waits_on_a_person(dag_id, run):
                        busy.append(f"{dag_id}/{run['dag_run_id']}")
            now = time.monotonic()
            if busy:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = now
            elif now - quiet_since >= settle:
                return
            if now > deadline:
                raise AirflowError(f"still running after {timeout:.0f} s: {', '.join(busy)}")
            time.sleep(3)

    def _waits_on_a_person(self, dag_id: str, run: dict) -> bool:
        states = {t["state"] for t in self.task_instances(dag_id, run["dag_run_id"])}
        working = {"queued", "running", "scheduled", "up_for_reschedule", "up_for_retry", "restarting"}
        return "awaiting_input" in states and not states & working

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.api("GET", f"dags/{quote(dag_id)}/dagRuns/{quote(run_id)}/taskInstances",
                        query={"limit": 1000})["task_instances"]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1, map_index: int = -1) -> str:
        """The task's log as the UI's log view reads it (the events' text, one a line)."""
        out = self.api("GET", f"dags/{quote(dag_id)}/dagRuns/{quote(run_id)}/taskInstances/{quote(task_id)}/logs/"
                              f"{try_number}", query={"map_index": map_index})
        content = out.get("content") or []
        if isinstance(content, str):
            return content
        return "\n".join(str(x.get("event", "")) if isinstance(x, dict) else str(x) for x in content)
