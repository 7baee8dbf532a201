"""Feedback on alerts through Airflow's human-in-the-loop operators.

The library part (which incidents opened in a run, which still await an answer, the request a
person sees) is tested on plain data. The DAG part runs the real driftline_feedback_churn DAG
under dag.test() on the demo's drift day, with alert incidents made by the library stages of
that day (data quality, drift, data alerts) plus violations of a feature whose name is Jinja
(``{{ 7*7 }} {% raw %}``), which must reach the request literally, and of one whose name is
HTML, which the driftline page must escape. A responder thread answers the mapped ``ask``
requests through the core REST API's handler (tests/hitl_harness.py: why dag.test() runs in the
main thread and what the SIGUSR1 watchdog does), and answers on the driftline page through its
FastAPI test client, on the same store.
"""
from __future__ import annotations

import re
import shutil
import threading
import time
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from driftline.stages import answers, feedback
from driftline.store import Store, interval_key
from hitl_harness import answer, run_with_responder

DAG_ID = "driftline_feedback_churn"
DRIFT_DAY = 3                         # the demo's first drifted day (2026-10-04)
JINJA_FEATURE = "{{ 7*7 }} {% raw %}"  # rendered, it would read "49" or fail to parse
HTML_FEATURE = "<b>promo</b> & co"     # shown raw, it would be markup on the driftline page
RUN_LIMIT = 90.0
PARK_LIMIT = 60.0
AT_ONCE = 30.0  # an answer is in the store this soon after it is given


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
    # a re-judgement withdrew y: nothing to ask, whichever way it is looked for
    withdrawn = [*events, _event("completeness_check", "y", "2026-10-05T0000Z", "rejudged", "2026-10-07T0000Z")]
    withdrawn[-1]["rejudged"] = "withdrawn"
    y = "churn|completeness_check|y|2026-10-05T0000Z"
    assert y not in keys(feedback.unanswered(withdrawn, answers))
    assert feedback.unanswered(withdrawn, answers, keys=[y]) == []
    assert feedback.unanswered(withdrawn, answers, interval="2026-10-05T0000Z") == []


def test_interval_ref_accepts_keys_and_iso_times():
    for text in ("2026-10-04T0000Z", "2026-10-04", " 2026-10-04T00:00Z ", "2026-10-04T02:00:00+02:00"):
        assert feedback.interval_ref(text) == "2026-10-04T0000Z", text
    with pytest.raises(answers.FeedbackError, match="expected an interval key like 2026-10-04T0000Z"):
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
    assert req["incident_key"] == "k"  # which incident the answer goes to
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


def test_empty_fields_pass_airflows_own_validation(feedback_module, airflow_db):
    """Airflow 3's forms mark a Param required unless its type allows null (the UI's
    isParamRequired) and send null for a field left empty. The trigger form's `interval` and
    the request's `comment` are nullable: empty passes the validation a run gets when it is
    created (the REST trigger handler and dag.test() run it on the scheduler's copy of the DAG)
    and the one a response gets when the task resumes (HITLOperator.validate_params_input)."""
    from airflow.sdk import Param
    from airflow.sdk.exceptions import ParamValidationError
    from airflow.serialization.serialized_objects import DagSerialization

    from driftline_airflow.local_runs import get_dag

    dag = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(get_dag(DAG_ID)))
    for conf in ({}, {"interval": None}, {"interval": ""}, {"interval": "2026-10-04"}):
        assert dag.params.deep_merge(conf).validate()["interval"] == conf.get("interval"), conf
    with pytest.raises(ParamValidationError, match="'last tuesday' does not match"):
        dag.params.deep_merge({"interval": "last tuesday"}).validate()
    assert "null" in dag.params.get_param("interval").schema["type"]  # the form does not demand it
    for params_input in ({}, {"comment": None}, {"comment": ""}, {"comment": "promo week"}):
        ask = feedback_module.AlertQuestion(task_id="probe", model="churn", incident_key="k", subject="s",
                                            options=list(feedback_module.OPTIONS),
                                            params={"comment": feedback_module.comment_param()})
        assert "null" in ask.serialized_params["comment"]["schema"]["type"]
        ask.validate_params_input(params_input)
    with pytest.raises(ParamValidationError):  # what the DAG had: an emptied field fails the answer
        Param("", type="string").resolve(None)


