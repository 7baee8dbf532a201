"""A person's answer to an alert, and what it changes.

Each alert incident (driftline.alerts: model, check, subject, the interval it opened in) can be
answered by a person -- from the CLI, the driftline page or Airflow's human-in-the-loop
operators -- with one of:

- ``acknowledged``: seen, being handled; recorded, changes nothing;
- ``false_positive``: the check was wrong here;
- ``expected``: real, but known (a seasonal change, a planned launch).

A false positive or an expected change **suppresses** that check on that subject for a window
(``alerting.suppress_false_positive`` / ``suppress_expected``, default 7 days) counted in data
time from the start of the interval the incident opened in (:func:`suppression_window`): the
answer covers the incident's own interval onward, whenever it was given and whatever was run or
backfilled meanwhile, so a re-run or a backfill decides as the scheduled runs did. While
suppressed, the check's violations are still recorded (SageMaker's
``constraint_violations.json`` is untouched) but they raise no alert (status ``suppressed``,
with who said what) and do not count against the run's verdict; once the window is over, a
check that still fails opens a new incident.

**One answer in force per incident.** Answers are stored append-only under
``alerts/<model>/feedback/<incident>/`` -- outside the run folders, so no re-run or backfill
loses them -- each with who, when and where from. The latest is the one **in force**
(:func:`in_force`): it alone decides whether the incident is suppressed. An answer that says
what the answer in force already says (the same kind, with no comment or the same one) records
nothing: a second click, or the same answer from Airflow after the page, is recorded once
(:func:`record` says so). A different answer is a person changing the answer: it is appended
with ``replaces`` (the answer it changes), shown as a change, and is in force from then on -- a
false positive changed to an acknowledgement stops suppressing, an acknowledgement changed to
expected starts to.

**Asking.** Airflow's human-in-the-loop requests are recorded under ``alerts/<model>/asked/``
(:func:`mark_asked`): which run asked about which incident, and until when the request waits.
An incident with a request still waiting in one run is not asked about by another
(:func:`to_ask`); a request that timed out, or whose deadline passed, no longer counts.
"""
from __future__ import annotations

import hashlib
import posixpath
from datetime import datetime, timedelta, timezone
from typing import NamedTuple

from driftline.config import ModelConfig
from driftline.store import Store, as_utc, parse_interval_key

KINDS = ("acknowledged", "false_positive", "expected")
SUPPRESSING = ("false_positive", "expected")
KIND_NOTES = {"false_positive": "marked false positive", "expected": "marked expected",
              "acknowledged": "acknowledged"}


class FeedbackError(ValueError):
    """The answer names no known alert, or is not one of KINDS."""


def feedback_prefix(model: str) -> str:
    return posixpath.join("alerts", model, "feedback")


def asked_prefix(model: str) -> str:
    return posixpath.join("alerts", model, "asked")


def _incident_id(incident_key: str) -> str:
    return hashlib.sha256(incident_key.encode()).hexdigest()[:24]


def find_incident(store: Store, model: str, ref: str) -> dict:
    """The incident an answer is about: ``ref`` is a message id or incident key
    (model|check|subject|incident[|event]) as the alert carried it."""
    from driftline.alerts import read_events

    key = ref if ref.count("|") == 3 else "|".join(ref.split("|")[:4])
    for e in read_events(store, model):
        if e.get("incident_key") == key:
            return {"incident_key": key, "check": e["check"], "subject": e["subject"], "incident": e["incident"],
                    "severity": e["severity"], "text": e["text"]}
    raise FeedbackError(f"{model}: no alert incident {key!r} in {store.uri('alerts', model, 'events')} "
                        f"(`driftline alerts --model {model}` lists them)")


class Recorded(NamedTuple):
    """What :func:`record` did. ``record``: the answer in force afterwards -- the one just
    written, or the one already stored that says the same; ``new``: whether anything was
    written; ``replaced``: the answer the new one changes (None for a first answer, or when
    nothing was written)."""

    record: dict
    new: bool
    replaced: dict | None


