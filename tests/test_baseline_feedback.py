"""The next baseline absorbs people's answers to drift alerts (driftline.stages.baseline, "Feedback").

On the demo week (conftest's ``labelled_demo_week``: every day ingested, baseline v1): drift is
checked on days 3 and 4, so the drift incidents open on day 4 (2 of the last 3 intervals);
bob marks ``monthly_charges`` expected (the price increase), alice marks ``data_usage_gb`` a
false positive and carol acknowledges ``contract``. A baseline built with
``absorb_feedback`` then compares ``monthly_charges`` with day 4's values and gives
``data_usage_gb`` the threshold day 4's statistic x 1.25; one built without absorbs nothing.
Daily batches hold ~950 rows, so ``drift.small_sample`` is lowered to 200: the features are
judged by distances, the thresholds a false positive widens."""
from __future__ import annotations

import html
import shutil

import numpy as np
import pandas as pd
import pytest

from driftline.config import DriftSettings, FeatureDrift
from driftline.demo import demo_interval_starts
from driftline.pipeline.interval import plan_partitions, profile_partition, run_alerts, run_drift
from driftline.stages import feedback
from driftline.stages.baseline import create_baseline
from driftline.stages.drift import choose_method, compare, reference_from_source, specs_from
from driftline.stats.profile import profile_table
from driftline.store import Store, interval_key

EXPECTED, FALSE_POSITIVE, ACKNOWLEDGED = "monthly_charges", "data_usage_gb", "contract"
COMMENT = "<script>alert(1)</script> heavy users, not drift"


def _drift(cfg, store: Store, start, baseline: str | None = None) -> dict:
    """The drift stage of one interval against its pinned baseline (or ``baseline``, asked for
    explicitly, which moves the pin); returns drift.json."""
    if baseline:
        from driftline.store.baselines import pin_interval_baseline

        pin_interval_baseline(cfg, store, start, requested=baseline, by="test")
    parts = [profile_partition(cfg, store, start, p) for p in plan_partitions(cfg, store, start)]
    run_drift(cfg, store, start, cfg.interval_end(start), parts)
    return store.read_json(f"{Store.run_prefix(cfg.name, start)}/drift.json")


@pytest.fixture(scope="module")
def answered(labelled_demo_week, tmp_path_factory):
    """The demo week with drift checked on days 3 and 4 and the three answers given; a copy
    of that store is made for each test that builds baselines."""
    w = labelled_demo_week
    root = tmp_path_factory.mktemp("baseline-feedback") / "store"
    shutil.copytree(w["store"], root)
    cfg = w["cfg"].model_copy(update={"drift": w["cfg"].drift.model_copy(update={"small_sample": 200})})
    store = Store(f"file://{root}")
    starts = demo_interval_starts(w["manifest"])
    for day in (3, 4):
        _drift(cfg, store, starts[day])
        run_alerts(cfg, store, starts[day], "data")
    day4 = store.read_json(f"{Store.run_prefix(cfg.name, starts[4])}/drift.json")
    assert {EXPECTED, FALSE_POSITIVE, ACKNOWLEDGED} <= set(day4["dataset"]["drifted_features"]), day4["summary"]
    incident = lambda f: f"churn|baseline_drift_check|{f}|{interval_key(starts[4])}"  # noqa: E731
    feedback.record(cfg, store, incident(EXPECTED), "expected", "bob", "price increase from Oct 4")
    feedback.record(cfg, store, incident(FALSE_POSITIVE), "false_positive", "alice", COMMENT)
    feedback.record(cfg, store, incident(ACKNOWLEDGED), "acknowledged", "carol")
    return {"root": root, "cfg": cfg, "starts": starts, "day4": day4, "demo": w["demo"]}


@pytest.fixture
def store(answered, tmp_path) -> Store:
    shutil.copytree(answered["root"], tmp_path / "store")
    return Store(f"file://{tmp_path}/store")


