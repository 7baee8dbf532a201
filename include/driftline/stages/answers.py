"""A person's answer to an alert, and what it changes.

Each alert incident (driftline.stages.alerts: model, check, subject, the interval it opened in) can be
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

Asking people for answers and recording them is ``driftline.stages.feedback``.
"""
from __future__ import annotations

import hashlib
import posixpath
from datetime import datetime, timedelta

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


def incident_id(incident_key: str) -> str:
    return hashlib.sha256(incident_key.encode()).hexdigest()[:24]


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


def _read_folder(store: Store, model: str, folder: str) -> list[dict]:
    base = posixpath.join(feedback_prefix(model), folder)
    return [{**store.read_json(posixpath.join(base, name)), "id": f"{folder}/{name}"}
            for name in store.listdir(base) if name.endswith(".json")]


def _order(records: list[dict]) -> list[dict]:
    return sorted(records, key=lambda r: (datetime.fromisoformat(r["at"]), r.get("id", "")))


def incident_answers(store: Store, model: str, incident_key: str) -> list[dict]:
    """The answers to one incident, oldest first (the last is in force), each with its ``id``."""
    return _order(_read_folder(store, model, incident_id(incident_key)))


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