# --- the DAG ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def alerted(labelled_demo_week, tmp_path_factory):
    """The demo week's store (conftest) with the drift day monitored by the library stages
    (data quality, drift, data alerts), plus completeness violations of features named
    JINJA_FEATURE and HTML_FEATURE: {"store": Path, "cfg": ModelConfig, "interval": key,
    "incidents": [keys]}."""
    from driftline.demo import demo_interval_starts
    from driftline.pipeline.interval import plan_partitions, profile_partition, run_alerts, run_data_quality, run_drift
    from driftline.pipeline.summary import alert_brief

    w = labelled_demo_week
    root = tmp_path_factory.mktemp("feedback") / "store"
    shutil.copytree(w["store"], root)
    store, cfg = Store(f"file://{root}"), w["cfg"]
    start = demo_interval_starts(w["manifest"])[DRIFT_DAY]
    run_data_quality(cfg, store, start)
    parts = [profile_partition(cfg, store, start, p) for p in plan_partitions(cfg, store, start)]
    run_drift(cfg, store, start, cfg.interval_end(start), parts)
    from driftline.store.violations import read_violations, write_violations

    prefix = Store.run_prefix(cfg.name, start)
    found = [v for v in read_violations(store, prefix) if v["source"] == "data_quality"]
    for name in (JINJA_FEATURE, HTML_FEATURE):
        found.append({"feature_name": name, "constraint_check_type": "completeness_check",
                      "description": "Data completeness requirement is not met for {{ ds }}: 40% missing",
                      "details": {}})
    write_violations(store, prefix, "data_quality", found)
    out = run_alerts(cfg, store, start, "data", send=None)
    keys = sorted({"|".join([cfg.name, a["check"], a["subject"], a["incident"]]) for a in out["firing"]})
    assert any(JINJA_FEATURE in k for k in keys) and any(HTML_FEATURE in k for k in keys) and len(keys) >= 3, \
        out["lines"]
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
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance as TI
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState
    from sqlalchemy import select

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


def _ask_states(run_id: str) -> dict[int, str]:
    from airflow.models.taskinstance import TaskInstance as TI
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(select(TI.map_index, TI.state).where(TI.dag_id == DAG_ID, TI.run_id == run_id,
                                                                    TI.task_id == "ask")).all()
    return {r.map_index: getattr(r.state, "value", r.state) for r in rows}


def _respond(run_id: str, map_index: int, option: str, username: str, params_input: dict | None = None) -> dict:
    return answer(DAG_ID, run_id, "ask", option, username, map_index=map_index, params_input=params_input)


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


def _page(store: Store, cfg):
    """The driftline page (driftline.ui.app) on the store, as `tester`."""
    from fastapi.testclient import TestClient

    from driftline.ui.app import Person, create_app

    app = create_app(store=lambda: store, configs=lambda: {cfg.name: cfg}, user=lambda: Person("tester"))
    return TestClient(app, follow_redirects=False)


def _card(html: str, key: str) -> str:
    """The alerts page's card of one incident (its key as the page escapes it)."""
    from driftline.common.html import esc

    return html.split(f'data-incident="{esc(key)}"', 1)[1].split('<div class="card incident"', 1)[0]


def _wait_for_answer(store: Store, key: str) -> list[dict]:
    deadline = time.monotonic() + AT_ONCE
    while time.monotonic() < deadline:
        found = answers.incident_answers(store, "churn", key)
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"no answer to {key} in the store {AT_ONCE:.0f}s after it was given")