def test_expected_rebases_the_feature_and_a_false_positive_widens_its_threshold(answered, store, monkeypatch,
                                                                               capsys):
    from driftline.cli import main

    cfg, starts, before = answered["cfg"], answered["starts"], answered["day4"]
    fp, exp = before["features"][FALSE_POSITIVE], before["features"][EXPECTED]
    assert fp["method"] == exp["method"] == "wasserstein" and fp["drifted"] and exp["drifted"]
    widened = fp["statistic"] * 1.25  # the rule: max(threshold then, observed statistic x 1.25)
    assert widened > fp["threshold"]
    day4_key = interval_key(starts[4])
    batch = store.read_parquet(f"{Store.run_prefix('churn', starts[4])}/batch.parquet").to_pandas()

    monkeypatch.setenv("DRIFTLINE_DEMO_ROOT", answered["demo"])  # the model file's locations
    assert main(["--store", store.uri("").rstrip("/"), "baseline", "--model", "churn", "--absorb-feedback"]) == 0
    summary = capsys.readouterr().out
    assert summary.startswith("baseline churn/v2: ")
    assert (f"absorbed 2 answers: expected on {EXPECTED} (+1 interval, {len(batch):,} rows); false positive on "
            f"{FALSE_POSITIVE} (wasserstein threshold 0.1 -> {widened:.3g})") in summary
    assert f"acknowledged on baseline_drift_check {ACKNOWLEDGED} (acknowledged: changes nothing)" in summary
    doc = store.read_json("baselines/churn/v2/feedback.json")
    o = doc["threshold_overrides"][FALSE_POSITIVE]
    assert (o["method"], o["was"]) == ("wasserstein", fp["threshold"]) and o["threshold"] == pytest.approx(widened)
    assert o["because"]["by"] == "alice" and o["because"]["comment"] == COMMENT
    assert o["because"]["interval"] == day4_key and o["because"]["baseline"] == "v1"
    assert doc["reference_columns"][EXPECTED]["intervals"] == [day4_key]
    assert doc["reference_columns"][EXPECTED]["rows"] == len(batch)
    assert [(r["kind"], r["subject"]) for r in doc["not_absorbed"]] == [("acknowledged", ACKNOWLEDGED)]
    manifest = store.read_json("baselines/churn/v2/manifest.json")
    assert manifest["feedback"]["reference_columns"] == {EXPECTED: {"intervals": [day4_key], "rows": len(batch)}}
    assert set(manifest["feedback"]["answers"]) == {r["feedback"] for r in doc["absorbed"]} and len(doc["absorbed"]) == 2
    # the expected feature's reference is day 4's values; the others keep the training data's
    prof = store.read_json("baselines/churn/v2/profile.json")["columns"]
    v1 = store.read_json("baselines/churn/v1/profile.json")["columns"]
    assert prof[EXPECTED]["count"] == len(batch)
    assert prof[EXPECTED]["mean"] == pytest.approx(batch[EXPECTED].mean())
    assert prof[FALSE_POSITIVE] == v1[FALSE_POSITIVE] and prof[EXPECTED] != v1[EXPECTED]

    # day 4 again: judged against v1 as when first evaluated (a re-run reproduces its verdict)
    assert _drift(cfg, store, starts[4])["baseline"] == "v1"
    # asked against v2: neither answered feature drifts; the acknowledged one still does
    after = _drift(cfg, store, starts[4], baseline="v2")
    assert after["baseline"] == "v2"
    e, f = after["features"][EXPECTED], after["features"][FALSE_POSITIVE]
    assert e["statistic"] < e["threshold"] == 0.1 and not e["drifted"], e
    assert e["reference_feedback"]["intervals"] == [day4_key] and e["reference_feedback"]["by"] == ["bob"]
    assert f["threshold"] == pytest.approx(widened) and f["statistic"] < f["threshold"] and not f["drifted"]
    assert f["threshold_feedback"]["by"] == "alice" and f["threshold_feedback"]["was"] == 0.1
    assert after["features"][ACKNOWLEDGED]["drifted"]
    from driftline.store.violations import read_violations

    flagged = {v["feature_name"] for v in read_violations(store, Store.run_prefix('churn', starts[4]))
               if v["constraint_check_type"] == "baseline_drift_check"}
    assert ACKNOWLEDGED in flagged and not flagged & {EXPECTED, FALSE_POSITIVE}
    # a day it never saw, from the same new normal: no drift of the expected feature either
    day6 = _drift(cfg, store, starts[6], baseline="v2")["features"][EXPECTED]
    assert day6["statistic"] < 0.1 and not day6["drifted"], day6
    # the run report says where the threshold came from, and the comment stays text
    from driftline.render.report import render_run_report

    page = render_run_report(cfg, store, starts[4])
    at = o["because"]["at"][:10]
    assert (f"<th>threshold</th><td>{widened:.4g} (widened from 0.1 by false-positive feedback of alice on {at})"
            f"</td>") in page
    assert html.escape(COMMENT) in page and "<script>" not in page
    assert f"values of {day4_key} (1 interval, {len(batch):,} rows), marked expected by bob" in page

    # the next rebuild with the flag carries what v2 absorbed (no new answer since v2)
    again = create_baseline(cfg, store, absorb_feedback=True)
    assert again["version"] == "v3" and "absorbed no feedback" in again["summary"]
    assert f"carried from v2: {FALSE_POSITIVE} threshold, {EXPECTED} reference" in again["summary"]
    v3 = store.read_json("baselines/churn/v3/feedback.json")
    assert v3["threshold_overrides"][FALSE_POSITIVE]["carried_from"] == "v2"
    assert v3["threshold_overrides"][FALSE_POSITIVE]["threshold"] == pytest.approx(widened)
    assert store.read_json("baselines/churn/v3/profile.json")["columns"][EXPECTED] == prof[EXPECTED]


