"""Alerts from violations: persistence ("N of the last M intervals"), incidents announced once
when they open and once when they resolve, and deliveries recorded so nothing goes out twice.
The intervals here are hand-made: each one's violations and evaluated stages are written to a
local store as the stages would write them."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from driftline.stages.alerts import AlertDeliveryError, dispatch, evaluate, read_events
from driftline.store import Store

T0 = datetime(2026, 10, 1, tzinfo=timezone.utc)


def _day(i: int) -> datetime:
    return T0 + timedelta(days=i)


def _drift_violation(feature: str, stat: float = 0.31) -> dict:
    return {"feature_name": feature, "constraint_check_type": "baseline_drift_check",
            "description": f"Baseline drift distance: {stat} exceeds threshold: 0.2 (psi)",
            "details": {"method": "psi", "statistic": stat, "threshold": 0.2, "pvalue": None}}


def _write_interval(store: Store, i: int, violations: list[dict], drift_checked: bool = True,
                    quality_status: str = "ok") -> None:
    prefix = Store.run_prefix("m", _day(i))
    store.write_json(f"{prefix}/constraint_violations.json", {"violations": violations})
    store.write_json(f"{prefix}/quality.json", {"status": quality_status, "baseline": "v3"})
    store.write_json(f"{prefix}/drift.json", {
        "checked": drift_checked, "baseline": "v3",
        "features": {"income": {"reference": {"mean": 50.0, "max": 90.0}, "current": {"mean": 61.0, "max": 120.0},
                                "contribution_share": 0.8}}})


@pytest.fixture
def setup(tmp_path, make_config):
    store = Store(f"file://{tmp_path}/store")

    def cfg(**alerting):
        return make_config(features=[{"name": "income", "type": "numeric"}, {"name": "region", "type": "categorical"}],
                           alerting=alerting or {}, alerts=[{"type": "log", "min_severity": "info"},
                                                            {"type": "webhook", "conn_id": "hook"}])
    return store, cfg


def _statuses(record: dict) -> dict[str, str]:
    return {f"{a['check']}:{a['subject']}": a["status"] for a in record["alerts"]}


def test_persistence_two_of_three_on_a_hand_made_series(setup):
    store, cfg = setup
    c = cfg(drift={"severity": "warning", "persistence": {"hold": 2, "of": 3}})
    # income drifts on days 1, 3, 4, 5 (not 0, 2, 6, 7, 8): one day alone (1) is only pending;
    # 3 is the second failure in 3 days (1, 3) -> fires; 4, 5 the same incident; 6 passes but
    # 2 of the last 3 (4, 5) failed -> stays open; 7: 1 of 3 -> resolved; 8: nothing
    series = {0: False, 1: True, 2: False, 3: True, 4: True, 5: True, 6: False, 7: False, 8: False}
    want = {0: None, 1: "pending", 2: None, 3: "firing", 4: "firing", 5: "firing", 6: "open", 7: "resolved", 8: None}
    messages = []
    for i, drifted in series.items():
        _write_interval(store, i, [_drift_violation("income")] if drifted else [])
        rec = evaluate(c, store, _day(i), "data")
        assert _statuses(rec).get("baseline_drift_check:income") == want[i], (i, rec["alerts"])
        messages += rec["messages"]
    # one incident, opened on day 3: announced once, resolved once
    assert [(m["event"], m["interval"], m["incident"]) for m in messages] == [
        ("firing", "2026-10-04T0000Z", "2026-10-04T0000Z"), ("resolved", "2026-10-08T0000Z", "2026-10-04T0000Z")]
    firing = messages[0]
    assert firing["severity"] == "warning" and firing["subject"] == "income"
    assert firing["text"] == ("income: psi 0.31 > 0.2 against baseline v3; mean 50 -> 61, max 90 -> 120; "
                              "drives 80% of the drift (failed in 2 of the last 3 intervals)")
    assert firing["id"] == "m|baseline_drift_check|income|2026-10-04T0000Z|firing"


def test_one_of_one_fires_at_once_and_unevaluated_intervals_carry_the_incident(setup):
    store, cfg = setup
    c = cfg(drift={"persistence": {"hold": 1, "of": 1}, "severity": "critical"})
    _write_interval(store, 0, [_drift_violation("income")])
    assert evaluate(c, store, _day(0), "data")["messages"][0]["event"] == "firing"
    # day 1 has no data: drift was not evaluated, so the incident neither resolves nor re-fires
    _write_interval(store, 1, [], drift_checked=False, quality_status="no_data")
    rec = evaluate(c, store, _day(1), "data")
    assert _statuses(rec) == {"baseline_drift_check:income": "open"} and rec["messages"] == []
    # day 2 drifts again: the same incident (opened day 0), nothing new to send
    _write_interval(store, 2, [_drift_violation("income", 0.5)])
    rec = evaluate(c, store, _day(2), "data")
    assert rec["alerts"][0]["incident"] == "2026-10-01T0000Z" and rec["messages"] == []
    # day 3 passes: resolved, one message
    _write_interval(store, 3, [])
    rec = evaluate(c, store, _day(3), "data")
    assert [m["event"] for m in rec["messages"]] == ["resolved"]
    assert rec["messages"][0]["id"] == "m|baseline_drift_check|income|2026-10-01T0000Z|resolved|2026-10-04T0000Z"


def _write_stages(store: Store, i: int, drift_violations: list[dict]) -> None:
    """An interval as today's stages leave it: each stage's result and violations/<stage>.json."""
    from driftline.store.violations import write_violations

    prefix = Store.run_prefix("m", _day(i))
    write_violations(store, prefix, "data_quality", [])
    store.write_json(f"{prefix}/quality.json", {"status": "ok", "baseline": "v3"})
    store.write_json(f"{prefix}/drift.json", {"checked": True, "baseline": "v3", "features": {}})
    write_violations(store, prefix, "drift", drift_violations)


def _clear(store: Store, i: int, upto: str | None = None) -> None:
    """What a re-run of interval i does first (driftline.pipeline.interval.VERDICT_ARTIFACTS, in order),
    stopped after ``upto``: the state another run's alert stage may find."""
    from driftline.pipeline.interval import VERDICT_ARTIFACTS

    for name in VERDICT_ARTIFACTS:
        store.delete(f"{Store.run_prefix('m', _day(i))}/{name}")
        if name == upto:
            return


