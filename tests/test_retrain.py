"""Retraining on the demo scenario: a challenger trained after the concept drift (fiber
customers churn whatever their contract from 2026-10-04) beats the deployed model on the
latest rows and is promoted with a new baseline; before the drift it does not, and nothing
changes. The intervals are ingested and the labels synced as the monitoring runs do (the two
stages retraining reads), with every label arrived (as of 2026-10-20)."""
import shutil
from datetime import datetime, timezone

import joblib
import numpy as np
import pytest
import yaml
from sklearn.metrics import roc_auc_score

from driftline.config import default_monitors_dir
from driftline.pipeline.interval import run_data_quality
from driftline.stages import retrain
from driftline.stages.retrain import RetrainError
from driftline.store import Store, registry
from driftline.store.baselines import list_versions, resolve_baseline
from driftline.store.models import model_input

AS_OF = datetime(2026, 10, 20, tzinfo=timezone.utc)
POST_DRIFT = datetime(2026, 10, 8, tzinfo=timezone.utc), "4d"   # days 3-6: after the concept drift
PRE_DRIFT = datetime(2026, 10, 4, tzinfo=timezone.utc), "3d"    # days 0-2: the training distribution


def _small_search(cfg, **changes):
    rt = cfg.retraining
    search = rt.search.model_copy(update={"n_iter": 3, "cv": 2})
    return cfg.model_copy(update={"retraining": rt.model_copy(update={"search": search, **changes})})


@pytest.fixture(scope="module")
def scenario(labelled_demo_week):
    """The demo's week ingested, labels synced and the first baseline built (conftest), in a
    store each test copies."""
    w = labelled_demo_week
    return _small_search(w["cfg"]), w["store"], w["manifest"]


@pytest.fixture
def env(scenario, tmp_path):
    cfg, template, manifest = scenario
    shutil.copytree(template, tmp_path / "store")
    return cfg, Store(f"file://{tmp_path}/store"), manifest


def _run(cfg, store, run_id, end, window):
    prepared = retrain.prepare(cfg, store, run_id, end, window, as_of=AS_OF)
    retrain.train(cfg, store, run_id)
    return prepared, retrain.evaluate(cfg, store, run_id)


def _sklearn_auc(cfg, store, prefix, model):
    holdout = store.read_parquet(f"{prefix}/holdout.parquet").to_pandas()
    proba = model.predict_proba(model_input(cfg, holdout[cfg.feature_names]))[:, 1]
    return roc_auc_score(holdout["churned"], proba)