def suppression_window(cfg: ModelConfig, incident: str, kind: str) -> tuple[datetime, datetime]:
    """``[from, until)`` in data time that a suppressing answer covers: from the start of the
    interval the incident opened in (``incident``, an interval key), for
    ``alerting.suppress_false_positive`` (false positive) or ``suppress_expected`` (expected).
    It depends on the incident alone -- not on when the answer came, nor on which intervals had
    been run by then -- so re-runs and backfills judge as the scheduled runs did. An answer given
    after its window is over suppresses nothing the engine evaluates from then on (re-runs of
    the intervals it covers excepted)."""
    if kind not in SUPPRESSING:
        raise FeedbackError(f"feedback kind {kind!r} suppresses nothing (only {', '.join(SUPPRESSING)} do)")
    start = parse_interval_key(incident)
    length: timedelta = (cfg.alerting.suppress_false_positive if kind == "false_positive"
                         else cfg.alerting.suppress_expected)
    return start, start + length


def _says_the_same(answer: dict, kind: str, comment: str) -> bool:
    """An answer of the same kind adds nothing unless it brings a comment of its own."""
    return answer.get("kind") == kind and (not comment or comment == str(answer.get("comment") or "").strip())


def record(cfg: ModelConfig, store: Store, ref: str, kind: str, by: str, comment: str = "",
           at: datetime | None = None, source: str = "cli") -> Recorded:
    """Store a person's answer to an incident (``ref``: its key or a message id), given ``at``
    (default: now) -- unless the answer in force already says the same, which records nothing.
    A different answer is stored as a change (``replaces``: the answer in force when it was
    given). Suppressing kinds get ``from`` and ``until`` (:func:`suppression_window`).

    Two identical answers sent at once (a double submit) land on the same file: one record."""
    if kind not in KINDS:
        raise FeedbackError(f"feedback kind {kind!r}: expected one of {', '.join(KINDS)}")
    if not by.strip():
        raise FeedbackError("feedback needs who gives it (by)")
    inc = find_incident(store, cfg.name, ref)
    at = as_utc(at or datetime.now(timezone.utc))
    comment = (comment or "").strip()
    earlier = incident_answers(store, cfg.name, inc["incident_key"])
    if earlier and _says_the_same(earlier[-1], kind, comment):
        return Recorded(earlier[-1], False, None)
    # an answer given before the one in force but recorded after it (an Airflow request answered
    # just before someone answered on the page) changes what was in force when it was given
    before = [a for a in earlier if datetime.fromisoformat(a["at"]) <= at]
    replaced = before[-1] if before else None
    rec = {"model": cfg.name, **inc, "kind": kind, "by": by.strip(), "comment": comment, "at": at.isoformat(),
           "source": source}
    if kind in SUPPRESSING:
        start, until = suppression_window(cfg, inc["incident"], kind)
        rec["from"], rec["until"] = start.isoformat(), until.isoformat()
    if replaced:
        rec["replaces"] = {k: replaced.get(k) for k in ("id", "kind", "by", "at", "comment", "source")}
    # named by what it answers and says, not by the clock: the same answer sent twice at once
    # (before either is stored) writes one file
    folder = _incident_id(inc["incident_key"])
    said = _incident_id("|".join([str((replaced or {}).get("id") or ""), kind, comment]))[:12]
    name = f"{len(earlier) + 1:03d}-{said}.json"
    rel = posixpath.join(feedback_prefix(cfg.name), folder, name)
    if store.exists(rel):
        return Recorded({**store.read_json(rel), "id": f"{folder}/{name}"}, False, None)
    store.write_json(rel, rec)
    return Recorded({**rec, "id": f"{folder}/{name}"}, True, replaced)


def _read_folder(store: Store, model: str, folder: str) -> list[dict]:
    base = posixpath.join(feedback_prefix(model), folder)
    return [{**store.read_json(posixpath.join(base, name)), "id": f"{folder}/{name}"}
            for name in store.listdir(base) if name.endswith(".json")]


def _order(records: list[dict]) -> list[dict]:
    return sorted(records, key=lambda r: (datetime.fromisoformat(r["at"]), r.get("id", "")))


def incident_answers(store: Store, model: str, incident_key: str) -> list[dict]:
    """The answers to one incident, oldest first (the last is in force), each with its ``id``."""
    return _order(_read_folder(store, model, _incident_id(incident_key)))


