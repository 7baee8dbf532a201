"""Answers to alert incidents (driftline.stages.feedback) on hand-made alert histories in a local store:
one answer in force per incident, the same answer recorded once, a different one recorded as a
change; which incidents a run asks about, and not twice; the CLI's word on a repeated answer."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from driftline.stages import answers, feedback
from driftline.store import Store

MODEL = "m"
T0 = datetime(2026, 10, 1, tzinfo=timezone.utc)
NOW = datetime(2026, 12, 1, 12, tzinfo=timezone.utc)


def _key(check: str, subject: str, incident: str) -> str:
    return "|".join([MODEL, check, subject, incident])


def _event(check, subject, incident, event="firing", interval=None, **extra) -> dict:
    return {"model": MODEL, "check": check, "subject": subject, "incident": incident,
            "incident_key": _key(check, subject, incident), "interval": interval or incident, "event": event,
            "severity": "warning", "text": f"{subject}: bad", "title": f"[driftline] {check} {subject}", **extra}


def _write_events(store: Store, events: list[dict]) -> None:
    for n, e in enumerate(events):
        store.write_json(f"alerts/{MODEL}/events/{n:04d}.json", e)


@pytest.fixture
def site(tmp_path, make_config):
    """A store with three drift incidents of model m (x opened 2026-10-02, y 2026-10-03, z
    2026-10-04), and the model's config (false positives suppress 3 days, expected 5)."""
    store = Store(f"file://{tmp_path}/store")
    _write_events(store, [_event("baseline_drift_check", s, f"2026-10-0{d}T0000Z") for s, d in
                          (("x", 2), ("y", 3), ("z", 4))])
    cfg = make_config(alerting={"suppress_false_positive": "3d", "suppress_expected": "5d"})
    return store, cfg


X, Y, Z = (_key("baseline_drift_check", s, f"2026-10-0{d}T0000Z") for s, d in (("x", 2), ("y", 3), ("z", 4)))


def test_the_same_answer_again_records_nothing(site):
    store, cfg = site
    first = feedback.record(cfg, store, X, "false_positive", "alice", " promo week ", at=NOW)
    assert first.new and first.replaced is None
    assert (first.record["comment"], first.record["by"], first.record["source"]) == ("promo week", "alice", "cli")
    # a second click, the same answer from another place or person, without a comment or with the same one
    for by, comment, source in (("alice", "promo week", "driftline-page"), ("bob", "", "airflow-hitl"),
                                ("alice", "  promo week", "cli")):
        again = feedback.record(cfg, store, X, "false_positive", by, comment, at=NOW + timedelta(hours=1),
                                source=source)
        assert not again.new and again.replaced is None
        assert (again.record["by"], again.record["at"], again.record["id"]) == ("alice", NOW.isoformat(),
                                                                                first.record["id"])
    assert [r["by"] for r in answers.read_all(store, MODEL)] == ["alice"]


def test_a_different_answer_is_a_change_and_the_latest_is_in_force(site):
    store, cfg = site
    feedback.record(cfg, store, X, "false_positive", "alice", "promo week", at=NOW)
    assert [r["incident_key"] for r in answers.suppressions(store, MODEL)] == [X]
    # bob takes the false positive back: in force now, and X is no longer suppressed
    changed = feedback.record(cfg, store, X, "acknowledged", "bob", at=NOW + timedelta(hours=2))
    assert changed.new and changed.replaced["by"] == "alice"
    assert changed.record["replaces"] == {k: changed.replaced[k] for k in ("id", "kind", "by", "at", "comment",
                                                                           "source")}
    assert answers.note(changed.record) == \
        "acknowledged by bob on 2026-12-01 (was: false positive by alice on 2026-12-01)"
    assert answers.suppressions(store, MODEL) == []
    # the same kind with a comment of its own says something new: a change too
    commented = feedback.record(cfg, store, X, "acknowledged", "carol", "ticket OPS-12", at=NOW + timedelta(hours=3))
    assert commented.new and commented.replaced["by"] == "bob"
    # an acknowledgement changed to expected starts suppressing
    feedback.record(cfg, store, Y, "acknowledged", "bob", at=NOW)
    feedback.record(cfg, store, Y, "expected", "bob", "seasonal", at=NOW + timedelta(hours=1))
    assert [(r["incident_key"], r["kind"]) for r in answers.suppressions(store, MODEL)] == [(Y, "expected")]
    assert [(r["incident_key"], r["by"]) for r in answers.in_force(answers.read_all(store, MODEL))] == [
        (Y, "bob"), (X, "carol")]
    # the incidents agree (the page, the history): the answer in force decides the state
    from driftline.stages.alerts import incidents

    state = {i["incident_key"]: (i["state"], i["answer"]["by"] if i["answer"] else None, len(i["answers"]))
             for i in incidents(store, MODEL)}
    assert state == {X: ("open", "carol", 3), Y: ("suppressed", "bob", 2), Z: ("open", None, 0)}


