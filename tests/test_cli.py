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


# -- the contract on bad input: exit 2, naming the argument and its value, before any work -----
BAD_INPUT = [
    # (argv, what stderr (or validate's stdout) must say)
    (["validate", "/nope/churn.yaml"], ["ERROR /nope/churn.yaml: cannot read the file"]),
    (["--monitors", "/nope", "validate"], ["argument --monitors: '/nope' is not a folder"]),
    (["demo", "--days", "0"], ["argument --days: '0': must be at least 1"]),
    (["demo", "--rows-per-hour", "many"], ["argument --rows-per-hour: 'many' is not a whole number"]),
    (["demo", "--label-delay-hours", "nan"], ["argument --label-delay-hours: 'nan': must lie in [0, 8760]"]),
    (["demo", "--seed", "-1"], ["argument --seed: '-1': must be at least 0"]),
    (["demo", "--root", "bogus://x"], ["argument --root: 'bogus://x': unknown scheme 'bogus'"]),
    (["baseline", "--model", "../etc"], ["argument --model: '../etc' is not a model name"]),
    (["baseline", "--model", "nope"], ["--model: no valid model named 'nope' (found ['churn'])"]),
    (["baseline", "--config", "/nope.yaml"], ["argument --config: '/nope.yaml': no such file or folder"]),
    (["baseline", "--model", "churn", "--training-data", "/nope.parquet"],
     ["argument --training-data: '/nope.parquet': no such file or folder"]),
    (["baseline-import", "--model", "churn", "--statistics", "/nope.json", "--constraints", "/nope.json"],
     ["argument --statistics: '/nope.json': no such file or folder"]),
    (["monitor", "--model", "churn", "--start", "2026-13-01", "--end", "2026-10-03"],
     ["argument --start: '2026-13-01' is not an ISO date/time like 2026-10-01"]),
    (["monitor", "--model", "churn", "--start", "2026-10-01", "--end", "9999-12-31"],
     ["argument --end: '9999-12-31': ", "outside the supported range 1970-01-01 to 2200-01-01"]),
    (["monitor", "--model", "churn", "--start", "1969-12-31", "--end", "2026-10-03"],
     ["argument --start: '1969-12-31': ", "outside the supported range"]),
    (["monitor", "--model", "churn", "--start", "2026-10-05", "--end", "2026-10-01"],
     ["argument --end: 2026-10-01T0000Z is not after --start 2026-10-05T0000Z"]),
    (["monitor", "--model", "churn", "--start", "2026-10-01", "--end", "2199-12-31"],
     ["arguments --start/--end: [2026-10-01T0000Z, 2199-12-31T0000Z) holds more than 10000 daily intervals"]),
    (["monitor", "--model", "churn", "--start", "2026-10-01T01:00", "--end", "2026-10-02"],
     ["arguments --start/--end: no complete daily interval of churn in [2026-10-01T0100Z, 2026-10-02T0000Z)"]),
    (["monitor", "--model", "churn", "--start", "2026-10-01", "--end", "2026-10-02", "--baseline", "latest"],
     ["argument --baseline: 'latest' is not a version like v3"]),
    (["labels", "--model", "churn", "--since", "soon"], ["argument --since: 'soon' is not an ISO date/time"]),
    (["reevaluate", "--model", "churn", "--as-of", "2026-02-30"], ["argument --as-of: '2026-02-30' is not an ISO"]),
    (["models", "--model", "9lives"], ["argument --model: '9lives' is not a model name"]),
    (["alerts", "--model", "churn", "--since", "yesterday"], ["argument --since: 'yesterday' is not an ISO"]),
    (["history", "--model", "churn", "--since", "x"], ["argument --since: 'x' is not an ISO date/time"]),
    (["history", "--model", "churn", "--since", "2026-10-05", "--until", "2026-10-01"],
     ["argument --until: 2026-10-01T0000Z is not after --since 2026-10-05T0000Z"]),
    (["feedback", "--model", "churn", "--alert", " "], ["argument --alert: ' ': must not be blank"]),
    (["feedback", "--model", "churn", "--alert", "x", "--kind", "wrong"], ["argument --kind: invalid choice: 'wrong'"]),
    (["rollback", "--model", "churn", "--to", "3"], ["argument --to: '3' is not a version like v3"]),
    (["retrain", "--model", "churn", "--window", "soon"], ["argument --window: 'soon' is not a duration like '36h'"]),
    (["retrain", "--model", "churn", "--window", "0d"], ["argument --window: '0d': a duration must be positive"]),
    (["retrain", "--model", "churn", "--window", "99999999999d"], ["argument --window: '99999999999d': a duration"]),
    (["retrain", "--model", "churn", "--end", "2200-01-01"], ["argument --end: '2200-01-01': ", "outside"]),
    (["retrain", "--model", "churn", "--as-of", "today"], ["argument --as-of: 'today' is not an ISO"]),
    (["retrain", "--model", "churn", "--run-id", "../../x"], ["argument --run-id: run id '../../x': use letters"]),
    (["profile", "--data", "/nope.parquet"], ["argument --data: '/nope.parquet': no such file or folder"]),
    (["profile", "--data", "{csv}", "--out", "/nope/p.json"], ["argument --out: '/nope/p.json': folder '/nope' does"]),
    (["drift", "--baseline", "/nope.json", "--current", "{csv}"], ["argument --baseline: '/nope.json': no such file"]),
    (["drift", "--baseline", "{csv}", "--current", "/nope.csv"], ["argument --current: '/nope.csv': no such file"]),
    (["drift", "--baseline", "{csv}", "--current", "{csv}", "--workers", "0"], ["argument --workers: '0': must be"]),
    (["drift", "--baseline", "{csv}", "--current", "{csv}", "--small-sample", "-5"], ["argument --small-sample: '-5'"]),
    (["drift", "--baseline", "{csv}", "--current", "{csv}", "--drift-share", "0"],
     ["argument --drift-share: '0': must lie in (0, 1]"]),
    (["drift", "--baseline", "{csv}", "--current", "{csv}", "--exclude", "b,zz"],
     ["--exclude: ['zz'] are not columns of the data (it has ['a', 'b'])"]),
    (["--store", "bogus://x", "models", "--model", "churn"], ["argument --store: 'bogus://x': unknown scheme 'bogus'"]),
]


