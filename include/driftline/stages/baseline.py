"""Baselines: what "normal" looks like, computed once from the training data.

A baseline version holds, under ``baselines/<model>/<version>/``:

``statistics.json``
    SageMaker Model Monitor's data-quality statistics format: ``dataset.item_count`` and
    per feature ``numerical_statistics`` (``common.num_present/num_missing``, ``mean``,
    ``sum``, ``std_dev`` (population, as Deequ computes it), ``min``, ``max``,
    ``distribution.kll.buckets``: 10 equal-width buckets over [min, max]; the serialised KLL
    ``sketch`` itself comes with the mergeable profiles of the drift engine) or
    ``string_statistics`` (``common``, ``distinct_count``, ``distribution.categorical.buckets``).
``constraints.json``
    SageMaker's constraints format: per feature ``inferred_type`` (Integral, Fractional,
    String), ``completeness``, ``num_constraints.is_non_negative``,
    ``string_constraints.domains``; top-level ``monitoring_config``. driftline's additions
    sit under a ``driftline`` key per feature (declared type, observed range), which
    SageMaker's tooling ignores.
``expectations.json``
    The Great Expectations suite derived from the constraints (GX 1.x JSON).
``reference_sample.parquet``
    A seeded random sample of the training rows, for exact tests on small batches and the
    multivariate checks.
``profile.json``
    The mergeable profile of the training data (``driftline.stats.profile``: moments, KLL
    sketches, counts on fixed bin edges, category counts) plus, where the model is known,
    of its reference predictions: the drift engine compares batches with it and never
    re-reads the training data.
``importance.json``
    Permutation importance of the features (when ``baseline.model`` is set).
``multivariate.json``
    The PCA reconstruction model and its leave-chunk-out thresholds.
``performance.json``
    The model's realized quality on labelled data it did not train on (the holdout, or
    training data that carries predictions and labels), overall and per segment: what
    relative quality thresholds compare with; and the calibration of its scores that the
    label-free estimates use (``driftline.stages.model_quality``). Regression models also get
    ``loss_estimator.joblib`` (direct loss estimation).
``feedback.json``
    Only in a version built with ``absorb_feedback`` (``driftline baseline --absorb-feedback``)
    that found answers: the people's answers to drift alerts (``driftline.stages.feedback``) it
    absorbed, see "Feedback" below. The manifest's ``feedback`` key lists the same in brief.
``manifest.json``
    Written last: a version without it is incomplete and is never used.

Feedback
    A baseline built with ``absorb_feedback`` reads the answers given to drift alerts
    (``baseline_drift_check``; the subject is the feature or prediction column, or
    "<column> (missing share)") since the baseline in use (the champion's, else the latest)
    was made, and absorbs them; answers to other checks, and acknowledgements, are listed as
    not absorbed. An answer covers the intervals from its incident's opening interval through
    the latest interval of its suppression window ``[incident, until)`` whose run still
    recorded the violation (every interval in between that has a ``batch.parquet``).

    - ``expected`` (real, the new normal): the column's drift reference becomes the values of
      those intervals' batches (``runs/<model>/<interval>/batch.parquet``, the valid
      normalised rows): its profile in ``profile.json`` is theirs, and the drift engine
      compares the column with that profile instead of the raw training sample. Replaced,
      not added: mixed into the training rows with weight w, the new normal stays drifted --
      its Wasserstein distance to the mix is about (1 - w) times the old one, so a shift of
      0.45 sd falls under 0.1 only once the new rows outnumber the training rows 4 to 1.
      Other columns, the data-quality statistics and constraints, the multivariate model and
      the model's reference quality keep the training data. At least ``ABSORB_MIN_VALUES``
      present values are needed.
    - ``false_positive`` (the check is too sensitive here): the column gets a threshold for
      the method that flagged it, from the incident's interval flagged hardest: distances
      ``max(threshold then, statistic x 1.25)``; tests ``alpha = min(alpha then, p x 0.5)``
      with the p-value the verdict used (Holm-adjusted). The drift engine applies it while
      that method is the one chosen; a feature whose ``drift.method``/``threshold`` the model
      file sets keeps the model file's (such answers are not absorbed); over the model-wide
      defaults the widened threshold wins. Missing-share false positives are not absorbed
      (that threshold is model-wide).
    - ``acknowledged``: nothing.

    What the baseline in use absorbed is carried into the new one (a column answered again
    takes the newer answer), so a rebuild with the flag loses nothing; one built without the
    flag starts from the training data alone (its summary counts the answers waiting).
    ``feedback.json``::

        {"from_baseline": "v1", "since": "<v1's created_at>",
         "threshold_overrides": {"<column>": {"method", "threshold", "was", "rule", "answers",
                                              "because": {"feedback", "by", "at", "comment",
                                                          "interval", "statistic", "pvalue",
                                                          "baseline", ...}}},
         "reference_columns": {"<column>": {"intervals", "rows", "values", "answers", "by"}},
         "absorbed": [{"feedback", "kind", "by", "at", "comment", "incident_key", "column",
                       "intervals", "rows" | "threshold"}],
         "not_absorbed": [{"feedback", "kind", "check", "subject", "by", "why"}],
         "carried": [...], "summary": "absorbed 2 answers: ..."}

    ``feedback`` ids are the answers' paths under ``alerts/<model>/feedback/``.

Versions are ``v1``, ``v2``, ... and are never overwritten: a new baseline is a new version.
A SageMaker baseline (its ``statistics.json`` and ``constraints.json``) can be imported as a
version; the suite is then derived from its constraints.
"""
from __future__ import annotations

import io
import json
import posixpath
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from driftline.config import TEST_METHODS, ModelConfig
from driftline.stages.answers import in_force
from driftline.stages.answers import read_all as read_answers
from driftline.store import Resolver, Store, StoreError, default_resolver
from driftline.store.baselines import BaselineError, BaselineRef, next_version, resolve_baseline

#: SageMaker's inferred types are Integral, Fractional, String and Unknown: booleans and
#: datetimes are String there; driftline's own type sits under each feature's "driftline" key.
INFERRED_TYPE = {"numeric": "Fractional", "integer": "Integral", "categorical": "String",
                 "boolean": "String", "datetime": "String"}
DRIFTLINE_TYPE = {"Fractional": "numeric", "Integral": "integer", "String": "categorical",
                  "Boolean": "boolean"}
#: Above this many distinct values a categorical feature gets no domain constraint
#: (SageMaker suggests domains "for small cardinality" only).
MAX_DOMAIN_SIZE = 1000
N_BUCKETS = 10
UNPARSED_PREFIX = "__unparsed__"
DEFAULT_MONITORING_CONFIG = {
    "evaluate_constraints": "Enabled",
    "emit_metrics": "Enabled",
    "datatype_check_threshold": 1.0,
    "domain_content_threshold": 1.0,
    "distribution_constraints": {
        "perform_comparison": "Enabled",
        "comparison_threshold": 0.1,
        "comparison_method": "Robust",
        "categorical_comparison_threshold": 0.1,
        "categorical_drift_method": "LInfinity",
    },
}


