"""Feedback on alerts through Airflow's human-in-the-loop operators.

The library part (which incidents opened in a run, which still await an answer, the request a
person sees) is tested on plain data. The DAG part runs the real driftline_feedback_churn DAG
under dag.test() on the demo's drift day, with alert incidents made by the library stages of
that day (data quality, drift, data alerts) plus one violation of a feature whose name is Jinja
(``{{ 7*7 }} {% raw %}``), which must reach the request literally. A responder thread answers
the mapped ``ask`` requests through the core REST API's handler, as in
tests/test_retraining_approval.py (see there for why dag.test() runs in the main thread and
what the SIGUSR1 watchdog does).
"""
from __future__ import annotations

import re
import shutil
import threading
import time
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from hitl_harness import answer, run_with_responder

from driftline import feedback
from driftline.store import Store, interval_key

DAG_ID = "driftline_feedback_churn"
DRIFT_DAY = 3                         # the demo's first drifted day (2026-10-04)
JINJA_FEATURE = "{{ 7*7 }} {% raw %}"  # rendered, it would read "49" or fail to parse
RUN_LIMIT = 90.0
PARK_LIMIT = 60.0


# --- the library: which incidents opened, which await an answer -----------------------------

def _event(check, subject, incident, event="firing", interval=None, model="churn"):
    key = "|".join([model, check, subject, incident])
    return {"model": model, "check": check, "subject": subject, "incident": incident, "incident_key": key,
            "interval": interval or incident, "event": event, "severity": "warning", "text": f"{subject}: bad",
            "title": f"[driftline] {check} {subject}"}


def test_opened_incidents_are_those_named_by_their_own_interval():
    briefs = [{"firing": [{"check": "range_check", "subject": "age", "interval": "2026-10-04T0000Z",
                           "incident": "2026-10-04T0000Z"},
                          {"check": "baseline_drift_check", "subject": "tenure", "interval": "2026-10-04T0000Z",
                           "incident": "2026-10-02T0000Z"}]},  # carried over: opened before
              {}, None]
    assert feedback.opened_incidents("churn", briefs) == ["churn|range_check|age|2026-10-04T0000Z"]
    assert feedback.opened_incidents("churn", [{"firing": []}, {}]) == []


def test_unanswered_leaves_out_answered_resolved_and_reminders():
    events = [_event("range_check", "age", "2026-10-03T0000Z"),
              _event("range_check", "age", "2026-10-03T0000Z", "resolved", "2026-10-04T0000Z"),
              _event("baseline_drift_check", "tenure", "2026-10-04T0000Z"),
              _event("baseline_drift_check", "tenure", "2026-10-04T0000Z", interval="2026-10-06T0000Z"),  # reminder
              _event("completeness_check", "x", "2026-10-04T0000Z"),
              _event("completeness_check", "y", "2026-10-05T0000Z")]
    answers = [{"incident_key": "churn|completeness_check|x|2026-10-04T0000Z", "kind": "acknowledged"}]
    keys = lambda out: [i["incident_key"] for i in out]  # noqa: E731
    # every incident still open, nobody answered: not the resolved one, not the answered one
    assert keys(feedback.unanswered(events, answers)) == ["churn|baseline_drift_check|tenure|2026-10-04T0000Z",
                                                          "churn|completeness_check|y|2026-10-05T0000Z"]
    # those opened in an interval, resolved or not
    out = feedback.unanswered(events, answers, interval="2026-10-03T0000Z")
    assert keys(out) == ["churn|range_check|age|2026-10-03T0000Z"] and out[0]["resolved"]
    assert feedback.unanswered(events, answers, interval="2026-10-04T0000Z")[0]["text"] == "tenure: bad"
    # an announcement's keys: those still unanswered (unknown keys are nothing to ask)
    assert keys(feedback.unanswered(events, answers, keys=["churn|completeness_check|x|2026-10-04T0000Z",
                                                           "churn|completeness_check|y|2026-10-05T0000Z",
                                                           "churn|nope|z|2026-10-05T0000Z"])) == [
        "churn|completeness_check|y|2026-10-05T0000Z"]
    assert feedback.unanswered(events, answers, keys=[]) == []
    assert feedback.unanswered([], []) == []


