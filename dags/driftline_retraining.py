"""
### driftline retraining: one DAG per model file with `retraining.enabled`

Scheduled on the Asset `driftline://<model>/retraining`, which the monitoring DAG updates when
the model's retraining policy holds (a model-quality violation, or sustained dataset drift,
with enough labelled rows). It can also be triggered by hand from the UI, with Params.

1. **plan**: what to train on: the request of the triggering Asset event (its interval's end),
   or the Params of a manual run (`end`, `window`, `dry_run`).
2. **prepare**: the recent labelled data (merged predictions and labels of the window's
   intervals); its latest `retraining.holdout` share is held out, the rest (plus the
   training data, if `retraining.include_training_data`) is for training.
3. **train**: the challenger: the champion's estimator, re-fitted with a bounded
   hyperparameter search (`retraining.search`).
4. **evaluate**: champion and challenger on the same held-out recent rows; the challenger
   wins only by more than `retraining.margin` on `retraining.metric`.
5. **gate**: a loss or a dry run ends here (`not_promoted` logs both scores); a win goes to
   **approve** (Airflow's ApprovalOperator, when `retraining.approval.required`: the scores
   are in the request; no answer before the timeout is a rejection) or straight on.
6. **promote**: registers the challenger as a new model version and builds a new baseline
   version from its data; later monitoring runs use it. Updates the Asset
   `driftline://<model>/promoted` (for a deployment DAG). Versions are never overwritten:
   `driftline rollback --model <model> --to vN` restores an earlier one.

Artifacts: `models/<model>/retraining/<run>/` in the store.
"""
from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, Param, task

from driftline.config import ModelConfig
from driftline_airflow.runtime import (
    fail_clearly,
    get_store,
    log_summary,
    promoted_asset,
    publish_model_dags,
    resolver,
    retraining_asset,
)

#: Params of a manual run, validated by the trigger form (JSON schema).
DURATION = r"^$|^\s*\d+(\.\d+)?\s*[smhdw]\s*$"


