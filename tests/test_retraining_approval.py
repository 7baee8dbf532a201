"""Retraining with a person in the loop: the real driftline_retrain_churn DAG under dag.test(),
with `retraining.approval.required`, on the demo's post-drift days (the challenger wins, see
tests/test_retrain.py). The run parks at `approve` (Airflow's ApprovalOperator, AWAITING_INPUT)
until a response is recorded in the metadata DB from outside, as the api-server and the
scheduler record it:

* an answer: the core REST API's handler ``update_hitl_detail`` (PATCH .../hitlDetails), called
  with a DB session and a SimpleAuthManager user, as the route would call it;
* no answer: the scheduler's ``check_awaiting_input_timeouts`` sweep, run after the deadline
  (no scheduler runs under dag.test()).

dag.test() runs in the main thread, the answer comes from a helper thread, and a watchdog aborts a
hung run (tests/hitl_harness.py).
"""
from __future__ import annotations

import shutil
import threading
import time
from datetime import datetime, timedelta, timezone
from uuid import UUID

import pytest

from driftline.config import default_monitors_dir, load_all, parse_duration
from driftline.demo import demo_interval_starts
from driftline.store import Store, registry
from driftline.store.baselines import list_versions
from hitl_harness import answer, run_with_responder

pytestmark = pytest.mark.e2e

DAG_ID = "driftline_retrain_churn"
POST_DRIFT_DAYS = [3, 4, 5, 6]
RUN_LIMIT = 150.0      # seconds one dag.test() may take before the watchdog aborts it
PARK_LIMIT = 120.0     # seconds the responder waits for `approve` to park in AWAITING_INPUT


@pytest.fixture(scope="module")
def scenario(labelled_demo_week, airflow_db):
    """The demo, the first baseline (v1) and the week's capture and labels (conftest), in a
    store each test copies; the window ends at day 7's start, so it covers the post-drift days."""
    w = labelled_demo_week
    starts = demo_interval_starts(w["manifest"])
    end = starts[POST_DRIFT_DAYS[-1]] + timedelta(days=1)
    return {"demo": w["demo"], "store": w["store"], "end": end.strftime("%Y-%m-%dT%H:%M:%SZ")}


@pytest.fixture
def retrain_dag(scenario, tmp_path, monkeypatch):
    """make(timeout) -> (dag, store): a fresh copy of the prepared store (champion v1), a
    monitors folder whose churn.yaml requires approval with that timeout, and the DAG loaded
    from the project's dags folder with that environment."""
    from driftline_airflow.local_runs import get_dag

    def make(timeout: str):
        shutil.copytree(scenario["store"], tmp_path / "store")
        monitors = tmp_path / "monitors"
        monitors.mkdir()
        text = (default_monitors_dir() / "churn.yaml").read_text()
        for old, new in [("approval: {required: false, timeout: 1d}",
                          f"approval: {{required: true, timeout: {timeout}}}"),
                         ("search: {n_iter: 4, cv: 3}", "search: {n_iter: 2, cv: 2}")]:  # a quicker search
            assert old in text, f"include/monitors/churn.yaml no longer has {old!r}"
            text = text.replace(old, new)
        (monitors / "churn.yaml").write_text(text)
        monkeypatch.setenv("DRIFTLINE_DEMO_ROOT", scenario["demo"])
        monkeypatch.setenv("DRIFTLINE_STORE_URL", f"file://{tmp_path}/store")
        monkeypatch.setenv("DRIFTLINE_MONITORS_DIR", str(monitors))
        approval = load_all(monitors).models["churn"].retraining.approval
        assert approval.required and approval.timeout == parse_duration(timeout)
        return get_dag(DAG_ID), Store(f"file://{tmp_path}/store")

    return make


# --- running the DAG with a responder ------------------------------------------------------

def _parked_approval(known_runs: set[str], stop: threading.Event) -> dict:
    """Wait until the new run's `approve` task instance is AWAITING_INPUT with its request
    written; returns its run_id, ti_id, response deadline, and the request's body and creation
    time."""
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance as TI
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState
    from sqlalchemy import select

    deadline = time.monotonic() + PARK_LIMIT
    while time.monotonic() < deadline and not stop.is_set():
        with create_session() as session:
            for ti in session.scalars(select(TI).where(TI.dag_id == DAG_ID, TI.task_id == "approve",
                                                       TI.state == TaskInstanceState.AWAITING_INPUT)):
                if ti.run_id in known_runs:
                    continue
                detail = session.scalar(select(HITLDetail).where(HITLDetail.ti_id == ti.id))
                if detail is not None:
                    return {"run_id": ti.run_id, "ti_id": ti.id, "deadline": ti.trigger_timeout,
                            "body": detail.body, "requested_at": detail.created_at}
        time.sleep(0.5)
    raise AssertionError("`approve` never waited for input" + (" (the run ended)" if stop.is_set() else ""))