@pytest.mark.e2e
def test_each_answer_is_stored_as_given_and_once(feedback_dag, alerted):
    """A run triggered with `interval` left empty (null, as Airflow's form sends it) asks about
    every open incident. Then, one by one:

    - the Jinja feature's request: False positive with a comment -> in the store, and on the
      driftline page as the answer (no fresh invitation), while the others still wait;
    - the HTML feature: acknowledged on the page, then Expected in Airflow with the comment
      null (the form's empty field) -> a change, shown as such;
    - every other incident: acknowledged on the page, then Acknowledge in Airflow with no
      params_input at all -> recorded once (the page's)."""
    dag, store = feedback_dag
    cfg, n = alerted["cfg"], len(alerted["incidents"])
    (jinja_key,) = [k for k in alerted["incidents"] if JINJA_FEATURE in k]
    (html_key,) = [k for k in alerted["incidents"] if HTML_FEATURE in k]
    others = [k for k in alerted["incidents"] if k not in (jinja_key, html_key)]
    page = _page(store, cfg)

    def respond(known, stop):
        seen = _parked_requests(known, n, stop)
        run_id, requests = seen["run_id"], seen["requests"]
        index = {k: next(i for i, r in requests.items() if k.split("|")[2] in r["subject"])
                 for k in alerted["incidents"]}
        before = page.get("/models/churn/alerts").text
        _respond(run_id, index[jinja_key], "False positive", "carol", {"comment": "promo week"})
        stored = _wait_for_answer(store, jinja_key)
        at_once = {"stored": stored, "states": _ask_states(run_id), "page": page.get("/models/churn/alerts").text}
        for k in [html_key, *others]:
            assert page.post("/models/churn/feedback", data={"incident": k, "kind": "acknowledged"}).status_code == 303
        _respond(run_id, index[html_key], "Expected", "erin", {"comment": None})
        for k in others:
            _respond(run_id, index[k], "Acknowledge", "dave")
        return {**seen, "index": index, "before": before, "at_once": at_once}

    dr, seen = _run(dag, {"interval": None}, respond)
    states = _states(dr)
    assert str(dr.state).endswith("success"), states
    assert states == {"open_incidents": ["success"], "ask": ["success"] * n, "summarise_answers": ["success"]}

    # the requests: one per incident, the three answers and an optional comment, no default answer
    requests = seen["requests"]
    assert len(requests) == n
    for req in requests.values():
        assert req["options"] == ["Acknowledge", "False positive", "Expected"] and req["defaults"] is None
        assert set(req["params"]) == {"comment"} and "null" in req["params"]["comment"]["schema"]["type"]
        assert req["label"] == req["subject"]  # map_index_template: Jinja runs, on the operator's own template
    # data reaches the request literally: the feature named in Jinja is neither rendered nor fails
    jinja = requests[seen["index"][jinja_key]]
    assert jinja["subject"] == f"churn: missing values in {JINJA_FEATURE} (critical, opened {alerted['interval']})"
    assert f"- **Subject:** `{JINJA_FEATURE}`" in jinja["body"]
    assert f"{JINJA_FEATURE}: Data completeness requirement is not met for {{{{ ds }}}}: 40% missing" in jinja["body"]
    assert "49" not in jinja["body"] and "49" not in jinja["subject"]
    assert f"(/driftline/models/churn/runs/{alerted['interval']}/report.html)" in jinja["body"]

    # before any answer, the page invites one and says a request waits in Airflow
    card = _card(seen["before"], jinja_key)
    assert 'data-answered="no"' in card and "No answer yet. Asked in Airflow" in card and dr.run_id in card
    assert '<form class="feedback"' in card and '<details class="change">' not in card

    # the first answer was stored as soon as it was given, the other requests still waiting
    at_once = seen["at_once"]
    (rec,) = at_once["stored"]
    assert (rec["kind"], rec["by"], rec["comment"], rec["source"]) == ("false_positive", "carol", "promo week",
                                                                       "airflow-hitl")
    assert rec["subject"] == JINJA_FEATURE and datetime.fromisoformat(rec["at"]) >= dr.start_date
    assert rec["until"] == (alerted["start"] + cfg.alerting.suppress_false_positive).isoformat()
    waiting = {i: st for i, st in at_once["states"].items() if i != seen["index"][jinja_key]}
    assert set(waiting.values()) == {"awaiting_input"}, at_once["states"]
    # ... and the page showed it as the answer, without inviting a fresh one
    card = _card(at_once["page"], jinja_key)
    assert 'data-answered="yes"' in card and 'data-state="suppressed"' in card
    assert "<strong>Answered:</strong> marked false positive by carol on" in card and "(in Airflow)" in card
    assert '<details class="change"><summary>Change the answer</summary><form class="feedback"' in card
    assert "No answer yet" not in card

    # the store: each incident's answers, oldest first
    got = {k: answers.incident_answers(store, "churn", k) for k in alerted["incidents"]}
    assert [(r["kind"], r["by"]) for r in got[jinja_key]] == [("false_positive", "carol")]
    page_ack, erin = got[html_key]
    assert (page_ack["kind"], page_ack["by"], page_ack["source"]) == ("acknowledged", "tester", "driftline-page")
    assert (erin["kind"], erin["by"], erin["comment"], erin["source"]) == ("expected", "erin", "", "airflow-hitl")
    assert erin["replaces"]["id"] == page_ack["id"] and erin["subject"] == HTML_FEATURE
    for k in others:  # dave's Acknowledge said what the page had said: recorded once
        assert [(r["by"], r["source"]) for r in got[k]] == [("tester", "driftline-page")]
    # every request is recorded as answered, in this run
    requests_stored = feedback.read_requests(store, "churn")
    assert sorted(r["incident_key"] for r in requests_stored) == sorted(alerted["incidents"])
    assert {(r["run_id"], r["state"]) for r in requests_stored} == {(dr.run_id, "answered")}
    # the page shows the change, escaped
    after = page.get("/models/churn/alerts").text
    card = _card(after, html_key)
    assert "&lt;b&gt;promo&lt;/b&gt; &amp; co" in card and "<b>promo</b>" not in after
    assert "<strong>Answered:</strong> marked expected by erin on" in card and "(was: acknowledged by tester on" in card
    assert "1 earlier answer(s)" in card

    # a re-run asks nothing: every incident has its answer
    before = len(answers.read_all(store, "churn"))
    dr2, _ = _run(dag, {"interval": None})
    states2 = _states(dr2)
    assert str(dr2.state).endswith("success"), states2
    assert states2 == {"open_incidents": ["success"], "ask": ["skipped"], "summarise_answers": ["success"]}, states2
    assert len(answers.read_all(store, "churn")) == before