def build_retraining_dag(cfg: ModelConfig) -> DAG:
    pol = cfg.retraining
    with DAG(
        dag_id=f"driftline_retrain_{cfg.name}",
        description=f"Retrain {cfg.name}: challenger vs champion on recent labelled data, promote only a better one",
        schedule=[retraining_asset(cfg.name)],
        start_date=cfg.start_date,
        catchup=False,
        max_active_runs=1,
        tags=sorted({"driftline", "retraining", *cfg.tags}),
        doc_md=__doc__ + f"\n\nModel file: `{cfg.source}`.",
        default_args={"retries": 1, "retry_delay": timedelta(seconds=30)},
        params={
            "model": Param(cfg.name, type="string", enum=[cfg.name], description="The model to retrain."),
            "end": Param("", type="string", pattern=r"^$|^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:\d{2})?$",
                         description="End of the recent-data window (ISO date/time, UTC); empty: now."),
            "window": Param("", type="string", pattern=DURATION,
                            description=f"Recent-data window, e.g. 14d; empty: the model file's ({pol.window})."),
            "dry_run": Param(False, type="boolean",
                             description="Train and evaluate, never promote."),
        },
    ) as dag:

        @task
        def plan(**context) -> dict:
            from driftline.stages.retrain import plan as run

            request = None
            for events in (context.get("triggering_asset_events") or {}).values():
                for ev in events:
                    if (ev.extra or {}).get("model") == cfg.name:
                        request = ev.extra  # the latest event wins
            with fail_clearly():
                out = run(cfg, context["run_id"], request=request, params=dict(context["params"]))
            log_summary(f"plan retraining {cfg.name}", [out["summary"]])
            return out

        @task
        def prepare(p: dict) -> dict:
            from datetime import datetime

            from driftline.stages.retrain import prepare as run

            store = get_store()
            with fail_clearly():
                out = run(cfg, store, p["run"], datetime.fromisoformat(p["end"]),
                          window=timedelta(days=p["window_days"]), resolver=resolver())
            log_summary(f"prepare {cfg.name}", [out["summary"]], store.uri(_run_prefix(cfg, p)))
            return out

        @task
        def train(p: dict, prepared: dict) -> dict:
            from driftline.stages.retrain import train as run

            store = get_store()
            with fail_clearly():
                out = run(cfg, store, p["run"], resolver=resolver())
            log_summary(f"train {cfg.name}", [out["summary"]], store.uri(_run_prefix(cfg, p)))
            return out

        @task
        def evaluate(p: dict, trained: dict) -> dict:
            from driftline.stages.retrain import evaluate as run

            store = get_store()
            with fail_clearly():
                out = run(cfg, store, p["run"], resolver=resolver())
            log_summary(f"evaluate {cfg.name}: {'CHALLENGER WINS' if out['promote'] else 'champion stays'}",
                        [out["reason"]], store.uri(_run_prefix(cfg, p)))
            return out

        @task.branch
        def gate(p: dict, decision: dict) -> str:
            if not decision["promote"] or p["dry_run"]:
                return "not_promoted"
            return "approve" if pol.approval.required else "no_approval_needed"

        @task
        def not_promoted(p: dict, decision: dict) -> dict:
            why = "dry run: nothing is promoted" if p["dry_run"] and decision["promote"] else "challenger not better"
            log_summary(f"retraining {cfg.name}: NOT PROMOTED ({why})", [decision["reason"]],
                        get_store().uri(_run_prefix(cfg, p)))
            return {"promoted": False, "why": why, "reason": decision["reason"]}

        @task
        def no_approval_needed() -> str:
            return "retraining.approval.required is false"

        from airflow.providers.standard.operators.hitl import ApprovalOperator

        approve = ApprovalOperator(
            task_id="approve",
            subject=f"Promote a retrained {cfg.name}?",
            body="{{ ti.xcom_pull(task_ids='evaluate')['reason'] }}\n\n"
                 "Artifacts: {{ ti.xcom_pull(task_ids='evaluate')['uri'] }}",
            defaults="Reject",  # no answer before the timeout: nothing is promoted
            response_timeout=pol.approval.timeout,
            assigned_users=[{"id": u, "name": u} for u in pol.approval.approvers] or None,
        )

        @task(trigger_rule="none_failed_min_one_success", outlets=[promoted_asset(cfg.name)])
        def promote(p: dict, decision: dict, *, outlet_events=None, **context) -> dict:
            from airflow.sdk.exceptions import AirflowSkipException

            from driftline.stages.retrain import promote as run

            if not decision["promote"] or p["dry_run"]:
                # none_failed_min_one_success also counts plan and evaluate: the gate chose
                # not_promoted (both of this task's gate paths were skipped)
                raise AirflowSkipException("not promoted: " + decision["reason"])
            approval = context["ti"].xcom_pull(task_ids="approve")
            actor = "driftline"
            if approval and approval.get("responded_by_user"):
                actor = f"approved by {approval['responded_by_user'].get('name')}"
            store = get_store()
            with fail_clearly():
                out = run(cfg, store, p["run"], actor=actor, resolver=resolver())
            outlet_events[promoted_asset(cfg.name)].extra = {
                "model": cfg.name, "version": out["model_version"], "baseline": out["baseline_version"]}
            log_summary(f"retraining {cfg.name}: PROMOTED {out['model_version']} (baseline {out['baseline_version']})",
                        [decision["reason"], f"by: {actor}", out["summary"]], store.uri(_run_prefix(cfg, p)))
            return out

        planned = plan()
        prepared = prepare(planned)
        decision = evaluate(planned, train(planned, prepared))
        branch = gate(planned, decision)
        skip_approval = no_approval_needed()
        branch >> [not_promoted(planned, decision), approve, skip_approval]
        promoted = promote(planned, decision)
        [approve, skip_approval] >> promoted
    return dag


def _run_prefix(cfg: ModelConfig, p: dict) -> str:
    from driftline.stages.retrain import run_prefix

    return run_prefix(cfg.name, p["run"])


publish_model_dags(globals(), lambda cfg: build_retraining_dag(cfg) if cfg.retraining.enabled else None,
                   "driftline_retrain_", report_file_errors=False)
