"""Data quality through real Great Expectations runs on hand-made batches."""
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from driftline.stages import baseline
from driftline.stages import data_quality as quality
from driftline.store import Store

START = datetime(2026, 10, 1, tzinfo=timezone.utc)
PREFIX = Store.run_prefix("m", START)


@pytest.fixture
def setup(tmp_path, make_config):
    rng = np.random.default_rng(0)
    n = 3000
    train = pd.DataFrame({"x": rng.normal(10, 2, n), "k": rng.integers(0, 5, n),
                          "c": rng.choice(["a", "b", "c"], n), "b": rng.random(n) < 0.3})
    train.to_parquet(tmp_path / "train.parquet")
    cfg = make_config()
    store = Store(f"file://{tmp_path}/store")
    baseline.create_baseline(cfg, store)
    return cfg, store, rng


def clean_batch(rng, m=400) -> pd.DataFrame:
    return pd.DataFrame({
        "inference_id": [f"i{i}" for i in range(m)], "inference_time": pd.Timestamp("2026-10-01T01:00Z"),
        "x": rng.normal(10, 2, m), "k": pd.array(rng.integers(0, 5, m), dtype="Int64"),
        "c": rng.choice(["a", "b", "c"], m), "b": rng.random(m) < 0.3,
        "pred": rng.integers(0, 2, m), "proba": rng.random(m)})


def run(cfg, store, df, ingest=None):
    store.write_parquet(f"{PREFIX}/batch.parquet", pa.Table.from_pandas(df, preserve_index=False))
    if ingest is not None:
        store.write_json(f"{PREFIX}/ingest.json", ingest)
    out = quality.run_quality(cfg, store, START)
    from driftline.store.violations import read_violations

    violations = read_violations(store, PREFIX)
    return out, {(v["constraint_check_type"], v["feature_name"]): v for v in violations}


def test_clean_batch_has_no_violations(setup):
    cfg, store, rng = setup
    out, v = run(cfg, store, clean_batch(rng))
    assert out["status"] == "ok" and v == {}
    assert out["expectations"] >= 20
    assert store.exists(f"{PREFIX}/gx_validation.json") and store.exists(f"{PREFIX}/data_docs/index.html")
    assert store.read_json(f"{PREFIX}/gx_validation.json")["success"] is True


def test_each_problem_becomes_one_sagemaker_violation(setup):
    cfg, store, rng = setup
    df = clean_batch(rng)
    m = len(df)
    df.loc[:99, "x"] = np.nan                      # 25% missing
    df.loc[:39, "c"] = "zzz"                       # 10% outside the domain
    df.loc[:59, "k"] = pd.NA                       # 15% ... that were the text 'n/a'
    df["__unparsed__k"] = pd.Series([None] * m, dtype=object)
    df.loc[:59, "__unparsed__k"] = "n/a"
    df.loc[100:109, "x"] = 1e6                     # 2.5% far outside the baseline range
    df["surprise"] = "q"
    out, v = run(cfg, store, df.drop(columns=["b"]))
    assert set(v) == {("completeness_check", "x"), ("categorical_values_check", "c"), ("data_type_check", "k"),
                      ("range_check", "x"), ("extra_column_check", "*"), ("missing_column_check", "b")}
    assert out["status"] == "violations" and out["violations"] == 6
    d = v[("completeness_check", "x")]["details"]
    assert d["observed_completeness"] == pytest.approx(0.75) and d["unexpected_count"] == 100
    assert "Only 85.0% of data is Integral" in v[("data_type_check", "k")]["description"]
    assert v[("data_type_check", "k")]["details"]["examples"] == ["n/a"] * 5
    assert v[("categorical_values_check", "c")]["details"]["unknown_values"] == {"zzz": 40}
    assert v[("range_check", "x")]["details"]["observed_outside"] == pytest.approx(10 / 300)
    assert v[("extra_column_check", "*")]["details"]["extra_columns"] == ["surprise"]
    # unparsed values count as present, so k has no completeness violation
    assert ("completeness_check", "k") not in v
    assert all(x["source"] == "data_quality" for x in v.values())