@pytest.mark.e2e
def test_a_request_nobody_answers_records_nothing(feedback_dag, alerted):
    """One request is answered; the others' deadline passes (moved to the past in the metadata
    DB, then the scheduler's timeout sweep, as in the approval test): those incidents stay
    unanswered, the answer given is recorded, the run succeeds, and the timed-out requests no
    longer hold their incidents: the next run asks about them again."""
    dag, store = feedback_dag
    n = len(alerted["incidents"])

    def respond(known, stop):
        from airflow.jobs.job import Job
        from airflow.jobs.scheduler_job_runner import SchedulerJobRunner
        from airflow.models.taskinstance import TaskInstance as TI
        from airflow.utils.session import create_session
        from sqlalchemy import update

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
    assert states["summarise_answers"] == ["success"]
    records = answers.read_all(store, "churn")
    assert [(r["subject"], r["kind"], r["by"]) for r in records] == [(JINJA_FEATURE, "acknowledged", "carol")]
    from driftline.stages.alerts import read_events

    left = sorted(k for k in alerted["incidents"] if JINJA_FEATURE not in k)
    assert sorted(i["incident_key"] for i in feedback.unanswered(read_events(store, "churn"), records,
                                                                 interval=alerted["interval"])) == left
    states_stored = {r["incident_key"]: r["state"] for r in feedback.read_requests(store, "churn")}
    assert states_stored == {k: "answered" if JINJA_FEATURE in k else "timed_out" for k in alerted["incidents"]}
    run = dag.get_task("open_incidents").python_callable
    assert sorted(i["incident_key"] for i in run(params={"interval": None}, run_id="scheduled__next")) == left