# -- reading data ---------------------------------------------------------------------
def read_table(uri: str, resolver: Resolver | None = None) -> pa.Table:
    """Read a Parquet file, a folder of Parquet files, or a CSV file into Arrow."""
    fs, path = (resolver or default_resolver)(uri)
    try:
        if fs.isdir(path):
            files = sorted(p for p in fs.find(path) if p.endswith(".parquet"))
            if not files:
                raise BaselineError(f"{uri}: folder holds no .parquet files")
            return pa.concat_tables([pq.read_table(fs.open(p, "rb")) for p in files], promote_options="default")
        if not fs.exists(path):
            raise BaselineError(f"{uri}: no such file")
        with fs.open(path, "rb") as f:
            if path.endswith((".csv", ".csv.gz")):
                return pacsv.read_csv(io.BytesIO(f.read()))
            return pq.read_table(f)
    except BaselineError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise BaselineError(f"{uri}: cannot read training data ({type(exc).__name__}: {exc})") from exc


def frame_for(cfg: ModelConfig, table: pa.Table, source: str) -> pd.DataFrame:
    """The features of cfg from a training table, typed; a missing feature is an error."""
    missing = [f for f in cfg.feature_names if f not in table.column_names]
    if missing:
        raise BaselineError(f"{source}: training data lacks declared features {missing} "
                            f"(it has {table.column_names})")
    df = table.select(cfg.feature_names).to_pandas()
    for name, typ in cfg.feature_types.items():
        s = df[name]
        try:
            if typ in ("numeric", "integer"):
                df[name] = pd.to_numeric(s, errors="raise").astype("float64")
            elif typ == "categorical":
                df[name] = s.astype("string").astype(object).where(s.notna(), None)
            elif typ == "boolean":
                df[name] = s.astype("boolean")
            elif typ == "datetime":
                df[name] = pd.to_datetime(s, utc=True)
        except (ValueError, TypeError) as exc:
            raise BaselineError(f"{source}: feature {name!r} declared {typ} but its training values "
                                f"cannot be read as {typ} ({exc})") from None
    return df


# -- statistics ---------------------------------------------------------------------------
def numeric_statistics(values: np.ndarray) -> dict:
    """SageMaker numerical_statistics of a float array with NaN for missing."""
    present = values[~np.isnan(values)]
    n_present, n_missing = int(present.size), int(values.size - present.size)
    out: dict[str, Any] = {"common": {"num_present": n_present, "num_missing": n_missing}}
    if n_present == 0:
        return out
    lo, hi = float(present.min()), float(present.max())
    counts, edges = np.histogram(present, bins=N_BUCKETS, range=(lo, hi) if hi > lo else (lo, lo + 1.0))
    out.update({
        "mean": float(present.mean()),
        "sum": float(present.sum()),
        "std_dev": float(present.std(ddof=0)),
        "min": lo,
        "max": hi,
        "distribution": {"kll": {"buckets": [
            {"lower_bound": float(edges[i]), "upper_bound": float(edges[i + 1]), "count": float(counts[i])}
            for i in range(N_BUCKETS)]}},
    })
    return out


def string_statistics(values: pd.Series) -> dict:
    present = values.dropna().astype(str)
    counts = present.value_counts(sort=True)
    return {
        "common": {"num_present": int(present.size), "num_missing": int(values.size - present.size)},
        "distinct_count": float(counts.size),
        "distribution": {"categorical": {"buckets": [
            {"value": str(v), "count": float(c)} for v, c in counts.items()]}},
    }