def test_an_interval_cleared_by_a_rerun_before_its_alerts_resolves_nothing(setup):
    """The race found on S3: one run's alert stage read the interval after another run of it
    had removed its violations (not yet drift.json) and sent a false RESOLVED."""
    store, cfg = setup
    c = cfg(drift={"persistence": {"hold": 1, "of": 1}})
    _write_stages(store, 0, [_drift_violation("income")])
    assert [m["event"] for m in evaluate(c, store, _day(0), "data")["messages"]] == ["firing"]
    _write_stages(store, 1, [_drift_violation("income")])
    for upto in ("violations", "drift.json", None):  # half cleared, further, all of it
        _clear(store, 1, upto)
        rec = evaluate(c, store, _day(1), "data")
        assert rec["messages"] == [] and rec["evaluated"]["drift"] is False, upto
        assert _statuses(rec) == {"baseline_drift_check:income": "open"}
    # half written by the re-run: violations without their result (or the reverse): nothing either
    prefix = Store.run_prefix("m", _day(1))
    from driftline.store.violations import write_violations

    write_violations(store, prefix, "drift", [])
    assert evaluate(c, store, _day(1), "data")["messages"] == []
    store.write_bytes(f"{prefix}/drift.json", b'{"checked": tr')  # unreadable: as good as absent
    assert evaluate(c, store, _day(1), "data")["messages"] == []
    # committed, and passing: now it resolves
    _write_stages(store, 1, [])
    assert [m["event"] for m in evaluate(c, store, _day(1), "data")["messages"]] == ["resolved"]


