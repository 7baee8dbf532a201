"""Retraining: a challenger trained on recent labelled traffic, promoted only if it beats the
champion on data neither of them trained on.

The procedure, in four stages that share their artifacts through the store (so a DAG can run
each as its own task), all under ``models/<model>/retraining/<run_id>/``:

:func:`prepare`
    The recent labelled rows: every interval whose start lies in ``[end - window, end)``,
    its captured features joined with the labels that arrived by ``as_of``
    (``driftline.stages.labels.merge_interval``; labels are ingested by ``sync_labels``, which the
    monitoring runs). The latest ``retraining.holdout`` share of them, by inference time, is
    the *holdout*: the champion and the challenger are compared there, on the newest
    behaviour, and the challenger never sees it. The earlier recent rows, plus the model
    file's training data when ``retraining.include_training_data``, are the training set.
    Writes ``train.parquet``, ``holdout.parquet`` and ``prepare.json``. Fewer recent
    labelled rows than ``retraining.when.min_labels``, or a binary holdout holding one class
    only (no ranking metric is defined there), stop the run with a :class:`RetrainError`.
    The model that serves is made registry version v1 first (``registry.import_initial``).
:func:`train`
    The challenger is a clone of the champion's estimator (same pipeline, same
    preprocessing), fitted on the training set by scikit-learn's ``RandomizedSearchCV``:
    ``retraining.search.n_iter`` candidates (at most the number of distinct ones) from
    ``retraining.search.space``, or a default space for known estimators that includes the
    champion's own settings, scored by the comparison metric in ``search.cv`` shuffled
    (stratified, for classifiers) folds, then refitted on the whole training set. An
    estimator with no known space is simply refitted. Writes ``challenger.joblib`` and
    ``train.json``.
:func:`evaluate`
    Both models score the same ``holdout.parquet``; every realized metric
    (``driftline.stats.performance.realized_metrics``) is recorded, and the decision uses
    ``retrain_metric`` (roc_auc / f1_macro / rmse by default), aware of whether lower is
    better: promote iff the challenger is better by more than ``retraining.margin``.
    Writes ``decision.json``.
:func:`promote`
    Only when the decision says so, and only if the champion is still the one compared with.
    Builds a new baseline with the challenger (its training set as the training data, the
    holdout as the evaluation data), registers the challenger as the next model version
    (its manifest names that baseline, its parent, the run, the scores), and makes the pair
    the champion. Writes ``promotion.json``; calling it again for the run returns that record
    (and a run cut short is finished without registering anything twice).

The holdout is small and recent, so the margin matters: with a few hundred rows, ROC AUC
moves by a few thousandths from sampling alone.
"""
from __future__ import annotations

import io
import math
import posixpath
import re
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from driftline.config import ModelConfig, parse_duration
from driftline.store import Resolver, Store, as_utc

_RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:+\-]{0,199}$")
TIMESTAMP = pa.timestamp("us", tz="UTC")

#: The scikit-learn scorer that ranks search candidates by each metric (neg_*: sklearn
#: maximises, so errors are negated; train.json reports them back in the metric's units).
SCORERS = {
    "accuracy": "accuracy", "precision": "precision", "recall": "recall", "f1": "f1", "roc_auc": "roc_auc",
    "pr_auc": "average_precision", "log_loss": "neg_log_loss",
    "precision_macro": "precision_macro", "recall_macro": "recall_macro", "f1_macro": "f1_macro",
    "precision_weighted": "precision_weighted", "recall_weighted": "recall_weighted", "f1_weighted": "f1_weighted",
    "mae": "neg_mean_absolute_error", "rmse": "neg_root_mean_squared_error", "r2": "r2",
    "mape": "neg_mean_absolute_percentage_error",
}

#: Default search spaces by estimator class name; the champion's own values are added.
DEFAULT_SPACES = {
    "HistGradientBoostingClassifier": {"learning_rate": [0.03, 0.06, 0.1, 0.2], "max_leaf_nodes": [7, 15, 31],
                                       "max_iter": [100, 200, 300], "l2_regularization": [0.0, 0.1, 1.0]},
    "LogisticRegression": {"C": [0.01, 0.1, 1.0, 10.0, 100.0]},
}
DEFAULT_SPACES["HistGradientBoostingRegressor"] = DEFAULT_SPACES["HistGradientBoostingClassifier"]


