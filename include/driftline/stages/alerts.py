"""From violations to alerts, and from alerts to messages that are sent once.

A run's violations (``constraint_violations.json``: data quality, drift, model quality, bias)
become **alerts**, one per (check, subject) -- the subject being the feature, metric[segment]
or facet:metric the violation names -- each with a severity and a human sentence, under the
model's ``alerting`` policy:

- **persistence**: a check alerts only when it failed in at least ``hold`` of the last ``of``
  intervals (this one included) and fails now; below that the alert is ``pending`` (recorded,
  not sent). So one noisy hour does not page anyone.
- **incidents**: an alert that keeps firing interval after interval is one incident, named by
  the interval it opened in. It is announced once (``firing``), and once (``resolved``) when the
  policy no longer holds in an interval where the check was evaluated and passed. An interval
  where the check could not be evaluated (no data, not enough labels) neither fires nor
  resolves: the incident carries on.

**Only from a committed verdict.** A stage's verdict is two files, its result
(``quality.json``, ``drift.json``, ``model_quality.json``, ``bias.json``) and its violations
(``violations/<stage>.json``); a family counts as evaluated -- and its violations count --
only when both are present and readable. An interval being cleared by a re-run, or half
written, evaluates nothing and resolves nothing: its incidents carry on. An earlier interval
of the persistence window in that state may have failed too: no incident resolves over it.

Each evaluation writes ``alerts.<group>.json`` in the run's folder: the ``data`` group
(data quality, drift) right after drift, so a drift alert does not wait out the label delay;
the ``quality`` group (model quality, its estimate, bias) after model quality, and again for
each interval re-evaluated when its labels land.

**Sent once.** A message's id is (model, check, subject, incident, event): the same whether a
task retries, a run is re-run, or a backfill recomputes the interval. ``dispatch`` records each
delivery in the store (``alerts/<model>/sent/``) only after the route accepted it and skips a
delivery already recorded, so a retry after a failed route re-sends nothing that went out.
(A crash between a route's acceptance and the record could repeat that one message; the id
travels with it -- the webhook's ``Idempotency-Key`` -- so receivers can drop it.) Each message
is kept in ``alerts/<model>/events/``: the alert history, read back with ``read_events``.
"""
from __future__ import annotations

import hashlib
import logging
import posixpath
import re
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from driftline.config import CHECK_FAMILIES, SEVERITY_RANK, AlertRoute, ModelConfig
from driftline.stages.answers import SUPPRESSING, suppressions
from driftline.stages.answers import active as suppressing_answer
from driftline.stages.answers import note as answer_note
from driftline.stages.answers import read_all as read_answers
from driftline.store import CorruptObject, NoSuchObject, Store, StoreError, as_utc, interval_key, parse_interval_key

log = logging.getLogger("driftline.stages.alerts")

GROUPS = {"data": ("data_quality", "drift"), "quality": ("model_quality", "model_quality_estimate", "bias")}
#: Incidents are looked for this many intervals back when the previous interval has no record
#: (it did not run, or ran before alerting existed).
CONTINUITY_LOOKBACK = 3
CHECK_NAMES = {
    "baseline_drift_check": "drift", "multivariate_drift_check": "multivariate drift",
    "data_type_check": "wrong types", "completeness_check": "missing values",
    "categorical_values_check": "unknown categories", "missing_column_check": "missing column",
    "extra_column_check": "extra column", "range_check": "values out of range",
    "quarantine_check": "quarantined records", "model_quality_check": "model quality",
    "model_quality_estimate_check": "estimated model quality", "bias_drift_check": "bias drift",
    "stage_failure": "monitoring could not run",
}


class AlertDeliveryError(RuntimeError):
    """One or more routes refused a message; what went out is recorded and will not be re-sent."""


def alerts_prefix(model: str) -> str:
    return posixpath.join("alerts", model)