def _run_with_responder(dag, run_conf: dict, respond):
    """dag.test(run_conf); once `approve` is parked, respond(run_id, ti_id, deadline) -> anything
    from a helper thread (tests/hitl_harness.py). Returns (dag run, what the responder saw:
    run_id, ti_id, deadline, body, requested_at, result)."""
    def responder(known, done, box):
        box.update(_parked_approval(known, done))
        box["result"] = respond(box["run_id"], box["ti_id"], box["deadline"])

    # a responder that fails while `approve` waits aborts the run; after, the run ends by itself
    return run_with_responder(dag, run_conf, responder, limit=RUN_LIMIT,
                              abort_on_error=lambda box: "ti_id" not in box or _state(box["ti_id"]) == "awaiting_input")


def _state(ti_id: UUID) -> str:
    from airflow.models.taskinstance import TaskInstance as TI
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        state = session.scalar(select(TI.state).where(TI.id == ti_id))
    return getattr(state, "value", state)


def _answer(option: str, username: str = "alice"):
    """A responder answering `approve` through the core API's handler."""
    def respond(run_id: str, ti_id: UUID, deadline: datetime):
        return answer(DAG_ID, run_id, "approve", option, username)

    return respond


def _sweep_after_deadline(run_id: str, ti_id: UUID, deadline: datetime):
    """A responder that never answers: the scheduler's timeout sweep, once before the deadline
    (nothing happens) and once after it (the request's defaults are applied)."""
    from airflow.jobs.job import Job
    from airflow.jobs.scheduler_job_runner import SchedulerJobRunner
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState

    runner = SchedulerJobRunner(job=Job(), num_runs=1)

    def sweep() -> str:
        with create_session() as session:
            runner.check_awaiting_input_timeouts(session=session)
        return _state(ti_id)

    early = sweep() if datetime.now(timezone.utc) < deadline - timedelta(seconds=0.5) else None
    time.sleep(max(0.0, (deadline - datetime.now(timezone.utc)).total_seconds()) + 0.5)
    late = sweep()
    assert late == TaskInstanceState.SCHEDULED, f"the sweep after the deadline left `approve` {late}"
    return {"before_deadline": early, "after_deadline": late}


def _states(dr) -> dict[str, str]:
    return {ti.task_id: getattr(ti.state, "value", ti.state) for ti in dr.get_task_instances()}


def _request(run_id: str):
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance as TI
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        ti = session.scalar(select(TI).where(TI.dag_id == DAG_ID, TI.run_id == run_id, TI.task_id == "approve"))
        detail = session.scalar(select(HITLDetail).where(HITLDetail.ti_id == ti.id))
        return {"body": detail.body, "subject": detail.subject, "options": list(detail.options),
                "defaults": list(detail.defaults or []), "chosen": list(detail.chosen_options or []),
                "responded_by": detail.responded_by_user, "responded_at": detail.responded_at}


def _decision(store: Store, run_id: str) -> dict:
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in run_id)
    return store.read_json(f"models/churn/retraining/{safe}/decision.json")


def _assert_request_shows_scores(body: str, decision: dict) -> None:
    champion, challenger = decision["champion"]["metrics"]["roc_auc"], decision["challenger"]["metrics"]["roc_auc"]
    assert decision["promote"] and challenger - champion > decision["margin"], decision["reason"]
    assert body.startswith(decision["reason"]), body
    assert f"challenger roc_auc {challenger:.4f} vs champion v1 {champion:.4f}" in body, body
    assert "Artifacts: file://" in body


def _promoted_events(run_id: str) -> list[dict]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(select(AssetEvent.extra).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
                               .where(AssetModel.uri == "driftline://churn/promoted",
                                      AssetEvent.source_run_id == run_id))
        return [extra for (extra,) in rows]