def test_an_earlier_interval_half_cleared_keeps_the_incident_open(setup):
    """Persistence over a window: an earlier interval being re-run may have failed as well, so
    no incident resolves over it."""
    store, cfg = setup
    c = cfg(drift={"persistence": {"hold": 2, "of": 3}})
    for i in range(3):
        _write_stages(store, i, [_drift_violation("income")])
        evaluate(c, store, _day(i), "data")
    _write_stages(store, 3, [])
    _clear(store, 2, "violations")  # day 2 is being re-run while day 3 is evaluated
    rec = evaluate(c, store, _day(3), "data")
    (alert,) = rec["alerts"]
    assert alert["status"] == "open" and rec["messages"] == []
    assert alert["note"] == "passed here; failed in 1 of the last 3 intervals, and 1 earlier interval(s) are being " \
                            "re-evaluated"
    _write_stages(store, 2, [_drift_violation("income")])  # the re-run of day 2 commits: still 2 of 3
    assert _statuses(evaluate(c, store, _day(3), "data")) == {"baseline_drift_check:income": "open"}


def test_severity_per_check_and_disabled_family(setup):
    store, cfg = setup
    c = cfg(severities={"range_check": "info"}, drift={"enabled": False})
    _write_interval(store, 0, [_drift_violation("income"),
                               {"feature_name": "income", "constraint_check_type": "range_check",
                                "description": "2% outside [0, 90]", "details": {}}])
    rec = evaluate(c, store, _day(0), "data")
    assert [(a["check"], a["severity"]) for a in rec["alerts"]] == [("range_check", "info")]


def test_reevaluation_is_deterministic(setup):
    """A re-run (or a backfill) of the same intervals gives the same alerts and message ids."""
    store, cfg = setup
    c = cfg()
    for i, v in enumerate([[], [_drift_violation("income")], [_drift_violation("income")], []]):
        _write_interval(store, i, v)
    first = [evaluate(c, store, _day(i), "data") for i in range(4)]
    again = [evaluate(c, store, _day(i), "data") for i in range(4)]
    ids = lambda recs: [m["id"] for r in recs for m in r["messages"]]  # noqa: E731
    assert ids(first) == ids(again) and len(ids(first)) == 1


def test_dispatch_sends_once_and_a_retry_sends_only_what_failed(setup):
    store, cfg = setup
    c = cfg(drift={"persistence": {"hold": 1, "of": 1}})
    _write_interval(store, 0, [_drift_violation("income"), _drift_violation("region")])
    messages = evaluate(c, store, _day(0), "data")["messages"]
    assert len(messages) == 2
    received, refuse = [], {messages[1]["id"]}

    def send(route, message):
        if message["id"] in refuse:
            raise ConnectionError("receiver down")
        received.append(message["id"])
        return "200"

    with pytest.raises(AlertDeliveryError, match=r"1 delivered.*1 FAILED.*receiver down"):
        dispatch(c, store, messages, send)
    assert received == [messages[0]["id"]]
    refuse.clear()
    out = dispatch(c, store, messages, send)  # the task's retry
    assert received == [messages[0]["id"], messages[1]["id"]]
    assert out["delivered"] == 1 and out["skipped"] == 1
    dispatch(c, store, messages, send)  # a re-run of the interval
    assert len(received) == 2
    events = read_events(store, "m")
    assert [e["subject"] for e in events] == ["income", "region"]
    assert all(len(e["deliveries"]) == 1 and e["deliveries"][0]["type"] == "webhook" for e in events)


def test_resolved_goes_only_to_routes_that_got_the_firing(setup, make_config):
    store, _ = setup
    c = make_config(features=[{"name": "income", "type": "numeric"}],
                    alerting={"drift": {"persistence": {"hold": 1, "of": 1}, "severity": "warning"}},
                    alerts=[{"type": "webhook", "conn_id": "pager", "min_severity": "critical"},
                            {"type": "webhook", "conn_id": "chat", "min_severity": "info"}])
    sent = []
    for i, v in enumerate([[_drift_violation("income")], []]):
        _write_interval(store, i, v)
        dispatch(c, store, evaluate(c, store, _day(i), "data")["messages"],
                 lambda r, m: sent.append((r.conn_id, m["event"])) or "ok")
    assert sent == [("chat", "firing"), ("chat", "resolved")]