class RetrainError(RuntimeError):
    """Retraining cannot go on: too few labels, a degenerate holdout, a missing stage."""


# -- the run folder ------------------------------------------------------------------------
def run_prefix(model: str, run_id: str) -> str:
    if not _RUN_ID_RE.match(run_id or ""):
        raise RetrainError(f"run id {run_id!r}: use letters, digits and _ . : + - (at most 200), "
                           f"starting with a letter or digit")
    return posixpath.join("models", model, "retraining", run_id)


def _need(store: Store, prefix: str, name: str, stage: str) -> str:
    rel = posixpath.join(prefix, name)
    if not store.exists(rel):
        raise RetrainError(f"{store.uri(rel)} is missing: run the {stage} stage of this run first")
    return rel


def duration_text(d: timedelta) -> str:
    """'14d', '36h', '90m' or '45s': the largest unit that divides the duration."""
    secs = int(d.total_seconds())
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs and secs % n == 0:
            return f"{secs // n}{unit}"
    return f"{d.total_seconds():g}s"


def _iso(t: Any) -> str | None:
    return None if t is None or pd.isna(t) else pd.Timestamp(t).isoformat()


# -- recent labelled rows ------------------------------------------------------------------
def _schema(cfg: ModelConfig) -> pa.Schema:
    """Columns of train.parquet and holdout.parquet: the features as driftline.stages.baseline.frame_for
    types them, the label, the inference time and id, and where the row came from."""
    from driftline.stages.labels import label_type

    types = {"numeric": pa.float64(), "integer": pa.float64(), "categorical": pa.string(),
             "boolean": pa.bool_(), "datetime": TIMESTAMP}
    return pa.schema([*(pa.field(f.name, types[f.type]) for f in cfg.features),
                      pa.field(cfg.labels.column, label_type(cfg.problem_type)),
                      pa.field("inference_time", TIMESTAMP), pa.field(cfg.inference_id, pa.string()),
                      pa.field("source", pa.string())])


def _empty(cfg: ModelConfig) -> pd.DataFrame:
    return _schema(cfg).empty_table().drop_columns(["source"]).to_pandas()


