"""Running a DAG with Airflow's human-in-the-loop operators under dag.test(), answered from
outside as the API server and the scheduler would (shared by the approval and feedback tests).

dag.test() runs in the main thread: the task runner installs signal handlers, which Python allows
only there. The answer comes from a helper thread; a watchdog thread interrupts the main thread
with SIGUSR1 (not SIGALRM: Airflow's DagBag import timeout, run inside dag.test(), takes over
SIGALRM and its timer) after the time limit, or at once when the responder fails while the run
waits for input, then every second: a signal landing inside a task only fails that task (the
task runner catches BaseException); a later one ends dag.test().
"""
from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable

import pytest


class Hang(BaseException):
    """Raised in the main thread by the watchdog (a BaseException: dag.test() catches Exception)."""


def run_ids(dag_id: str) -> set[str]:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return set(session.scalars(select(DagRun.run_id).where(DagRun.dag_id == dag_id)))


def fail_stuck_runs(dag_id: str, known: set[str]) -> None:
    """After an aborted run: fail what it left running, so no later test waits on it."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance as TI
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, State, TaskInstanceState
    from sqlalchemy import update

    with create_session() as session:
        session.execute(update(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id.not_in(known),
                                             DagRun.state == DagRunState.RUNNING).values(state=DagRunState.FAILED))
        session.execute(update(TI).where(TI.dag_id == dag_id, TI.run_id.not_in(known),
                                         TI.state.not_in(list(State.finished)) | TI.state.is_(None))
                        .values(state=TaskInstanceState.FAILED))


def run_with_responder(dag, run_conf: dict, respond: Callable[[set, threading.Event, dict], None] | None,
                       *, limit: float, abort_on_error: Callable[[dict], bool] = lambda box: True):
    """dag.test(run_conf) in this (the main) thread; in a helper thread respond(known run ids,
    done event, box) -- it writes what it saw into box. Returns (dag run, box). A responder
    error is raised here; it aborts the run at once when abort_on_error(box) (e.g. the request
    still waits for input), else the run goes on to its end by itself."""
    assert threading.current_thread() is threading.main_thread()
    known = run_ids(dag.dag_id)
    box: dict = {}
    done, failed = threading.Event(), threading.Event()
    main = threading.main_thread().ident

    def responder():
        try:
            respond(known, done, box)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            box["error"] = exc
            if abort_on_error(box):
                failed.set()

    def watchdog():
        until = time.monotonic() + limit
        while not done.is_set() and not failed.is_set() and time.monotonic() < until:
            done.wait(0.2)
        while not done.is_set():
            signal.pthread_kill(main, signal.SIGUSR1)
            done.wait(1.0)

    def abort(signum, frame):
        if not done.is_set():
            raise Hang()

    previous = signal.signal(signal.SIGUSR1, abort)
    threads = [threading.Thread(target=watchdog, name="hitl-watchdog", daemon=True)]
    if respond:
        threads.append(threading.Thread(target=responder, name="hitl-responder", daemon=True))
    for t in threads:
        t.start()
    try:
        dr = dag.test(run_conf=run_conf)
    except Hang:
        done.set()
        fail_stuck_runs(dag.dag_id, known)
        for t in threads:
            t.join(timeout=30)
        if "error" in box:
            raise box["error"]
        pytest.fail(f"{dag.dag_id} did not finish within {limit:.0f}s (responder saw: {box})")
    finally:
        done.set()
        for t in threads:
            t.join(timeout=30)
        signal.signal(signal.SIGUSR1, previous)
    assert not any(t.is_alive() for t in threads), "a helper thread hangs"
    if "error" in box:
        raise box["error"]
    return dr, box


def answer(dag_id: str, run_id: str, task_id: str, option: str, username: str, *, map_index: int = -1,
           params_input: dict | None = None) -> dict:
    """The core API's PATCH /dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/{map_index}/
    hitlDetails handler, with the user SimpleAuthManager would resolve, in a session committed as
    the route's session dependency commits it."""
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.api_fastapi.core_api.datamodels.hitl import UpdateHITLDetailPayload
    from airflow.api_fastapi.core_api.routes.public.hitl import update_hitl_detail
    from airflow.utils.session import create_session

    payload = UpdateHITLDetailPayload(chosen_options=[option], **({"params_input": params_input}
                                                                   if params_input is not None else {}))
    with create_session() as session:
        return update_hitl_detail(dag_id=dag_id, dag_run_id=run_id, task_id=task_id, map_index=map_index,
                                  update_hitl_detail_payload=payload,
                                  user=SimpleAuthManagerUser(username=username, role="admin"),
                                  session=session).model_dump()