def test_feedback_suppresses_for_its_window_and_changes_the_verdict(setup):
    """A false positive on an open drift incident: the next intervals' violations are still
    recorded but raise nothing and do not count in the verdict; after the window the check
    alerts again (a new incident); a re-run keeps the answer."""
    from driftline.pipeline.records import record_run
    from driftline.stages import answers, feedback

    store, cfg = setup
    c = cfg(drift={"persistence": {"hold": 1, "of": 1}}, suppress_false_positive="2d")
    sent = []

    def day(i: int, drifted: bool) -> dict:
        _write_interval(store, i, [_drift_violation("income")] if drifted else [])
        rec = evaluate(c, store, _day(i), "data")
        dispatch(c, store, rec["messages"], lambda route, m: sent.append(m["id"]) or "200")
        return record_run(c, store, _day(i), _day(i + 1), {"data_quality": {"status": "ok", "baseline": "v3"}})

    assert day(0, True)["status"] == "violations"
    (incident,) = sent
    with pytest.raises(answers.FeedbackError, match="no alert incident"):
        feedback.record(c, store, "m|baseline_drift_check|nope|2026-10-01T0000Z", "false_positive", "alice")
    rec = feedback.record(c, store, incident, "false_positive", "alice", "promo week, not drift").record
    assert rec["until"].startswith("2026-10-03")  # 2 days from the incident's interval (day 0)
    run1 = day(1, True)
    assert run1["status"] == "ok" and run1["violations"] == 0
    stored = store.read_json(f"{Store.run_prefix('m', _day(1))}/run.json")
    assert stored["suppressed"][0]["by"] == "alice" and stored["suppressed"][0]["kind"] == "false_positive"
    (a,) = store.read_json(f"{Store.run_prefix('m', _day(1))}/alerts.data.json")["alerts"]
    assert a["status"] == "suppressed" and "marked false positive by alice" in a["message"]
    assert day(1, True)["status"] == "ok"  # a re-run keeps the answer
    # day 2 is past the window: it alerts again, as a new incident
    assert day(2, True)["status"] == "violations"
    assert sent == [incident, "m|baseline_drift_check|income|2026-10-03T0000Z|firing"]
    assert [r["kind"] for r in answers.read_all(store, "m")] == ["false_positive"]
    # acknowledging records who and when, and suppresses nothing
    feedback.record(c, store, sent[-1], "acknowledged", "bob")
    assert day(3, True)["status"] == "violations"


def test_the_suppression_window_counts_from_the_incidents_interval(setup):
    """An incident opens on day 0 and fires through day 4 before anyone answers. The false
    positive (7 days) covers days 0-6 -- counted from the incident's interval, not from day 4,
    the latest interval evaluated when the answer came -- so days 5 and 6 are suppressed, day 7
    opens a new incident, and a re-run (or backfill) of day 2 is suppressed as well: the
    answer's effect does not depend on when it was given."""
    from driftline.stages import feedback
    from driftline.stages.alerts import incidents

    store, cfg = setup
    c = cfg(drift={"persistence": {"hold": 1, "of": 1}}, suppress_false_positive="7d")
    sent = []

    def day(i: int) -> dict:
        _write_interval(store, i, [_drift_violation("income")])
        store.write_bytes(f"{Store.run_prefix('m', _day(i))}/batch.parquet", b"")  # ingested: "evaluated"
        rec = evaluate(c, store, _day(i), "data")
        dispatch(c, store, rec["messages"], lambda route, m: sent.append(m["id"]) or "200")
        return {a["subject"]: a for a in rec["alerts"]}["income"]

    assert [day(i)["status"] for i in range(5)] == ["firing"] * 5
    (incident,) = sent
    rec = feedback.record(c, store, incident, "false_positive", "alice").record
    assert (rec["from"], rec["until"]) == (_day(0).isoformat(), _day(7).isoformat())
    assert [day(i)["status"] for i in (5, 6)] == ["suppressed"] * 2
    assert day(7)["status"] == "firing" and sent[-1] == "m|baseline_drift_check|income|2026-10-08T0000Z|firing"
    assert day(2)["status"] == "suppressed"  # a re-run inside the window
    (old,) = [i for i in incidents(store, "m") if i["incident_key"] == incident.rsplit("|", 1)[0]]
    assert (old["state"], old["suppressed_until"], old["ended"]) == ("suppressed", _day(7).isoformat(),
                                                                     "2026-10-08T0000Z")


