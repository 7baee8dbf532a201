"""
### driftline feedback: a person answers each alert, in Airflow

One DAG per model file. Scheduled on the Asset `driftline://<model>/alerts`, which the
monitoring DAG updates when alert incidents opened in a run, **and once a day**: every run asks
about every unanswered incident still open, so the incidents raised while this DAG was paused
(new DAGs start paused) or the scheduler was down are asked about too -- at the latest the day
after, or at once when the DAG is unpaused. It can also be triggered by hand, with Params
(`interval`: the incidents that opened in that interval; empty: every incident still open).

1. **open_incidents**: the incidents to ask about: every unanswered one still open, plus those
   the triggering Asset events announce (or, by hand, those that opened in `interval`). Left
   out: incidents a person already answered (here, from `driftline feedback` or on the
   driftline page), incidents a re-judgement withdrew, and incidents whose request in another
   run still waits for an answer (`alerts/<model>/asked/` in the store): nobody is asked twice
   about one incident; a request that timed out frees it for the next run.
2. **ask** (mapped, one per incident): Airflow's human-in-the-loop operator. The request (under
   *Required Actions*, or `PATCH .../hitlDetails` in the REST API) shows the model, check,
   subject, severity, the alert's sentence, the interval and a link to the run's report; the
   answer is one of **Acknowledge** (seen, being handled), **False positive** (the check was
   wrong here) or **Expected** (real, but known: a seasonal change, a planned launch), with an
   optional comment. False positive and expected suppress that check on that subject for the
   model's `alerting.suppress_false_positive` / `suppress_expected` window, counted from the
   interval the incident opened in. **The answer is stored as soon as it is given** (with who
   gave it and when, `source: airflow-hitl`, append-only under `alerts/<model>/feedback/`, where
   no re-run or backfill of a monitoring interval reaches it) and shows at once on the driftline
   page; the same answer given there too is recorded once. A request whose incident was
   answered meanwhile, or that another run asks about, is skipped. The task waits in *awaiting
   input* without a worker; after the response timeout it fails with nothing recorded: the
   incident stays unanswered (answer it from the CLI or the driftline page, or a later run asks
   again).
3. **summarise_answers**: one log block: what each request got (recorded, the same as an answer
   already there, answered elsewhere, no answer).

Alert text (feature names, categories, descriptions) is data: the request's operator renders no
Jinja in its subject and body (`AlertQuestion`), and the body shows it in Markdown code spans.
"""
from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, AssetOrTimeSchedule, CronTriggerTimetable, Param, task

from driftline.config import ModelConfig
from driftline_airflow.feedback_requests import (
    OPTIONS,
    RESPONSE_TIMEOUT,
    AlertQuestion,
    announced,
    comment_param,
    hitl_request,
    interval_param,
)
from driftline_airflow.runtime import alerts_asset, fail_clearly, get_store, log_summary, publish_model_dags

#: When a run asks even without a new alert: catches what was raised while nobody asked.
CATCH_UP = "0 6 * * *"


def build_feedback_dag(cfg: ModelConfig) -> DAG:
    asset = alerts_asset(cfg.name)
    with DAG(
        dag_id=f"driftline_feedback_{cfg.name}",
        description=f"Ask a person about each new alert of {cfg.name}: acknowledge, false positive or expected",
        schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable(CATCH_UP, timezone="UTC"), assets=[asset]),
        start_date=cfg.start_date,
        catchup=False,
        tags=sorted({"driftline", "monitoring", *cfg.tags}),
        doc_md=__doc__ + f"\n\nModel file: `{cfg.source}`.",
        default_args={"retries": 1, "retry_delay": timedelta(seconds=30)},
        params={
            "model": Param(cfg.name, type="string", enum=[cfg.name], description="The model whose alerts to answer."),
            "interval": interval_param(),
        },
    ) as dag:

        @task
        def open_incidents(**context) -> list[dict]:
            from datetime import datetime, timezone

            from airflow.sdk.exceptions import AirflowFailException

            from driftline.stages.alerts import read_events
            from driftline.stages.answers import FeedbackError, read_all
            from driftline.stages.feedback import interval_ref, read_requests, to_ask

            keys = announced(cfg.name, context.get("triggering_asset_events"))
            asked = str((context.get("params") or {}).get("interval") or "")
            try:
                interval = interval_ref(asked) if keys is None and asked.strip() else None
            except FeedbackError as exc:
                raise AirflowFailException(str(exc)) from None
            store = get_store()
            with fail_clearly():
                plan = to_ask(read_events(store, cfg.name), read_all(store, cfg.name), read_requests(store, cfg.name),
                              datetime.now(timezone.utc), announced=keys, interval=interval, run_id=context["run_id"])
            which = (f"incidents opened in {interval}" if interval else "every open incident"
                     + (f" and the {len(keys)} announced" if keys else ""))
            log_summary(f"open_incidents {cfg.name}: {len(plan.ask)} to ask about ({which}; answered ones left out)",
                        [f"- [{i['severity']}] {i['check']} {i['subject']} (opened {i['incident']})"
                         for i in plan.ask[:30]]
                        + [f"- not asked, waits for an answer in run {r['run_id']} until {r.get('expires')}: "
                           f"{i['check']} {i['subject']} (opened {i['incident']})" for i, r in plan.waiting[:30]],
                        store.uri("alerts", cfg.name))
            return plan.ask

        def request_kwargs(incident: dict) -> dict:
            return hitl_request(cfg, incident)

        incidents = open_incidents()
        ask = AlertQuestion.partial(
            task_id="ask",
            model=cfg.name,
            options=list(OPTIONS),
            params={"comment": comment_param()},
            # no defaults: a request nobody answers records nothing
            response_timeout=RESPONSE_TIMEOUT,
            retries=0,  # a retry would ask again after the timeout
            map_index_template="{{ task.subject }}",
        ).expand_kwargs(incidents.map(request_kwargs))

        # all_done: the summary comes when some requests timed out too (each answer is stored as given)
        @task(trigger_rule="all_done")
        def summarise_answers(**context) -> dict:
            from airflow.sdk.exceptions import AirflowSkipException

            from driftline.stages.answers import incident_answers, note

            ti = context["ti"]
            asked = ti.xcom_pull(task_ids="open_incidents")
            if asked is None:
                raise AirflowSkipException("open_incidents did not finish: nothing was asked")
            store = get_store()
            lines, answered = [], 0
            for i, inc in enumerate(asked):
                got = (ti.xcom_pull(task_ids="ask", map_indexes=i) or {}).get("driftline")
                what = f"{inc['check']} {inc['subject']} (opened {inc['incident']})"
                answers = incident_answers(store, cfg.name, inc["incident_key"])
                if got:
                    answered += 1
                    said = ("recorded as given" if got["new"] else "the same as the answer already recorded, "
                            "recorded once")
                    lines.append(f"- {what}: {said}: {got['note']}")
                elif answers:
                    lines.append(f"- {what}: not asked here, answered elsewhere: {note(answers[-1])}")
                else:
                    lines.append(f"- {what}: no answer (timed out, failed or asked in another run), "
                                 "stays unanswered")
            log_summary(f"summarise_answers {cfg.name}: {answered} of {len(asked)} request(s) answered here",
                        lines or ["nothing was asked"], store.uri("alerts", cfg.name, "feedback"))
            return {"asked": len(asked), "answered": answered}

        ask >> summarise_answers()
    return dag


# a broken model file is reported once, by driftline_monitoring.py
publish_model_dags(globals(), build_feedback_dag, "driftline_feedback_", report_file_errors=False)
