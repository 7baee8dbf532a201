"""The human-in-the-loop requests of the feedback DAG (dags/driftline_feedback.py): what a
person is asked about an alert incident, and how the answer is read back.

Alert text is data (feature names, categories, descriptions): the request's operator renders no
Jinja (:class:`AlertQuestion`) and its Markdown body shows every value in code spans or a fenced
block, longer than any run of backticks the value holds.
"""
from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import quote

from airflow.providers.standard.operators.hitl import HITLOperator

from driftline.config import ModelConfig
from driftline_airflow.links import driftline_url

#: The answers a person can give, and the driftline.feedback kind each records.
OPTIONS = {"Acknowledge": "acknowledged", "False positive": "false_positive", "Expected": "expected"}
#: How long a request waits for an answer; then nothing is recorded (no default answer).
RESPONSE_TIMEOUT = timedelta(days=3)
#: Params of a manual run: an interval key (2026-10-04T0000Z) or an ISO date/time, or empty.
INTERVAL = r"^\s*$|^\s*\d{4}-\d{2}-\d{2}(T\d{4}Z|([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:\d{2})?)\s*$"


def report_link(model: str, interval: str) -> str:
    """The run report of an interval, as the driftline plugin serves it (under ``[api] base_url``)."""
    return driftline_url(f"models/{quote(model, safe='')}/runs/{quote(interval, safe='')}/report.html")


def alerts_link(model: str) -> str:
    """The model's alerts on the driftline page, where they can be answered too."""
    return driftline_url(f"models/{quote(model, safe='')}/alerts")


def _code(text: str) -> str:
    """``text`` as a Markdown code span: shown literally, whatever it holds (backticks included)."""
    text = str(text).replace("\r", " ").replace("\n", " ")
    fence = "`" * (1 + max((len(x) for x in re.findall(r"`+", text)), default=0))
    pad = " " if text[:1] == "`" or text[-1:] == "`" else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _block(text: str) -> str:
    """``text`` as a fenced Markdown code block: shown literally."""
    fence = "`" * max(3, 1 + max((len(x) for x in re.findall(r"`+", text)), default=0))
    return f"{fence}text\n{text}\n{fence}"


def hitl_request(cfg: ModelConfig, incident: dict) -> dict:
    """The subject and Markdown body of the human-in-the-loop request about one incident
    (driftline.feedback.unanswered). Every value from the data is shown literally."""
    from driftline.alerts import CHECK_NAMES

    check, subject, interval = incident["check"], incident["subject"], incident["incident"]
    what = CHECK_NAMES.get(check, check)
    windows = {"false_positive": cfg.alerting.suppress_false_positive, "expected": cfg.alerting.suppress_expected}
    state = "resolved since" if incident.get("resolved") else "still open"
    body = "\n".join([
        f"- **Model:** {_code(cfg.name)}",
        f"- **Check:** {_code(check)} ({what})",
        f"- **Subject:** {_code(subject)}",
        f"- **Severity:** {_code(incident['severity'])}",
        f"- **Interval:** {_code(interval)} (the incident opened then; {state})",
        "",
        "**Alert:**",
        "",
        _block(incident.get("text") or ""),
        "",
        f"[Run report]({report_link(cfg.name, interval)}) · [{_code(cfg.name)} alerts]({alerts_link(cfg.name)})",
        "",
        "**Acknowledge**: seen, being handled (changes nothing). "
        f"**False positive**: the check was wrong here (silences it on this subject for {windows['false_positive']}). "
        f"**Expected**: real but known, e.g. a seasonal change (silences it for {windows['expected']}). "
        "Say why in the comment.",
    ])
    return {"subject": f"{cfg.name}: {what} in {subject} ({incident['severity']}, opened {interval})",
            "body": body}


def announced(model: str, triggering_asset_events) -> list[str] | None:
    """The incident keys the triggering Asset events announce for the model (every event of a
    batched run); None when the run was not triggered by such an event."""
    keys, seen = [], False
    for events in (triggering_asset_events or {}).values():
        for ev in events:
            extra = ev.extra or {}
            if extra.get("model") == model:
                seen = True
                keys += [k for k in extra.get("incidents", []) if k not in keys]
    return keys if seen else None


def responder(user: dict | None) -> str:
    """Who answered, from the HITL response's ``responded_by_user`` ({id, name}): the name, with
    the id when it says more (an auth manager with numeric ids)."""
    user = user or {}
    name, uid = str(user.get("name") or "").strip(), str(user.get("id") or "").strip()
    return f"{name} ({uid})" if name and uid and uid != name else name or uid


class AlertQuestion(HITLOperator):
    """Airflow's HITLOperator whose subject and body are never rendered as Jinja: they are built
    from alert data (feature names, categories) that may hold ``{{`` or ``{%``. Airflow 3.3 renders
    the string values that ``expand_kwargs`` takes from an upstream XCom (the task SDK's
    ``ListOfDictsExpandInput.resolve`` leaves them out of the already-resolved ids), unlike those
    of ``expand``; this keeps them literal whichever way the request is mapped."""

    template_fields = ()