# -- order: backfills, out-of-order and re-runs -----------------------------------------------
SERIES = {0: False, 1: True, 2: False, 3: True, 4: True, 5: True, 6: False, 7: False, 8: False}


def _records(store: Store, n: int) -> dict[int, dict]:
    from driftline.stages.alerts import read_record

    return {i: {k: (a["status"], a["incident"]) for k, a in _statuses_full(read_record(store, "m", _day(i), "data"))}
            for i in range(n)}


def _statuses_full(record: dict | None):
    return [(f"{a['check']}:{a['subject']}", a) for a in (record or {}).get("alerts", [])]


@pytest.mark.parametrize("order", [[8, 7, 6, 5, 4, 3, 2, 1, 0], [4, 5, 6, 0, 1, 2, 3, 7, 8], [3, 0, 8, 1, 5, 2, 7, 4, 6]])
def test_any_evaluation_order_gives_the_incidents_of_the_in_order_run(setup, tmp_path, order):
    from driftline.stages.alerts import evaluate_in_order

    _, cfg = setup
    c = cfg(drift={"severity": "warning", "persistence": {"hold": 2, "of": 3}})
    reference = Store(f"file://{tmp_path}/in-order")
    shuffled = Store(f"file://{tmp_path}/shuffled")
    for store in (reference, shuffled):
        for i, drifted in SERIES.items():
            _write_interval(store, i, [_drift_violation("income")] if drifted else [])
    want_messages = []
    for i in SERIES:
        want_messages += [m for r in evaluate_in_order(c, reference, [_day(i)], "data") for m in r["messages"]]
        dispatch(c, reference, want_messages, send=lambda route, m: "ok")
    for i in order:
        records = evaluate_in_order(c, shuffled, [_day(i)], "data")
        dispatch(c, shuffled, [m for r in records for m in r["messages"]], send=lambda route, m: "ok")
    # the records end as the in-order run left them: the same incidents, opened and resolved
    # in the same intervals, whatever the order
    assert _records(shuffled, 9) == _records(reference, 9)
    # the in-order run announced the incident of day 3 once and its resolution once
    assert [(m["event"], m["interval"]) for m in want_messages] == [
        ("firing", "2026-10-04T0000Z"), ("resolved", "2026-10-08T0000Z")]
    got = {(e["event"], e["incident"], e["interval"], e.get("rejudged")) for e in read_events(shuffled, "m")}
    assert ("firing", "2026-10-04T0000Z", "2026-10-04T0000Z", None) in got
    assert ("resolved", "2026-10-04T0000Z", "2026-10-08T0000Z", None) in got
    # whatever a partial view announced is withdrawn by a message that says so, never left open
    from driftline.stages.alerts import incidents

    for inc in incidents(shuffled, "m"):
        if inc["opened"] != "2026-10-04T0000Z":
            assert inc["state"] == "withdrawn" and inc["rejudged"], inc
        else:
            assert inc["state"] == "resolved" and inc["resolved"] == "2026-10-08T0000Z", inc