def test_interval_ref_accepts_keys_and_iso_times():
    for text in ("2026-10-04T0000Z", "2026-10-04", " 2026-10-04T00:00Z ", "2026-10-04T02:00:00+02:00"):
        assert feedback.interval_ref(text) == "2026-10-04T0000Z", text
    with pytest.raises(feedback.FeedbackError, match="expected an interval key like 2026-10-04T0000Z"):
        feedback.interval_ref("last tuesday")


# --- the requests (driftline_airflow.feedback_requests) -------------------------------------------------------------------

@pytest.fixture(scope="module")
def feedback_module():
    import driftline_airflow.feedback_requests as mod

    return mod


def test_request_shows_data_literally_with_a_report_link(feedback_module, make_config):
    m = feedback_module
    assert m.report_link("churn", "2026-10-04T0000Z") == "/driftline/models/churn/runs/2026-10-04T0000Z/report.html"
    assert m.report_link("a b/c", "2026-10-04T0000Z").startswith("/driftline/models/a%20b%2Fc/runs/")
    # the trigger form's pattern for `interval` takes what interval_ref takes
    for text in ("", "2026-10-04T0000Z", "2026-10-04", "2026-10-04T00:00Z", "2026-10-04T02:00:00+02:00"):
        assert re.match(m.INTERVAL, text), text
    assert not re.match(m.INTERVAL, "last tuesday")
    cfg = make_config(name="churn")
    inc = {"incident_key": "k", "check": "completeness_check", "subject": "`x` {{ 7*7 }}",
           "incident": "2026-10-04T0000Z", "severity": "critical", "text": "`x` {{ 7*7 }}: 30% missing\n``` fence", "resolved": False}
    req = m.hitl_request(cfg, inc)
    assert req["subject"] == "churn: missing values in `x` {{ 7*7 }} (critical, opened 2026-10-04T0000Z)"
    body = req["body"]
    assert "- **Subject:** `` `x` {{ 7*7 }} ``" in body               # a code span longer than its backticks
    assert "````text\n`x` {{ 7*7 }}: 30% missing\n``` fence\n````" in body  # a fence longer than the text's
    assert "[Run report](/driftline/models/churn/runs/2026-10-04T0000Z/report.html)" in body
    assert "still open" in body and "7 days" in body
    assert m._code("a") == "`a`" and m._code("a\nb") == "`a b`"
    assert m.responder({"id": "alice", "name": "alice"}) == "alice"
    assert m.responder({"id": "42", "name": "Alice Smith"}) == "Alice Smith (42)"
    assert m.responder({"id": "42", "name": ""}) == "42" and m.responder(None) == ""


def test_expand_kwargs_values_from_xcom_would_be_rendered(feedback_module):
    """Why the request's operator renders nothing (AlertQuestion): in Airflow 3.3, the values
    expand_kwargs takes from an upstream XCom are not among the ids the task SDK treats as
    already resolved, so the operator's template fields would render them as Jinja (expand()'s
    values are). If this fails, Airflow changed that; AlertQuestion stays harmless."""
    from airflow.sdk.definitions._internal.expandinput import ListOfDictsExpandInput

    class Pulled:  # stands for the upstream XCom
        def resolve(self, context):
            return [{"subject": JINJA_FEATURE}]

    ti = SimpleNamespace(map_index=0, _upstream_map_indexes={})
    mapping, resolved = ListOfDictsExpandInput(Pulled()).resolve({"ti": ti})
    assert mapping["subject"] == JINJA_FEATURE and id(mapping["subject"]) not in resolved
    assert feedback_module.AlertQuestion.template_fields == ()
    assert issubclass(feedback_module.AlertQuestion, feedback_module.HITLOperator)