@pytest.mark.e2e
def test_every_open_incident_is_asked_about_once(feedback_dag, alerted):
    """Incidents raised while the DAG was paused (no run saw their Asset events) are asked about
    by the next run, whatever triggered it -- an event about another incident, the daily run, a
    person. Not asked: an incident whose request still waits in another run (not even when
    that run's plan raced this one's: the request checks again), a withdrawn one, one answered
    meanwhile. Asked again: one whose earlier request expired."""
    from airflow.sdk.exceptions import AirflowSkipException

    from driftline_airflow.feedback_requests import OPTIONS, AlertQuestion
    from driftline_airflow.runtime import alerts_asset

    dag, store = feedback_dag
    waits, expired, *rest = alerted["incidents"]
    now = datetime.now(timezone.utc)
    feedback.mark_asked(store, "churn", waits, "scheduled__elsewhere", expires=now + timedelta(days=2),
                        at=now - timedelta(days=1), dag_id=DAG_ID)
    feedback.mark_asked(store, "churn", expired, "scheduled__long_ago", expires=now - timedelta(minutes=1),
                        at=now - timedelta(days=3), dag_id=DAG_ID)
    # announced, then withdrawn by a re-judgement
    gone = f"churn|completeness_check|gone|{alerted['interval']}"
    for n, (event, extra) in enumerate((("firing", {}), ("rejudged", {"rejudged": "withdrawn"}))):
        store.write_json(f"alerts/churn/events/withdrawn-{n}.json", {
            "model": "churn", "check": "completeness_check", "subject": "gone", "incident": alerted["interval"],
            "incident_key": gone, "interval": alerted["interval"], "event": event, "severity": "critical",
            "text": "gone: 40% missing", "title": "t", **extra})
    want = [expired, *rest]
    run = dag.get_task("open_incidents").python_callable
    keys = lambda got: [i["incident_key"] for i in got]  # noqa: E731
    event = SimpleNamespace(extra={"model": "churn", "interval": alerted["interval"], "incidents": [gone]})
    assert keys(run(triggering_asset_events={alerts_asset("churn"): [event]}, params={"interval": None},
                    run_id="asset_triggered__1")) == want
    assert keys(run(triggering_asset_events={}, params={"interval": None}, run_id="scheduled__1")) == want
    assert keys(run(params={"interval": alerted["interval"]}, run_id="manual__1")) == want

    def respond(known, stop):
        seen = _parked_requests(known, len(want), stop)
        for i in seen["requests"]:
            _respond(seen["run_id"], i, "Acknowledge", "dave")
        return seen

    dr, seen = _run(dag, {"interval": None}, respond)
    states = _states(dr)
    assert str(dr.state).endswith("success"), states
    assert states["ask"] == ["success"] * len(want), states
    assert not [r for r in seen["requests"].values() if waits.split("|")[2] in r["subject"]]
    answered = {r["incident_key"]: r["by"] for r in answers.read_all(store, "churn")}
    assert answered == {k: "dave" for k in want}
    requests = {(r["incident_key"], r["run_id"]): r["state"] for r in feedback.read_requests(store, "churn")}
    assert requests[(waits, "scheduled__elsewhere")] == "pending" and (waits, dr.run_id) not in requests
    assert requests[(expired, dr.run_id)] == "answered"

    # the request checks again when it is made: two runs that planned at once do not both ask
    def probe(key: str) -> AlertQuestion:
        return AlertQuestion(task_id="probe", model="churn", incident_key=key, subject="s", options=list(OPTIONS),
                             response_timeout=timedelta(days=3))

    ti = SimpleNamespace(run_id="manual__racing", dag_id=DAG_ID, map_index=0)
    with pytest.raises(AirflowSkipException, match="already asked in run scheduled__elsewhere"):
        probe(waits).execute({"ti": ti})
    mine = [r for r in feedback.read_requests(store, "churn", waits) if r["run_id"] == "manual__racing"]
    assert [r["state"] for r in mine] == ["superseded"]
    assert feedback.waiting(feedback.read_requests(store, "churn"), now)[waits]["run_id"] == "scheduled__elsewhere"
    with pytest.raises(AirflowSkipException, match="answered meanwhile .*acknowledged by dave"):
        probe(expired).execute({"ti": ti})

    # the trigger form, through the REST API's own handler: `interval` empty or null is a run
    _trigger_by_hand()