def test_a_rerun_with_the_same_findings_rewrites_the_same_bytes_and_sends_nothing(setup):
    from driftline.stages.alerts import evaluate_in_order

    store, cfg = setup
    c = cfg(drift={"severity": "warning", "persistence": {"hold": 1, "of": 1}})
    for i in range(4):
        _write_interval(store, i, [_drift_violation("income")] if i in (1, 2) else [])
        dispatch(c, store, [m for r in evaluate_in_order(c, store, [_day(i)], "data") for m in r["messages"]],
                 send=lambda route, m: "ok")
    files = {i: (store.read_bytes(f"{Store.run_prefix('m', _day(i))}/alerts.data.json")) for i in range(4)}
    sent = []
    for i in (2, 0, 3, 1):
        out = dispatch(c, store, [m for r in evaluate_in_order(c, store, [_day(i)], "data") for m in r["messages"]],
                       send=lambda route, m: sent.append(m["id"]) or "ok")
        assert out["delivered"] == 0
    assert sent == []
    assert {i: store.read_bytes(f"{Store.run_prefix('m', _day(i))}/alerts.data.json") for i in range(4)} == files


def test_rejudging_appends_why_and_withdraws_what_was_announced(setup):
    from driftline.stages.alerts import evaluate_in_order, read_record

    store, cfg = setup
    c = cfg(drift={"severity": "warning", "persistence": {"hold": 1, "of": 1}})
    for i in range(3):
        _write_interval(store, i, [_drift_violation("income")] if i == 1 else [])
        dispatch(c, store, [m for r in evaluate_in_order(c, store, [_day(i)], "data") for m in r["messages"]],
                 send=lambda route, m: "ok")
    # day 1 is re-run against another baseline and passes: its incident is withdrawn, the
    # resolution announced on day 2 too (nothing was open), each with a message saying why
    _write_interval(store, 1, [])
    records = evaluate_in_order(c, store, [_day(1)], "data")
    msgs = [m for r in records for m in r["messages"]]
    assert [(m["event"], m["rejudged"], m["interval"]) for m in msgs] == [
        ("rejudged", "withdrawn", "2026-10-02T0000Z"), ("rejudged", "reopened", "2026-10-03T0000Z")]
    assert "withdrawn" in msgs[0]["text"] and "re-run of 2026-10-02T0000Z" in msgs[0]["text"]
    sent = []
    dispatch(c, store, msgs, send=lambda route, m: sent.append(m["id"]) or "ok")
    assert len(sent) == 2  # on the webhook, which had the firing message
    rec = read_record(store, "m", _day(1), "data")
    assert rec["revisions"][-1]["changes"] == ["baseline_drift_check income: firing (incident 2026-10-02T0000Z) -> "
                                               "nothing"]
    later = read_record(store, "m", _day(2), "data")
    assert "re-judged after 2026-10-02T0000Z" in later["revisions"][-1]["why"]
    # the same re-run again: nothing new
    assert [m for r in evaluate_in_order(c, store, [_day(1)], "data") for m in r["messages"]] == []


def test_sentence_prints_the_relation_that_holds_and_the_bound_crossed():
    from driftline.stages.alerts import sentence

    def drift(stat, method="wasserstein", th=0.1):
        return {"feature_name": "x", "constraint_check_type": "baseline_drift_check",
                "details": {"method": method, "statistic": stat, "threshold": th, "pvalue": None}}
    assert sentence(drift(0.455), None, "v1") == "x: wasserstein 0.455 > 0.1 against baseline v1"
    # wasserstein fires at >= its threshold: on the threshold the sentence must not say ">"
    assert sentence(drift(0.1), None, "v1") == "x: wasserstein 0.1 >= 0.1 against baseline v1"
    # a statistic just past its threshold is printed with the digits that show it
    assert sentence(drift(0.10004, "psi"), None, "v1") == "x: psi 0.10004 > 0.1 against baseline v1"
    # two-sided checks carry the crossed bound in their description, which the sentence keeps
    from driftline.stages.drift import violations

    [mv] = violations({"multivariate": {"checked": True, "pca_reconstruction": {
        "method": "pca_reconstruction", "statistic": 0.012, "threshold": 0.031, "lower_threshold": 0.020,
        "drifted": True, "pvalue": 1e-9, "reference_error": 0.0255}}})
    assert sentence(mv, None, "v1") == ("*: Multivariate drift (pca_reconstruction): mean reconstruction error "
                                        "0.012 < lower bound 0.02 (reference 0.0255)")