def read_all(store: Store, model: str) -> list[dict]:
    """Every answer, oldest first, each with its ``id`` (its path under
    ``alerts/<model>/feedback/``)."""
    out = []
    for folder in store.listdir(feedback_prefix(model)):
        out += _read_folder(store, model, folder)
    return _order(out)


def in_force(records: list[dict]) -> list[dict]:
    """The answer in force per incident -- its latest -- from ``read_all``'s records, oldest first."""
    latest: dict[str, dict] = {}
    for r in _order(records):
        latest[r["incident_key"]] = r
    return _order(list(latest.values()))


def suppressions(store: Store, model: str) -> list[dict]:
    """The answers in force that suppress (false positive, expected), latest last."""
    return [r for r in in_force(read_all(store, model)) if r["kind"] in SUPPRESSING]


def active(records: list[dict], check: str, subject: str, start: datetime) -> dict | None:
    """The answer suppressing (check, subject) at the interval starting at ``start``, if any:
    its window covers the interval, and it was given for an incident that opened before."""
    start = as_utc(start)
    hits = [r for r in records if r["check"] == check and r["subject"] == subject
            and parse_interval_key(r["incident"]) <= start < datetime.fromisoformat(r["until"])]
    return hits[-1] if hits else None


def note(r: dict) -> str:
    """'marked false positive by alice on 2026-10-06: seasonal promo (suppressed until 2026-10-13)';
    a change says what it changed: '... (was: acknowledged by bob on 2026-10-05)'."""
    until = f" (suppressed until {r['until'][:10]})" if r.get("until") else ""
    was = r.get("replaces") or {}
    change = (f" (was: {KIND_NOTES.get(was.get('kind'), str(was.get('kind'))).replace('marked ', '')} by "
              f"{was.get('by')} on {str(was.get('at'))[:10]})") if was else ""
    said = f": {r['comment']}" if r.get("comment") else ""
    return f"{KIND_NOTES[r['kind']]} by {r['by']} on {r['at'][:10]}{said}{until}{change}"


# -- asking for answers (Airflow's human-in-the-loop requests, the driftline page) ---------
def opened_incidents(model: str, briefs: list[dict]) -> list[str]:
    """The incident keys (model|check|subject|incident) that opened in these alert evaluations
    (driftline.monitor.alert_brief of each group): a firing alert whose incident is named by
    its own interval opened there; one carried over from an earlier interval did not."""
    keys = {"|".join([model, a["check"], a["subject"], a["incident"]])
            for b in briefs if b for a in b.get("firing", []) if a.get("incident") == a.get("interval")}
    return sorted(keys)


def interval_ref(text: str) -> str:
    """An interval key ('2026-10-04T0000Z') from what a person types: the key itself or an ISO
    date/time ('2026-10-04', '2026-10-04T00:00Z'; naive means UTC)."""
    from driftline.store import interval_key

    text = text.strip()
    try:
        return interval_key(parse_interval_key(text))
    except ValueError:
        pass
    try:
        return interval_key(as_utc(datetime.fromisoformat(text.replace("Z", "+00:00"))))
    except ValueError:
        raise FeedbackError(f"interval {text!r}: expected an interval key like 2026-10-04T0000Z "
                            f"or an ISO date/time like 2026-10-04T00:00Z") from None


def unanswered(events: list[dict], answers: list[dict], *, keys: list[str] | None = None,
               interval: str | None = None) -> list[dict]:
    """The incidents nobody has answered yet, oldest first, from the alert history
    (``alerts.read_events``) and the answers so far (``read_all``): those named in ``keys``
    (incident keys, e.g. the monitoring run's announcement) when given; else those that opened
    in ``interval`` (an interval key), resolved or not; else every incident still open. An
    incident a re-judgement withdrew is never among them (there is nothing to answer). Each is
    ``alerts.group_incidents``' incident, with ``incident`` (the interval it opened in) and
    ``model``."""
    from driftline.alerts import group_incidents

    model = next((e.get("model") for e in events if e.get("model")), "")
    out = {k: {**i, "incident": i["opened"], "model": model}
           for k, i in sorted(group_incidents(model, events, answers).items(),
                              key=lambda kv: (kv[1]["opened"], str(kv[1]["check"]), str(kv[1]["subject"])))
           if not i["answers"] and i["state"] != "withdrawn"}
    if keys is not None:
        wanted = set(keys)
        return [i for k, i in out.items() if k in wanted]
    if interval:
        return [i for i in out.values() if i["incident"] == interval]
    return [i for i in out.values() if i["state"] == "open"]