# --- the DAG ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def alerted(labelled_demo_week, tmp_path_factory):
    """The demo week's store (conftest) with the drift day monitored by the library stages
    (data quality, drift, data alerts), plus a completeness violation of a feature named
    JINJA_FEATURE: {"store": Path, "cfg": ModelConfig, "interval": key, "incidents": [keys]}."""
    from driftline.demo import demo_interval_starts
    from driftline.monitor import (alert_brief, plan_partitions, profile_partition, run_alerts, run_data_quality,
                                   run_drift)

    w = labelled_demo_week
    root = tmp_path_factory.mktemp("feedback") / "store"
    shutil.copytree(w["store"], root)
    store, cfg = Store(f"file://{root}"), w["cfg"]
    start = demo_interval_starts(w["manifest"])[DRIFT_DAY]
    run_data_quality(cfg, store, start)
    parts = [profile_partition(cfg, store, start, p) for p in plan_partitions(cfg, store, start)]
    run_drift(cfg, store, start, cfg.interval_end(start), parts)
    from driftline.violations import read_violations, write_violations

    prefix = Store.run_prefix(cfg.name, start)
    found = [v for v in read_violations(store, prefix) if v["source"] == "data_quality"]
    found.append({"feature_name": JINJA_FEATURE, "constraint_check_type": "completeness_check",
                  "description": "Data completeness requirement is not met for {{ ds }}: 40% missing", "details": {}})
    write_violations(store, prefix, "data_quality", found)
    out = run_alerts(cfg, store, start, "data", send=None)
    keys = sorted({"|".join([cfg.name, a["check"], a["subject"], a["incident"]]) for a in out["firing"]})
    assert any(JINJA_FEATURE in k for k in keys) and len(keys) >= 2, out["lines"]
    return {"store": root, "cfg": cfg, "start": start, "interval": interval_key(start), "incidents": keys,
            "brief": alert_brief(out)}


@pytest.fixture
def feedback_dag(alerted, airflow_db, tmp_path, monkeypatch):
    """(dag, store): the DAG loaded from the dags folder over a fresh copy of the alerted store."""
    from driftline_airflow.local_runs import get_dag

    shutil.copytree(alerted["store"], tmp_path / "store")
    monkeypatch.setenv("DRIFTLINE_STORE_URL", f"file://{tmp_path}/store")
    return get_dag(DAG_ID), Store(f"file://{tmp_path}/store")


def _parked_requests(known: set[str], n: int, stop: threading.Event) -> dict:
    """Wait until the new run's n mapped `ask` instances all wait for input with their request
    written; returns run_id and {map_index: request}."""
    from sqlalchemy import select

    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance as TI
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState

    deadline = time.monotonic() + PARK_LIMIT
    while time.monotonic() < deadline and not stop.is_set():
        with create_session() as session:
            rows = session.execute(
                select(TI.run_id, TI.map_index, TI.rendered_map_index, HITLDetail.subject, HITLDetail.body,
                       HITLDetail.params, HITLDetail.options, HITLDetail.defaults)
                .join(HITLDetail, HITLDetail.ti_id == TI.id)
                .where(TI.dag_id == DAG_ID, TI.task_id == "ask", TI.state == TaskInstanceState.AWAITING_INPUT,
                       TI.run_id.not_in(known))).all()
        if len(rows) >= n:
            return {"run_id": rows[0].run_id, "requests": {
                r.map_index: {"subject": r.subject, "body": r.body, "label": r.rendered_map_index,
                              "params": dict(r.params or {}), "options": list(r.options),
                              "defaults": r.defaults} for r in rows}}
        time.sleep(0.3)
    raise AssertionError(f"`ask` never had {n} requests waiting for input"
                         + (" (the run ended)" if stop.is_set() else ""))


def _respond(run_id: str, map_index: int, option: str, username: str, comment: str = "") -> dict:
    return answer(DAG_ID, run_id, "ask", option, username, map_index=map_index, params_input={"comment": comment})


def _run(dag, run_conf: dict, respond=None):
    """dag.test(run_conf); respond(known run ids, stop event) -> anything from a helper thread
    (tests/hitl_harness.py). Returns (dag run, what the responder returned)."""
    def responder(known, done, box):
        box["result"] = respond(known, done)

    dr, box = run_with_responder(dag, run_conf, responder if respond else None, limit=RUN_LIMIT)
    return dr, box.get("result")


def _states(dr) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for ti in sorted(dr.get_task_instances(), key=lambda t: (t.task_id, t.map_index)):
        out.setdefault(ti.task_id, []).append(getattr(ti.state, "value", ti.state))
    return out