def compute_statistics(cfg: ModelConfig, df: pd.DataFrame) -> dict:
    features = []
    for f in cfg.features:
        entry: dict[str, Any] = {"name": f.name, "inferred_type": INFERRED_TYPE[f.type]}
        s = df[f.name]
        if f.type in ("numeric", "integer"):
            entry["numerical_statistics"] = numeric_statistics(s.to_numpy(dtype="float64", na_value=np.nan))
        elif f.type == "boolean":
            entry["string_statistics"] = string_statistics(s.map(lambda v: None if pd.isna(v) else str(bool(v)).lower()))
        elif f.type == "datetime":
            entry["string_statistics"] = string_statistics(s.dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
            present = s.dropna()
            if len(present):
                entry["driftline"] = {"min": present.min().isoformat(), "max": present.max().isoformat()}
        else:
            entry["string_statistics"] = string_statistics(s)
        features.append(entry)
    return {"version": 0.0, "dataset": {"item_count": int(len(df))}, "features": features}


# -- constraints ---------------------------------------------------------------------------
def suggest_constraints(cfg: ModelConfig, statistics: dict) -> dict:
    """SageMaker-style suggested constraints from statistics (as suggest_baseline does)."""
    features = []
    for f, st in zip(cfg.features, statistics["features"]):
        body = st.get("numerical_statistics") or st.get("string_statistics") or {}
        common = body.get("common", {})
        total = common.get("num_present", 0) + common.get("num_missing", 0)
        c: dict[str, Any] = {
            "name": f.name,
            "inferred_type": st["inferred_type"],
            "completeness": round(common.get("num_present", 0) / total, 6) if total else 0.0,
        }
        ext: dict[str, Any] = {"type": f.type}
        if "numerical_statistics" in st and "min" in body:
            c["num_constraints"] = {"is_non_negative": bool(body["min"] >= 0)}
            ext["min"], ext["max"] = body["min"], body["max"]
        if f.type == "boolean":
            c["string_constraints"] = {"domains": ["false", "true"]}
        elif f.type == "categorical":
            buckets = body.get("distribution", {}).get("categorical", {}).get("buckets", [])
            if 0 < len(buckets) <= MAX_DOMAIN_SIZE:
                c["string_constraints"] = {"domains": sorted(b["value"] for b in buckets)}
        elif f.type == "datetime" and "driftline" in st:
            ext.update(st["driftline"])
        c["driftline"] = ext
        features.append(c)
    mc = {**DEFAULT_MONITORING_CONFIG,
          "datatype_check_threshold": cfg.thresholds.datatype_check,
          "domain_content_threshold": cfg.thresholds.domain_content}
    return {"version": 0.0, "features": features, "monitoring_config": mc}


def _feature_type(cfg: ModelConfig, constraint: dict) -> str:
    declared = cfg.feature_types.get(constraint["name"])
    if declared:
        return declared
    ext = constraint.get("driftline", {}).get("type")
    return ext or DRIFTLINE_TYPE.get(constraint.get("inferred_type", ""), "categorical")


# -- the Great Expectations suite --------------------------------------------------------
def expected_columns(cfg: ModelConfig) -> list[str]:
    return [cfg.inference_id, "inference_time", *cfg.feature_names, *cfg.prediction_columns]


def typed_columns(cfg: ModelConfig) -> list[str]:
    """Features whose values can fail to parse (everything but categorical text)."""
    return [f.name for f in cfg.features if f.type != "categorical"]


def build_suite(cfg: ModelConfig, constraints: dict, name: str) -> dict:
    """The GX 1.x suite (as JSON) that checks a batch against the constraints.

    Each expectation carries ``meta.constraint_check_type`` and ``meta.feature_name``, so a
    failed expectation turns into a SageMaker-style violation without guessing. Type checks
    look at the ``__unparsed__<column>`` sidecar that ingest writes for values that could not
    be read as the column's type: pandas 3 text dtypes defeat GX's own type-list checks.
    """
    th = cfg.thresholds
    mc = constraints.get("monitoring_config") or {}
    # a null threshold is an absent one (as SageMaker reads it): the model file's applies
    dtype_threshold = float(th.datatype_check if mc.get("datatype_check_threshold") is None
                            else mc["datatype_check_threshold"])
    domain_threshold = float(th.domain_content if mc.get("domain_content_threshold") is None
                             else mc["domain_content_threshold"])
    exps: list[dict] = []

    def add(kind: str, kwargs: dict, check: str, feature: str, **meta: Any) -> None:
        exps.append({"type": kind, "kwargs": kwargs,
                     "meta": {"constraint_check_type": check, "feature_name": feature, **meta}})

    # The validation frame always carries a sidecar per typed column (see quality.gx_frame),
    # so an exact match fails only on columns nobody declared.
    add("expect_table_columns_to_match_set",
        {"column_set": expected_columns(cfg) + [UNPARSED_PREFIX + n for n in typed_columns(cfg)],
         "exact_match": True},
        "extra_column_check", "*")
    for col in expected_columns(cfg):
        add("expect_column_to_exist", {"column": col}, "missing_column_check", col)

    for c in constraints["features"]:
        name_, typ = c["name"], _feature_type(cfg, c)
        if name_ not in cfg.feature_types:
            continue  # a constraint for a column this model no longer declares
        completeness = float(c.get("completeness", 1.0))
        mostly = max(0.0, round(completeness - th.completeness_slack, 6))
        if mostly > 0:
            add("expect_column_values_to_not_be_null", {"column": name_, "mostly": mostly},
                "completeness_check", name_, baseline_completeness=completeness)
        if typ != "categorical":
            add("expect_column_values_to_be_null",
                {"column": UNPARSED_PREFIX + name_, "mostly": dtype_threshold},
                "data_type_check", name_, expected_type=c.get("inferred_type"), driftline_type=typ)
        ext = c.get("driftline", {})
        unparsed_filter = {"row_condition": f"`{UNPARSED_PREFIX}{name_}`.isnull()", "condition_parser": "pandas"}
        if typ in ("numeric", "integer") and "min" in ext and "max" in ext:
            lo, hi = float(ext["min"]), float(ext["max"])
            margin = (hi - lo) * th.range_margin
            add("expect_column_values_to_be_between",
                {"column": name_, "min_value": lo - margin, "max_value": hi + margin,
                 "mostly": round(1.0 - th.range_tolerance, 6), **unparsed_filter},
                "range_check", name_, baseline_min=lo, baseline_max=hi)
        elif typ in ("numeric", "integer") and c.get("num_constraints", {}).get("is_non_negative"):
            add("expect_column_values_to_be_between",
                {"column": name_, "min_value": 0, "mostly": round(1.0 - th.range_tolerance, 6), **unparsed_filter},
                "range_check", name_, baseline_min=0)
        elif typ == "datetime" and "min" in ext and "max" in ext:
            # Bounds stay ISO strings in JSON; load_suite turns them into Timestamps (GX
            # compares string bounds silently wrong).
            add("expect_column_values_to_be_between",
                {"column": name_, "min_value": ext["min"], "max_value": ext["max"],
                 "mostly": round(1.0 - th.range_tolerance, 6), **unparsed_filter},
                "range_check", name_, driftline_type="datetime")
        domains = c.get("string_constraints", {}).get("domains")
        if domains and typ in ("categorical", "boolean"):
            value_set = [d == "true" for d in domains] if typ == "boolean" else list(domains)
            in_set = {"column": name_, "value_set": value_set, "mostly": domain_threshold}
            if typ == "boolean":  # an unreadable value is a type error, not also an unknown category
                in_set.update(unparsed_filter)
            add("expect_column_values_to_be_in_set", in_set,
                "categorical_values_check", name_)
    return {"name": name, "expectations": exps, "meta": {"driftline_model": cfg.name}}


# -- versions --------------------------------------------------------------------------


def _write_version(store: Store, cfg: ModelConfig, statistics: dict, constraints: dict,
                   sample: pa.Table | None, origin: dict, extras: dict[str, dict] | None = None) -> dict:
    version = next_version(store, cfg.name)
    prefix = Store.baseline_prefix(cfg.name, version)
    suite = build_suite(cfg, constraints, name=f"{cfg.name}-{version}")
    store.write_json(posixpath.join(prefix, "statistics.json"), statistics)
    store.write_json(posixpath.join(prefix, "constraints.json"), constraints)
    store.write_json(posixpath.join(prefix, "expectations.json"), suite)
    if sample is not None:
        store.write_parquet(posixpath.join(prefix, "reference_sample.parquet"), sample)
    extras = dict(extras or {})
    estimator = extras.pop("_loss_estimator", None)
    if estimator is not None:
        import io

        import joblib

        buf = io.BytesIO()
        joblib.dump(estimator, buf)
        store.write_bytes(posixpath.join(prefix, "loss_estimator.joblib"), buf.getvalue())
    for name, doc in extras.items():
        store.write_json(posixpath.join(prefix, f"{name}.json"), doc)
    manifest = {
        "model": cfg.name, "version": version,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "rows": statistics.get("dataset", {}).get("item_count"),
        "features": cfg.feature_names, "expectations": len(suite["expectations"]),
        "files": sorted(["statistics", "constraints", "expectations", *(extras or {})]),
        **origin,
    }
    # The manifest goes last: a version is complete once it exists.
    store.write_json(posixpath.join(prefix, "manifest.json"), manifest)
    return {"model": cfg.name, "version": version, "uri": store.uri(prefix), **{
        k: manifest[k] for k in ("rows", "expectations")}}


def create_baseline(cfg: ModelConfig, store: Store, resolver: Resolver | None = None,
                    training_data: str | pa.Table | None = None, seed: int = 0,
                    evaluation_data: str | pa.Table | None = None, model: Any = None,
                    origin: dict | None = None, update_champion: bool = True,
                    absorb_feedback: bool = False) -> dict:
    """Profile the training data and write a new baseline version. Returns a small summary.

    ``training_data`` and ``evaluation_data`` (labelled rows the model did not train on) are
    locations or Arrow tables; default: the model file's. ``model`` is an estimator; default:
    the registry's champion (driftline.store.registry), else the file ``baseline.model``. ``origin``
    is merged into the manifest. When a champion is on record and ``update_champion`` is true,
    the new version becomes the champion's baseline. ``absorb_feedback``: absorb the answers
    to drift alerts given since the baseline in use was made (module docstring, "Feedback");
    without it the summary only counts them."""
    from driftline.store import registry

    if isinstance(training_data, pa.Table):
        table, source = training_data, "the given table"
    else:
        source = training_data or cfg.baseline.training_data
        table = read_table(source, resolver)
    if table.num_rows == 0:
        raise BaselineError(f"{source}: training data has no rows")
    df = frame_for(cfg, table, source)
    statistics = compute_statistics(cfg, df)
    constraints = suggest_constraints(cfg, statistics)
    sample = None
    if cfg.baseline.sample_rows:
        n = min(cfg.baseline.sample_rows, table.num_rows)
        idx = np.sort(np.random.default_rng(seed).choice(table.num_rows, size=n, replace=False))
        sample = table.select(cfg.feature_names).take(pa.array(idx))
    made = {"origin": "training_data", "training_data": source}
    record = registry.champion(store, cfg.name)
    if model is None and record is not None:
        model, _ = registry.load_model_version(store, cfg.name, record["version"])
        made["model_version"] = record["version"]
    given: dict[str, Any] = {}
    if model is not None:
        given["model"] = model
        if not cfg.baseline.model:  # drift_artifacts scores a model only when the file names one
            cfg = cfg.model_copy(update={"baseline": cfg.baseline.model_copy(update={"model": "(given estimator)"})})
    if isinstance(evaluation_data, pa.Table):
        given["evaluation"] = (evaluation_data, "the given evaluation table")
    elif evaluation_data:
        cfg = cfg.model_copy(update={"baseline": cfg.baseline.model_copy(update={"evaluation_data": evaluation_data})})
    extras, notes = drift_artifacts(cfg, df, table, sample, resolver, seed, given=given)
    plan = plan_feedback(cfg, store) if absorb_feedback else None
    if plan is not None:  # before the new version exists: "the baseline in use" is the old one
        made["feedback"] = _apply_feedback(plan, extras)
    waiting = 0 if absorb_feedback else unabsorbed_feedback(cfg, store)
    out = _write_version(store, cfg, statistics, constraints, sample, {**made, "drift": notes, **(origin or {})},
                         extras)
    out["summary"] = (f"baseline {cfg.name}/{out['version']}: {out['rows']} training rows, "
                      f"{len(cfg.features)} features, {out['expectations']} expectations; "
                      f"predictions: {notes['predictions']}; importance: {notes['importance']}; "
                      f"model quality: {notes['performance']}; "
                      f"multivariate: {notes['multivariate']} -> {out['uri']}")
    if plan is not None:
        out["feedback"] = made["feedback"]
        out["summary"] += "; " + plan["summary"]
    elif waiting:
        out["summary"] += (f"; {waiting} answer(s) to drift alerts not absorbed "
                           f"(`driftline baseline --model {cfg.name} --absorb-feedback` absorbs them)")
    current = registry.champion(store, cfg.name) if update_champion else None
    if current is not None:
        registry.set_champion(store, cfg.name, current["version"], out["version"], reason="baseline rebuilt")
        out["summary"] += f"; champion {cfg.name}/{current['version']} now uses it"
    return out


# -- what the drift engine keeps of a baseline --------------------------------------------
def profiled_kinds(cfg: ModelConfig) -> dict[str, str]:
    """Features the drift engine profiles (datetimes are not compared)."""
    return {f.name: f.type for f in cfg.features if f.type != "datetime"}


def prediction_kinds(cfg: ModelConfig) -> dict[str, str]:
    p = cfg.prediction
    kinds = {p.label: "numeric" if cfg.problem_type == "regression" else "categorical"}
    if p.probability:
        kinds[p.probability] = "numeric"
    return kinds


def drift_artifacts(cfg: ModelConfig, df: pd.DataFrame, table: pa.Table, sample: pa.Table | None,
                    resolver: Resolver | None, seed: int = 0,
                    given: dict | None = None) -> tuple[dict[str, dict], dict]:
    """profile.json, importance.json and multivariate.json of a new baseline, and a note of
    where its reference predictions and importance came from. ``given``: an estimator
    ("model") and/or an evaluation table ("evaluation": (table, source)) to use instead of
    the model file's locations."""
    from driftline.stages.drift import fit_multivariate, reference_profile

    kinds = profiled_kinds(cfg)
    profile = reference_profile(df[list(kinds)], kinds, bins=cfg.drift.bins)
    notes = {"predictions": "none", "importance": "none", "multivariate": "none"}
    extras: dict[str, dict] = {}
    pkinds = prediction_kinds(cfg)
    predictions = None
    if cfg.baseline.model:
        predictions, importance, notes_model, perf = _model_reference(cfg, resolver, seed, given or {})
        notes.update(notes_model)
        if importance:
            extras["importance"] = importance
    elif all(c in table.column_names for c in pkinds):
        predictions = table.select(list(pkinds)).to_pandas()
        notes["predictions"] = "training data's prediction columns"
        label = cfg.labels.column if cfg.labels else None
        perf = None
        if label and label in table.column_names and cfg.performance.enabled:
            perf = _performance(cfg, df, {c: predictions[c].to_numpy() for c in pkinds},
                                table.column(label).to_numpy(zero_copy_only=False), seed)
    else:
        perf = None
    notes["performance"] = "none" if perf is None else perf[0]["source"]
    if perf is not None:
        if "_bias" in perf[0]:
            extras["bias"] = perf[0].pop("_bias")
            notes["bias"] = f"{len(cfg.bias.facets)} facet(s) on {perf[0]['source']}"
        extras["performance"] = perf[0]
        if perf[1] is not None:
            extras["_loss_estimator"] = perf[1]
    if predictions is not None:
        preds = reference_profile(predictions, pkinds, bins=cfg.drift.bins)
        profile.columns.update(preds.columns)
    extras["profile"] = {"kinds": kinds, "prediction_kinds": pkinds if predictions is not None else {},
                         **profile.to_dict()}
    if sample is not None and sample.num_rows >= 100 and cfg.drift.multivariate and kinds:
        extras["multivariate"] = fit_multivariate(sample.to_pandas(), kinds, seed=seed)
        notes["multivariate"] = f"PCA reconstruction fitted on {sample.num_rows} sampled rows"
    return extras, notes


def _model_reference(cfg: ModelConfig, resolver: Resolver | None, seed: int,
                     given: dict) -> tuple[pd.DataFrame, dict | None, dict]:
    from driftline.store.models import load_model, model_input, permutation_importance, predict

    model = given["model"] if "model" in given else load_model(cfg.baseline.model, resolver)
    if "evaluation" in given:
        table, source = given["evaluation"]
    else:
        source = cfg.baseline.evaluation_data or cfg.baseline.training_data
        table = read_table(source, resolver)
    if table.num_rows == 0:
        raise BaselineError(f"{source}: evaluation data has no rows")
    eval_df = frame_for(cfg, table, source)
    x = model_input(cfg, eval_df)
    predictions = pd.DataFrame(predict(cfg, model, x))
    notes = {"predictions": f"model scored on {len(x)} rows of {source}"}
    label = cfg.labels.column if cfg.labels else None
    if label and label in table.column_names:
        y = table.column(label).to_numpy(zero_copy_only=False)
        importance = permutation_importance(cfg, model, x, y, seed=seed)
        notes["importance"] = f"permutation ({importance['scoring']}, {importance['rows']} rows)"
        perf = None
        if cfg.performance.enabled:
            perf = _performance(cfg, eval_df, {c: predictions[c].to_numpy() for c in predictions}, y, seed)
            perf[0]["source"] = f"model scored on {len(x)} labelled rows of {source}"
        return predictions, importance, notes, perf
    notes["importance"] = f"none: {source} has no label column {label!r}"
    return predictions, None, notes, None


def _performance(cfg: ModelConfig, frame: pd.DataFrame, predictions: dict, y: np.ndarray, seed: int):
    from driftline.stages.model_quality import performance_reference

    if cfg.problem_type == "binary_classification":
        from driftline.stages.labels import parse_label

        y = np.array([parse_label(cfg.problem_type, v)[0] for v in y], dtype="float64")
        keep = ~np.isnan(y)
        frame, y = frame[keep], y[keep].astype("int64")
        predictions = {k: v[keep] for k, v in predictions.items()}
    doc, estimator = performance_reference(cfg, frame.reset_index(drop=True), predictions, y, seed)
    doc["source"] = f"{len(y)} labelled rows with the model's predictions"
    if cfg.bias.facets:  # the reference bias drift is measured against, on the same rows
        from driftline.stats.bias import bias_report

        doc["_bias"] = {**bias_report(cfg, frame.reset_index(drop=True), predictions[cfg.prediction.label], y),
                        "source": doc["source"]}
    return doc, estimator


def import_sagemaker_baseline(cfg: ModelConfig, store: Store, statistics_uri: str, constraints_uri: str,
                              resolver: Resolver | None = None) -> dict:
    """Import a SageMaker Model Monitor baseline (statistics.json + constraints.json)."""
    docs = {}
    for what, uri in (("statistics", statistics_uri), ("constraints", constraints_uri)):
        fs, path = (resolver or default_resolver)(uri)
        try:
            with fs.open(path, "rb") as f:
                docs[what] = json.load(f)
        except FileNotFoundError:
            raise BaselineError(f"{uri}: no such file") from None
        except ValueError as exc:
            raise BaselineError(f"{uri}: not valid JSON ({exc})") from None
        except Exception as exc:  # noqa: BLE001
            raise StoreError(f"{uri}: cannot read ({type(exc).__name__}: {exc})") from exc
        if not isinstance(docs[what].get("features"), list):
            raise BaselineError(f"{uri}: not a SageMaker {what} file (no 'features' list)")
    names = {c.get("name") for c in docs["constraints"]["features"] if isinstance(c, dict)}
    missing = [f for f in cfg.feature_names if f not in names]
    if missing:
        raise BaselineError(f"{constraints_uri}: constraints lack declared features {missing}")
    # every setting is checked here, at import, not in the first drift run that reads it
    monitoring = sagemaker_config(docs["constraints"], constraints_uri)
    kinds = profiled_kinds(cfg)
    profile = profile_from_statistics(docs["statistics"], kinds, bins=cfg.drift.bins, source=statistics_uri)
    extras = {"profile": {"kinds": kinds, "prediction_kinds": {}, **profile.to_dict()}}
    out = _write_version(store, cfg, docs["statistics"], docs["constraints"], None,
                         {"origin": "sagemaker_import", "statistics_uri": statistics_uri,
                          "constraints_uri": constraints_uri, "monitoring_config": monitoring,
                          "drift": {"predictions": "none", "importance": "none", "multivariate": "none"}}, extras)
    d = monitoring["distribution"]
    drift = (f"drift {d['numeric_method']} > {d['comparison_threshold']:g} on numbers, {d['categorical_method']} "
             f"{'p < ' if d['categorical_method'] == 'chi_square' else '>= '}{d['categorical_comparison_threshold']:g} "
             f"on categories" if d["perform_comparison"] else "drift off (perform_comparison Disabled)")
    # switches driftline has no counterpart for: said, not silently dropped
    off = [f"{k} Disabled" for k in ("evaluate_constraints", "emit_metrics") if not monitoring[k]]
    out["monitoring_config"] = monitoring
    out["summary"] = (f"imported SageMaker baseline as {cfg.name}/{out['version']} -> {out['uri']}; {drift}"
                      + (f"; not used by driftline: {', '.join(off + monitoring['unused'])}"
                         if off or monitoring["unused"] else ""))
    return out


def sagemaker_config(constraints: dict, source: str) -> dict:
    """A SageMaker constraints.json's ``monitoring_config`` checked and in driftline's terms
    (``driftline.stages.drift.sagemaker_monitoring_config``); a spelling SageMaker does not
    document is a BaselineError naming ``source``, the field, the value and the accepted
    values. Keys driftline does not act on (and non-empty per-feature
    ``monitoringConfigOverrides``) are listed under ``unused``."""
    from driftline.stages.drift import sagemaker_monitoring_config

    try:
        out = sagemaker_monitoring_config(constraints.get("monitoring_config"))
    except ValueError as exc:
        raise BaselineError(f"{source}: {exc}") from None
    out["unused"] += [f"features[{c.get('name')!r}].monitoringConfigOverrides" for c in constraints.get("features", [])
                      if isinstance(c, dict) and c.get("monitoringConfigOverrides")]
    return out


# -- profiles from SageMaker statistics ----------------------------------------------------
#: A KLL sketch rebuilt from SageMaker's compactor levels holds at most this many values.
_REBUILT_SKETCH_VALUES = 200_000


def _weighted_values(body: dict) -> tuple[np.ndarray, np.ndarray]:
    """SageMaker's KLL sketch as values and weights: the item of compactor level i stands for
    2^i values (Deequ's KLL). Without a sketch, the 10 buckets, each spread evenly."""
    kll = body.get("distribution", {}).get("kll", {})
    levels = kll.get("sketch", {}).get("data") or []
    if any(levels):
        values = np.concatenate([np.asarray(lv, dtype="float64") for lv in levels if lv])
        weights = np.concatenate([np.full(len(lv), 2.0 ** i) for i, lv in enumerate(levels) if lv])
        return values, weights
    vals, wts = [], []
    for b in kll.get("buckets", []):
        c = float(b.get("count", 0))
        if c <= 0:
            continue
        k = int(min(c, 50))
        vals.append(np.linspace(float(b["lower_bound"]), float(b["upper_bound"]), k))
        wts.append(np.full(k, c / k))
    return (np.concatenate(vals), np.concatenate(wts)) if vals else (np.empty(0), np.empty(0))


def profile_from_statistics(statistics: dict, kinds: dict[str, str], bins: int = 10, source: str = "statistics.json"):
    """A driftline profile from a SageMaker statistics.json: exact counts and moments, the
    KLL sketch rebuilt from SageMaker's (or from its buckets), category counts from the
    categorical buckets; bin counts from the rebuilt sketch's CDF."""
    from datasketches import kll_doubles_sketch

    from driftline.stages.drift import edges_for
    from driftline.stats.profile import KLL_K, CategoricalProfile, DatasetProfile, NumericProfile

    by_name = {f.get("name"): f for f in statistics.get("features", [])}
    missing = [c for c in kinds if c not in by_name]
    if missing:
        raise BaselineError(f"{source}: statistics lack features {missing}")
    out = DatasetProfile(rows=int(statistics.get("dataset", {}).get("item_count", 0)))
    for name, kind in kinds.items():
        f = by_name[name]
        if kind in ("numeric", "integer"):
            body = f.get("numerical_statistics")
            if body is None:
                raise BaselineError(f"{source}: feature {name!r} is declared {kind} but has no numerical_statistics")
            common = body.get("common", {})
            present, miss = int(common.get("num_present", 0)), int(common.get("num_missing", 0))
            prof = NumericProfile(count=present + miss, missing=miss)
            if present:
                sd = float(body.get("std_dev", 0.0))
                prof.mean, prof.m2 = float(body.get("mean", 0.0)), sd * sd * present
                prof.min, prof.max = float(body.get("min", np.nan)), float(body.get("max", np.nan))
                values, weights = _weighted_values(body)
                if values.size:
                    scale = min(1.0, _REBUILT_SKETCH_VALUES / weights.sum())
                    reps = np.maximum(1, np.round(weights * scale)).astype(np.int64)
                    sketch = kll_doubles_sketch(KLL_K)
                    sketch.update(np.repeat(values, reps))
                    prof.sketch = sketch
                    prof.edges = edges_for(prof, bins)
                    if prof.edges is not None:
                        cdf = np.array(sketch.get_cdf(list(prof.edges[1:-1]), False))
                        shares = np.diff(np.concatenate([[0.0], cdf[:-1], [1.0]]))
                        prof.bin_counts = np.clip(shares, 0, None) * present
            out.columns[name] = prof
        else:
            body = f.get("string_statistics")
            if body is None:
                raise BaselineError(f"{source}: feature {name!r} is declared {kind} but has no string_statistics")
            common = body.get("common", {})
            present, miss = int(common.get("num_present", 0)), int(common.get("num_missing", 0))
            counts = {str(b["value"]): int(b["count"]) for b in body.get("distribution", {}).get("categorical", {})
                      .get("buckets", [])}
            out.columns[name] = CategoricalProfile(count=present + miss, missing=miss, counts=counts)
    return out


def load_profile(cfg: ModelConfig, store: Store, ref: BaselineRef):
    """A baseline version's profile, its features' kinds and its prediction columns' kinds.
    A version made before profiles existed is profiled from its statistics.json, less exactly."""
    from driftline.stats.profile import DatasetProfile

    rel = posixpath.join(ref.prefix, "profile.json")
    kinds = profiled_kinds(cfg)
    if store.exists(rel):
        doc = store.read_json(rel)
        profile, pkinds = DatasetProfile.from_dict(doc), doc.get("prediction_kinds", {})
    else:
        profile = profile_from_statistics(store.read_json(posixpath.join(ref.prefix, "statistics.json")), kinds,
                                          bins=cfg.drift.bins, source=store.uri(ref.prefix, "statistics.json"))
        pkinds = {}
    lacking = [c for c in kinds if c not in profile.columns]
    if lacking:
        raise BaselineError(f"baseline {cfg.name}/{ref.version} has no profile of features {lacking}: "
                            f"build a new baseline (`driftline baseline --model {cfg.name}`)")
    return profile, kinds, pkinds


def load_reference(cfg: ModelConfig, store: Store, ref: BaselineRef):
    """What the drift engine needs of a baseline version (driftline.stages.drift.Reference)."""
    from driftline.stages.drift import Reference, distinct_counts

    manifest = store.read_json(posixpath.join(ref.prefix, "manifest.json"))
    profile, kinds, pkinds = load_profile(cfg, store, ref)
    sample = None
    if store.exists(posixpath.join(ref.prefix, "reference_sample.parquet")):
        sample = store.read_parquet(posixpath.join(ref.prefix, "reference_sample.parquet")).to_pandas()
    importance, source = None, "none"
    configured = {f.name: f.importance for f in cfg.features if f.importance is not None}
    if configured:
        importance, source = configured, "model file"
    elif store.exists(posixpath.join(ref.prefix, "importance.json")):
        importance = store.read_json(posixpath.join(ref.prefix, "importance.json"))["importance"]
        source = "permutation importance (baseline)"
    multivariate = None
    if store.exists(posixpath.join(ref.prefix, "multivariate.json")):
        multivariate = store.read_json(posixpath.join(ref.prefix, "multivariate.json"))
    distribution = None
    if manifest.get("origin") == "sagemaker_import":
        constraints = store.read_json(posixpath.join(ref.prefix, "constraints.json"))
        # a version imported before import checked its settings may hold any spelling: the
        # drift run says which file and value instead of failing deep in the engine
        sagemaker_config(constraints, store.uri(ref.prefix, "constraints.json"))
        distribution = (constraints.get("monitoring_config") or {}).get("distribution_constraints")
    fb = read_feedback(store, ref)
    absorbed = {c: {k: r[k] for k in ("intervals", "rows", "values", "answers", "by", "carried_from") if k in r}
                for c, r in fb.get("reference_columns", {}).items() if c in profile.columns}
    return Reference(profile=profile, kinds=kinds, prediction_kinds=pkinds, sample=sample, importance=importance,
                     importance_source=source, multivariate=multivariate, distribution=distribution,
                     version=ref.version, distinct=distinct_counts(profile),
                     widened=dict(fb.get("threshold_overrides", {})), absorbed=absorbed)


# -- feedback the next baseline absorbs (module docstring, "Feedback") ------------------------
#: A false positive's new threshold: the statistic it was flagged with times this (distances) ...
WIDEN_FACTOR = 1.25
#: ... or the p-value it was flagged with times this (tests: alpha goes below it).
ALPHA_FACTOR = 0.5
#: Fewer present values than this in the intervals marked expected make no reference.
ABSORB_MIN_VALUES = 100
DRIFT_CHECK = "baseline_drift_check"
MISSING_SUFFIX = " (missing share)"


def read_feedback(store: Store, ref: BaselineRef) -> dict:
    """A version's feedback.json ({} when it absorbed none)."""
    rel = posixpath.join(ref.prefix, "feedback.json")
    return store.read_json(rel) if store.exists(rel) else {}


def _answers_since(cfg: ModelConfig, store: Store, ref: BaselineRef) -> tuple[list[dict], str]:
    made = store.read_json(posixpath.join(ref.prefix, "manifest.json"))["created_at"]
    since = datetime.fromisoformat(made)
    # the answers in force: one a person changed since (a false positive taken back) is not absorbed
    return [r for r in in_force(read_answers(store, cfg.name)) if datetime.fromisoformat(r["at"]) >= since], made


def unabsorbed_feedback(cfg: ModelConfig, store: Store) -> int:
    """Answers to drift alerts (other than acknowledgements) given since the baseline in use
    was made: what ``absorb_feedback`` would look at."""
    try:
        ref = resolve_baseline(cfg, store)
    except BaselineError:
        return 0
    answers, _ = _answers_since(cfg, store, ref)
    return sum(r["check"] == DRIFT_CHECK and r["kind"] != "acknowledged" for r in answers)


def _violation(store: Store, model: str, start: datetime, check: str, subject: str) -> dict | None:
    from driftline.stages.alerts import subject_of
    from driftline.store.violations import read_violations

    return next((v for v in read_violations(store, Store.run_prefix(model, start))
                 if v.get("constraint_check_type") == check and subject_of(v) == subject), None)


def answer_intervals(cfg: ModelConfig, store: Store, answer: dict) -> list[tuple[datetime, dict | None]]:
    """The intervals an answer covers, with the violation each recorded (None where the check
    passed): from its incident's opening interval through the latest interval of its window
    ``[incident, until)`` that still recorded the violation; only intervals with a batch."""
    from driftline.stages.labels import interval_starts
    from driftline.store import parse_interval_key

    first = parse_interval_key(answer["incident"])
    until = datetime.fromisoformat(answer["until"]) if answer.get("until") else None
    window = [t for t in interval_starts(store, cfg.name) if t >= first and (until is None or t < until)]
    found = [(t, _violation(store, cfg.name, t, answer["check"], answer["subject"])) for t in window]
    last = max((i for i, (_, v) in enumerate(found) if v), default=-1)
    return found[:last + 1]


def _column_kinds(cfg: ModelConfig) -> dict[str, str]:
    return {**profiled_kinds(cfg), **prediction_kinds(cfg)}


def _widening(cfg: ModelConfig, store: Store, answer: dict, hits: list[tuple[datetime, dict]]) -> dict:
    """A false positive's threshold override, from the incident's hardest-flagged interval (of
    the method that flagged its latest one)."""
    from driftline.store import interval_key

    method = hits[-1][1]["details"]["method"]
    test = method in TEST_METHODS
    flagged = []
    for t, v in hits:
        d = v.get("details") or {}
        if d.get("method") != method:
            continue
        drift_rel = posixpath.join(Store.run_prefix(cfg.name, t), "drift.json")
        drift = store.read_json(drift_rel) if store.exists(drift_rel) else {}
        p = d.get("pvalue")
        if test:  # the verdict compared the Holm-adjusted p-value with alpha
            col = (drift.get("features") or {}).get(v["feature_name"]) or \
                (drift.get("prediction") or {}).get(v["feature_name"]) or {}
            p = col.get("pvalue_adjusted", p)
        flagged.append((t, d, p, drift.get("baseline")))
    t, d, p, baseline = min(flagged, key=lambda r: r[2]) if test else max(flagged, key=lambda r: r[1]["statistic"])
    was = float(d["threshold"])
    if test:  # p x 0.5 underflows to 0 only when p did: then the smallest alpha there is
        new, rule = min(was, max(float(p) * ALPHA_FACTOR, float(np.finfo(float).tiny))), f"p-value x {ALPHA_FACTOR}"
    else:
        new, rule = max(was, float(d["statistic"]) * WIDEN_FACTOR), f"statistic x {WIDEN_FACTOR}"
    return {"method": method, "threshold": new, "was": was, "rule": rule, "answers": [answer["id"]],
            "because": {"feedback": answer["id"], "kind": answer["kind"], "by": answer["by"], "at": answer["at"],
                        "comment": answer.get("comment", ""), "incident_key": answer.get("incident_key"),
                        "interval": interval_key(t), "statistic": d.get("statistic"), "pvalue": p,
                        "baseline": baseline}}


def plan_feedback(cfg: ModelConfig, store: Store) -> dict:
    """What a new baseline absorbs (module docstring, "Feedback"): feedback.json's body, with
    ``summary`` (one line) and ``profiles`` (column -> the profile of its expected intervals)."""
    from driftline.stages.drift import reference_profile
    from driftline.store import interval_key

    try:
        ref = resolve_baseline(cfg, store)
    except BaselineError:
        return {"from_baseline": None, "since": None, "threshold_overrides": {}, "reference_columns": {},
                "absorbed": [], "not_absorbed": [], "carried": [], "profiles": {},
                "summary": "absorbed no feedback: there was no baseline to answer alerts of"}
    answers, since = _answers_since(cfg, store, ref)
    kinds = _column_kinds(cfg)
    declared = {f.name: f.drift for f in cfg.features}
    overrides: dict[str, dict] = {}
    expected: dict[str, dict] = {}  # column -> its intervals and the answers behind them
    absorbed: list[dict] = []
    skipped: list[dict] = []

    def skip(a: dict, why: str) -> None:
        skipped.append({"feedback": a["id"], "kind": a["kind"], "check": a["check"], "subject": a["subject"],
                        "by": a["by"], "why": why})

    for a in answers:
        if a["check"] != DRIFT_CHECK:
            skip(a, f"only answers to drift checks ({DRIFT_CHECK}) are absorbed")
            continue
        if a["kind"] == "acknowledged":
            skip(a, "acknowledged: changes nothing")
            continue
        missing = a["subject"].endswith(MISSING_SUFFIX)
        column = a["subject"][:-len(MISSING_SUFFIX)] if missing else a["subject"]
        if column not in kinds:
            skip(a, f"{column!r} is not a profiled feature or prediction column of {cfg.name}")
            continue
        covered = answer_intervals(cfg, store, a)
        hits = [(t, v) for t, v in covered if v]
        if not hits:
            skip(a, "no interval of its window recorded the violation")
            continue
        entry = {"feedback": a["id"], "kind": a["kind"], "by": a["by"], "at": a["at"],
                 "comment": a.get("comment", ""), "incident_key": a.get("incident_key"), "column": column,
                 "intervals": [interval_key(t) for t, _ in covered]}
        if a["kind"] == "expected":
            e = expected.setdefault(column, {"intervals": set(), "answers": [], "by": [], "entries": []})
            e["intervals"].update(t for t, _ in covered)
            e["answers"].append(a["id"])
            if a["by"] not in e["by"]:
                e["by"].append(a["by"])
            e["entries"].append(entry)
            continue
        own = declared.get(column)
        if missing:
            skip(a, "missing-share thresholds are model-wide (drift.missing_share, drift.alpha)")
            continue
        if own is not None and (own.method != "auto" or own.threshold is not None):
            skip(a, f"the model file sets {column}'s drift method/threshold (features[].drift), which wins: "
                    f"change it there")
            continue
        w = _widening(cfg, store, a, hits)
        prev = overrides.get(column)
        if prev and prev["method"] == w["method"]:  # answered twice: the more lenient threshold
            lenient = min if w["method"] in TEST_METHODS else max
            w = {**lenient(prev, w, key=lambda o: o["threshold"]), "answers": prev["answers"] + w["answers"]}
        overrides[column] = w
        absorbed.append({**entry, "threshold": {k: w[k] for k in ("method", "threshold", "was", "rule")}})
    columns, profiles = {}, {}
    for column, e in expected.items():
        starts = sorted(e["intervals"])
        data = pa.concat_tables([store.read_parquet(posixpath.join(Store.run_prefix(cfg.name, t), "batch.parquet"),
                                                    columns=[column]) for t in starts])
        prof = reference_profile(data, {column: kinds[column]}, bins=cfg.drift.bins).columns[column]
        present = prof.count - prof.missing
        if present < ABSORB_MIN_VALUES:
            for en in e["entries"]:
                skipped.append({"feedback": en["feedback"], "kind": "expected", "check": DRIFT_CHECK,
                                "subject": column, "by": en["by"],
                                "why": f"{present} present values in its intervals; a reference needs at least "
                                       f"{ABSORB_MIN_VALUES}"})
            continue
        profiles[column] = prof
        columns[column] = {"intervals": [interval_key(t) for t in starts], "rows": data.num_rows, "values": present,
                           "answers": e["answers"], "by": e["by"]}
        absorbed += [{**en, "rows": data.num_rows} for en in e["entries"]]
    carried = _carry(store, ref, overrides, columns, profiles)
    plan = {"from_baseline": ref.version, "since": since, "threshold_overrides": overrides,
            "reference_columns": columns, "absorbed": absorbed, "not_absorbed": skipped, "carried": carried,
            "profiles": profiles}
    plan["summary"] = _feedback_summary(plan, ref.version)
    return plan


def _carry(store: Store, ref: BaselineRef, overrides: dict, columns: dict, profiles: dict) -> list[str]:
    """Take over what the baseline in use absorbed, where no newer answer replaced it."""
    from driftline.stats.profile import DatasetProfile

    before = read_feedback(store, ref)
    carried = []
    for column, o in before.get("threshold_overrides", {}).items():
        # a column rebased by a newer answer drops its old widening: that was against the old reference
        if column not in overrides and column not in columns:
            overrides[column] = {**o, "carried_from": o.get("carried_from", ref.version)}
            carried.append(f"{column} threshold")
    old = {c: r for c, r in before.get("reference_columns", {}).items() if c not in columns}
    if old:
        prof = DatasetProfile.from_dict(store.read_json(posixpath.join(ref.prefix, "profile.json")))
        for column, r in old.items():
            if column in prof.columns:
                columns[column] = {**r, "carried_from": r.get("carried_from", ref.version)}
                profiles[column] = prof.columns[column]
                carried.append(f"{column} reference")
    return carried


def _feedback_summary(plan: dict, version: str) -> str:
    """'absorbed 2 answers: expected on monthly_charges (+3 intervals, 15,000 rows); false
    positive on tenure_months (wasserstein threshold 0.1 -> 0.19)', then what was carried
    over and what was not absorbed, and why."""
    parts = []
    for column, r in plan["reference_columns"].items():
        if "carried_from" not in r:
            n = len(r["intervals"])
            parts.append(f"expected on {column} (+{n} interval{'s' if n != 1 else ''}, {r['rows']:,} rows)")
    for column, o in plan["threshold_overrides"].items():
        if "carried_from" not in o:
            what = "alpha" if o["method"] in TEST_METHODS else "threshold"
            parts.append(f"false positive on {column} ({o['method']} {what} {o['was']:.3g} -> {o['threshold']:.3g})")
    n = len(plan["absorbed"])
    line = (f"absorbed {n} answer{'s' if n != 1 else ''}: " + "; ".join(parts) if parts
            else f"absorbed no feedback: no answer to a drift alert since {version} was made ({plan['since']})")
    if plan["carried"]:
        line += f"; carried from {version}: {', '.join(plan['carried'])}"
    if plan["not_absorbed"]:
        line += "; not absorbed: " + "; ".join(f"{r['kind']} on {r['check']} {r['subject']} ({r['why']})"
                                               for r in plan["not_absorbed"])
    return line


def _apply_feedback(plan: dict, extras: dict) -> dict:
    """Write the plan into the new version's extras (profile.json's columns, feedback.json);
    returns the manifest's brief of it."""
    columns = extras["profile"]["columns"]
    for column, prof in plan["profiles"].items():
        if column in columns:
            columns[column] = prof.to_dict()
            continue
        # a prediction column, and the new baseline profiles no predictions (no model to score)
        plan["reference_columns"].pop(column, None)
        plan["not_absorbed"] += [{"feedback": a["feedback"], "kind": a["kind"], "check": DRIFT_CHECK,
                                  "subject": column, "by": a["by"], "why": "the baseline profiles no predictions"}
                                 for a in plan["absorbed"] if a["column"] == column and a["kind"] == "expected"]
        plan["absorbed"] = [a for a in plan["absorbed"] if not (a["column"] == column and a["kind"] == "expected")]
        plan["summary"] = _feedback_summary(plan, plan["from_baseline"])
    doc = {k: plan[k] for k in ("from_baseline", "since", "threshold_overrides", "reference_columns", "absorbed",
                                "not_absorbed", "carried", "summary")}
    if any(doc[k] for k in ("threshold_overrides", "reference_columns", "absorbed", "not_absorbed")):
        extras["feedback"] = doc
    return {"from_baseline": plan["from_baseline"], "since": plan["since"],
            "answers": [a["feedback"] for a in plan["absorbed"]],
            "reference_columns": {c: {"intervals": r["intervals"], "rows": r["rows"]}
                                  for c, r in doc["reference_columns"].items()},
            "threshold_overrides": {c: {k: o[k] for k in ("method", "threshold", "was")}
                                    for c, o in doc["threshold_overrides"].items()},
            "not_absorbed": len(plan["not_absorbed"])}
