"""The driftline command, run in-process on a small demo."""
import json

import pytest

from driftline.cli import main


@pytest.fixture
def demo_env(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIFTLINE_DEMO_ROOT", f"file://{tmp_path}/demo")
    store = f"file://{tmp_path}/store"
    assert main(["--store", store, "demo", "--days", "3", "--rows-per-hour", "15"]) == 0
    return tmp_path, store


def test_validate_exit_codes(tmp_path, capsys):
    assert main(["validate"]) == 0
    assert "ok" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\n")
    assert main(["validate", str(bad)]) == 2
    out = capsys.readouterr().out
    assert f"ERROR {bad}: problem_type: required field is missing" in out


def test_baseline_then_monitor(demo_env, capsys):
    tmp_path, store = demo_env
    assert main(["--store", store, "baseline", "--model", "churn"]) == 0
    assert "baseline churn/v1" in capsys.readouterr().out
    rc = main(["--store", store, "monitor", "--model", "churn", "--start", "2026-10-01", "--end", "2026-10-03"])
    out = capsys.readouterr().out
    assert rc == 0, out  # two clean days
    assert out.count("churn 2026-10-0") >= 2 and "OK" in out
    run = json.loads((tmp_path / "store/runs/churn/2026-10-02T0000Z/run.json").read_text())
    assert run["status"] == "ok" and run["stages"]["ingest"]["quarantined"] == 3
    assert run["stages"]["drift"]["drifted"] == [] and (tmp_path / "store/runs/churn/2026-10-02T0000Z/drift.json").exists()
    # alerts were evaluated on both clean days (data, and quality once the labels were there): none
    assert run["stages"]["alerts_data"]["summary"].startswith("data alerts: 2026-10-02T0000Z 0 firing")
    assert main(["--store", store, "alerts", "--model", "churn"]) == 0
    assert capsys.readouterr().out.startswith("churn: no alerts in ")
    # the stored baseline version folder works as a reference for `driftline drift` too
    rc = main(["drift", "--baseline", str(tmp_path / "store/baselines/churn/v1"), "--model", "churn",
               "--current", str(tmp_path / "store/runs/churn/2026-10-02T0000Z/batch.parquet"),
               "--out", str(tmp_path / "d.json")])
    doc = json.loads((tmp_path / "d.json").read_text())
    assert rc == 0 and doc["dataset"]["features"] == 11 and doc["importance_source"].startswith("permutation")
    assert doc["multivariate"]["checked"] and set(doc["prediction"]) == {"predicted_churn", "churn_probability"}


def test_errors_are_one_line_not_tracebacks(tmp_path, capsys):
    store = f"file://{tmp_path}/store"
    assert main(["--store", store, "baseline", "--model", "nope"]) == 2
    assert "no valid model named 'nope'" in capsys.readouterr().err
    rc = main(["--store", store, "monitor", "--model", "churn", "--start", "2026-10-01", "--end", "2026-10-02"])
    assert rc == 2
    assert "has no baseline" in capsys.readouterr().err


def test_unreachable_store_exit_code(demo_env, capsys):
    tmp_path, _ = demo_env
    blocker = tmp_path / "f"
    blocker.write_text("x")
    assert main(["--store", f"file://{blocker}/s", "baseline", "--model", "churn"]) == 3
    assert f"store file://{blocker}/s" in capsys.readouterr().err


def test_baseline_if_missing(demo_env, capsys):
    _, store = demo_env
    assert main(["--store", store, "baseline", "--model", "churn", "--if-missing"]) == 0
    assert main(["--store", store, "baseline", "--model", "churn", "--if-missing"]) == 0
    assert "churn/v1 exists; nothing to do" in capsys.readouterr().out