@pytest.mark.e2e
def test_answers_in_airflow_are_recorded_and_not_asked_again(feedback_dag, alerted):
    dag, store = feedback_dag
    n = len(alerted["incidents"])

    def respond(known, stop):
        seen = _parked_requests(known, n, stop)
        answers = {}
        others = iter(["Expected", *["Acknowledge"] * n])
        for i, req in sorted(seen["requests"].items()):
            if JINJA_FEATURE in req["subject"]:
                answers[i] = ("False positive", "carol", "promo week")
            else:
                answers[i] = (next(others), "dave", "")
            _respond(seen["run_id"], i, *answers[i])
        return {**seen, "answers": answers}

    dr, seen = _run(dag, {"interval": alerted["interval"]}, respond)
    states = _states(dr)
    assert str(dr.state).endswith("success"), states
    assert states == {"open_incidents": ["success"], "ask": ["success"] * n, "record_feedback": ["success"]}

    # the requests: one per incident, the three answers and a comment, no default answer
    requests = seen["requests"]
    assert len(requests) == n
    for req in requests.values():
        assert req["options"] == ["Acknowledge", "False positive", "Expected"] and req["defaults"] is None
        assert set(req["params"]) == {"comment"}
        assert req["label"] == req["subject"]  # map_index_template: Jinja runs, on the operator's own template
    # data reaches the request literally: the feature named in Jinja is neither rendered nor fails
    (jinja,) = [r for r in requests.values() if JINJA_FEATURE in r["subject"]]
    assert jinja["subject"] == f"churn: missing values in {JINJA_FEATURE} (critical, opened {alerted['interval']})"
    assert f"- **Subject:** `{JINJA_FEATURE}`" in jinja["body"]
    assert f"{JINJA_FEATURE}: Data completeness requirement is not met for {{{{ ds }}}}: 40% missing" in jinja["body"]
    assert "49" not in jinja["body"] and "49" not in jinja["subject"]
    assert f"(/driftline/models/churn/runs/{alerted['interval']}/report.html)" in jinja["body"]

    # the store holds each answer, with who, when, the comment and where it came from
    records = {r["incident_key"]: r for r in feedback.read_all(store, "churn")}
    assert set(records) == set(alerted["incidents"])
    fp = records[next(k for k in alerted["incidents"] if JINJA_FEATURE in k)]
    assert (fp["kind"], fp["by"], fp["comment"], fp["source"]) == ("false_positive", "carol", "promo week",
                                                                   "airflow-hitl")
    assert fp["subject"] == JINJA_FEATURE and fp["until"]
    others = [r for r in records.values() if r is not fp]
    assert sorted(r["kind"] for r in others) == sorted(["expected"] + ["acknowledged"] * (n - 2))
    assert all((r["by"], r["comment"], r["source"]) == ("dave", "", "airflow-hitl") for r in others)
    assert all(datetime.fromisoformat(r["at"]) >= dr.start_date for r in records.values())

    # a re-run asks nothing: every incident of the interval has its answer
    before = len(feedback.read_all(store, "churn"))
    dr2, _ = _run(dag, {"interval": alerted["interval"]})
    states2 = _states(dr2)
    assert str(dr2.state).endswith("success"), states2
    assert states2 == {"open_incidents": ["success"], "ask": ["skipped"], "record_feedback": ["success"]}, states2
    assert len(feedback.read_all(store, "churn")) == before


@pytest.mark.e2e
def test_a_request_nobody_answers_records_nothing(feedback_dag, alerted):
    """One request is answered; the other's deadline passes (moved to the past in the metadata
    DB, then the scheduler's timeout sweep, as in the approval test): that incident stays
    unanswered, the answer given is recorded, the run succeeds."""
    dag, store = feedback_dag
    n = len(alerted["incidents"])

    def respond(known, stop):
        from sqlalchemy import update

        from airflow.jobs.job import Job
        from airflow.jobs.scheduler_job_runner import SchedulerJobRunner
        from airflow.models.taskinstance import TaskInstance as TI
        from airflow.utils.session import create_session

        seen = _parked_requests(known, n, stop)
        (i,) = [i for i, r in seen["requests"].items() if JINJA_FEATURE in r["subject"]]
        _respond(seen["run_id"], i, "Acknowledge", "carol")
        with create_session() as session:
            session.execute(update(TI).where(TI.dag_id == DAG_ID, TI.run_id == seen["run_id"], TI.task_id == "ask",
                                             TI.map_index != i)
                            .values(trigger_timeout=datetime.now(timezone.utc) - timedelta(seconds=1)))
        with create_session() as session:
            SchedulerJobRunner(job=Job(), num_runs=1).check_awaiting_input_timeouts(session=session)
        return i

    dr, answered = _run(dag, {"interval": alerted["interval"]}, respond)
    states = _states(dr)
    assert str(dr.state).endswith("success"), states
    assert states["ask"] == ["failed" if i != answered else "success" for i in range(n)], states  # HITLTimeoutError
    assert states["record_feedback"] == ["success"]
    records = feedback.read_all(store, "churn")
    assert [(r["subject"], r["kind"], r["by"]) for r in records] == [(JINJA_FEATURE, "acknowledged", "carol")]
    from driftline.alerts import read_events

    left = feedback.unanswered(read_events(store, "churn"), records, interval=alerted["interval"])
    assert sorted(i["incident_key"] for i in left) == [k for k in alerted["incidents"] if JINJA_FEATURE not in k]


