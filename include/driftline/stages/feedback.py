"""Asking people about alert incidents, and recording what they answer.

An answer (``driftline.stages.answers``: kinds, the answer in force, suppression) is about an
incident of the alert history (``driftline.stages.alerts``); :func:`record` finds the incident
and stores the answer.

**Asking.** Airflow's human-in-the-loop requests are recorded under ``alerts/<model>/asked/``
(:func:`mark_asked`): which run asked about which incident, and until when the request waits.
An incident with a request still waiting in one run is not asked about by another
(:func:`to_ask`); a request that timed out, or whose deadline passed, no longer counts.
"""
from __future__ import annotations

import posixpath
from datetime import datetime, timezone
from typing import NamedTuple

from driftline.config import ModelConfig
from driftline.stages.answers import (
    KINDS,
    SUPPRESSING,
    FeedbackError,
    feedback_prefix,
    incident_answers,
    incident_id,
    suppression_window,
)
from driftline.store import Store, as_utc, parse_interval_key


def asked_prefix(model: str) -> str:
    return posixpath.join("alerts", model, "asked")


def find_incident(store: Store, model: str, ref: str) -> dict:
    """The incident an answer is about: ``ref`` is a message id or incident key
    (model|check|subject|incident[|event]) as the alert carried it."""
    from driftline.stages.alerts import read_events

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
    folder = incident_id(inc["incident_key"])
    said = incident_id("|".join([str((replaced or {}).get("id") or ""), kind, comment]))[:12]
    name = f"{len(earlier) + 1:03d}-{said}.json"
    rel = posixpath.join(feedback_prefix(cfg.name), folder, name)
    if store.exists(rel):
        return Recorded({**store.read_json(rel), "id": f"{folder}/{name}"}, False, None)
    store.write_json(rel, rec)
    return Recorded({**rec, "id": f"{folder}/{name}"}, True, replaced)


# -- asking for answers (Airflow's human-in-the-loop requests, the driftline page) ---------
def opened_incidents(model: str, briefs: list[dict]) -> list[str]:
    """The incident keys (model|check|subject|incident) that opened in these alert evaluations
    (driftline.pipeline.summary.alert_brief of each group): a firing alert whose incident is named by
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
    from driftline.stages.alerts import group_incidents

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
    return posixpath.join(asked_prefix(model), incident_id(incident_key), f"{incident_id(run_id)}.json")


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
    folders = [incident_id(incident_key)] if incident_key else store.listdir(base)
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
