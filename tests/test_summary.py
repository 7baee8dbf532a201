"""The summary block each task logs last: what it found, where the artifacts are, the report's
link and the next step a person should take, chosen from what the stage found."""
from driftline.pipeline.summary import next_step, summary_block


def test_the_block_ends_with_artifacts_report_and_next_step():
    block = summary_block("drift churn", ["3 of 11 features drifted"], "file:///s/runs/churn/2026-10-04T0000Z",
                          next_step="look at the drivers", report="http://ui/driftline/models/churn/runs/k/report.html")
    lines = block.splitlines()
    assert lines[0] == lines[-1] and set(lines[0]) == {"="}
    assert lines[1:-1] == ["drift churn", "  3 of 11 features drifted",
                           "  artifacts: file:///s/runs/churn/2026-10-04T0000Z",
                           "  report:    http://ui/driftline/models/churn/runs/k/report.html",
                           "  next:      look at the drivers"]
    assert summary_block("t", []).splitlines()[1:-1] == ["t"]


def test_next_steps_follow_what_each_stage_found():
    assert next_step("ingest", {"objects_read": 0}).startswith("no captured data")
    assert "3 record(s) quarantined" in next_step("ingest", {"objects_read": 2, "quarantined": 3})
    assert next_step("ingest", {"objects_read": 2, "quarantined": 0}) == "nothing to do"
    assert next_step("ingest", {"objects_read": 2, "quarantined": 9, "unreadable_objects": 1}).startswith(
        "1 capture object(s) could not be read to their end")
    assert "'expected'" in next_step("data_quality", {"status": "violations"}, "churn")
    assert "--model churn --absorb-feedback" in next_step("drift", {"drifted": ["monthly_charges"]}, "churn")
    assert "(monthly_charges first)" in next_step("drift", {"drifted": ["monthly_charges", "contract"]})
    assert next_step("drift", {"drifted": []}) == "nothing to do"
    assert next_step("model_quality", {"status": "estimated"}).startswith("labels not in yet")
    assert "retraining policy" in next_step("model_quality", {"status": "violations"})
    firing = [{"incident": "2026-10-05T0000Z", "interval": "2026-10-05T0000Z"},
              {"incident": "2026-10-04T0000Z", "interval": "2026-10-05T0000Z"}]
    assert next_step("alerts", {"firing": firing}).startswith("1 new incident(s): answer each")
    assert next_step("alerts", {"firing": firing[1:]}) == "nothing to do"
    assert next_step("run", {"status": "violations"}).startswith("open the report")
    assert next_step("run", {"status": "ok"}) == "nothing to do"