def test_without_the_flag_nothing_is_absorbed(answered, store):
    cfg, starts = answered["cfg"], answered["starts"]
    out = create_baseline(cfg, store)
    assert out["version"] == "v2" and "feedback" not in out
    assert "2 answer(s) to drift alerts not absorbed" in out["summary"] and "--absorb-feedback" in out["summary"]
    assert not store.exists("baselines/churn/v2/feedback.json")
    assert "feedback" not in store.read_json("baselines/churn/v2/manifest.json")
    after = _drift(cfg, store, starts[4])["features"]
    assert after[EXPECTED]["drifted"] and "reference_feedback" not in after[EXPECTED]
    assert after[FALSE_POSITIVE]["drifted"] and after[FALSE_POSITIVE]["threshold"] == 0.1
    assert "threshold_feedback" not in after[FALSE_POSITIVE]


# -- the engine's side, on hand-made data --------------------------------------------------
def test_widened_thresholds_yield_to_the_model_file_and_never_narrow():
    s = DriftSettings()
    kw = {"categorical": False, "binary": False, "low_cardinality": False, "settings": s}
    wide = {"method": "wasserstein", "threshold": 0.3}
    assert choose_method(n=5000, widened=wide, **kw).threshold == 0.3
    assert choose_method(n=5000, widened=wide, **kw).from_feedback
    # the model file's threshold (or method) for the feature wins
    assert choose_method(n=5000, widened=wide, override=FeatureDrift(threshold=0.2), **kw).threshold == 0.2
    assert choose_method(n=5000, widened=wide, override=FeatureDrift(method="psi"), **kw).method == "psi"
    # only for the method it was widened for (a small batch is judged by KS, at alpha)
    small = choose_method(n=300, widened=wide, **kw)
    assert (small.method, small.threshold, small.from_feedback) == ("ks", 0.05, False)
    # over the model-wide defaults, and never below them
    assert choose_method(n=5000, widened=wide, **{**kw, "settings": DriftSettings(thresholds={"wasserstein": 0.5})}
                         ).threshold == 0.5
    assert choose_method(n=300, widened={"method": "ks", "threshold": 1e-4}, **kw).threshold == 1e-4
    assert choose_method(n=300, widened={"method": "ks", "threshold": 0.2}, **kw).threshold == 0.05


def test_a_lowered_alpha_judges_the_test_after_the_holm_adjustment():
    """A false positive on a KS test: alpha = its (adjusted) p-value x 0.5, and the verdict
    after the Holm adjustment compares with that alpha, not the model-wide one."""
    rng = np.random.default_rng(5)
    ref = reference_from_source(pd.DataFrame({"x": rng.normal(0, 1, 3000), "y": rng.normal(0, 1, 3000)}),
                                {"x": "numeric", "y": "numeric"})
    cur_df = pd.DataFrame({"x": rng.normal(0.25, 1, 400), "y": rng.normal(0, 1, 400)})
    import pyarrow as pa

    cur = profile_table(pa.Table.from_pandas(cur_df), specs_from(ref.profile, ["x", "y"]))
    settings = DriftSettings(multivariate=False)
    first = compare(ref, cur, settings, current_frame=cur_df)["features"]["x"]
    assert first["method"] == "ks" and first["drifted"]
    alpha = first["pvalue_adjusted"] * 0.5
    ref.widened = {"x": {"method": "ks", "threshold": alpha, "was": 0.05,
                         "because": {"by": "alice", "at": "2026-10-06T09:00:00+00:00"}}}
    again = compare(ref, cur, settings, current_frame=cur_df)["features"]["x"]
    assert again["threshold"] == alpha and again["pvalue_adjusted"] < 0.05 and not again["drifted"]
    assert again["threshold_feedback"]["by"] == "alice"