def test_an_answer_given_before_the_one_in_force_changes_what_it_followed(site):
    """An Airflow request answered at 10:00 but recorded after a page answer of 10:05: it
    replaces what was in force at 10:00 (nothing), and the page answer stays in force."""
    store, cfg = site
    feedback.record(cfg, store, Z, "false_positive", "alice", at=NOW + timedelta(minutes=5), source="driftline-page")
    late = feedback.record(cfg, store, Z, "acknowledged", "bob", at=NOW, source="airflow-hitl")
    assert late.new and late.replaced is None
    assert [r["by"] for r in answers.incident_answers(store, MODEL, Z)] == ["bob", "alice"]
    assert [r["by"] for r in answers.suppressions(store, MODEL)] == ["alice"]


def test_two_identical_answers_at_once_make_one_record(site, monkeypatch):
    """A double submit: both requests read the answers before either is stored. The answer's
    file is named by what it answers and says, so the second finds the first's."""
    store, cfg = site
    stale = answers.incident_answers(store, MODEL, X)  # [] -- what both requests saw
    monkeypatch.setattr(feedback, "incident_answers", lambda *a: list(stale))
    one = feedback.record(cfg, store, X, "expected", "alice", "promo", at=NOW)
    two = feedback.record(cfg, store, X, "expected", "alice", "promo", at=NOW + timedelta(seconds=1))
    assert one.new and not two.new and two.record["at"] == NOW.isoformat()
    monkeypatch.undo()
    assert len(answers.read_all(store, MODEL)) == 1


def test_the_window_is_the_incidents_not_the_answers(site):
    store, cfg = site
    assert answers.suppression_window(cfg, "2026-10-02T0000Z", "false_positive") == (
        T0 + timedelta(days=1), T0 + timedelta(days=4))
    assert answers.suppression_window(cfg, "2026-10-02T0000Z", "expected")[1] == T0 + timedelta(days=6)
    with pytest.raises(answers.FeedbackError, match="suppresses nothing"):
        answers.suppression_window(cfg, "2026-10-02T0000Z", "acknowledged")
    # intervals run later than the incident (here up to 2026-10-20) change nothing, nor does the answer's time
    for d in range(1, 21):
        store.write_bytes(f"{Store.run_prefix(MODEL, T0 + timedelta(days=d - 1))}/batch.parquet", b"")
    rec = feedback.record(cfg, store, X, "false_positive", "alice", at=NOW).record
    assert (rec["from"], rec["until"]) == ("2026-10-02T00:00:00+00:00", "2026-10-05T00:00:00+00:00")
    assert "until" not in feedback.record(cfg, store, Y, "acknowledged", "alice").record


def test_bad_answers_say_what_is_wrong(site):
    store, cfg = site
    with pytest.raises(answers.FeedbackError, match="expected one of acknowledged, false_positive, expected"):
        feedback.record(cfg, store, X, "ignore", "alice")
    with pytest.raises(answers.FeedbackError, match="needs who gives it"):
        feedback.record(cfg, store, X, "expected", " ")
    with pytest.raises(answers.FeedbackError, match="no alert incident"):
        feedback.record(cfg, store, _key("range_check", "x", "2026-10-02T0000Z"), "expected", "alice")
    assert answers.read_all(store, MODEL) == []


