"""What the tasks and the CLI print for on-call engineers: one compact block per task (what was
checked, what failed and by how much, where the artifacts are, what to do next)."""
from __future__ import annotations

from typing import Any


def alert_brief(alerts: dict) -> dict:
    """What run.json and XCom keep of an alert evaluation (the records are in the store)."""
    return {"summary": alerts["summary"], "delivery": alerts["delivery"]["summary"], "messages": alerts["messages"],
            "intervals": [r["interval"] for r in alerts["records"]],
            "firing": [{k: a[k] for k in ("check", "subject", "severity", "interval", "incident", "message")}
                       for a in alerts["firing"]][:50]}


def summary_block(title: str, lines: list[str], artifacts: str | None = None, next_step: str | None = None,
                  report: str | None = None) -> str:
    """The compact block each task logs last, for the on-call engineer: what was checked and
    found, then where the artifacts are, the next step a person should take, and the link to
    the run's report (on the driftline page)."""
    tail = [*([f"artifacts: {artifacts}"] if artifacts else []), *([f"report:    {report}"] if report else []),
            *([f"next:      {next_step}"] if next_step else [])]
    width = max([len(title), *(len(x) for x in lines), *(len(x) + 2 for x in tail)])
    bar = "=" * min(max(width, 40), 110)
    return "\n".join([bar, title, *(f"  {x}" for x in lines), *(f"  {x}" for x in tail), bar])


def next_step(stage: str, result: dict[str, Any], model: str = "<model>") -> str:
    """What a person should do after this stage, in one line (the summary block's ``next:``)."""
    r = result or {}
    if stage == "ingest":
        if not r.get("objects_read"):
            return ("no captured data for this interval: if traffic was expected, check the capture location "
                    "and the endpoint's data capture; the run ends with a no-data verdict")
        broken = r.get("unreadable_objects")
        if broken:
            count = len(broken) if isinstance(broken, list) else broken  # ingest.json lists them, XCom counts
            return (f"{count} capture object(s) could not be read to their end (truncated or corrupt): their "
                    f"readable records were kept, the rest is in quarantine.jsonl; ask the producer "
                    f"to rewrite them, then re-run the interval")
        if r.get("quarantined"):
            return (f"{r['quarantined']} record(s) quarantined: read quarantine.jsonl (each with its reason) and fix "
                    f"the producer; they are kept, not counted in the verdict")
        if r.get("missing_columns"):
            return f"columns {r['missing_columns']} are missing from the captured records: check the producer's schema"
        return "nothing to do"
    if stage == "data_quality":
        if r.get("status") == "violations":
            return ("open the report's data-quality section (and its Data Docs) for the failed checks; if the "
                    "upstream change is intended, answer the alert 'expected' (driftline page or "
                    f"`driftline feedback --model {model}`)")
        if r.get("status") == "no_data":
            return "too few rows to check: nothing to do unless traffic was expected"
        return "nothing to do"
    if stage == "drift":
        if r.get("drifted"):
            lead = r["drifted"][0]
            return (f"open the report's drift drivers ({lead} first) and compare the distributions; if the change "
                    f"is real and expected, answer its alert 'expected' so the next baseline absorbs it "
                    f"(`driftline baseline --model {model} --absorb-feedback`)")
        return "nothing to do"
    if stage == "model_quality":
        if r.get("status") == "violations":
            return ("model quality below its threshold: read the report's model-quality section (per segment); the "
                    "retraining policy decides whether a challenger is trained")
        if r.get("status") == "estimated":
            return "labels not in yet: quality is estimated; it is re-evaluated when they land, nothing to do now"
        return "nothing to do"
    if stage == "alerts":
        if r.get("failed"):
            return ("a route refused: check its Airflow connection, then clear this task; only what is missing is "
                    "sent again")
        new = [a for a in r.get("firing", []) if a.get("incident") == a.get("interval")]
        if new:
            return (f"{len(new)} new incident(s): answer each (acknowledge / false positive / expected) in Airflow's "
                    f"Required Actions or on the driftline page")
        return "nothing to do"
    if stage == "run":
        if r.get("incomplete"):
            return (f"stages {', '.join(r['incomplete'])} did not complete: the verdict is partial; see check_run's "
                    f"block and the failed task's log")
        if r.get("status") == "violations":
            return "open the report for what failed and by how much; the alert tasks above say what was sent"
        if r.get("status") == "no_data":
            return "no data in this interval: check the capture if traffic was expected"
        return "nothing to do"
    return "nothing to do"


def interval_summary_lines(stage: str, result: dict[str, Any]) -> list[str]:
    """Lines for a stage's summary block (its one-line summary, then one line per finding)."""
    lines = [result.get("summary", f"{stage}: done")]
    lines += [f"- {f}" for f in result.get("findings", [])]
    return lines


#: The tasks of a monitoring run that must complete for its verdict to be whole, and what each does.
STAGES = {"ingest": "ingest the captured records", "data_quality": "validate data quality",
          "drift": "evaluate drift", "model_quality": "evaluate model quality",
          "alert_data": "evaluate and send the data alerts", "alert_quality": "evaluate and send the quality alerts",
          "record_run": "record the run's verdict", "report": "write the run's report"}


#: What the other tasks do, for failure messages.
TASK_WORDS = {**STAGES, "plan_partitions": "plan the drift partitions", "profile_partition": "profile the batch for drift",
              "wait_for_labels": "wait for the labels", "wait_for_capture": "wait for the capture"}