def recent_labelled(cfg: ModelConfig, store: Store, end: datetime, window: timedelta | str,
                    as_of: datetime | None = None) -> pd.DataFrame:
    """The labelled rows of the intervals that start in [end - window, end), sorted by
    inference time: the features, the label (``labels.column``), ``inference_time`` and the
    inference id. Labels are those arrived by ``as_of`` (default: now)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from driftline.stages.baseline import frame_for
    from driftline.stages.labels import interval_starts, merge_interval

    if cfg.labels is None:
        raise RetrainError(f"{cfg.source or cfg.name}: retraining needs labels (a labels section)")
    end, window = as_utc(end), parse_duration(window)
    label = cfg.labels.column
    frames = []
    for start in (s for s in interval_starts(store, cfg.name) if end - window <= s < end):
        merged = merge_interval(cfg, store, start, cfg.interval_end(start), as_of).table
        keep = pc.is_valid(merged.column(label))
        if not pc.any(keep).as_py():
            continue
        rel = posixpath.join(Store.run_prefix(cfg.name, start), "batch.parquet")
        with store.fs.open(store.path(rel), "rb") as f:
            names = set(pq.ParquetFile(f).schema_arrow.names)
        batch = store.read_parquet(rel, columns=[c for c in cfg.feature_names if c in names])
        if batch.num_rows != merged.num_rows:  # merge_interval keeps the batch's rows, in order
            raise RetrainError(f"{store.uri(rel)}: {batch.num_rows} rows, but its merge with the labels has "
                               f"{merged.num_rows}: the batch changed while it was read; run again")
        for c in cfg.feature_names:  # a feature the interval lacked (missing_column_check): all missing
            if c not in names:
                batch = batch.append_column(c, pa.nulls(batch.num_rows))
        frame = frame_for(cfg, batch.filter(keep), store.uri(rel))
        merged = merged.filter(keep)
        frame[label] = merged.column(label).to_numpy(zero_copy_only=False)
        frame["inference_time"] = merged.column("inference_time").to_pandas().to_numpy()
        frame[cfg.inference_id] = merged.column(cfg.inference_id).to_pylist()
        frames.append(frame)
    if not frames:
        return _empty(cfg)
    out = pd.concat(frames, ignore_index=True)
    out["inference_time"] = pd.to_datetime(out["inference_time"], utc=True)
    return out.sort_values(["inference_time", cfg.inference_id], kind="stable").reset_index(drop=True)


def _balance(cfg: ModelConfig, y: pd.Series) -> dict:
    if cfg.problem_type == "regression":
        return {"mean": float(y.mean()), "std": float(y.std(ddof=0))} if len(y) else {}
    shares = y.astype(str).value_counts(normalize=True).sort_index()
    return {str(k): round(float(v), 6) for k, v in shares.items()}


def _describe(cfg: ModelConfig, df: pd.DataFrame) -> dict:
    recent = df[df["source"] == "recent"]
    return {"rows": int(len(df)), "recent_rows": int(len(recent)),
            "training_data_rows": int((df["source"] == "training_data").sum()),
            "from": _iso(recent["inference_time"].min()) if len(recent) else None,
            "to": _iso(recent["inference_time"].max()) if len(recent) else None,
            "label_balance": _balance(cfg, df[cfg.labels.column])}


def _training_data(cfg: ModelConfig, resolver: Resolver | None) -> pd.DataFrame:
    from driftline.stages.baseline import frame_for, read_table
    from driftline.stages.labels import normalise_predictions

    source = cfg.baseline.training_data
    table = read_table(source, resolver)
    label = cfg.labels.column
    if label not in table.column_names:
        raise RetrainError(f"{source}: the training data has no label column {label!r} (labels.column): set "
                           f"retraining.include_training_data: false to train on recent traffic only")
    try:
        y = normalise_predictions(cfg.problem_type, table.column(label))
    except (pa.ArrowInvalid, ValueError) as exc:
        raise RetrainError(f"{source}: column {label!r} cannot be read as {cfg.problem_type} labels ({exc})") from None
    frame = frame_for(cfg, table, source)
    frame[label] = y.to_numpy(zero_copy_only=False)
    frame["inference_time"] = pd.NaT
    frame[cfg.inference_id] = None
    return frame[pd.notna(frame[label])]


def _to_table(cfg: ModelConfig, df: pd.DataFrame) -> pa.Table:
    schema = _schema(cfg)
    df = df[schema.names].copy()
    df["inference_time"] = pd.to_datetime(df["inference_time"], utc=True)
    return pa.Table.from_pandas(df, schema=schema, preserve_index=False)


def plan(cfg: ModelConfig, run_id: str, request: dict | None = None, params: dict | None = None,
         now: datetime | None = None) -> dict:
    """What a retraining run trains on: the monitoring request of its Asset event (its
    interval's end and window), else the Params of a manual run (``end``: ISO time, empty =
    now; ``window``: a duration, empty = the model file's; ``dry_run``). ``run_id`` becomes a
    folder-safe run name."""
    if request:
        end = datetime.fromisoformat(request["end"])
        days = request.get("window_days")
        window = timedelta(days=float(days)) if days else cfg.retraining.window
        why, dry_run = f"requested by monitoring ({request['interval']}): {request['why']}", False
    else:
        params = params or {}
        try:
            end = datetime.fromisoformat(params["end"].replace("Z", "+00:00")) if params.get("end") else None
        except ValueError:
            raise RetrainError(f"end {params['end']!r} is not an ISO date/time") from None
        end = end or now or datetime.now(timezone.utc)
        window = parse_duration(params["window"]) if params.get("window") else cfg.retraining.window
        why, dry_run = "triggered by hand", bool(params.get("dry_run"))
    run = re.sub(r"[^0-9A-Za-z_-]", "_", run_id)
    run_prefix(cfg.name, run)  # checks the name
    return {"run": run, "end": as_utc(end).isoformat(), "window_days": window.total_seconds() / 86400,
            "dry_run": dry_run, "why": why, "summary": f"{why}; window: {duration_text(window)} before "
                                                     f"{as_utc(end).isoformat()}" + (" (DRY RUN)" if dry_run else "")}


def prepare(cfg: ModelConfig, store: Store, run_id: str, end: datetime, window: timedelta | str | None = None,
            include_training_data: bool | None = None, as_of: datetime | None = None,
            resolver: Resolver | None = None) -> dict:
    """Split the recent labelled rows into a training set and the latest holdout (module doc)."""
    from driftline.store.registry import import_initial

    prefix = run_prefix(cfg.name, run_id)
    if store.exists(posixpath.join(prefix, "promotion.json")):
        raise RetrainError(f"run {run_id} of {cfg.name} was already promoted ({store.uri(prefix)}): use a new run id")
    if cfg.labels is None:
        raise RetrainError(f"{cfg.source or cfg.name}: retraining needs labels (a labels section)")
    rt = cfg.retraining
    end = as_utc(end)
    window = parse_duration(window) if window is not None else rt.window
    include = rt.include_training_data if include_training_data is None else include_training_data
    record = import_initial(cfg, store, resolver)
    recent = recent_labelled(cfg, store, end, window, as_of)
    span = f"the {duration_text(window)} before {end.isoformat()}"
    if len(recent) < rt.when.min_labels:
        raise RetrainError(f"{cfg.name}: {len(recent)} labelled rows in {span}; retraining needs at least "
                           f"{rt.when.min_labels} (retraining.when.min_labels): wait for more labels or widen the "
                           f"window")
    label = cfg.labels.column
    n, n_hold = len(recent), max(1, math.ceil(len(recent) * rt.holdout))
    if n_hold >= n:
        raise RetrainError(f"{cfg.name}: {n} labelled rows in {span} leave nothing to train on after holding out "
                           f"{n_hold}: raise retraining.when.min_labels or lower retraining.holdout")
    recent["source"] = "recent"
    holdout, recent_train = recent.iloc[n - n_hold:], recent.iloc[:n - n_hold]
    if cfg.problem_type == "binary_classification" and holdout[label].nunique() < 2:
        raise RetrainError(f"{cfg.name}: the holdout ({n_hold} latest labelled rows in {span}) holds only label "
                           f"{holdout[label].iloc[0]!r}: champion and challenger cannot be ranked there; widen the "
                           f"window or raise retraining.holdout")
    parts = [_training_data(cfg, resolver).assign(source="training_data")] if include else []
    train_df = pd.concat([*parts, recent_train], ignore_index=True) if parts else recent_train
    if cfg.problem_type != "regression" and train_df[label].nunique() < 2:
        raise RetrainError(f"{cfg.name}: the training set ({len(train_df)} rows) holds one class only")
    store.write_parquet(posixpath.join(prefix, "train.parquet"), _to_table(cfg, train_df))
    store.write_parquet(posixpath.join(prefix, "holdout.parquet"), _to_table(cfg, holdout))
    doc = {"model": cfg.name, "run_id": run_id, "end": end.isoformat(), "window": duration_text(window),
           "window_seconds": window.total_seconds(), "as_of": as_utc(as_of).isoformat() if as_of else None,
           "include_training_data": include, "champion": record["version"],
           "recent_rows": int(len(recent)), "holdout_share": rt.holdout,
           "train": _describe(cfg, train_df), "holdout": _describe(cfg, holdout),
           "prepared_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    summary = (f"{cfg.name} retraining {run_id}: {len(recent)} recent labelled rows in {span}; training on "
               f"{len(train_df)} rows ({len(recent_train)} recent"
               + (f" + {doc['train']['training_data_rows']} of the training data" if include else "")
               + f"), holdout the latest {len(holdout)} ({doc['holdout']['from']} .. {doc['holdout']['to']})")
    doc["summary"] = summary
    store.write_json(posixpath.join(prefix, "prepare.json"), doc)
    return {"model": cfg.name, "run_id": run_id, "recent_rows": doc["recent_rows"], "train_rows": len(train_df),
            "holdout_rows": len(holdout), "champion": record["version"], "uri": store.uri(prefix),
            "summary": summary}


def _frame(cfg: ModelConfig, store: Store, rel: str) -> tuple[pd.DataFrame, np.ndarray]:
    """Model input and labels of train.parquet / holdout.parquet."""
    from driftline.store.models import model_input

    df = store.read_parquet(rel).to_pandas()
    return model_input(cfg, df[cfg.feature_names]), df[cfg.labels.column].to_numpy()


# -- train -----------------------------------------------------------------------------------
def default_space(estimator: Any) -> tuple[dict[str, list], str]:
    """A search space for the first known estimator in ``estimator`` (itself, or a step of a
    pipeline, by get_params() names), widened by the values it has now; ({}, why) otherwise."""
    from sklearn.base import BaseEstimator

    found = [("", estimator)] + [(f"{k}__", v) for k, v in estimator.get_params(deep=True).items()
                                 if isinstance(v, BaseEstimator)]
    for prefix, est in found:
        space = DEFAULT_SPACES.get(type(est).__name__)
        if space is None:
            continue
        current = est.get_params(deep=False)
        out = {}
        for name, values in space.items():
            cand = list(values) + ([current[name]] if current.get(name) not in values else [])
            out[prefix + name] = sorted(cand, key=lambda v: (v is None, v if v is not None else 0))
        where = f" at {prefix[:-2]}" if prefix else ""
        return out, f"default space for {type(est).__name__}{where}"
    return {}, f"no search space: no default for {type(estimator).__name__}, set retraining.search.space"


def train(cfg: ModelConfig, store: Store, run_id: str, resolver: Resolver | None = None) -> dict:
    """Fit the challenger on train.parquet (module doc); writes challenger.joblib and train.json."""
    import joblib
    from sklearn.base import clone, is_classifier
    from sklearn.model_selection import KFold, RandomizedSearchCV, StratifiedKFold
    from threadpoolctl import threadpool_limits

    from driftline.store.registry import load_champion

    prefix = run_prefix(cfg.name, run_id)
    x, y = _frame(cfg, store, _need(store, prefix, "train.parquet", "prepare"))
    champion, manifest = load_champion(cfg, store, resolver)
    challenger = clone(champion)
    search = cfg.retraining.search
    metric = cfg.retrain_metric
    if search.space:
        space, how = {k: list(v) for k, v in search.space.items()}, "retraining.search.space"
        unknown = sorted(set(space) - set(challenger.get_params(deep=True)))
        if unknown:
            raise RetrainError(f"{cfg.source or cfg.name}: retraining.search.space: {unknown} are not parameters of "
                               f"the champion's {type(champion).__name__} (see its get_params())")
        empty = sorted(k for k, v in space.items() if not v)
        if empty:
            raise RetrainError(f"{cfg.source or cfg.name}: retraining.search.space: {empty} list no candidates")
    else:
        space, how = default_space(challenger)
    distinct = math.prod(len(v) for v in space.values()) if space else 0
    t0 = time.perf_counter()
    doc: dict[str, Any] = {"model": cfg.name, "run_id": run_id, "champion": manifest.get("version"),
                           "estimator": type(champion).__name__, "metric": metric, "space_source": how,
                           "space": space, "rows": int(len(x))}
    # One OpenMP/BLAS thread: the worker runs other tasks too (see driftline.store.models).
    with threadpool_limits(1):
        if space:
            n_iter = min(search.n_iter, distinct)
            folds = (StratifiedKFold if is_classifier(challenger) else KFold)(
                n_splits=search.cv, shuffle=True, random_state=search.seed)
            scorer = SCORERS[metric]
            rs = RandomizedSearchCV(challenger, space, n_iter=n_iter, scoring=scorer, cv=folds,
                                    random_state=search.seed, n_jobs=1, refit=True)
            try:
                rs.fit(x, y)
            except ValueError as exc:
                raise RetrainError(f"{cfg.name}: the search failed ({exc})") from exc
            sign = -1.0 if scorer.startswith("neg_") else 1.0
            scores = rs.cv_results_["mean_test_score"]
            challenger = rs.best_estimator_
            doc.update(search="randomized", candidates=int(n_iter), distinct_candidates=int(distinct),
                       cv=search.cv, scorer=scorer, best_params=rs.best_params_,
                       cv_score=float(sign * rs.best_score_),
                       failed_candidates=int(np.isnan(scores).sum()),
                       tried=[{"params": p, "cv_score": None if np.isnan(s) else float(sign * s)}
                              for p, s in zip(rs.cv_results_["params"], scores)])
        else:
            challenger.fit(x, y)
            doc.update(search="none", candidates=0, distinct_candidates=0, best_params={}, cv_score=None)
    doc["seconds"] = round(time.perf_counter() - t0, 2)
    buf = io.BytesIO()
    joblib.dump(challenger, buf)
    store.write_bytes(posixpath.join(prefix, "challenger.joblib"), buf.getvalue())
    if doc["search"] == "none":
        summary = f"{cfg.name} retraining {run_id}: challenger refitted on {len(x)} rows, {how} ({doc['seconds']} s)"
    else:
        summary = (f"{cfg.name} retraining {run_id}: challenger from {doc['candidates']} of {distinct} candidates "
                   f"({how}), best {metric} {doc['cv_score']:.4f} in {search.cv}-fold CV on {len(x)} rows "
                   f"({doc['seconds']} s)")
    doc["summary"] = summary
    store.write_json(posixpath.join(prefix, "train.json"), doc)
    return {"model": cfg.name, "run_id": run_id, "search": doc["search"], "candidates": doc["candidates"],
            "cv_score": doc["cv_score"], "best_params": doc["best_params"], "seconds": doc["seconds"],
            "uri": store.uri(prefix), "summary": summary}


# -- evaluate -------------------------------------------------------------------------------
def holdout_metrics(cfg: ModelConfig, model: Any, x: pd.DataFrame, y: np.ndarray) -> dict:
    """Every realized metric of a model on labelled rows (driftline.stats.performance.realized_metrics);
    a binary classifier's score is its probability of class 1, thresholded at
    ``prediction.threshold``."""
    from threadpoolctl import threadpool_limits

    from driftline.stats.performance import realized_metrics

    with threadpool_limits(1):
        if cfg.problem_type == "binary_classification" and hasattr(model, "predict_proba"):
            classes = list(getattr(model, "classes_", [0, 1]))
            proba = np.asarray(model.predict_proba(x))[:, classes.index(1) if 1 in classes else -1]
            return realized_metrics(cfg.problem_type, y, None, proba=proba, threshold=cfg.prediction.threshold)
        return realized_metrics(cfg.problem_type, y, np.asarray(model.predict(x)))


def _fmt(v: float | None) -> str:
    return "undefined" if v is None else f"{v:.4f}"


def evaluate(cfg: ModelConfig, store: Store, run_id: str, resolver: Resolver | None = None) -> dict:
    """Champion and challenger on the same holdout; writes decision.json (module doc)."""
    import joblib

    from driftline.stats.metric_names import HIGHER_IS_BETTER
    from driftline.store.registry import load_champion

    prefix = run_prefix(cfg.name, run_id)
    x, y = _frame(cfg, store, _need(store, prefix, "holdout.parquet", "prepare"))
    challenger = joblib.load(io.BytesIO(store.read_bytes(_need(store, prefix, "challenger.joblib", "train"))))
    champion, manifest = load_champion(cfg, store, resolver)
    params = store.read_json(posixpath.join(prefix, "train.json")).get("best_params", {}) \
        if store.exists(posixpath.join(prefix, "train.json")) else {}
    prep = store.read_json(_need(store, prefix, "prepare.json", "prepare"))
    m_champion = holdout_metrics(cfg, champion, x, y)
    m_challenger = holdout_metrics(cfg, challenger, x, y)
    metric, margin = cfg.retrain_metric, cfg.retraining.margin
    higher = HIGHER_IS_BETTER[metric]
    a, b = m_champion["metrics"].get(metric), m_challenger["metrics"].get(metric)
    who = f"champion {manifest.get('version') or 'baseline.model'}"
    rows = f"{len(y)} holdout rows ({prep['holdout']['from']} .. {prep['holdout']['to']})"
    if a is None or b is None:
        improvement, promote = None, False
        why = (m_champion if a is None else m_challenger)["undefined"].get(metric, "undefined")
        reason = (f"challenger {metric} {_fmt(b)} vs {who} {_fmt(a)} on {rows}: cannot compare ({why}): "
                  f"keep the champion")
    else:
        improvement = (b - a) if higher else (a - b)
        promote = improvement > margin
        reason = (f"challenger {metric} {b:.4f} vs {who} {a:.4f} on {rows}"
                  f"{'' if higher else ' (lower is better)'}: improvement {improvement:+.4f} "
                  f"{'>' if promote else '<='} margin {margin:g}: "
                  f"{'promote the challenger' if promote else 'keep the champion'}")
    doc = {"model": cfg.name, "run_id": run_id, "metric": metric, "higher_is_better": higher, "margin": margin,
           "champion": {"version": manifest.get("version"), "source": manifest.get("source"),
                        "metrics": m_champion["metrics"], "undefined": m_champion["undefined"]},
           "challenger": {"metrics": m_challenger["metrics"], "undefined": m_challenger["undefined"],
                          "params": params},
           "holdout_rows": int(len(y)), "improvement": improvement, "promote": promote, "reason": reason,
           "decided_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    store.write_json(posixpath.join(prefix, "decision.json"), doc)
    return {"model": cfg.name, "run_id": run_id, "promote": promote, "metric": metric, "champion": a,
            "challenger": b, "improvement": improvement, "reason": reason, "uri": store.uri(prefix),
            "summary": f"{cfg.name} retraining {run_id}: {reason}"}


# -- promote ----------------------------------------------------------------------------------
def _made_by(manifests: list[dict], run_id: str) -> dict | None:
    return next((m for m in manifests if m.get("origin") == "retrained" and m.get("run_id") == run_id), None)


def promote(cfg: ModelConfig, store: Store, run_id: str, actor: str = "driftline",
            resolver: Resolver | None = None) -> dict:
    """Register the challenger with a new baseline and make the pair the champion (module doc).
    A second call for the run returns the first one's record."""
    import joblib

    from driftline.stages.baseline import create_baseline
    from driftline.store import registry
    from driftline.store.baselines import list_versions

    prefix = run_prefix(cfg.name, run_id)
    done_rel = posixpath.join(prefix, "promotion.json")
    if store.exists(done_rel):
        return {**store.read_json(done_rel), "already": True}
    decision = store.read_json(_need(store, prefix, "decision.json", "evaluate"))
    if not decision["promote"]:
        raise RetrainError(f"{cfg.name} retraining {run_id}: not promoting: {decision['reason']}")
    current = registry.champion(store, cfg.name) or {}
    mine = _made_by(registry.list_model_versions(store, cfg.name), run_id)
    if current.get("version") != decision["champion"]["version"] and not (mine and current.get("version") ==
                                                                          mine["version"]):
        raise RetrainError(f"{cfg.name} retraining {run_id}: the champion is now {current.get('version')}, the "
                           f"decision compared the challenger with {decision['champion']['version']}: run evaluate "
                           f"again")
    prep = store.read_json(posixpath.join(prefix, "prepare.json"))
    trained = store.read_json(posixpath.join(prefix, "train.json"))
    was = decision["champion"]["version"]
    parent = {"version": was, "baseline": registry.baseline_of(store, cfg.name, was) if was else None}
    challenger = None
    # a run cut short after its baseline or its model version was written resumes from there
    built = _made_by([store.read_json(posixpath.join("baselines", cfg.name, v, "manifest.json"))
                      for v in list_versions(store, cfg.name)], run_id)
    if built is None:
        challenger = joblib.load(io.BytesIO(store.read_bytes(posixpath.join(prefix, "challenger.joblib"))))
        built = create_baseline(cfg, store, resolver=resolver,
                                training_data=store.read_parquet(posixpath.join(prefix, "train.parquet")),
                                evaluation_data=store.read_parquet(posixpath.join(prefix, "holdout.parquet")),
                                model=challenger, update_champion=False,
                                origin={"origin": "retrained", "run_id": run_id, "parent_model_version":
                                        parent["version"], "training_data": store.uri(prefix, "train.parquet"),
                                        "evaluation_data": store.uri(prefix, "holdout.parquet")})
    if mine is None:
        if challenger is None:
            challenger = joblib.load(io.BytesIO(store.read_bytes(posixpath.join(prefix, "challenger.joblib"))))
        metric = decision["metric"]
        mine = registry.register_model(store, cfg.name, challenger, {
            "origin": "retrained", "run_id": run_id, "parent": parent["version"], "baseline": built["version"],
            "params": trained.get("best_params", {}), "metric": metric,
            "scores": {"holdout": {"challenger": decision["challenger"]["metrics"][metric],
                                   "champion": decision["champion"]["metrics"][metric]},
                       "cv": trained.get("cv_score")},
            "metrics": decision["challenger"]["metrics"], "training": prep["train"], "holdout": prep["holdout"],
            "decision": decision["reason"], "actor": actor})
    record = current if (current.get("version"), current.get("baseline")) == (mine["version"], built["version"]) \
        else registry.set_champion(store, cfg.name, mine["version"], built["version"],
                                   reason=f"retraining {run_id}: {decision['reason']}", actor=actor)
    summary = (f"{cfg.name}: promoted {mine['version']} (retraining {run_id}) with baseline {built['version']}; "
               f"was {parent['version']} with baseline {parent['baseline']}")
    doc = {"model": cfg.name, "run_id": run_id, "model_version": mine["version"], "baseline_version": built["version"],
           "previous": parent, "promoted_at": record["since"], "actor": actor, "reason": decision["reason"],
           "uri": store.uri(prefix), "summary": summary}
    store.write_json(done_rel, doc)
    return doc