def test_after_concept_drift_the_challenger_is_promoted_and_can_be_rolled_back(env):
    cfg, store, manifest = env
    prepared, decided = _run(cfg, store, "post-drift", *POST_DRIFT)
    prefix = "models/churn/retraining/post-drift"

    # every labelled inference of days 3-6, the latest 30% held out
    days = [d for d, p in manifest["per_day"].items() if p["day_index"] >= 3]
    assert prepared["recent_rows"] == sum(manifest["per_day"][d]["labels"] for d in days)
    prep = store.read_json(f"{prefix}/prepare.json")
    assert prepared["holdout_rows"] == int(np.ceil(0.3 * prepared["recent_rows"]))
    assert prep["train"]["training_data_rows"] == 6000
    assert prep["train"]["recent_rows"] + prepared["holdout_rows"] == prepared["recent_rows"]
    train = store.read_parquet(f"{prefix}/train.parquet").to_pandas()
    holdout = store.read_parquet(f"{prefix}/holdout.parquet").to_pandas()
    assert train["inference_time"].max() <= holdout["inference_time"].min()
    assert holdout["inference_time"].min() >= datetime(2026, 10, 4, tzinfo=timezone.utc)
    assert holdout["inference_time"].max() < POST_DRIFT[0]
    assert prep["holdout"]["label_balance"]["1"] == pytest.approx(holdout["churned"].mean(), abs=1e-6)

    # the decision's scores are sklearn's ROC AUC of each model on holdout.parquet
    decision = store.read_json(f"{prefix}/decision.json")
    deployed = joblib.load(cfg.baseline.model.removeprefix("file://"))
    challenger = joblib.load(store.path(f"{prefix}/challenger.joblib"))
    champion_auc, challenger_auc = (_sklearn_auc(cfg, store, prefix, m) for m in (deployed, challenger))
    assert decision["metric"] == "roc_auc" and decision["champion"]["version"] == "v1"
    assert decision["champion"]["metrics"]["roc_auc"] == pytest.approx(champion_auc, abs=1e-12)
    assert decision["challenger"]["metrics"]["roc_auc"] == pytest.approx(challenger_auc, abs=1e-12)
    assert decision["improvement"] == pytest.approx(challenger_auc - champion_auc)
    assert challenger_auc - champion_auc > cfg.retraining.margin and decided["promote"] and decision["promote"]
    assert f"{challenger_auc:.4f}" in decision["reason"] and f"{champion_auc:.4f}" in decision["reason"]
    trained = store.read_json(f"{prefix}/train.json")
    assert trained["search"] == "randomized" and trained["candidates"] == 3 and len(trained["tried"]) == 3
    assert set(trained["best_params"]) == {"classifier__learning_rate", "classifier__max_leaf_nodes",
                                           "classifier__max_iter", "classifier__l2_regularization"}
    assert decision["challenger"]["params"] == trained["best_params"]

    promoted = retrain.promote(cfg, store, "post-drift", actor="tester")
    assert (promoted["model_version"], promoted["baseline_version"]) == ("v2", "v2")
    assert promoted["previous"] == {"version": "v1", "baseline": "v1"}
    v1, v2 = registry.list_model_versions(store, "churn")
    assert (v1["origin"], v2["origin"], v2["parent"], v2["baseline"], v2["run_id"]) == \
        ("imported", "retrained", "v1", "v2", "post-drift")
    assert v2["scores"]["holdout"] == {"challenger": pytest.approx(challenger_auc),
                                       "champion": pytest.approx(champion_auc)}
    assert v2["training"]["rows"] == len(train)
    record = registry.champion(store, "churn")
    assert (record["version"], record["baseline"], record["actor"]) == ("v2", "v2", "tester")
    base = store.read_json("baselines/churn/v2/manifest.json")
    assert (base["origin"], base["run_id"], base["rows"]) == ("retrained", "post-drift", len(train))
    # the new baseline's reference quality is the challenger's on the holdout
    perf = store.read_json("baselines/churn/v2/performance.json")
    assert perf["metrics"]["metrics"]["roc_auc"] == pytest.approx(challenger_auc)
    assert resolve_baseline(cfg, store).version == "v2"
    # an interval evaluated before keeps the baseline it was judged against; one evaluated from
    # now on is pinned to the new champion's
    assert run_data_quality(cfg, store, datetime(2026, 10, 7, tzinfo=timezone.utc))["baseline"] == "v1"
    from driftline.store.baselines import pin_interval_baseline

    assert pin_interval_baseline(cfg, store, datetime(2026, 10, 20, tzinfo=timezone.utc))["version"] == "v2"

    # a second promote (a retried task) registers nothing
    again = retrain.promote(cfg, store, "post-drift")
    assert again["already"] and again["model_version"] == "v2"
    assert len(registry.list_model_versions(store, "churn")) == 2 and list_versions(store, "churn") == ["v1", "v2"]
    with pytest.raises(RetrainError, match="already promoted"):
        retrain.prepare(cfg, store, "post-drift", *POST_DRIFT, as_of=AS_OF)

    back = registry.rollback(store, "churn", "v1")
    assert (back["version"], back["baseline"]) == ("v1", "v1")
    assert resolve_baseline(cfg, store).version == "v1"
    model, manifest_v1 = registry.load_champion(cfg, store)
    assert manifest_v1["version"] == "v1"
    assert _sklearn_auc(cfg, store, prefix, model) == pytest.approx(champion_auc, abs=1e-12)


def test_before_the_drift_the_champion_stays(env):
    cfg, store, _ = env
    _, decided = _run(cfg, store, "pre-drift", *PRE_DRIFT)
    decision = store.read_json("models/churn/retraining/pre-drift/decision.json")
    champion_auc = decision["champion"]["metrics"]["roc_auc"]
    challenger_auc = decision["challenger"]["metrics"]["roc_auc"]
    assert not decided["promote"] and not decision["promote"] and decision["margin"] == 0.005
    assert decision["improvement"] == pytest.approx(challenger_auc - champion_auc)
    assert decision["improvement"] <= 0.005
    assert f"challenger roc_auc {challenger_auc:.4f} vs champion v1 {champion_auc:.4f}" in decision["reason"]
    assert decision["reason"].endswith("keep the champion")
    with pytest.raises(RetrainError, match="not promoting: challenger roc_auc"):
        retrain.promote(cfg, store, "pre-drift")
    assert [m["version"] for m in registry.list_model_versions(store, "churn")] == ["v1"]
    assert list_versions(store, "churn") == ["v1"] and resolve_baseline(cfg, store).version == "v1"
    assert not store.exists("models/churn/retraining/pre-drift/promotion.json")