def test_data_docs_show_every_expectation_and_keep_hostile_values_text(setup):
    """data_docs/index.html is driftline's page of the GX result (GX's own Data Docs in gx/)."""
    import html
    import re

    cfg, store, rng = setup
    df = clean_batch(rng)
    df.loc[:39, "c"] = "<script>alert(1)</script>"
    df.loc[:99, "x"] = np.nan
    out, v = run(cfg, store, df)
    page = store.read_bytes(f"{PREFIX}/data_docs/index.html").decode()
    result = store.read_json(f"{PREFIX}/gx_validation.json")
    rows = re.findall(r'<tr class="(met|failed)">(.*?)</tr>', page, flags=re.S)
    assert len(rows) == len(result["results"]) == out["expectations"]
    failed = [re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", r))) for k, r in rows if k == "failed"]
    # failures first, in the suite's order (x before c)
    assert len(failed) == 2 and all(k == "failed" for k, _ in rows[:2])
    assert "expect_column_values_to_not_be_null x completeness_check" in failed[0]
    assert "100 of 400 unexpected" in failed[0] and "null ×20" in failed[0]
    assert "expect_column_values_to_be_in_set c categorical_values_check" in failed[1]
    assert '"<script>alert(1)</script>" ×20' in failed[1] and "40 of 400 unexpected" in failed[1]
    for d in v.values():  # each violation's exact description, under its expectation
        assert html.escape(d["description"]) in page
    assert "<script" not in page.lower() and html.escape("<script>alert(1)</script>") in page
    assert store.exists(f"{PREFIX}/data_docs/gx/index.html")
    assert out["data_docs"] == store.uri(f"{PREFIX}/data_docs/index.html")


def test_completeness_slack_absorbs_sampling_noise(setup):
    cfg, store, rng = setup
    df = clean_batch(rng)
    df.loc[:5, "x"] = np.nan  # 1.5% missing vs 100% complete baseline, slack 2%
    _, v = run(cfg, store, df)
    assert v == {}


def test_no_data_is_recorded_not_raised(setup):
    cfg, store, rng = setup
    out, v = run(cfg, store, clean_batch(rng).iloc[:0])
    assert out["status"] == "no_data" and "NO DATA" in out["summary"] and v == {}
    assert store.read_json(f"{PREFIX}/gx_validation.json") == {"status": "no_data"}
    assert not store.exists(f"{PREFIX}/data_docs/index.html")


def test_quarantine_share_over_threshold_is_a_violation(setup):
    cfg, store, rng = setup
    _, v = run(cfg, store, clean_batch(rng), ingest={"records_seen": 400, "quarantined": 2})
    assert v == {}  # 0.5% <= 1%
    _, v = run(cfg, store, clean_batch(rng), ingest={"records_seen": 400, "quarantined": 9})
    assert "9 of 400" in v[("quarantine_check", "*")]["description"]


def test_rerun_replaces_own_violations_keeps_other_stages(setup):
    cfg, store, rng = setup
    df = clean_batch(rng)
    df.loc[:39, "c"] = "zzz"
    run(cfg, store, df)
    quality.write_violations(store, PREFIX, "drift", [{"feature_name": "x", "constraint_check_type": "baseline_drift_check",
                                                       "description": "d"}])
    _, v = run(cfg, store, df)
    _, v = run(cfg, store, df)
    assert sorted(v) == [("baseline_drift_check", "x"), ("categorical_values_check", "c")]


def test_datetime_range_uses_real_timestamps(tmp_path, make_config):
    cfg = make_config(features=[{"name": "t", "type": "datetime"}])
    times = pd.date_range("2026-01-01", periods=100, freq="D", tz="UTC")
    pd.DataFrame({"t": times}).to_parquet(tmp_path / "train.parquet")
    store = Store(f"file://{tmp_path}/store")
    baseline.create_baseline(cfg, store)
    batch = pd.DataFrame({"inference_id": ["a", "b", "c"], "inference_time": pd.Timestamp("2026-10-01T01:00Z"),
                          "t": pd.to_datetime(["2026-02-01", "2026-03-01", "2031-01-01"], utc=True),
                          "pred": [0, 1, 0], "proba": [0.1, 0.9, 0.2]})
    cfg2 = make_config(features=[{"name": "t", "type": "datetime"}], thresholds={"range_tolerance": 0.0})
    _, v = run(cfg2, store, batch)
    assert set(v) == {("range_check", "t")}


def test_unreadable_inference_time_is_a_type_violation_not_an_extra_column(setup):
    cfg, store, rng = setup
    df = clean_batch(rng)
    df["__unparsed__inference_time"] = pd.Series([None] * len(df), dtype=object)
    df.loc[:3, "__unparsed__inference_time"] = "yesterday"
    _, v = run(cfg, store, df)
    assert set(v) == {("data_type_check", "inference_time")}
    assert v[("data_type_check", "inference_time")]["details"]["unexpected_count"] == 4


def test_unreadable_boolean_is_only_a_type_violation(setup):
    cfg, store, rng = setup
    df = clean_batch(rng)
    df["b"] = df["b"].astype("boolean")
    df.loc[:3, "b"] = pd.NA
    df["__unparsed__b"] = pd.Series([None] * len(df), dtype=object)
    df.loc[:3, "__unparsed__b"] = "maybe"
    _, v = run(cfg, store, df)
    assert set(v) == {("data_type_check", "b")}


def test_all_records_quarantined_is_a_violation_not_no_data(setup):
    cfg, store, rng = setup
    out, v = run(cfg, store, clean_batch(rng).iloc[:0], ingest={"records_seen": 50, "quarantined": 50})
    assert out["status"] == "violations" and set(v) == {("quarantine_check", "*")}


_GX_LOG_PROBE = r"""
import logging, sys
from datetime import datetime, timezone

import pandas as pd

records = []
class Keep(logging.Handler):
    def emit(self, record):
        records.append((record.name, record.levelno, record.getMessage()))
logging.basicConfig(level=logging.INFO, handlers=[Keep()])
if sys.argv[1] == "validate":
    from driftline.config import parse_model_config
    from driftline.stages.data_quality import validate_frame

    cfg = parse_model_config({"name": "m", "problem_type": "binary_classification", "start_date": "2026-10-01",
                              "features": [{"name": "x", "type": "numeric"}], "prediction": {"label": "pred"},
                              "capture": {"uri": "c"}, "baseline": {"training_data": "t.parquet"}}, "m.yaml")
    suite = {"name": "s", "expectations": [{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "x"},
                                            "meta": {"constraint_check_type": "completeness_check"}}]}
    out = validate_frame(cfg, pd.DataFrame({"x": [1.0, None]}), suite, "r", datetime(2026, 10, 1, tzinfo=timezone.utc))
    assert out["success"] is False  # the validation did run
    # GX still speaks when something is wrong: a warning from its own logger passes
    logging.getLogger("great_expectations._docs_decorators").warning("a real GX warning")
else:
    import great_expectations  # noqa: F401
noise = [m for n, lv, m in records if "Skipping registering function" in m]
print(len(noise), sum(m == "a real GX warning" for n, lv, m in records))
"""


@pytest.mark.parametrize("mode", ["validate", "bare_import"])
def test_gx_registration_noise_stays_out_of_the_log(mode, tmp_path):
    """GX logs its "Skipping registering function ... because it is a closure" lines while its
    modules load, once per process: caplog in this process (GX loaded long ago by other tests)
    would see nothing either way, so a fresh interpreter runs a validation with every INFO
    record kept. The bare import shows the noise is there to silence."""
    import os
    import subprocess
    import sys

    script = tmp_path / "probe.py"
    script.write_text(_GX_LOG_PROBE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, str(script), mode], capture_output=True, text=True, env=env,
                         timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    noise, warnings = map(int, out.stdout.split())
    if mode == "validate":
        assert (noise, warnings) == (0, 1)
    else:
        assert noise > 50


def test_range_violation_names_the_bounds_crossed(setup, tmp_path):
    """The range check has two bounds: its violation counts the values past each one (by hand:
    the baseline's training min/max widened by range_margin of the range)."""
    cfg, store, rng = setup
    train = pd.read_parquet(tmp_path / "train.parquet")
    lo_b, hi_b = train["x"].min(), train["x"].max()
    margin = (hi_b - lo_b) * cfg.thresholds.range_margin
    lo, hi = lo_b - margin, hi_b + margin
    df = clean_batch(rng)
    df.loc[:5, "x"] = lo - 1.0       # 6 below the lower bound
    df.loc[6:6, "x"] = hi + 1.0      # 1 above the upper one
    _, v = run(cfg, store, df)
    r = v[("range_check", "x")]
    assert (r["details"]["below"], r["details"]["above"]) == (6, 1)
    assert r["details"]["min_allowed"] == pytest.approx(lo) and r["details"]["max_allowed"] == pytest.approx(hi)
    assert f"6 below the lower bound {lo:.4g}, 1 above the upper bound {hi:.4g}" in r["description"]
    out = quality._short(r)
    assert out.endswith(f"(6 < {lo:.4g}, 1 > {hi:.4g})")
    df = clean_batch(rng)
    df.loc[:5, "x"] = lo - 1.0       # only the lower bound crossed: the upper one is not blamed
    _, v = run(cfg, store, df)
    r = v[("range_check", "x")]
    assert f"6 below the lower bound {lo:.4g};" in r["description"] and "above the upper" not in r["description"]
    assert quality._short(r).endswith(f"(6 < {lo:.4g})")