def _trigger_by_hand() -> None:
    """POST /api/v2/dags/{dag_id}/dagRuns, as the UI's trigger form sends it (an emptied field
    is null), through the core API's handler on the DAG dag.test() synced; then the runs it
    made are removed (no scheduler here would run them)."""
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.api_fastapi.core_api.datamodels.dag_run import TriggerDAGRunPostBody
    from airflow.api_fastapi.core_api.routes.public.dag_run import trigger_dag_run
    from airflow.models.dagbag import DBDagBag
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from fastapi import HTTPException
    from sqlalchemy import delete

    user = SimpleAuthManagerUser(username="alice", role="admin")
    made = []
    try:
        for conf in ({"interval": None}, {"interval": ""}, {"interval": "2026-10-04"}):
            with create_session() as session:
                dr = trigger_dag_run(DAG_ID, TriggerDAGRunPostBody(logical_date=None, conf=conf), dag_bag=DBDagBag(),
                                     user=user, session=session, request=SimpleNamespace(headers={}))
                made.append(dr.run_id)
                assert dr.conf == conf
        with pytest.raises(HTTPException) as refused, create_session() as session:
            trigger_dag_run(DAG_ID, TriggerDAGRunPostBody(logical_date=None, conf={"interval": "last tuesday"}),
                            dag_bag=DBDagBag(), user=user, session=session, request=SimpleNamespace(headers={}))
        assert refused.value.status_code == 400 and "'last tuesday' does not match" in str(refused.value.detail)
    finally:
        with create_session() as session:
            session.execute(delete(DagRun).where(DagRun.dag_id == DAG_ID, DagRun.run_id.in_(made)))


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
    got = run(triggering_asset_events={alerts_asset("churn"): [other, event]}, params={"interval": None},
              run_id="asset_triggered__1")
    assert [i["incident_key"] for i in got] == rest
    assert all(i["model"] == "churn" and i["incident"] == alerted["interval"] and i["text"] for i in got)
    # the Params path: an interval with no incidents; empty: every incident still open
    assert run(triggering_asset_events={}, params={"interval": "2026-10-01"}, run_id="manual__1") == []
    assert [i["incident_key"] for i in run(params={"interval": ""}, run_id="manual__2")] == rest


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
    # the Asset, or once a day: a run catches what was raised while the DAG was paused
    assert type(fb.timetable).__name__ == "AssetOrTimeSchedule"
    assert [a.uri for a in fb.timetable.asset_condition.objects] == ["driftline://churn/alerts"]
    assert fb.timetable.timetable.expression == "0 6 * * *" and fb.catchup is False
    assert set(fb.params) == {"model", "interval"}
    ask = fb.get_task("ask")
    assert type(ask).__name__.endswith("MappedOperator")
    assert ask.partial_kwargs["response_timeout"] == timedelta(days=3) and ask.partial_kwargs["model"] == "churn"
    assert ask.partial_kwargs.get("defaults") is None and ask.partial_kwargs["retries"] == 0
    assert fb.get_task("summarise_answers").trigger_rule == "all_done"