def test_too_few_labels_and_stages_out_of_order(env):
    cfg, store, _ = env
    strict = cfg.model_copy(update={"retraining": cfg.retraining.model_copy(
        update={"when": cfg.retraining.when.model_copy(update={"min_labels": 10_000})})})
    with pytest.raises(RetrainError, match=r"churn: \d+ labelled rows in the 3d before 2026-10-04T00:00:00\+00:00; "
                                           r"retraining needs at least 10000 \(retraining.when.min_labels\)"):
        retrain.prepare(strict, store, "few", *PRE_DRIFT, as_of=AS_OF)
    # labels arrive 2-2.5 days late (known to the hour of arrival): as of the window's end,
    # only the first day's inferences have theirs
    early = retrain.recent_labelled(cfg, store, *PRE_DRIFT, as_of=PRE_DRIFT[0])
    full = retrain.recent_labelled(cfg, store, *PRE_DRIFT, as_of=AS_OF)
    assert 0 < len(early) < len(full) / 3
    assert early["inference_time"].max() < datetime(2026, 10, 2, 1, tzinfo=timezone.utc)
    assert list(full.columns) == [*cfg.feature_names, "churned", "inference_time", "inference_id"]
    assert full["inference_time"].is_monotonic_increasing and full["churned"].isin([0, 1]).all()
    with pytest.raises(RetrainError, match="train.parquet is missing: run the prepare stage"):
        retrain.train(cfg, store, "never-prepared")
    with pytest.raises(RetrainError, match="run id '../x'"):
        retrain.prepare(cfg, store, "../x", *PRE_DRIFT)
    with pytest.raises(RetrainError, match="decision.json is missing: run the evaluate stage"):
        retrain.promote(cfg, store, "never-prepared")


def test_cli_retrain_models_rollback(env, tmp_path, monkeypatch, capsys):
    from driftline.cli import main

    cfg, store, _ = env
    demo = cfg.capture.uri.removesuffix("/capture/churn-endpoint/AllTraffic")
    monkeypatch.setenv("DRIFTLINE_DEMO_ROOT", demo)
    doc = yaml.safe_load((default_monitors_dir() / "churn.yaml").read_text())
    doc.setdefault("retraining", {})["search"] = {"n_iter": 2, "cv": 2}
    model_file = tmp_path / "churn.yaml"
    model_file.write_text(yaml.safe_dump(doc))
    run = ["--store", store.url]
    model = ["--config", str(model_file)]
    assert main([*run, "models", *model]) == 0
    assert "churn: no registered model versions" in capsys.readouterr().out
    retrain_args = [*run, "retrain", *model, "--end", "2026-10-08", "--window", "4d", "--as-of", "2026-10-20"]
    assert main([*retrain_args, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "promote the challenger" in out and "dry run: nothing promoted" in out
    assert [m["version"] for m in registry.list_model_versions(store, "churn")] == ["v1"]
    assert main([*retrain_args, "--run-id", "cli-1"]) == 0
    assert "churn: promoted v2 (retraining cli-1) with baseline v2; was v1 with baseline v1" in capsys.readouterr().out
    assert main([*run, "models", *model]) == 0
    out = capsys.readouterr().out
    assert "champion v2 with baseline v2" in out
    v2, v1 = (line.split() for line in out.splitlines()[2:4])
    assert v2[:2] == ["*", "v2"] and "retrained" in v2 and "cli-1" in v2
    assert v1[0] == "v1" and "imported" in v1
    assert main([*run, "rollback", *model, "--to", "v1"]) == 0
    assert "churn: champion v2 -> v1, baseline v2 -> v1" in capsys.readouterr().out
    assert main([*run, "rollback", *model, "--to", "v9"]) == 2
    assert "has no version 'v9'" in capsys.readouterr().err
    assert main([*run, "retrain", *model, "--end", "2026-10-08", "--window", "1h", "--as-of", "2026-10-20"]) == 2
    assert "retraining needs at least 500 (retraining.when.min_labels)" in capsys.readouterr().err


def test_plan_from_an_asset_request_or_from_params(labelled_demo_week):
    cfg = labelled_demo_week["cfg"]
    req = {"end": "2026-10-08T00:00:00+00:00", "window_days": 4, "interval": "2026-10-07T0000Z",
           "why": "model quality: accuracy 0.71 < 0.76"}
    p = retrain.plan(cfg, "asset_triggered__2026-11-23T10:00:00+00:00", request=req)
    assert p["run"] == "asset_triggered__2026-11-23T10_00_00_00_00" and p["window_days"] == 4
    assert p["end"] == "2026-10-08T00:00:00+00:00" and not p["dry_run"] and "requested by monitoring" in p["why"]
    now = datetime(2026, 11, 1, tzinfo=timezone.utc)
    p = retrain.plan(cfg, "manual__x", params={"end": "", "window": "", "dry_run": True}, now=now)
    assert p["end"] == now.isoformat() and p["window_days"] == cfg.retraining.window.days and p["dry_run"]
    p = retrain.plan(cfg, "manual__x", params={"end": "2026-10-05Z", "window": "36h", "dry_run": False})
    assert p["end"] == "2026-10-05T00:00:00+00:00" and p["window_days"] == 1.5
    with pytest.raises(RetrainError, match="not an ISO date"):
        retrain.plan(cfg, "manual__x", params={"end": "yesterday"})