def test_open_incidents_reads_the_announcement(feedback_dag, alerted, airflow_db):
    """The Asset-triggered path, at unit level: the monitoring run's extra names the incidents;
    one already answered (from the CLI) is not asked again; another model's event is ignored."""
    dag, store = feedback_dag
    from driftline_airflow.runtime import alerts_asset

    first, *rest = alerted["incidents"]
    feedback.record(alerted["cfg"], store, first, "acknowledged", by="erin", source="cli")
    event = SimpleNamespace(extra={"model": "churn", "interval": alerted["interval"],
                                   "incidents": alerted["incidents"]})
    other = SimpleNamespace(extra={"model": "fraud", "interval": alerted["interval"], "incidents": ["fraud|x|y|z"]})
    run = dag.get_task("open_incidents").python_callable
    got = run(triggering_asset_events={alerts_asset("churn"): [other, event]}, params={"interval": ""})
    assert [i["incident_key"] for i in got] == rest
    assert all(i["model"] == "churn" and i["incident"] == alerted["interval"] and i["text"] for i in got)
    # the Params path: an interval with no incidents; empty: every incident still open
    assert run(triggering_asset_events={}, params={"interval": "2026-10-01"}) == []
    assert [i["incident_key"] for i in run(params={"interval": ""})] == rest


def test_monitoring_dag_announces_opened_incidents(alerted, airflow_db):
    from driftline_airflow.local_runs import get_dag

    dag = get_dag("driftline_monitor_churn")
    opened, announce = dag.get_task("incidents_opened"), dag.get_task("announce_incidents")
    assert {"alert_data", "alert_quality"} <= opened.upstream_task_ids
    assert opened.downstream_task_ids == {"announce_incidents"} and announce.downstream_task_ids == set()
    assert opened.trigger_rule == "all_done"
    (outlet,) = announce.outlets
    assert outlet.uri == "driftline://churn/alerts"
    # what the two tasks do with the alert tasks' XComs (the drift day's data alerts; quality failed)
    xcoms = {"alert_data": alerted["brief"], "alert_quality": None}
    ti = SimpleNamespace(xcom_pull=lambda task_ids: xcoms[task_ids])
    said = opened.python_callable(data_interval_start=alerted["start"], ti=ti)
    assert said == {"model": "churn", "interval": alerted["interval"], "incidents": alerted["incidents"]}
    quiet = SimpleNamespace(xcom_pull=lambda task_ids: {"firing": []})
    assert opened.python_callable(data_interval_start=alerted["start"], ti=quiet) is False  # no event
    events = {outlet: SimpleNamespace(extra=None)}
    announce.python_callable(said, outlet_events=events)
    assert events[outlet].extra == said
    fb = get_dag(DAG_ID)
    assert [a.uri for a in fb.timetable.asset_condition.objects] == ["driftline://churn/alerts"]
    assert set(fb.params) == {"model", "interval"}
    ask = fb.get_task("ask")
    assert type(ask).__name__.endswith("MappedOperator")
    assert ask.partial_kwargs["response_timeout"] == timedelta(days=3)
    assert ask.partial_kwargs.get("defaults") is None and ask.partial_kwargs["retries"] == 0
    assert fb.get_task("record_feedback").trigger_rule == "all_done"