def _assert_nothing_promoted(store: Store, dr, states: dict, run_id: str) -> None:
    assert str(dr.state).endswith("success"), states
    assert states["approve"] == "success"      # a rejection is an answer, not a failure
    assert states["promote"] == "skipped", states
    champ = registry.champion(store, "churn")  # the serving model, registered as v1 by prepare
    assert (champ["version"], champ["baseline"]) == ("v1", "v1"), champ
    assert [m["version"] for m in registry.list_model_versions(store, "churn")] == ["v1"]
    assert list_versions(store, "churn") == ["v1"]
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in run_id)
    assert not store.exists(f"models/churn/retraining/{safe}/promotion.json")
    assert _promoted_events(run_id) == []


# --- the tests ------------------------------------------------------------------------------

def test_approved_challenger_is_promoted(retrain_dag, scenario):
    dag, store = retrain_dag("1h")
    dr, seen = _run_with_responder(dag, {"end": scenario["end"], "window": "4d"}, _answer("Approve"))
    states = _states(dr)
    assert str(dr.state).endswith("success"), states
    assert states == {**states, "gate": "success", "approve": "success", "promote": "success",
                      "not_promoted": "skipped", "no_approval_needed": "skipped"}
    # the request a person saw: both scores, with the deadline of approval.timeout
    decision = _decision(store, dr.run_id)
    _assert_request_shows_scores(seen["body"], decision)
    assert timedelta(hours=1) <= seen["deadline"] - seen["requested_at"] < timedelta(hours=1, seconds=10)
    req = _request(dr.run_id)
    assert req["subject"] == "Promote a retrained churn?"
    assert (req["options"], req["defaults"], req["chosen"]) == (["Approve", "Reject"], ["Reject"], ["Approve"])
    assert req["responded_by"] == {"id": "alice", "name": "alice"}
    assert seen["result"]["chosen_options"] == ["Approve"]  # what the API answered
    assert seen["result"]["responded_by"] == {"id": "alice", "name": "alice"}
    # the challenger is the champion now, with a new baseline, promoted by the person
    record = registry.champion(store, "churn")
    assert (record["version"], record["baseline"], record["actor"]) == ("v2", "v2", "approved by alice")
    v2 = registry.model_version(store, "churn", "v2")
    assert v2["origin"] == "retrained" and v2["parent"] == "v1"
    assert v2["scores"]["holdout"] == {"challenger": pytest.approx(decision["challenger"]["metrics"]["roc_auc"]),
                                       "champion": pytest.approx(decision["champion"]["metrics"]["roc_auc"])}
    assert list_versions(store, "churn") == ["v1", "v2"]
    assert _promoted_events(dr.run_id) == [{"model": "churn", "version": "v2", "baseline": "v2"}]


def test_rejected_challenger_is_not_promoted(retrain_dag, scenario):
    dag, store = retrain_dag("1h")
    dr, seen = _run_with_responder(dag, {"end": scenario["end"], "window": "4d"}, _answer("Reject", "bob"))
    states = _states(dr)
    _assert_request_shows_scores(seen["body"], _decision(store, dr.run_id))  # it did win: a person said no
    _assert_nothing_promoted(store, dr, states, dr.run_id)
    assert states["not_promoted"] == "skipped" and states["no_approval_needed"] == "skipped"
    req = _request(dr.run_id)
    assert req["chosen"] == ["Reject"] and req["responded_by"] == {"id": "bob", "name": "bob"}


def test_no_answer_before_the_timeout_promotes_nothing(retrain_dag, scenario):
    timeout = "3s"
    assert parse_duration(timeout) == timedelta(seconds=3)
    dag, store = retrain_dag(timeout)
    dr, seen = _run_with_responder(dag, {"end": scenario["end"], "window": "4d"}, _sweep_after_deadline)
    states = _states(dr)
    _assert_request_shows_scores(seen["body"], _decision(store, dr.run_id))
    # the deadline is approval.timeout after the request was made
    assert timedelta(seconds=3) <= seen["deadline"] - seen["requested_at"] < timedelta(seconds=10)
    if seen["result"]["before_deadline"] is not None:  # a sweep before the deadline changes nothing
        assert seen["result"]["before_deadline"] == "awaiting_input", seen["result"]
    _assert_nothing_promoted(store, dr, states, dr.run_id)
    req = _request(dr.run_id)
    # the sweep applied the request's default, with nobody as the respondent
    assert req["chosen"] == ["Reject"] and req["responded_by"] is None and req["responded_at"] is not None

