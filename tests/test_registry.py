"""The model registry on a local store: versions written once, the champion record and its
history, rollback with the baseline, and the baseline resolution that follows the champion."""
import hashlib

import joblib
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from driftline.stages.baseline import create_baseline
from driftline.store import Store, registry
from driftline.store.baselines import resolve_baseline
from driftline.store.models import model_input
from driftline.store.registry import RegistryError


def _data(seed: int, n: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"x": rng.normal(0, 1, n), "k": rng.poisson(3, n).astype(float),
                       "c": rng.choice(["a", "b", "c"], n), "b": rng.random(n) < 0.4})
    logit = 1.2 * df["x"] - 0.3 * df["k"] + (df["c"] == "a") * 0.8
    df["label"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    return df


def _pipeline(c: float = 1.0) -> Pipeline:
    pre = ColumnTransformer([("num", SimpleImputer(strategy="median"), ["x", "k"]),
                             ("cat", OneHotEncoder(handle_unknown="ignore"), ["c", "b"])], sparse_threshold=0.0)
    return Pipeline([("preprocess", pre), ("classifier", LogisticRegression(C=c, max_iter=500))])


@pytest.fixture
def env(tmp_path, make_config):
    """A model file with a deployed model (LogisticRegression pipeline), training and holdout data."""
    train, holdout = _data(1, 2000), _data(2, 1000)
    train.to_parquet(tmp_path / "train.parquet")
    holdout.to_parquet(tmp_path / "holdout.parquet")
    cfg = make_config(baseline={"training_data": "train.parquet", "model": "model.joblib",
                                "evaluation_data": "holdout.parquet", "sample_rows": 500},
                      labels={"uri": "labels", "column": "label"}, drift={"multivariate": False})
    model = _pipeline().fit(model_input(cfg, train), train["label"])
    joblib.dump(model, tmp_path / "model.joblib")
    return cfg, Store(f"file://{tmp_path}/store"), train, holdout


def _fitted(cfg, train, c):
    return _pipeline(c).fit(model_input(cfg, train), train["label"])


def test_versions_are_never_overwritten(env, tmp_path):
    cfg, store, train, _ = env
    v1 = registry.register_model(store, "m", _fitted(cfg, train, 1.0), {"origin": "test", "note": "first"})
    assert v1["version"] == "v1" and v1["uri"] == store.uri("models/m/v1")
    first = (tmp_path / "store/models/m/v1/model.joblib").read_bytes()
    assert v1["sha256"] == hashlib.sha256(first).hexdigest() and v1["note"] == "first"
    v2 = registry.register_model(store, "m", _fitted(cfg, train, 0.01), {"origin": "test", "version": "v1"})
    assert v2["version"] == "v2"  # a manifest cannot claim another version's number
    assert (tmp_path / "store/models/m/v1/model.joblib").read_bytes() == first
    # a folder a crash left without its manifest is skipped, and its number is not reused
    (tmp_path / "store/models/m/v3").mkdir()
    (tmp_path / "store/models/m/v3/model.joblib").write_bytes(b"partial")
    assert registry.register_model(store, "m", _fitted(cfg, train, 10.0), {})["version"] == "v4"
    assert [m["version"] for m in registry.list_model_versions(store, "m")] == ["v1", "v2", "v4"]
    est, manifest = registry.load_model_version(store, "m", "v2")
    assert manifest["version"] == "v2" and est.named_steps["classifier"].C == 0.01


def test_import_initial_registers_the_deployed_model_once(env, tmp_path):
    cfg, store, *_ = env
    create_baseline(cfg, store)
    record = registry.import_initial(cfg, store)
    assert (record["version"], record["baseline"], record["actor"]) == ("v1", "v1", "driftline")
    [v1] = registry.list_model_versions(store, "m")
    assert v1["origin"] == "imported" and v1["source"] == cfg.baseline.model
    assert v1["sha256"] == hashlib.sha256((tmp_path / "model.joblib").read_bytes()).hexdigest()
    assert registry.import_initial(cfg, store) == record  # idempotent
    assert len(registry.list_model_versions(store, "m")) == 1 and len(record["history"]) == 1


def test_load_champion_falls_back_to_the_model_file(env):
    cfg, store, train, _ = env
    est, manifest = registry.load_champion(cfg, store)
    assert manifest == {"version": None, "source": cfg.baseline.model}
    registry.import_initial(cfg, store)
    est2, manifest2 = registry.load_champion(cfg, store)
    x = model_input(cfg, train)
    assert manifest2["version"] == "v1"
    np.testing.assert_array_equal(est.predict_proba(x), est2.predict_proba(x))


def test_a_rebuilt_baseline_becomes_the_champions(env):
    cfg, store, *_ = env
    create_baseline(cfg, store)
    registry.import_initial(cfg, store)
    out = create_baseline(cfg, store)
    assert out["version"] == "v2" and "champion m/v1 now uses it" in out["summary"]
    record = registry.champion(store, "m")
    assert (record["version"], record["baseline"], record["reason"]) == ("v1", "v2", "baseline rebuilt")
    assert [(h["version"], h["baseline"]) for h in record["history"]] == [("v1", "v1"), ("v1", "v2")]
    assert store.read_json("baselines/m/v2/manifest.json")["model_version"] == "v1"


def test_champion_history_rollback_and_baseline_resolution(env):
    cfg, store, train, holdout = env
    create_baseline(cfg, store)
    registry.import_initial(cfg, store)
    # a second model with its own baseline, built from tables and an estimator
    challenger = _fitted(cfg, train.iloc[:800], 0.01)
    built = create_baseline(cfg, store, training_data=pa.Table.from_pandas(train.iloc[:800]),
                            evaluation_data=pa.Table.from_pandas(holdout), model=challenger,
                            origin={"origin": "test", "run_id": "r"}, update_champion=False)
    assert built["version"] == "v2" and registry.champion(store, "m")["baseline"] == "v1"
    manifest = store.read_json("baselines/m/v2/manifest.json")
    assert (manifest["origin"], manifest["run_id"], manifest["rows"]) == ("test", "r", 800)
    # the baseline's reference quality is the given model's on the given evaluation table
    proba = challenger.predict_proba(model_input(cfg, holdout))[:, 1]
    perf = store.read_json("baselines/m/v2/performance.json")
    assert perf["metrics"]["metrics"]["roc_auc"] == pytest.approx(roc_auc_score(holdout["label"], proba))
    v2 = registry.register_model(store, "m", challenger, {"origin": "test", "baseline": "v2"})
    record = registry.set_champion(store, "m", v2["version"], "v2", reason="better", actor="tester")
    assert (record["version"], record["baseline"], record["actor"]) == ("v2", "v2", "tester")
    assert [(h["version"], h["baseline"], h["actor"]) for h in record["history"]] == \
        [("v1", "v1", "driftline"), ("v2", "v2", "tester")]
    assert resolve_baseline(cfg, store).version == "v2"
    # a newer baseline that no champion uses does not become "latest"
    create_baseline(cfg, store, update_champion=False)
    assert resolve_baseline(cfg, store).version == "v2"
    assert resolve_baseline(cfg, store, "v3").version == "v3"  # a pinned version is unchanged

    out = registry.rollback(store, "m", "v1")
    assert out["previous"] == {"version": "v2", "baseline": "v2"}
    assert (out["version"], out["baseline"], out["actor"]) == ("v1", "v1", "cli")
    assert out["summary"] == "m: champion v2 -> v1, baseline v2 -> v1"
    assert resolve_baseline(cfg, store).version == "v1"
    est, manifest = registry.load_champion(cfg, store)
    x = model_input(cfg, holdout)
    deployed = joblib.load(cfg.baseline.model.removeprefix("file://"))
    assert manifest["origin"] == "imported"
    np.testing.assert_array_equal(est.predict_proba(x), deployed.predict_proba(x))
    assert len(registry.champion(store, "m")["history"]) == 3
    # and forward again: v2 comes back with the baseline its manifest names
    assert registry.rollback(store, "m", "v2")["baseline"] == "v2"
    assert registry.rollback(store, "m", "v2")["summary"].endswith("(already the champion: nothing changed)")
    assert len(registry.champion(store, "m")["history"]) == 4


def test_errors(env, tmp_path):
    cfg, store, train, _ = env
    with pytest.raises(RegistryError, match="has no champion .* nothing to roll back"):
        registry.rollback(store, "m", "v1")
    create_baseline(cfg, store)
    registry.import_initial(cfg, store)
    with pytest.raises(RegistryError, match=r"model 'm' has no version 'v9' .*\(have \['v1'\]\)"):
        registry.rollback(store, "m", "v9")
    with pytest.raises(RegistryError, match="no version 'latest'"):
        registry.set_champion(store, "m", "latest", "v1", reason="x")
    with pytest.raises(RegistryError, match=r"no complete baseline 'v7' \(have \['v1'\]\)"):
        registry.set_champion(store, "m", "v1", "v7", reason="x")
    registry.register_model(store, "m", _fitted(cfg, train, 0.1), {"origin": "test"})
    with pytest.raises(RegistryError, match="m/v2 has no baseline on record"):
        registry.rollback(store, "m", "v2")
    (tmp_path / "store/models/m/v2/model.joblib").write_bytes(b"changed")
    with pytest.raises(RegistryError, match="does not match the sha256"):
        registry.load_model_version(store, "m", "v2")
    no_model = cfg.model_copy(update={"name": "n", "baseline": cfg.baseline.model_copy(update={"model": None})})
    with pytest.raises(RegistryError, match="baseline.model is not set"):
        registry.import_initial(no_model, store)