def _request_rel(model: str, incident_key: str, run_id: str) -> str:
    return posixpath.join(asked_prefix(model), _incident_id(incident_key), f"{_incident_id(run_id)}.json")


def mark_asked(store: Store, model: str, incident_key: str, run_id: str, *, expires: datetime | None,
               at: datetime | None = None, state: str = "pending", **where) -> dict:
    """Record that a run asks (``state`` pending) about an incident, until ``expires`` (None: no
    deadline), or how that request ended (``answered``, ``timed_out``, ``superseded``: another
    run asks). One file per incident and run; ``where`` adds context (dag_id, map_index)."""
    at = as_utc(at or datetime.now(timezone.utc))
    rel = _request_rel(model, incident_key, run_id)
    rec = store.read_json(rel) if state != "pending" and store.exists(rel) else {
        "model": model, "incident_key": incident_key, "run_id": run_id, "asked_at": at.isoformat(),
        "expires": as_utc(expires).isoformat() if expires else None, **where}
    rec["state"] = state
    if state != "pending":
        rec["closed_at"] = at.isoformat()
    store.write_json(rel, rec)
    return rec


def read_requests(store: Store, model: str, incident_key: str | None = None) -> list[dict]:
    """The recorded requests (:func:`mark_asked`), of one incident or all, oldest first."""
    base = asked_prefix(model)
    folders = [_incident_id(incident_key)] if incident_key else store.listdir(base)
    out = [store.read_json(posixpath.join(base, f, name))
           for f in folders for name in store.listdir(posixpath.join(base, f)) if name.endswith(".json")]
    return sorted(out, key=lambda r: (r["asked_at"], r["run_id"]))


def waiting(requests: list[dict], now: datetime) -> dict[str, dict]:
    """Per incident key, the request that waits for its answer at ``now``: pending and not past
    its deadline; of several (two runs asked at once), the earliest -- every run agrees which."""
    now = as_utc(now)
    out: dict[str, dict] = {}
    for r in sorted(requests, key=lambda r: (r["asked_at"], r["run_id"])):
        live = r.get("state") == "pending" and (not r.get("expires") or datetime.fromisoformat(r["expires"]) > now)
        if live:
            out.setdefault(r["incident_key"], r)
    return out


class AskPlan(NamedTuple):
    """What a run asks about (:func:`to_ask`): ``ask``, incidents oldest first; ``waiting``,
    (incident, request) pairs left out because another run's request still waits for them."""

    ask: list[dict]
    waiting: list[tuple[dict, dict]]


def to_ask(events: list[dict], answers: list[dict], requests: list[dict], now: datetime, *,
           announced: list[str] | None = None, interval: str | None = None, run_id: str | None = None) -> AskPlan:
    """The incidents a run (``run_id``) asks about at ``now``: with ``interval``, the unanswered
    ones that opened then; else every unanswered incident still open -- those raised while
    nobody asked (a paused DAG, a scheduler down) included -- plus the ``announced`` ones (an
    Asset event's keys) even if they resolved since. Left out: answered and withdrawn
    incidents, and those another run's request waits for (:func:`waiting`)."""
    if interval:
        found = unanswered(events, answers, interval=interval)
    else:
        found = unanswered(events, answers)
        if announced:
            known = {i["incident_key"] for i in found}
            found += [i for i in unanswered(events, answers, keys=announced) if i["incident_key"] not in known]
            found.sort(key=lambda i: (i["incident"], str(i["check"]), str(i["subject"])))
    wait = waiting(requests, now)
    elsewhere = {k: r for k, r in wait.items() if r["run_id"] != run_id}
    return AskPlan([i for i in found if i["incident_key"] not in elsewhere],
                   [(i, elsewhere[i["incident_key"]]) for i in found if i["incident_key"] in elsewhere])
