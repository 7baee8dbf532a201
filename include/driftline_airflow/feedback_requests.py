"""The human-in-the-loop requests of the feedback DAG (dags/driftline_feedback.py): what a
person is asked about an alert incident, and what happens to the answer.

Alert text is data (feature names, categories, descriptions): the request's operator renders no
Jinja (:class:`AlertQuestion`) and its Markdown body shows every value in code spans or a fenced
block, longer than any run of backticks the value holds.

An answer is stored the moment it is given (:meth:`AlertQuestion.execute_complete`, on a worker
as the person answers), not when the run's other requests are done: the driftline page shows it
at once and does not invite a second one. Each request is recorded under ``alerts/<model>/asked/``
(driftline.stages.feedback.mark_asked) so that no other run asks about the same incident while it waits.
"""
from __future__ import annotations

import re
import shlex
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import Param

from driftline.config import ModelConfig
from driftline_airflow.links import driftline_url

#: The answers a person can give, and the driftline.stages.feedback kind each records.
OPTIONS = {"Acknowledge": "acknowledged", "False positive": "false_positive", "Expected": "expected"}
#: How long a request waits for an answer; then nothing is recorded (no default answer).
RESPONSE_TIMEOUT = timedelta(days=3)
#: Params of a manual run: an interval key (2026-10-04T0000Z) or an ISO date/time, or empty.
INTERVAL = r"^\s*$|^\s*\d{4}-\d{2}-\d{2}(T\d{4}Z|([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:\d{2})?)\s*$"


# Airflow 3's forms (the trigger form, Required Actions) mark a Param required unless its type
# allows null, and send null for a field left empty: a plain "string" Param cannot be left empty
# there, and null fails it when the run (or the answer) is validated. Nullable ones can.
def interval_param() -> Param:
    """The feedback DAG's ``interval`` Param: optional (empty means every open incident)."""
    return Param(None, type=["null", "string"], pattern=INTERVAL,
                 description="Ask about the incidents that opened in this interval (e.g. 2026-10-04T0000Z or "
                             "2026-10-04); empty: every incident still open. Incidents already answered, or "
                             "waiting for an answer in another run, are not asked again.")