@pytest.mark.parametrize("argv,says", BAD_INPUT, ids=[" ".join(a) for a, _ in BAD_INPUT])
def test_bad_input_exits_2_naming_the_argument_and_value(argv, says, tmp_path, capsys):
    csv = tmp_path / "d.csv"
    csv.write_text("a,b\n1,x\n2,y\n")
    argv = [a.replace("{csv}", str(csv)) for a in argv]
    if "--store" not in argv:  # nothing may be written, but if it were, not to the project's store
        argv = ["--store", f"file://{tmp_path}/store", *argv]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    for text in says:
        assert text in err + out
    assert "Traceback" not in err
    assert not (tmp_path / "store").exists()  # refused before any work


def test_every_subcommand_has_a_bad_input_case():
    import argparse

    from driftline.cli import build_parser

    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    covered = {next(a for a in argv if not a.startswith("-") and "://" not in a and a != "/nope") for argv, _ in BAD_INPUT}
    assert set(sub.choices) <= covered, f"no bad-input case for {sorted(set(sub.choices) - covered)}"


def test_help_exits_0(capsys):
    assert main(["--help"]) == 0
    assert "monitor" in capsys.readouterr().out


def test_alerts_since_is_a_time_not_text(tmp_path, capsys, monkeypatch):
    """--since was compared as text with the interval keys: an offset (or any other spelling of
    the same instant) chose other intervals; it is now a time, in UTC."""
    from driftline.stages import alerts

    def event(key: str) -> dict:
        return {"interval": key, "event": "firing", "severity": "warning", "check": "baseline_drift_check",
                "text": "x drifted", "incident_key": f"churn|baseline_drift_check|x|{key}", "deliveries": []}

    keys = ["2026-10-01T2200Z", "2026-10-01T2300Z", "2026-10-02T0600Z"]
    monkeypatch.setattr(alerts, "read_events", lambda store, model: [event(k) for k in keys])
    store = f"file://{tmp_path}/store"
    assert main(["--store", store, "alerts", "--model", "churn", "--since", "2026-10-02T01:00+02:00"]) == 0
    shown = [line.split()[0] for line in capsys.readouterr().out.splitlines()[:-1]]
    assert shown == keys[1:]  # 2026-10-01T23:00 UTC on
