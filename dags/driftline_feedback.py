"""
### driftline feedback: a person answers each alert, in Airflow

One DAG per model file. Scheduled on the Asset `driftline://<model>/alerts`, which the
monitoring DAG updates when alert incidents opened in a run; it can also be triggered by hand,
with Params (`interval`: the incidents that opened in that interval; empty: every incident still
open).

1. **open_incidents**: the incidents to ask about -- the triggering Asset events' (or the
   Params') -- without those a person already answered (here, from `driftline feedback` or on
   the driftline page): an answered incident is never asked again.
2. **ask** (mapped, one per incident): Airflow's human-in-the-loop operator. The request (under
   *Required Actions*, or `PATCH .../hitlDetails` in the REST API) shows the model, check,
   subject, severity, the alert's sentence, the interval and a link to the run's report; the
   answer is one of **Acknowledge** (seen, being handled), **False positive** (the check was
   wrong here) or **Expected** (real, but known: a seasonal change, a planned launch), with an
   optional comment. False positive and expected suppress that check on that subject for the
   model's `alerting.suppress_false_positive` / `suppress_expected` window. The task waits in
   *awaiting input* without a worker; after the response timeout it fails with nothing
   recorded: the incident stays unanswered (answer it later from the CLI or the driftline page,
   or trigger this DAG again).
3. **record_feedback**: stores each answer with who gave it and when (`source: airflow-hitl`),
   append-only under `alerts/<model>/feedback/` in the store, where no re-run or backfill of a
   monitoring interval reaches it.

Alert text (feature names, categories, descriptions) is data: the request's operator renders no
Jinja in its subject and body (`AlertQuestion`), and the body shows it in Markdown code spans.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, Param, task
from driftline_airflow.feedback_requests import (INTERVAL, OPTIONS, RESPONSE_TIMEOUT, AlertQuestion, announced,
                                                 hitl_request, responder)
from driftline_airflow.runtime import alerts_asset, fail_clearly, get_store, log_summary, publish_model_dags

from driftline.config import ModelConfig


def build_feedback_dag(cfg: ModelConfig) -> DAG:
    asset = alerts_asset(cfg.name)
    with DAG(
        dag_id=f"driftline_feedback_{cfg.name}",
        description=f"Ask a person about each new alert of {cfg.name}: acknowledge, false positive or expected",
        schedule=[asset],
        start_date=cfg.start_date,
        catchup=False,
        tags=sorted({"driftline", "monitoring", *cfg.tags}),
        doc_md=__doc__ + f"\n\nModel file: `{cfg.source}`.",
        default_args={"retries": 1, "retry_delay": timedelta(seconds=30)},
        params={
            "model": Param(cfg.name, type="string", enum=[cfg.name], description="The model whose alerts to answer."),
            "interval": Param("", type="string", pattern=INTERVAL,
                              description="Ask about the incidents that opened in this interval (e.g. "
                                          "2026-10-04T0000Z or 2026-10-04); empty: every incident still open. "
                                          "Incidents already answered are not asked again."),
        },
    ) as dag:

        @task
        def open_incidents(**context) -> list[dict]:
            from airflow.sdk.exceptions import AirflowFailException

            from driftline.alerts import read_events
            from driftline.feedback import FeedbackError, interval_ref, read_all, unanswered

            keys = announced(cfg.name, context.get("triggering_asset_events"))
            asked = (context.get("params") or {}).get("interval") or ""
            try:
                interval = interval_ref(asked) if keys is None and asked.strip() else None
            except FeedbackError as exc:
                raise AirflowFailException(str(exc)) from None
            store = get_store()
            with fail_clearly():
                todo = unanswered(read_events(store, cfg.name), read_all(store, cfg.name), keys=keys, interval=interval)
            which = (f"{len(keys)} announced incident(s)" if keys is not None else
                     f"incidents opened in {interval}" if interval else "every open incident")
            log_summary(f"open_incidents {cfg.name}: {len(todo)} to ask about ({which}, answered ones left out)",
                        [f"- [{i['severity']}] {i['check']} {i['subject']} (opened {i['incident']})"
                         for i in todo[:30]],
                        store.uri("alerts", cfg.name))
            return todo

        def request_kwargs(incident: dict) -> dict:
            return hitl_request(cfg, incident)

        incidents = open_incidents()
        ask = AlertQuestion.partial(
            task_id="ask",
            options=list(OPTIONS),
            params={"comment": Param("", type="string", title="Comment",
                                     description="Why (optional), e.g. 'promo week' or 'known seasonal change'.")},
            # no defaults: a request nobody answers records nothing
            response_timeout=RESPONSE_TIMEOUT,
            retries=0,  # a retry would ask again after the timeout
            map_index_template="{{ task.subject }}",
        ).expand_kwargs(incidents.map(request_kwargs))

        # all_done: the answers given are recorded when other requests timed out
        @task(trigger_rule="all_done")
        def record_feedback(**context) -> dict:
            from airflow.sdk.exceptions import AirflowSkipException

            from driftline.feedback import note, record

            ti = context["ti"]
            asked = ti.xcom_pull(task_ids="open_incidents")
            if asked is None:
                raise AirflowSkipException("open_incidents did not finish: nothing was asked")
            store = get_store()
            lines, recorded = [], 0
            for i, inc in enumerate(asked):
                answer = ti.xcom_pull(task_ids="ask", map_indexes=i)
                what = f"{inc['check']} {inc['subject']} (opened {inc['incident']})"
                by = responder((answer or {}).get("responded_by_user"))
                if not answer or not answer.get("chosen_options") or not by:
                    lines.append(f"- {what}: no answer (timed out or failed), stays unanswered")
                    continue
                comment = str((answer.get("params_input") or {}).get("comment") or "").strip()
                at = answer.get("responded_at")
                rec = record(cfg, store, inc["incident_key"], OPTIONS[answer["chosen_options"][0]], by=by,
                             comment=comment, at=datetime.fromisoformat(at) if isinstance(at, str) else at,
                             source="airflow-hitl").record
                lines.append(f"- {what}: {note(rec)}")
                recorded += 1
            log_summary(f"record_feedback {cfg.name}: {recorded} of {len(asked)} answer(s) recorded",
                        lines or ["nothing was asked"], store.uri("alerts", cfg.name, "feedback"))
            return {"asked": len(asked), "recorded": recorded}

        ask >> record_feedback()
    return dag


# a broken model file is reported once, by driftline_monitoring.py
publish_model_dags(globals(), build_feedback_dag, "driftline_feedback_", report_file_errors=False)