def comment_param() -> Param:
    """The request's ``comment`` Param: optional."""
    return Param(None, type=["null", "string"], title="Comment",
                 description="Why (optional), e.g. 'promo week' or 'known seasonal change'.")


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
    (driftline.stages.feedback.unanswered). Every value from the data is shown literally."""
    from driftline.stages.alerts import CHECK_NAMES

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
        "Say why in the comment (optional). The answer is recorded as you give it; if someone answered on the "
        "driftline page meanwhile, the same answer records nothing new and another one changes theirs.",
    ])
    return {"subject": f"{cfg.name}: {what} in {subject} ({incident['severity']}, opened {interval})",
            "body": body, "incident_key": incident["incident_key"]}


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
    """Airflow's HITLOperator asking about one incident (``incident_key`` of ``model``), which

    - renders no Jinja in its subject and body: they are built from alert data (feature names,
      categories) that may hold ``{{`` or ``{%``. Airflow 3.3 renders the string values that
      ``expand_kwargs`` takes from an upstream XCom (the task SDK's
      ``ListOfDictsExpandInput.resolve`` leaves them out of the already-resolved ids), unlike
      those of ``expand``; this keeps them literal whichever way the request is mapped;
    - asks only if nobody answered the incident meanwhile and no other run's request waits for
      it (several runs may have planned to ask: the earliest request recorded asks, the others
      skip), and records the request under ``alerts/<model>/asked/``;
    - stores the answer as soon as it is given (``execute_complete``), with the responder and
      the time of the response (``driftline.stages.feedback.record``: once; a different answer than
      one given meanwhile elsewhere is a change)."""

    template_fields = ()

    def __init__(self, *, model: str, incident_key: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.model = model
        self.incident_key = incident_key

    def execute(self, context):
        from airflow.sdk.exceptions import AirflowSkipException

        from driftline.stages import answers, feedback
        from driftline_airflow.runtime import get_store

        store, ti = get_store(), context["ti"]
        given = answers.incident_answers(store, self.model, self.incident_key)
        if given:
            raise AirflowSkipException(f"{self.incident_key}: answered meanwhile "
                                       f"({answers.note(given[-1])}); not asked")
        now = datetime.now(timezone.utc)
        expires = now + self.response_timeout if self.response_timeout else None
        feedback.mark_asked(store, self.model, self.incident_key, ti.run_id, expires=expires, at=now,
                            dag_id=ti.dag_id, map_index=ti.map_index)
        first = feedback.waiting(feedback.read_requests(store, self.model, self.incident_key), now)
        owner = first.get(self.incident_key)
        if owner and owner["run_id"] != ti.run_id:
            feedback.mark_asked(store, self.model, self.incident_key, ti.run_id, expires=expires, state="superseded")
            raise AirflowSkipException(f"{self.incident_key}: already asked in run {owner['run_id']} "
                                       f"(waits until {owner.get('expires')}); not asked twice")
        try:
            return super().execute(context)  # parks the task: TaskAwaitingInput is a BaseException
        except Exception:
            # no request was made: it must not hold the incident until its deadline
            feedback.mark_asked(store, self.model, self.incident_key, ti.run_id, expires=expires, state="failed")
            raise

    def execute_complete(self, context, event):
        from airflow.sdk.exceptions import AirflowFailException

        from driftline.stages import answers, feedback
        from driftline.store import StoreError
        from driftline_airflow.runtime import get_store, load_configs, log_summary

        store, run_id = get_store(), context["ti"].run_id
        if "error" in event:  # no answer: this request no longer holds the incident (a later run asks)
            state = "timed_out" if event.get("error_type") == "timeout" else "failed"
            try:
                feedback.mark_asked(store, self.model, self.incident_key, run_id, expires=None, state=state)
            except StoreError as exc:  # its deadline frees the incident anyway
                self.log.warning("could not record that the request %s: %s", state, exc)
            return super().execute_complete(context, event)  # raises HITLTimeoutError / HITLTriggerEventError
        result = super().execute_complete(context, event)  # validates the options and the comment
        by = responder(result.get("responded_by_user"))
        kind = OPTIONS[result["chosen_options"][0]]
        comment = str((result.get("params_input") or {}).get("comment") or "").strip()
        at = result.get("responded_at")
        at = datetime.fromisoformat(at) if isinstance(at, str) else at
        loaded = load_configs()
        cfg = loaded.models.get(self.model)
        try:
            if cfg is None:
                raise answers.FeedbackError(f"no model file for {self.model!r} loads now "
                                             f"({'; '.join(map(str, loaded.errors.values())) or 'none found'})")
            if not by:
                raise answers.FeedbackError("the response names nobody who gave it")
            done = feedback.record(cfg, store, self.incident_key, kind, by=by, comment=comment, at=at,
                                   source="airflow-hitl")
        except (answers.FeedbackError, StoreError) as exc:
            cmd = " ".join(["driftline feedback", "--model", shlex.quote(self.model), "--alert",
                            shlex.quote(self.incident_key), "--kind", kind, "--by", shlex.quote(by or "WHO")]
                           + (["--comment", shlex.quote(comment)] if comment else []))
            raise AirflowFailException(f"{self.incident_key}: the answer ({kind} by {by or '?'}) could not be "
                                       f"stored: {exc}. Record it with: {cmd}") from None
        try:
            feedback.mark_asked(store, self.model, self.incident_key, run_id, expires=None, state="answered")
        except StoreError as exc:  # the answer is stored: nobody is asked about it again anyway
            self.log.warning("could not record that the request was answered: %s", exc)
        said = ("recorded" if done.new and not done.replaced else "recorded as a change" if done.new
                else "already recorded, nothing new")
        log_summary(f"answer to {self.incident_key}: {said}", [answers.note(done.record)],
                    store.uri(answers.feedback_prefix(self.model)))
        return {**result, "driftline": {"incident_key": self.incident_key, "new": done.new,
                                        "changed": bool(done.new and done.replaced),
                                        "note": answers.note(done.record)}}