# -- asking: every open unanswered incident, never twice at once ------------------------------
def test_to_ask_every_open_incident_once(site):
    store, cfg = site
    events = [_event("baseline_drift_check", s, f"2026-10-0{d}T0000Z") for s, d in
              (("x", 2), ("y", 3), ("z", 4), ("w", 4), ("v", 5), ("u", 5), ("t", 1))]
    # w was withdrawn by a re-judgement; u resolved; t was answered
    events += [_event("baseline_drift_check", "w", "2026-10-04T0000Z", "rejudged", "2026-10-06T0000Z",
                      rejudged="withdrawn"),
               _event("baseline_drift_check", "u", "2026-10-05T0000Z", "resolved", "2026-10-06T0000Z")]
    W, V, U, T = (_key("baseline_drift_check", s, f"2026-10-0{d}T0000Z") for s, d in
                  (("w", 4), ("v", 5), ("u", 5), ("t", 1)))
    answers = [{"incident_key": T, "kind": "acknowledged", "at": NOW.isoformat(), "id": "a"}]
    ask = lambda plan: [i["incident_key"] for i in plan.ask]  # noqa: E731
    # nobody asked yet: every open unanswered incident, oldest first (what a paused DAG missed included)
    assert ask(feedback.to_ask(events, answers, [], NOW)) == [X, Y, Z, V]
    # an announcement adds its incidents even if resolved since, never a withdrawn or answered one
    assert ask(feedback.to_ask(events, answers, [], NOW, announced=[U, W, T])) == [X, Y, Z, U, V]
    # by hand, one interval: those that opened then (withdrawn ones left out)
    assert ask(feedback.to_ask(events, answers, [], NOW, interval="2026-10-04T0000Z")) == [Z]
    # requests: X waits in another run; Y's timed out; Z's deadline passed; V waits in this very run
    day = timedelta(days=1)
    requests = [
        feedback.mark_asked(store, MODEL, X, "scheduled__1", expires=NOW + day, at=NOW - 2 * day),
        feedback.mark_asked(store, MODEL, Y, "scheduled__1", expires=NOW + day, at=NOW - 2 * day),
        feedback.mark_asked(store, MODEL, Z, "scheduled__0", expires=NOW - timedelta(seconds=1), at=NOW - 3 * day),
        feedback.mark_asked(store, MODEL, V, "manual__me", expires=NOW + 3 * day, at=NOW),
    ]
    feedback.mark_asked(store, MODEL, Y, "scheduled__1", expires=None, state="timed_out", at=NOW - timedelta(hours=1))
    stored = feedback.read_requests(store, MODEL)
    assert len(stored) == 4 and [r["state"] for r in stored if r["incident_key"] == Y] == ["timed_out"]
    assert requests[1]["state"] == "pending"  # what was returned then; the store has the latest
    plan = feedback.to_ask(events, answers, stored, NOW, run_id="manual__me")
    assert ask(plan) == [Y, Z, V]
    assert [(i["incident_key"], r["run_id"]) for i, r in plan.waiting] == [(X, "scheduled__1")]
    # two runs that asked at once agree which one asks: the earliest request
    feedback.mark_asked(store, MODEL, Y, "scheduled__2", expires=NOW + timedelta(days=3), at=NOW)
    feedback.mark_asked(store, MODEL, Y, "manual__me", expires=NOW + timedelta(days=3), at=NOW + timedelta(seconds=1))
    waiting = feedback.waiting(feedback.read_requests(store, MODEL, Y), NOW + timedelta(seconds=2))
    assert waiting[Y]["run_id"] == "scheduled__2"
    plan = feedback.to_ask(events, answers, feedback.read_requests(store, MODEL), NOW, run_id="manual__me")
    assert ask(plan) == [Z, V]


# -- the CLI ---------------------------------------------------------------------------------
def test_cli_says_an_answer_was_already_given(site, capsys, tmp_path):
    from driftline.cli import main

    store, _ = site
    model_file = tmp_path / "m.yaml"
    model_file.write_text("name: m\nproblem_type: binary_classification\nstart_date: '2026-10-01'\n"
                          "features: [{name: x, type: numeric}]\nprediction: {label: pred, probability: proba}\n"
                          "capture: {uri: capture}\nbaseline: {training_data: train.parquet}\n"
                          "alerting: {suppress_false_positive: 3d, suppress_expected: 5d}\n")
    base = ["--store", store.uri(), "feedback", "--config", str(model_file), "--alert", X + "|firing"]
    assert main([*base, "--kind", "expected", "--by", "alice", "--comment", "promo"]) == 0
    today = datetime.now(timezone.utc).date().isoformat()
    assert capsys.readouterr().out.strip() == \
        f"{X}: marked expected by alice on {today}: promo (suppressed until 2026-10-07)"
    assert main([*base, "--kind", "expected", "--by", "bob"]) == 0
    assert "already answered, nothing new recorded: marked expected by alice" in capsys.readouterr().out
    assert main([*base, "--kind", "acknowledged", "--by", "bob"]) == 0
    assert "answer changed: acknowledged by bob on" in capsys.readouterr().out
    assert [r["by"] for r in answers.read_all(store, MODEL)] == ["alice", "bob"]