def _file_id(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def route_id(route: AlertRoute) -> str:
    target = hashlib.sha256((route.target or "").encode()).hexdigest()[:8]
    return re.sub(r"[^A-Za-z0-9_-]", "_", f"{route.type}-{route.conn_id or 'none'}-{target}")


def subject_of(v: dict) -> str:
    name = v.get("feature_name") or ""
    method = str((v.get("details") or {}).get("method", ""))
    if v.get("constraint_check_type") == "baseline_drift_check" and method.startswith("missing_share"):
        return f"{name} (missing share)"
    return name or "-"


# -- what an interval found --------------------------------------------------------------
#: Each stage's result file, beside its violations file ``violations/<stage>.json``.
STAGE_RESULTS = {"data_quality": "quality.json", "drift": "drift.json", "model_quality": "model_quality.json",
                 "bias": "bias.json"}
#: The stage whose two files are a check family's verdict.
FAMILY_STAGE = {"data_quality": "data_quality", "drift": "drift", "model_quality": "model_quality",
                "model_quality_estimate": "model_quality", "bias": "bias"}


def _read_json_if_there(store: Store, rel: str) -> tuple[str, Any]:
    """("ok", document), ("absent", None) or ("unreadable", None). Only a missing or unparsable
    object is an answer here: a store that cannot be reached raises (the task retries)."""
    try:
        if not store.exists(rel):
            return "absent", None
        return "ok", store.read_json(rel)
    except NoSuchObject:  # removed between the check and the read: a re-run is clearing it
        return "absent", None
    except CorruptObject as exc:
        log.warning("alerts: %s", exc)
        return "unreadable", None


def interval_verdicts(store: Store, prefix: str, stages: tuple[str, ...] = tuple(STAGE_RESULTS)) -> dict[str, dict]:
    """Each stage's (of ``stages``) verdict in the interval's folder: ``state`` -- ``committed`` (result and
    violations both present and readable), ``absent`` (neither: not run, or cleared), or
    ``partial`` (one without the other, or unreadable: half cleared by a re-run, or half
    written) -- and, when committed, its ``result`` and ``violations``. Runs recorded before
    per-stage violation files: the stages' violations come from ``constraint_violations.json``."""
    from driftline.store.violations import VIOLATIONS_DIR, VIOLATIONS_FILE

    names = [n for n in store.listdir(posixpath.join(prefix, VIOLATIONS_DIR)) if n.endswith(".json")]
    legacy = None
    if not names:
        state, doc = _read_json_if_there(store, posixpath.join(prefix, VIOLATIONS_FILE))
        legacy = (doc or {}).get("violations", []) if state == "ok" else None
    out = {}
    for stage in stages:
        r_state, result = _read_json_if_there(store, posixpath.join(prefix, STAGE_RESULTS[stage]))
        if legacy is not None:
            v_state = "ok"
            found = [v for v in legacy
                     if FAMILY_STAGE.get(CHECK_FAMILIES.get(v.get("constraint_check_type", ""), "")) == stage]
        elif f"{stage}.json" in names:
            v_state, doc = _read_json_if_there(store, posixpath.join(prefix, VIOLATIONS_DIR, f"{stage}.json"))
            found = (doc or {}).get("violations", [])
        else:
            v_state, found = "absent", []
        if r_state == v_state == "ok":
            out[stage] = {"state": "committed", "result": result or {}, "violations": found}
        elif r_state == "absent" and (v_state == "absent" or legacy is not None):
            out[stage] = {"state": "absent", "result": None, "violations": []}
        else:
            out[stage] = {"state": "partial", "result": None, "violations": []}
    return out


def _result(verdicts: dict[str, dict], stage: str) -> dict:
    v = verdicts.get(stage) or {}
    return v["result"] if v.get("state") == "committed" else {}


def _stages_of(families: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(s for s in STAGE_RESULTS if s in {FAMILY_STAGE[f] for f in families})


def evaluated_families(cfg: ModelConfig, store: Store, prefix: str,
                       verdicts: dict[str, dict] | None = None) -> dict[str, bool]:
    """Which check families the interval actually evaluated: its verdict is committed (see
    ``interval_verdicts``) and says it checked (no data, drift off, too few labels: not
    evaluated). Nothing can fire or resolve in a family not evaluated."""
    verdicts = verdicts or interval_verdicts(store, prefix)
    quality, drift = _result(verdicts, "data_quality"), _result(verdicts, "drift")
    mq, bias = _result(verdicts, "model_quality"), _result(verdicts, "bias")
    overall = mq.get("overall") or {}
    return {
        "data_quality": bool(quality) and quality.get("status") not in ("no_data", None),
        "drift": bool(drift.get("checked")),
        "model_quality": (overall.get("realized") or {}).get("status") == "ok",
        "model_quality_estimate": (overall.get("estimated") or {}).get("status") == "ok",
        "bias": any(f.get("status") == "ok" for f in (bias.get("facets") or {}).values()),
    }


def breaches(store: Store, prefix: str, families: tuple[str, ...],
             verdicts: dict[str, dict] | None = None) -> dict[tuple[str, str], dict]:
    """The interval's violations of these families, by (check, subject), from committed
    verdicts only."""
    verdicts = verdicts or interval_verdicts(store, prefix, _stages_of(families))
    out = {}
    for verdict in verdicts.values():
        for v in verdict["violations"]:
            check = v.get("constraint_check_type", "")
            if CHECK_FAMILIES.get(check) in families:
                out.setdefault((check, subject_of(v)), v)
    return out


def _unsure(verdicts: dict[str, dict], families: tuple[str, ...]) -> set[str]:
    """The families whose verdict is half there (``partial``): they may have failed."""
    return {f for f in families if (verdicts.get(FAMILY_STAGE[f]) or {}).get("state") == "partial"}


def previous_starts(cfg: ModelConfig, start: datetime, n: int) -> list[datetime]:
    """The n interval starts before start on the model's schedule, latest first."""
    from croniter import croniter

    it = croniter(cfg.cron, as_utc(start))
    out = []
    for _ in range(n):
        t = it.get_prev(datetime)
        if t < cfg.start_date:
            break
        out.append(t.astimezone(timezone.utc))
    return out


# -- sentences ------------------------------------------------------------------------------
def _g(x: Any) -> str:
    return "-" if x is None else f"{x:.3g}" if isinstance(x, float) else str(x)


def sentence(v: dict, drift: dict | None, baseline: str | None) -> str:
    """One line a person can act on, e.g. 'monthly_charges: wasserstein 0.45 > 0.1 against
    baseline v3; mean 63.5 -> 75.4, max 120 -> 142; drives 64% of the drift'. Held to
    TEXT_CHARS (driftline.common.limits): it goes into alert records and every route's message."""
    from driftline.common.limits import TEXT_CHARS, shown

    return shown(_sentence(v, drift, baseline), TEXT_CHARS)


def _sentence(v: dict, drift: dict | None, baseline: str | None) -> str:
    from driftline.common.limits import shown

    check, subject, d = v["constraint_check_type"], subject_of(v), v.get("details") or {}
    against = f" against baseline {baseline}" if baseline else ""
    if check == "baseline_drift_check":
        feat = ((drift or {}).get("features") or {}).get(v["feature_name"]) or \
               ((drift or {}).get("prediction") or {}).get(v["feature_name"]) or {}
        if str(d.get("method", "")).startswith("missing_share"):
            m = feat.get("missing") or {}
            return (f"{subject}: {_pct(m.get('current_share'))} missing vs {_pct(m.get('reference_share'))} in "
                    f"baseline {baseline}")
        if d.get("pvalue") is not None and d.get("method") in ("ks", "chi_square", "z_test"):
            core = f"{d['method']} p-value {_g(d['pvalue'])} < {_g(d.get('threshold'))}"
        elif isinstance(d.get("statistic"), (int, float)) and isinstance(d.get("threshold"), (int, float)):
            from driftline.common.bounds import number

            # distances fire at >= their threshold (linf_cdf at >): print the relation that
            # holds, with the digits that tell the two apart
            stat, th = d["statistic"], d["threshold"]
            core = f"{d.get('method')} {number(stat, th)} {'>' if stat > th else '>='} {number(th, stat)}"
        else:
            core = f"{d.get('method')} {_g(d.get('statistic'))} > {_g(d.get('threshold'))}"
        parts = [f"{subject}: {core}{against}"]
        ref, cur = feat.get("reference") or {}, feat.get("current") or {}
        if "mean" in ref and "mean" in cur:
            parts.append(f"mean {_g(ref['mean'])} -> {_g(cur['mean'])}, max {_g(ref.get('max'))} -> {_g(cur.get('max'))}")
        elif ref.get("top") and cur.get("top"):
            top = max(cur["top"], key=lambda k: abs(cur["top"][k] - ref["top"].get(k, 0.0)))
            parts.append(f"'{shown(top)}' {_pct(ref['top'].get(top, 0.0))} -> {_pct(cur['top'][top])} of rows")
        if feat.get("contribution_share") is not None:
            parts.append(f"drives {_pct(feat['contribution_share'])} of the drift")
        return "; ".join(parts)
    if check in ("model_quality_check", "model_quality_estimate_check", "bias_drift_check"):
        return f"{subject}: {v.get('description', '')}"
    return f"{subject}: {v.get('description', CHECK_NAMES.get(check, check))}"


def _pct(x: Any) -> str:
    return "-" if x is None else f"{100 * x:.0f}%" if abs(x) >= 0.1 else f"{100 * x:.1f}%"


# -- evaluation -----------------------------------------------------------------------------
def _record_rel(model: str, start: datetime, group: str) -> str:
    return posixpath.join(Store.run_prefix(model, start), f"alerts.{group}.json")


def read_record(store: Store, model: str, start: datetime, group: str) -> dict | None:
    rel = _record_rel(model, start, group)
    return store.read_json(rel) if store.exists(rel) else None


def _derive(cfg: ModelConfig, store: Store, start: datetime, group: str) -> dict:
    """The interval's alert record from the store: its violations, the ``of - 1`` intervals
    before it and the previous interval's record (the incidents open then)."""
    if group not in GROUPS:
        raise ValueError(f"alert group {group!r}: expected one of {sorted(GROUPS)}")
    start = as_utc(start)
    families = GROUPS[group]
    prefix = Store.run_prefix(cfg.name, start)
    # only the stages of this group's families: the other group's may still be running
    verdicts = interval_verdicts(store, prefix, _stages_of(families))
    evaluated = evaluated_families(cfg, store, prefix, verdicts)
    now_found = breaches(store, prefix, families, verdicts)
    depth = max(getattr(cfg.alerting, f).persistence.of for f in families)
    before = previous_starts(cfg, start, max(depth - 1, CONTINUITY_LOOKBACK))
    prefixes = [Store.run_prefix(cfg.name, t) for t in before[:depth - 1]]
    past = [interval_verdicts(store, p, _stages_of(families)) for p in prefixes]
    history = [breaches(store, p, families, v) for p, v in zip(prefixes, past)]
    unsure = [_unsure(v, families) for v in past]
    previous = next((r for t in before[:CONTINUITY_LOOKBACK] if (r := read_record(store, cfg.name, t, group))), None)
    open_before = {(a["check"], a["subject"]): a for a in (previous or {}).get("alerts", [])
                   if a["status"] in ("firing", "open")}
    drift = _result(verdicts, "drift") or None
    baseline = (_result(verdicts, "data_quality") or drift or {}).get("baseline")
    suppressing = suppressions(store, cfg.name)
    alerts, messages = [], []
    for check, subject in sorted(set(now_found) | set(open_before)):
        pol = cfg.alerting.policy(check)
        family = CHECK_FAMILIES.get(check, "data_quality")
        if not pol.enabled:
            continue
        v = now_found.get((check, subject))
        was = open_before.get((check, subject))
        hold, of = pol.persistence.hold, pol.persistence.of
        count = (1 if v else 0) + sum(1 for h in history[:of - 1] if (check, subject) in h)
        # earlier intervals of the window whose verdict is half there may have failed as well
        maybe = sum(1 for u in unsure[:of - 1] if family in u)
        base = {"model": cfg.name, "check": check, "subject": subject, "family": family,
                "interval": interval_key(start), "severity": pol.severity, "hold": hold, "of": of, "count": count}
        if not evaluated.get(family, False) and not v:
            if was:  # not evaluated here: the incident carries on, nothing is sent
                alerts.append({**base, "status": "open", "incident": was["incident"], "message": was["message"],
                               "note": "not evaluated in this interval"})
            continue
        said = suppressing_answer(suppressing, check, subject, start) if v else None
        if said:  # a person said false positive / expected: recorded, not sent
            alerts.append({**base, "status": "suppressed", "incident": None, "violation": v,
                           "message": sentence(v, drift, baseline) + f" ({answer_note(said)})",
                           "feedback": {k: said.get(k) for k in ("kind", "by", "at", "comment", "until")}})
        elif v and (count >= hold or was):
            incident = was["incident"] if was else interval_key(start)
            msg = sentence(v, drift, baseline)
            if of > 1:
                msg += f" (failed in {count} of the last {of} intervals)"
            alert = {**base, "status": "firing", "incident": incident, "message": msg, "violation": v}
            alerts.append(alert)
            since = _intervals_between(cfg, parse_interval_key(incident), start)
            if not was:
                messages.append(_message(cfg, alert, "firing", store))
            elif cfg.alerting.repeat_every and since and since % cfg.alerting.repeat_every == 0:
                messages.append(_message(cfg, alert, "firing", store, reminder=True))
        elif v:
            alerts.append({**base, "status": "pending", "incident": None, "violation": v,
                           "message": sentence(v, drift, baseline) + f" (failed in {count} of the last {of} "
                                                                     f"intervals; alerts at {hold})"})
        elif was and count + maybe < hold:
            alert = {**base, "status": "resolved", "incident": was["incident"],
                     "message": f"{subject}: {CHECK_NAMES.get(check, check)} back within bounds "
                                f"(open since {was['incident']})"}
            alerts.append(alert)
            messages.append(_message(cfg, alert, "resolved", store))
        elif was:  # passed now, but the rule still holds (or may hold) over the window: stays open
            alerts.append({**base, "status": "open", "incident": was["incident"], "message": was["message"],
                           "note": f"passed here; failed in {count} of the last {of} intervals"
                                   + (f", and {maybe} earlier interval(s) are being re-evaluated" if maybe else "")})
    return {"model": cfg.name, "interval": interval_key(start), "interval_start": start.isoformat(),
            "group": group, "evaluated": {f: evaluated[f] for f in families}, "alerts": alerts,
            "messages": messages}


def evaluate(cfg: ModelConfig, store: Store, start: datetime, group: str, why: str | None = None) -> dict:
    """Turn the interval's violations of one group into alerts and the messages to send, and
    write ``alerts.<group>.json``; returns it.

    Deterministic from the store: a re-run or a backfill of the interval gives the same alerts,
    the same message ids and the same bytes. When the interval had a record and this one
    differs (its violations changed, or an earlier interval was evaluated since), nothing is
    silently rewritten: the differences are appended to the record's ``revisions`` with
    ``why``, and a person who was told something that no longer holds -- an incident announced
    as opened here that no longer opens, or a resolution announced here that no longer
    resolves -- gets a ``rejudged`` message saying so."""
    start = as_utc(start)
    record = _derive(cfg, store, start, group)
    try:
        old = read_record(store, cfg.name, start, group)
    except (StoreError, ValueError):
        old = None
    revisions = list((old or {}).get("revisions", []))
    if old is not None:
        changes, rejudged = _compare(cfg, store, old, record, why or f"re-run of {interval_key(start)}")
        record["messages"] += rejudged
        if changes:
            revisions.append({"at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                              "why": why or f"re-run of {interval_key(start)}: its findings changed",
                              "changes": changes})
    if revisions:
        record["revisions"] = revisions
    store.write_json(_record_rel(cfg.name, start, group), record)
    return record


def _state(record: dict) -> dict[tuple[str, str], dict]:
    return {(a["check"], a["subject"]): a for a in record.get("alerts", [])}


def _compare(cfg: ModelConfig, store: Store, old: dict, new: dict, why: str) -> tuple[list[str], list[dict]]:
    """What changed between an interval's previous alert record and its new one (one line per
    check and subject), and the ``rejudged`` messages owed to people who were told otherwise."""
    before, after = _state(old), _state(new)
    changes, messages = [], []
    for key in sorted(set(before) | set(after)):
        a, b = before.get(key), after.get(key)
        was = (a or {}).get("status", "nothing"), (a or {}).get("incident")
        now = (b or {}).get("status", "nothing"), (b or {}).get("incident")
        if was == now:
            continue
        changes.append(f"{key[0]} {key[1]}: {was[0]}{f' (incident {was[1]})' if was[1] else ''} -> "
                       f"{now[0]}{f' (incident {now[1]})' if now[1] else ''}")
        if now[0] == "suppressed":  # a person answered since: they know, and the answer says why
            continue
        opened_here = a and a["status"] == "firing" and a.get("incident") == old["interval"]
        if opened_here and not (now[0] == "firing" and now[1] == was[1]):
            messages.append(_rejudged(cfg, store, a, new["interval"], "withdrawn",
                                      f"{key[1]}: the {CHECK_NAMES.get(key[0], key[0])} incident announced for "
                                      f"{old['interval']} is withdrawn: now {now[0]}"
                                      f"{f' (part of the incident open since {now[1]})' if now[1] else ''}; {why}"))
        elif a and a["status"] == "resolved" and now[0] != "resolved":
            messages.append(_rejudged(cfg, store, a, new["interval"], "reopened",
                                      f"{key[1]}: the resolution of the {CHECK_NAMES.get(key[0], key[0])} incident "
                                      f"open since {a['incident']}, announced for {old['interval']}, is withdrawn: "
                                      f"now {now[0]}; {why}"))
    return changes, messages


def _rejudged(cfg: ModelConfig, store: Store, alert: dict, interval: str, kind: str, text: str) -> dict:
    msg = _message(cfg, {**alert, "interval": interval, "message": text}, "rejudged", store)
    msg["id"] = f"{msg['incident_key']}|rejudged|{kind}|{interval}"
    msg["rejudged"] = kind
    msg["title"] = f"[driftline] RE-JUDGED {cfg.name}: {CHECK_NAMES.get(alert['check'], alert['check'])} in " \
                   f"{alert['subject']} ({'incident withdrawn' if kind == 'withdrawn' else 'resolution withdrawn'})"
    return msg


def evaluate_in_order(cfg: ModelConfig, store: Store, starts: list[datetime], group: str) -> list[dict]:
    """Evaluate the intervals (oldest first), then bring the records of later intervals
    evaluated before them up to date, so the order in which intervals are evaluated (a
    backfill after the scheduled runs, two runs at once, a re-run) does not change the
    incidents: each later record is derived again, in order, until one is unchanged beyond
    the reach of the persistence rule. Returns every record written that changed or was asked
    for (what to deliver is in their ``messages``)."""
    starts = sorted({as_utc(t) for t in starts})
    if not starts:
        return []
    out = [evaluate(cfg, store, t, group) for t in starts]
    last = starts[-1]
    reach = max(getattr(cfg.alerting, f).persistence.of for f in GROUPS[group]) + CONTINUITY_LOOKBACK
    later = []
    for name in store.listdir(posixpath.join("runs", cfg.name)):
        try:
            t = parse_interval_key(name)
        except ValueError:
            continue
        if t > last and store.exists(_record_rel(cfg.name, t, group)):
            later.append(t)
    why = f"re-judged after {interval_key(last)} was evaluated (out of order, or re-run)"
    for t in sorted(later):
        old = read_record(store, cfg.name, t, group)
        new = evaluate(cfg, store, t, group, why=why)
        if _state(old or {}) != _state(new):
            out.append(new)
        elif _intervals_between(cfg, last, t) >= reach:
            break
    return out


def _intervals_between(cfg: ModelConfig, a: datetime, b: datetime) -> int:
    from croniter import croniter

    n, it = 0, croniter(cfg.cron, as_utc(a))
    while n < 100_000 and it.get_next(datetime) <= as_utc(b):
        n += 1
    return n


def _message(cfg: ModelConfig, alert: dict, event: str, store: Store, reminder: bool = False) -> dict:
    incident_key = "|".join([cfg.name, alert["check"], alert["subject"], alert["incident"]])
    # a resolution names its interval: when a re-judgement withdraws it, the true resolution
    # that comes later is another message (the same id would count as sent already)
    key = f"{incident_key}|{event}" + (f"|{alert['interval']}" if reminder or event == "resolved" else "")
    what = CHECK_NAMES.get(alert["check"], alert["check"])
    title = (f"[driftline] {'RESOLVED' if event == 'resolved' else alert['severity'].upper()} {cfg.name}: "
             f"{what} in {alert['subject']}" + (" (still open)" if reminder else ""))
    return {"id": key, "event": event, "model": cfg.name, "check": alert["check"], "subject": alert["subject"],
            "severity": alert["severity"], "interval": alert["interval"], "incident": alert["incident"],
            "incident_key": incident_key, "title": title, "text": alert["message"],
            "links": {"artifacts": store.uri(Store.run_prefix(cfg.name, parse_interval_key(alert["interval"])))}}


# -- delivery ------------------------------------------------------------------------------
Sender = Callable[[AlertRoute, dict], str]


def dispatch(cfg: ModelConfig, store: Store, messages: list[dict], send: Sender | None) -> dict:
    """Deliver each message on each of the model's routes whose ``min_severity`` it reaches,
    once: deliveries already recorded are skipped. Every route is tried; when some fail, the
    others' deliveries are recorded and AlertDeliveryError is raised (a retry sends the rest)."""
    sent, skipped, failed, logged, undelivered = [], 0, [], 0, 0
    for m in messages:
        fid = _file_id(m["id"])
        event_rel = posixpath.join(alerts_prefix(cfg.name), "events", f"{fid}.json")
        if not store.exists(event_rel):
            store.write_json(event_rel, {**m, "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
        for route in cfg.alerts:
            follow_up = m["event"] in ("resolved", "rejudged")  # goes where the firing message went
            if SEVERITY_RANK[m["severity"]] < SEVERITY_RANK[route.min_severity] and not follow_up:
                continue
            if route.type == "log":
                log.warning("ALERT %s %s: %s", m["event"].upper(), m["title"], m["text"])
                logged += 1
                continue
            if follow_up and not store.exists(_sent_rel(cfg.name, m["incident_key"] + "|firing", route)):
                continue  # this route never got the firing message (severity below its bar)
            rel = _sent_rel(cfg.name, m["id"], route)
            if send is None:  # the CLI: no Airflow connections; the DAG's run delivers it
                undelivered += 1
                continue
            # a resolution recorded before resolution ids named their interval counts as sent
            legacy = m["incident_key"] + "|resolved" if m["event"] == "resolved" else None
            if store.exists(rel) or (legacy and store.exists(_sent_rel(cfg.name, legacy, route))):
                skipped += 1
                continue
            try:
                result = send(route, m)
            except Exception as exc:  # noqa: BLE001 - any failure of a route is reported, the others go on
                failed.append(f"{route.type}:{route.conn_id}: {type(exc).__name__}: {exc}")
                continue
            store.write_json(rel, {"id": m["id"], "route": route_id(route), "type": route.type,
                                   "result": result, "sent_at": datetime.now(timezone.utc).isoformat()})
            sent.append(f"{route.type}:{route.conn_id}")
    summary = (f"{len(messages)} message(s): {len(sent)} delivered, {skipped} already sent before, "
               f"{logged} logged" + (f", {undelivered} not delivered (no sender outside Airflow)" if undelivered else "")
               + (f", {len(failed)} FAILED" if failed else ""))
    out = {"summary": summary, "delivered": len(sent), "skipped": skipped, "failed": failed}
    if failed:
        raise AlertDeliveryError(summary + ": " + "; ".join(failed))
    return out


def _sent_rel(model: str, key: str, route: AlertRoute) -> str:
    return posixpath.join(alerts_prefix(model), "sent", f"{_file_id(key)}.{route_id(route)}.json")


def read_events(store: Store, model: str) -> list[dict]:
    """Every message ever raised for the model, oldest interval first, with its deliveries."""
    events_dir = posixpath.join(alerts_prefix(model), "events")
    sent_dir = posixpath.join(alerts_prefix(model), "sent")
    deliveries: dict[str, list[dict]] = {}
    for name in store.listdir(sent_dir):
        try:
            deliveries.setdefault(name.split(".", 1)[0], []).append(store.read_json(posixpath.join(sent_dir, name)))
        except (StoreError, ValueError):
            log.warning("alerts: unreadable delivery record %s skipped", store.uri(sent_dir, name))
    out = []
    for name in store.listdir(events_dir):
        try:
            e = store.read_json(posixpath.join(events_dir, name))
        except (StoreError, ValueError):
            log.warning("alerts: unreadable event %s skipped", store.uri(events_dir, name))
            continue
        e["deliveries"] = deliveries.get(name.split(".", 1)[0], [])
        out.append(e)
    return sorted(out, key=lambda e: (e["interval"], e["check"], e["subject"], e["event"]))


def group_incidents(model: str, events: list[dict], answers: list[dict]) -> dict[str, dict]:
    """The incidents of ``read_events``' messages with their answers (``answers.read_all``),
    by incident key, in the shape :func:`incidents` documents."""

    out: dict[str, dict] = {}
    resolutions: dict[str, dict] = {}  # incident key -> {interval: text} of resolutions not withdrawn
    for e in events:
        key = e.get("incident_key") or "|".join([model, str(e.get("check")), str(e.get("subject")),
                                                 str(e.get("incident"))])
        inc = out.setdefault(key, {
            "incident_key": key, "check": e.get("check"), "subject": e.get("subject"), "severity": e.get("severity"),
            "opened": e.get("incident") or e.get("interval"), "last": e.get("interval"), "resolved": None,
            "text": None, "latest_text": None, "resolved_text": None, "reminders": 0, "deliveries": 0,
            "answers": []})
        inc["deliveries"] += len(e.get("deliveries") or [])
        if e.get("event") == "rejudged":  # a re-judgement withdrew what was announced
            inc.setdefault("rejudged", []).append({"interval": e.get("interval"), "kind": e.get("rejudged"),
                                                   "text": e.get("text")})
            if e.get("rejudged") == "reopened":  # that interval's resolution no longer holds
                resolutions.setdefault(key, {}).pop(e.get("interval"), None)
            else:
                inc["withdrawn"] = e.get("interval")
        elif e.get("event") == "resolved":
            resolutions.setdefault(key, {})[e.get("interval")] = e.get("text")
        else:
            if e.get("interval") != inc["opened"]:
                inc["reminders"] += 1
            else:
                inc["text"] = e.get("text")
            inc["latest_text"], inc["severity"] = e.get("text"), e.get("severity") or inc["severity"]
        inc["last"] = max(str(inc["last"]), str(e.get("interval")))
    for key, found in resolutions.items():
        if found:  # one in the end; a partial view may have announced another, later withdrawn
            first = min(found)
            out[key]["resolved"], out[key]["resolved_text"] = first, found[first]
    for a in answers:
        if a.get("incident_key") in out:
            out[a["incident_key"]]["answers"].append(a)
    for inc in out.values():
        # as the engine decides (answers.suppressions): the answer in force -- the latest; a
        # person may change theirs -- suppresses when it is a false positive or expected
        inc["answer"] = inc["answers"][-1] if inc["answers"] else None
        quieting = inc["answer"] if (inc["answer"] or {}).get("kind") in SUPPRESSING else None
        window_end = quieting.get("until") if quieting else None
        withdrawn = inc.get("withdrawn")
        inc["state"] = ("withdrawn" if withdrawn else "resolved" if inc["resolved"] else
                        "suppressed" if window_end else "open")
        inc["suppressed_until"] = window_end if not inc["resolved"] and not withdrawn else None
        # a suppressed incident gets no more messages: it ends with its window (a check still
        # failing then opens a new incident); a withdrawn one ends where it was re-judged
        inc["ended"] = withdrawn or inc["resolved"] or (
            interval_key(datetime.fromisoformat(window_end)) if window_end else None)

    return out


def incidents(store: Store, model: str, since: datetime | None = None, until: datetime | None = None,
              problems: list[str] | None = None) -> list[dict]:
    """The model's alert incidents (one per model|check|subject|opened) that overlap
    ``[since, until)``, oldest first, from the alert history and people's answers:

    ``incident_key``, ``check``, ``subject``, ``severity`` (latest), ``opened`` and ``last``
    (interval keys of the first and latest message), ``resolved`` (the interval of the
    resolved message, or None), ``text`` (the opening sentence), ``latest_text``,
    ``resolved_text``, ``reminders``, ``deliveries`` (count), ``answers`` (feedback records,
    oldest first), ``answer`` (the one in force: the latest, or None), ``rejudged``
    (re-judgements that withdrew an announcement, if any) and ``state``: ``withdrawn`` when a
    re-judgement withdrew the incident; ``resolved``; ``suppressed`` while the answer in force
    is false positive or expected (no message follows a suppressed incident, so without the
    answer it would look open forever; ``suppressed_until`` says till when); else ``open``.
    ``ended``: the interval it resolved in, or for a suppressed one the end of its window.
    Unreadable history is named in ``problems`` (when given), never raised."""

    problems = problems if problems is not None else []
    try:
        events = read_events(store, model)
    except (StoreError, ValueError, KeyError) as exc:
        problems.append(f"alerts/{model}/events: could not be read ({exc})")
        events = []
    try:
        records = read_answers(store, model)
    except (StoreError, ValueError, KeyError) as exc:
        problems.append(f"alerts/{model}/feedback: could not be read ({exc})")
        records = []
    out = group_incidents(model, events, records)

    def overlaps(inc: dict) -> bool:
        try:
            opened = parse_interval_key(inc["opened"])
            closed = parse_interval_key(inc["ended"]) if inc["ended"] else None
        except (TypeError, ValueError):
            return False
        return (until is None or opened < as_utc(until)) and (since is None or closed is None or closed > as_utc(since))

    return sorted((i for i in out.values() if overlaps(i)),
                  key=lambda i: (i["opened"], str(i["check"]), str(i["subject"])))


def summary_lines(record: dict, delivery: dict | None = None) -> list[str]:
    """The alert task's log block: one line per alert, then the delivery result."""
    by = {s: [a for a in record["alerts"] if a["status"] == s]
          for s in ("firing", "open", "pending", "resolved", "suppressed")}
    lines = [f"{record['group']} alerts {record['model']} {record['interval']}: " +
             ", ".join(f"{len(v)} {k}" for k, v in by.items()) +
             f"; evaluated: {', '.join(f for f, ok in record['evaluated'].items() if ok) or 'nothing'}"]
    for status in ("firing", "resolved", "pending", "open", "suppressed"):
        for a in by[status][:15]:
            new = " NEW" if status == "firing" and a["incident"] == a["interval"] else ""
            lines.append(f"- {status.upper()}{new} [{a['severity']}] {a['check']}: {a['message']}")
    if delivery:
        lines.append(delivery["summary"])
    return lines
