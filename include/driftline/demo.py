"""The demo scenario: a week of a telecom churn classifier's traffic, with known problems.

``generate_demo(root_url)`` writes everything the ``churn`` model
(``include/monitors/churn.yaml``) needs, under one root URL (``file://...`` or
``s3://bucket/prefix``), and returns a manifest of what it planted, so a test can check
the monitoring pipeline against the truth. Everything is drawn from numpy Generators
seeded from ``seed``: the same arguments give byte-identical capture and label files.

The customers
    Eleven features, in the order the model file declares them: ``tenure_months``
    (integer 0-72, many new and many long-standing customers), ``monthly_charges`` (USD,
    about 18-120, set mostly by the internet service), ``total_charges`` (about tenure x
    monthly charges; missing for ~1% of rows, new accounts whose first bill is not out),
    ``support_calls`` (Poisson, more for fiber, "7 or more" reported as 7), ``age``
    (18-90), ``data_usage_gb`` (lognormal), ``contract`` (month-to-month / one-year / two-year, longer contracts for
    longer tenure), ``payment_method``, ``internet_service`` (dsl / fiber / none),
    ``region`` (north / south / east / west) and ``paperless_billing`` (boolean).
    The true churn probability is a logistic function of them: month-to-month contracts,
    fiber, support calls, high charges, short tenure, electronic checks and paperless
    billing raise it; about a quarter of customers churn.

What is written (paths relative to the root)
    ``training/churn_train.parquet`` (``training_rows`` rows, features + ``churned``) and
    ``training/churn_holdout.parquet`` (5,000 rows, same distribution).
    ``model/model.joblib``: a scikit-learn Pipeline (median imputation of numbers,
    one-hot encoding of categories and booleans that ignores unknown values, then a
    HistGradientBoostingClassifier) fitted on the training file; ``model/model_card.json``
    with its holdout accuracy and ROC AUC.
    ``capture/churn-endpoint/AllTraffic/YYYY/MM/DD/HH/capture-YYYYMMDDTHH-<i>.jsonl``:
    SageMaker Model Monitor data-capture JSONL (CSV payloads, one or two files per hour,
    traffic following a daily cycle around ``rows_per_hour``). The endpoint output is the
    trained model's churn probability for the row it received.
    ``ground-truth/churn-endpoint/YYYY/MM/DD/HH/labels-YYYYMMDDTHH.jsonl``: SageMaker
    ground-truth JSONL, partitioned by the hour the label *arrives*: inference time +
    ``label_delay`` + up to 12 h. About 4% of inferences never get a label.
    ``manifest.json``: the planted truth (see below); also returned.

What happens during the week (defaults: 7 days from 2026-10-01)
    Days before ``drift_day`` (day index 3, 2026-10-04) are drawn from exactly the
    training distribution. From ``drift_day`` on: a price increase (``monthly_charges``
    x1.18), a shift of about 20 points toward month-to-month ``contract``s and heavier
    mobile data use (``data_usage_gb`` x1.4) -- covariate drift -- and a competitor's
    fiber offer: about 70% of fiber customers now churn (43% before), almost whatever
    their tenure or contract -- concept drift, so the model's real accuracy (~0.80 ->
    ~0.71) and ROC AUC (~0.84 -> ~0.79) fall. ``total_charges`` (billed to date, at the
    old prices) does not drift. The price increase lifts ~1.5% of bills above the
    training maximum (120 USD) by more than a tenth of the training range, so a range
    check on ``monthly_charges`` may fire from the drift day on as well.
    Day index 5 (2026-10-06), 09:00-12:59 UTC: a data-quality incident upstream of the
    endpoint: ``age`` is empty in ~60% of the rows (completeness_check), ``region`` takes
    the new value ``central`` in ~30% (categorical_values_check) and ``support_calls`` is
    the text ``n/a`` in ~25% (data_type_check).
    Malformed capture lines: on day index 1 a truncated JSON line, a CSV payload with 10
    fields instead of 11 and a line that is not JSON at all; on day index 5 a record whose
    endpoint output is not a number and a record without ``captureData``. Their
    inferences never get a label. No other day has malformed lines.

The manifest records the start, the daily interval starts, the drift day and drifted
features, the incident (date, hours, features, expected checks, affected row counts),
each malformed line (file URI, 1-based line number, kind), per-day counts of captured
records, valid records and labels, keyed by date (labels of that day's inferences;
``labels.arrivals_per_day`` counts them by arrival day), the seed, the label delay and
the model's holdout metrics. A part that falls outside a shorter scenario (``days`` <= 5, ``drift_day`` >= ``days``)
is left out and recorded as null/empty.

Generation writes only through :class:`driftline.store.Store` (atomic writes through the
given fsspec resolver), so it works the same on local folders and object stores. It
replaces what an earlier run wrote under ``capture/churn-endpoint`` and
``ground-truth/churn-endpoint``; nothing else under the root is touched.
"""
from __future__ import annotations

import io
import posixpath
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from driftline.store import Resolver, Store

MODEL_NAME = "churn"
ENDPOINT = "churn-endpoint"
CAPTURE_PREFIX = f"capture/{ENDPOINT}/AllTraffic"
LABELS_PREFIX = f"ground-truth/{ENDPOINT}"
TRAIN_PATH = "training/churn_train.parquet"
HOLDOUT_PATH = "training/churn_holdout.parquet"
MODEL_PATH = "model/model.joblib"
MODEL_CARD_PATH = "model/model_card.json"
MANIFEST_PATH = "manifest.json"
HOLDOUT_ROWS = 5000

#: The model's features in the order of include/monitors/churn.yaml (= CSV payload order).
FEATURES = [
    "tenure_months", "monthly_charges", "total_charges", "support_calls", "age",
    "data_usage_gb", "contract", "payment_method", "internet_service", "region",
    "paperless_billing",
]
FEATURE_TYPES = {
    "tenure_months": "integer", "monthly_charges": "numeric", "total_charges": "numeric",
    "support_calls": "integer", "age": "integer", "data_usage_gb": "numeric",
    "contract": "categorical", "payment_method": "categorical", "internet_service": "categorical",
    "region": "categorical", "paperless_billing": "boolean",
}
NUMERIC = ["tenure_months", "monthly_charges", "total_charges", "support_calls", "age", "data_usage_gb"]
CATEGORICAL = ["contract", "payment_method", "internet_service", "region", "paperless_billing"]
LABEL = "churned"

CONTRACTS = ["month-to-month", "one-year", "two-year"]
PAYMENT_METHODS = ["electronic-check", "mailed-check", "bank-transfer", "credit-card"]
PAYMENT_P = [0.34, 0.23, 0.22, 0.21]
INTERNET = ["dsl", "fiber", "none"]
INTERNET_P = [0.35, 0.44, 0.21]
REGIONS = ["north", "south", "east", "west"]
REGION_P = [0.28, 0.27, 0.25, 0.20]

# Drift (from drift_day on).
PRICE_INCREASE = 1.18
CONTRACT_SHIFT_PP = 0.20
DATA_USAGE_SCALE = 1.4
#: Concept drift: a competitor's fiber offer. A fiber customer's churn logit becomes
#: FIBER_CONCEPT_LOGIT + FIBER_CONCEPT_WEIGHT * (usual logit): ~70% of fiber customers churn
#: instead of ~43%, almost whatever their tenure or contract, so both the model's accuracy
#: and its ranking (AUC) degrade.
FIBER_CONCEPT_LOGIT = 0.8
FIBER_CONCEPT_WEIGHT = 0.2

# Data-quality incident.
INCIDENT_DAY = 5
INCIDENT_HOURS = [9, 10, 11, 12]
INCIDENT_PROBLEMS = [
    {"feature": "age", "check": "completeness_check", "kind": "missing", "value": "", "share": 0.60},
    {"feature": "region", "check": "categorical_values_check", "kind": "new_category", "value": "central",
     "share": 0.30},
    {"feature": "support_calls", "check": "data_type_check", "kind": "wrong_type", "value": "n/a", "share": 0.25},
]

# Labels.
LABEL_JITTER = timedelta(hours=12)
LABEL_MISSING_SHARE = 0.04

# Malformed lines: day index -> kinds.
MALFORMED = {
    1: ["truncated_json", "wrong_field_count", "not_json"],
    5: ["output_not_a_number", "missing_capture_data"],
}

# Stream ids for the seeded generators (one independent stream per part of the scenario).
_S_TRAIN, _S_HOLDOUT, _S_DAY = 1, 2, 100


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream])


# ---------------------------------------------------------------------------------------
# The population
# ---------------------------------------------------------------------------------------
def _sample_customers(rng: np.random.Generator, n: int, drifted: bool = False) -> pd.DataFrame:
    """n customers with clean features, plus the true churn probability ``p_true``."""
    tenure = np.minimum(np.floor(73 * rng.beta(0.7, 0.8, n)), 72).astype(np.int64)
    t = tenure / 72.0

    internet = np.asarray(INTERNET, dtype=object)[rng.choice(3, n, p=INTERNET_P)]
    fiber = internet == "fiber"
    no_net = internet == "none"

    # Contract: longer-standing customers are on longer contracts.
    p_mtm = 0.80 - 0.55 * t
    p_two = 0.05 + 0.45 * t
    u = rng.random(n)
    contract_idx = np.where(u < p_mtm, 0, np.where(u < p_mtm + p_two, 2, 1))
    switch = rng.random(n)
    if drifted:
        # Move customers off longer contracts so the month-to-month share rises by about
        # CONTRACT_SHIFT_PP (the training share is ~0.54).
        contract_idx = np.where((contract_idx != 0) & (switch < CONTRACT_SHIFT_PP / 0.46), 0, contract_idx)
    contract = np.asarray(CONTRACTS, dtype=object)[contract_idx]

    # Plans: no internet ~18-28 USD, DSL ~58, fiber ~88, plus add-ons for internet plans.
    addons = rng.normal(0.0, 4.0, n)
    monthly = np.where(no_net, rng.uniform(18.0, 28.0, n),
                       np.where(fiber, rng.normal(88.0, 12.0, n), rng.normal(58.0, 9.0, n)) + addons)
    monthly = np.clip(monthly, 18.0, 120.0)
    # Billed to date: mostly at the old prices, so total_charges does not drift.
    total = np.round(np.maximum(tenure, 0.5) * np.round(monthly, 2) * rng.normal(1.0, 0.04, n), 2)
    if drifted:
        monthly = monthly * PRICE_INCREASE
    monthly = np.round(monthly, 2)

    total = np.where((tenure == 0) & (rng.random(n) < 0.25), np.nan, total)

    age = (18 + np.floor(73 * rng.beta(2.2, 3.5, n))).astype(np.int64)
    age = np.minimum(age, 90)

    # The CRM reports "7 or more" as 7, so live traffic never exceeds the training maximum.
    support = np.minimum(rng.poisson(0.9 + 0.7 * fiber + 0.01 * (age - 45).clip(-20, 40), n), 7).astype(np.int64)

    usage = rng.lognormal(np.log(7.5) - 0.012 * (age - 45), 0.75, n)
    if drifted:
        usage = usage * DATA_USAGE_SCALE
    usage = np.round(usage, 2)

    payment = np.asarray(PAYMENT_METHODS, dtype=object)[rng.choice(4, n, p=PAYMENT_P)]
    region = np.asarray(REGIONS, dtype=object)[rng.choice(4, n, p=REGION_P)]
    paperless = rng.random(n) < np.where(no_net, 0.35, 0.65)

    logit = (
        -2.05
        + 1.5 * (contract_idx == 0) + 0.5 * (contract_idx == 1)
        + 0.75 * fiber - 0.6 * no_net
        + 0.38 * support
        + 0.015 * (monthly - 70.0)
        - 0.035 * tenure
        + 0.4 * (payment == "electronic-check")
        + 0.2 * paperless
        - 0.008 * (age - 45)
    )
    if drifted:
        logit = np.where(fiber, FIBER_CONCEPT_LOGIT + FIBER_CONCEPT_WEIGHT * logit, logit)
    p_true = 1.0 / (1.0 + np.exp(-logit))

    return pd.DataFrame({
        "tenure_months": tenure,
        "monthly_charges": monthly,
        "total_charges": total,
        "support_calls": support,
        "age": age,
        "data_usage_gb": usage,
        "contract": contract,
        "payment_method": payment,
        "internet_service": internet,
        "region": region,
        "paperless_billing": paperless,
        "p_true": p_true,
    })


def _labelled(rng: np.random.Generator, n: int) -> pd.DataFrame:
    df = _sample_customers(rng, n)
    df[LABEL] = (rng.random(n) < df.pop("p_true").to_numpy()).astype(np.int64)
    return df


def _to_arrow(df: pd.DataFrame) -> pa.Table:
    types = {"integer": pa.int64(), "numeric": pa.float64(), "categorical": pa.string(), "boolean": pa.bool_()}
    schema = pa.schema([pa.field(f, types[FEATURE_TYPES[f]]) for f in FEATURES] + [pa.field(LABEL, pa.int64())])
    return pa.Table.from_arrays([pa.array(df[c].to_numpy(), type=schema.field(c).type) for c in schema.names],
                                schema=schema)


def _build_model(seed: int):
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    pre = ColumnTransformer([
        ("num", SimpleImputer(strategy="median"), NUMERIC),
        ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
    ], sparse_threshold=0.0)
    clf = HistGradientBoostingClassifier(max_iter=150, learning_rate=0.06, max_leaf_nodes=15,
                                         l2_regularization=1.0, early_stopping=False,
                                         random_state=seed)
    return Pipeline([("preprocess", pre), ("classifier", clf)])


def _model_input(df: pd.DataFrame) -> pd.DataFrame:
    """The frame the model sees: numbers as floats (text such as 'n/a' becomes missing)."""
    x = df[FEATURES].copy()
    for c in NUMERIC:
        x[c] = pd.to_numeric(x[c], errors="coerce").astype(float)
    for c in CATEGORICAL[:-1]:
        x[c] = x[c].astype(object)
    x["paperless_billing"] = x["paperless_billing"].astype(bool)
    return x


# ---------------------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------------------
def _fmt_float(values: np.ndarray, decimals: int) -> pd.Series:
    s = pd.Series(np.char.mod(f"%.{decimals}f", np.nan_to_num(values, nan=0.0)), dtype=object)
    s[np.isnan(values)] = ""
    return s


def _fmt_int(values: np.ndarray) -> pd.Series:
    """Integers; NaN -> empty field."""
    values = np.asarray(values, dtype=float)
    s = pd.Series(np.char.mod("%d", np.nan_to_num(values, nan=0.0).astype(np.int64)), dtype=object)
    s[np.isnan(values)] = ""
    return s


def _csv_payloads(df: pd.DataFrame) -> pd.Series:
    """One CSV row per record, features in FEATURES order; text overrides already applied."""
    cols = {
        "tenure_months": _fmt_int(df["tenure_months"].to_numpy()),
        "monthly_charges": _fmt_float(df["monthly_charges"].to_numpy(float), 2),
        "total_charges": _fmt_float(df["total_charges"].to_numpy(float), 2),
        "support_calls": df["support_calls_text"].astype(object).reset_index(drop=True),
        "age": _fmt_int(df["age"].to_numpy(float)),
        "data_usage_gb": _fmt_float(df["data_usage_gb"].to_numpy(float), 2),
        "contract": df["contract"].astype(object).reset_index(drop=True),
        "payment_method": df["payment_method"].astype(object).reset_index(drop=True),
        "internet_service": df["internet_service"].astype(object).reset_index(drop=True),
        "region": df["region"].astype(object).reset_index(drop=True),
        "paperless_billing": pd.Series(np.where(df["paperless_billing"].to_numpy(bool), "1", "0"), dtype=object),
    }
    out = cols[FEATURES[0]]
    for name in FEATURES[1:]:
        out = out + "," + cols[name]
    return out


def _event_ids(rng: np.random.Generator, n: int) -> list[str]:
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    out = []
    for row in raw:
        h = row.tobytes().hex()
        out.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
    return out


def _capture_line(payload: str, output: str, event_id: str, when: str) -> str:
    return ('{"captureData":{"endpointInput":{"observedContentType":"text/csv","mode":"INPUT",'
            f'"data":"{payload}","encoding":"CSV"}},"endpointOutput":{{"observedContentType":'
            f'"text/csv; charset=utf-8","mode":"OUTPUT","data":"{output}","encoding":"CSV"}}}},'
            f'"eventMetadata":{{"eventId":"{event_id}","inferenceTime":"{when}"}},"eventVersion":"0"}}')


def _capture_lines(payload: pd.Series, output: pd.Series, event_id: pd.Series, when: pd.Series) -> pd.Series:
    return ('{"captureData":{"endpointInput":{"observedContentType":"text/csv","mode":"INPUT","data":"'
            + payload + '","encoding":"CSV"},"endpointOutput":{"observedContentType":'
            '"text/csv; charset=utf-8","mode":"OUTPUT","data":"' + output
            + '","encoding":"CSV"}},"eventMetadata":{"eventId":"' + event_id
            + '","inferenceTime":"' + when + '"},"eventVersion":"0"}')


def _label_lines(label: pd.Series, event_id: pd.Series) -> pd.Series:
    return ('{"groundTruthData":{"data":"' + label + '","encoding":"CSV"},"eventMetadata":{"eventId":"'
            + event_id + '"},"eventVersion":"0"}')


def _iso(ts: datetime) -> str:
    return ts.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _hour_counts(rng: np.random.Generator, rows_per_hour: int, weekday: int) -> np.ndarray:
    """Records per hour of one day: a daily cycle (quiet ~07 UTC, busy ~19 UTC), a little
    less traffic at weekends, a little noise; never zero."""
    hours = np.arange(24)
    cycle = 1.0 + 0.4 * np.cos(2 * np.pi * (hours - 19) / 24)
    week = 0.9 if weekday >= 5 else 1.0
    noise = rng.normal(1.0, 0.05, 24)
    return np.maximum(1, np.round(rows_per_hour * cycle * week * noise)).astype(np.int64)


# ---------------------------------------------------------------------------------------
# The scenario
# ---------------------------------------------------------------------------------------
def _malform(kind: str, line: str, payload: str, output: str, event_id: str, when: str) -> str:
    if kind == "truncated_json":
        return line[: int(len(line) * 0.6)]
    if kind == "wrong_field_count":
        fields = payload.split(",")
        return _capture_line(",".join(fields[:9] + fields[10:]), output, event_id, when)
    if kind == "not_json":
        return f"{when} ERROR capture buffer overflow on {ENDPOINT}/AllTraffic, record dropped"
    if kind == "output_not_a_number":
        return _capture_line(payload, "ERROR: model container timed out", event_id, when)
    if kind == "missing_capture_data":
        return f'{{"eventMetadata":{{"eventId":"{event_id}","inferenceTime":"{when}"}},"eventVersion":"0"}}'
    raise ValueError(kind)


def generate_demo(root_url: str, *, days: int = 7,
                  start: datetime = datetime(2026, 10, 1, tzinfo=timezone.utc),
                  rows_per_hour: int = 120, seed: int = 7,
                  label_delay: timedelta = timedelta(days=2), drift_day: int = 3,
                  training_rows: int = 20000, resolver: Resolver | None = None) -> dict:
    """Write the demo scenario under root_url and return its manifest (also written as
    ``manifest.json``). See the module docstring for what is planted where.

    ``start`` must be a midnight (UTC; a naive datetime is taken as UTC): the scenario is
    laid out in days of 24 capture hours, matching the model's daily schedule.
    """
    if start.tzinfo is None:
        start = start.replace(tzinfo=timezone.utc)
    start = start.astimezone(timezone.utc)
    if (start.hour, start.minute, start.second, start.microsecond) != (0, 0, 0, 0):
        raise ValueError(f"start must be a midnight UTC, got {start.isoformat()}")
    if days < 1:
        raise ValueError("days must be at least 1")
    if rows_per_hour < 1:
        raise ValueError("rows_per_hour must be at least 1")
    if training_rows < 100:
        raise ValueError("training_rows must be at least 100")
    if drift_day < 0:
        raise ValueError("drift_day must be >= 0 (a day index; >= days means no drift)")

    from threadpoolctl import threadpool_limits

    # One OpenMP thread for the gradient boosting: the data are small, and a busy worker
    # (several Airflow tasks on one machine) makes a spinning thread pool many times slower.
    with threadpool_limits(limits=1, user_api="openmp"):
        return _write_scenario(root_url, days=days, start=start, rows_per_hour=rows_per_hour, seed=seed,
                               label_delay=label_delay, drift_day=drift_day,
                               training_rows=training_rows, resolver=resolver)


def _write_scenario(root_url: str, *, days: int, start: datetime, rows_per_hour: int, seed: int,
                    label_delay: timedelta, drift_day: int, training_rows: int,
                    resolver: Resolver | None) -> dict:
    import joblib
    import sklearn
    from sklearn.metrics import accuracy_score, roc_auc_score

    store = Store(root_url, resolver)

    # -- training data and model -----------------------------------------------------
    train = _labelled(_rng(seed, _S_TRAIN), training_rows)
    holdout = _labelled(_rng(seed, _S_HOLDOUT), HOLDOUT_ROWS)
    store.write_parquet(TRAIN_PATH, _to_arrow(train))
    store.write_parquet(HOLDOUT_PATH, _to_arrow(holdout))

    model = _build_model(seed)
    model.fit(_model_input(train), train[LABEL].to_numpy())
    p_hold = model.predict_proba(_model_input(holdout))[:, 1]
    metrics = {
        "holdout_rows": HOLDOUT_ROWS,
        "holdout_accuracy": round(float(accuracy_score(holdout[LABEL], p_hold >= 0.5)), 6),
        "holdout_roc_auc": round(float(roc_auc_score(holdout[LABEL], p_hold)), 6),
        "holdout_churn_rate": round(float(holdout[LABEL].mean()), 6),
        "training_churn_rate": round(float(train[LABEL].mean()), 6),
    }
    buf = io.BytesIO()
    joblib.dump(model, buf)
    store.write_bytes(MODEL_PATH, buf.getvalue())
    store.write_json(MODEL_CARD_PATH, {
        "model": MODEL_NAME,
        "description": "Telecom customer churn classifier (driftline demo)",
        "framework": "scikit-learn",
        "sklearn_version": sklearn.__version__,
        "estimator": "Pipeline(ColumnTransformer(SimpleImputer(median) | OneHotEncoder(ignore)), "
                     "HistGradientBoostingClassifier)",
        "features": [{"name": f, "type": FEATURE_TYPES[f]} for f in FEATURES],
        "target": LABEL,
        "output": "probability of churn (CSV, one field)",
        "threshold": 0.5,
        "training_data": store.uri(TRAIN_PATH),
        "training_rows": training_rows,
        "holdout_data": store.uri(HOLDOUT_PATH),
        "metrics": metrics,
        "seed": seed,
        "trained_for": start.date().isoformat(),
    })

    # -- traffic -----------------------------------------------------------------------
    store.delete(CAPTURE_PREFIX)
    store.delete(LABELS_PREFIX)

    charges_max = float(train["monthly_charges"].max())
    label_rows: list[pd.DataFrame] = []
    malformed_manifest: list[dict] = []
    per_day: dict[str, dict] = {}
    incident: dict[str, Any] | None = None

    for d in range(days):
        day_start = start + timedelta(days=d)
        rng = _rng(seed, _S_DAY + d)
        drifted = d >= drift_day
        counts = _hour_counts(rng, rows_per_hour, day_start.weekday())
        n = int(counts.sum())
        hour_of_row = np.repeat(np.arange(24), counts)
        offsets = np.concatenate([np.sort(rng.integers(0, 3600, c)) for c in counts])
        secs = hour_of_row * 3600 + offsets
        times = pd.to_datetime(day_start) + pd.to_timedelta(secs, unit="s")

        df = _sample_customers(rng, n, drifted=drifted)
        df["support_calls_text"] = pd.Series(df["support_calls"].astype(str).to_numpy(), dtype=object)
        df["age"] = df["age"].astype(float)
        df["region"] = df["region"].astype(object)
        y_true = (rng.random(n) < df["p_true"].to_numpy()).astype(np.int64)
        event_ids = _event_ids(rng, n)
        has_label = rng.random(n) >= LABEL_MISSING_SHARE
        jitter = rng.uniform(0, LABEL_JITTER.total_seconds(), n)

        # Data-quality incident: exact shares of the incident hours' rows.
        if d == INCIDENT_DAY:
            rows = np.flatnonzero(np.isin(hour_of_row, INCIDENT_HOURS))
            affected = {}
            for prob in INCIDENT_PROBLEMS:
                k = int(round(prob["share"] * len(rows)))
                pick = np.sort(rng.choice(rows, size=k, replace=False))
                col = prob["feature"]
                if col == "age":
                    df.loc[pick, "age"] = np.nan
                elif col == "region":
                    df.loc[pick, "region"] = prob["value"]
                else:
                    df.loc[pick, "support_calls_text"] = prob["value"]
                affected[col] = k
            incident = {
                "day_index": d,
                "date": day_start.date().isoformat(),
                "hours": list(INCIDENT_HOURS),
                "start": _iso(day_start + timedelta(hours=INCIDENT_HOURS[0])),
                "end": _iso(day_start + timedelta(hours=INCIDENT_HOURS[-1] + 1)),
                "rows": int(len(rows)),
                "problems": [{**p, "rows": affected[p["feature"]]} for p in INCIDENT_PROBLEMS],
                "features": [p["feature"] for p in INCIDENT_PROBLEMS],
                "checks": {p["feature"]: p["check"] for p in INCIDENT_PROBLEMS},
                "expected_violations": [{"check": p["check"], "feature": p["feature"]} for p in INCIDENT_PROBLEMS],
            }

        # What the endpoint received is what it scored.
        x = df[FEATURES].copy()
        x["support_calls"] = pd.to_numeric(df["support_calls_text"], errors="coerce")
        proba = model.predict_proba(_model_input(x))[:, 1]

        payload = _csv_payloads(df)
        output = pd.Series(np.char.mod("%.6f", proba), dtype=object)
        when = pd.Series(times.strftime("%Y-%m-%dT%H:%M:%SZ"), dtype=object)
        ids = pd.Series(event_ids, dtype=object)
        lines = _capture_lines(payload, output, ids, when).tolist()

        # Files: one per hour, two in busy hours.
        file_of_row = np.empty(n, dtype=object)
        line_of_row = np.empty(n, dtype=np.int64)
        bounds = np.concatenate([[0], np.cumsum(counts)])
        hour_files: list[tuple[str, int, int]] = []
        for h in range(24):
            a, b = int(bounds[h]), int(bounds[h + 1])
            hs = day_start + timedelta(hours=h)
            folder = posixpath.join(CAPTURE_PREFIX, hs.strftime("%Y/%m/%d/%H"))
            splits = [a, (a + b) // 2, b] if counts[h] > rows_per_hour and b - a >= 2 else [a, b]
            for i in range(len(splits) - 1):
                rel = posixpath.join(folder, f"capture-{hs.strftime('%Y%m%dT%H')}-{i}.jsonl")
                lo, hi = splits[i], splits[i + 1]
                file_of_row[lo:hi] = rel
                line_of_row[lo:hi] = np.arange(1, hi - lo + 1)
                hour_files.append((rel, lo, hi))

        # Malformed lines, at distinct random hours (outside the incident hours).
        bad = np.zeros(n, dtype=bool)
        kinds = MALFORMED.get(d, [])
        if kinds:
            allowed = [h for h in range(24) if not (d == INCIDENT_DAY and h in INCIDENT_HOURS)]
            hours = rng.choice(allowed, size=len(kinds), replace=False)
            for kind, h in zip(kinds, hours):
                idx = int(bounds[h] + rng.integers(0, counts[h]))
                lines[idx] = _malform(kind, lines[idx], payload[idx], output[idx], ids[idx], when[idx])
                bad[idx] = True
                malformed_manifest.append({
                    "day_index": d,
                    "day": day_start.date().isoformat(),
                    "file": store.uri(file_of_row[idx]),
                    "path": file_of_row[idx],
                    "line": int(line_of_row[idx]),
                    "kind": kind,
                    "event_id": ids[idx],
                    "inference_time": when[idx],
                })

        for rel, lo, hi in hour_files:
            text = "\n".join(lines[lo:hi]) + "\n"
            store.write_text(rel, text)

        # Labels: drawn from the (possibly concept-drifted) truth; none for malformed records.
        labelled = has_label & ~bad
        arrival = times + pd.to_timedelta(label_delay) + pd.to_timedelta(np.floor(jitter), unit="s")
        label_rows.append(pd.DataFrame({
            "event_id": ids[labelled].to_numpy(),
            "label": y_true[labelled].astype(str),
            "arrival": arrival[labelled],
            "inference_time": times[labelled],
        }))

        valid = ~bad
        per_day[day_start.date().isoformat()] = {
            "day_index": d,
            "interval_start": _iso(day_start),
            "drifted": bool(drifted),
            "captured_records": n,
            "valid_records": int(valid.sum()),
            "malformed_records": int(bad.sum()),
            "labels": int(labelled.sum()),
            "capture_files": len(hour_files),
            "true_churn_rate": round(float(y_true[valid].mean()), 6),
            "monthly_charges_mean": round(float(df["monthly_charges"][valid].mean()), 4),
            "monthly_charges_above_training_max": round(float((df["monthly_charges"][valid] > charges_max).mean()), 6),
            "data_usage_gb_mean": round(float(df["data_usage_gb"][valid].mean()), 4),
            "month_to_month_share": round(float((df["contract"][valid] == "month-to-month").mean()), 6),
            "mean_churn_probability": round(float(proba[valid].mean()), 6),
        }

    # -- label files, by arrival hour -----------------------------------------------------
    labels = pd.concat(label_rows, ignore_index=True)
    labels = labels.sort_values(["arrival", "event_id"], kind="stable").reset_index(drop=True)
    labels["line"] = _label_lines(labels["label"].astype(object), labels["event_id"].astype(object))
    labels["hour"] = labels["arrival"].dt.floor("h")
    label_files = 0
    arrivals_per_day: dict[str, int] = {}
    for hour, grp in labels.groupby("hour", sort=True):
        hs = hour.to_pydatetime()
        rel = posixpath.join(LABELS_PREFIX, hs.strftime("%Y/%m/%d/%H"), f"labels-{hs.strftime('%Y%m%dT%H')}.jsonl")
        store.write_text(rel, "\n".join(grp["line"].tolist()) + "\n")
        label_files += 1
        key = hs.date().isoformat()
        arrivals_per_day[key] = arrivals_per_day.get(key, 0) + len(grp)

    interval_starts = [_iso(start + timedelta(days=d)) for d in range(days)]
    drift = None
    if drift_day < days:
        ds = start + timedelta(days=drift_day)
        drift = {
            "day_index": drift_day,
            "date": ds.date().isoformat(),
            "start": _iso(ds),
            "covariate": {
                "monthly_charges": {"kind": "scale", "factor": PRICE_INCREASE},
                "contract": {"kind": "mix_shift", "toward": "month-to-month", "points": CONTRACT_SHIFT_PP},
                "data_usage_gb": {"kind": "scale", "factor": DATA_USAGE_SCALE},
            },
            "concept": {"internet_service=fiber": {
                "kind": "competitor_offer",
                "description": "fiber customers' churn logit becomes "
                               f"{FIBER_CONCEPT_LOGIT} + {FIBER_CONCEPT_WEIGHT} x usual logit",
            }},
        }
    malformed_manifest.sort(key=lambda m: (m["inference_time"], m["path"], m["line"]))
    manifest = {
        "scenario": "churn-demo",
        "model": MODEL_NAME,
        "endpoint": ENDPOINT,
        "root": store.uri(),
        "seed": seed,
        "start": _iso(start),
        "days": days,
        "end": _iso(start + timedelta(days=days)),
        "rows_per_hour": rows_per_hour,
        "interval": "daily",
        "interval_starts": interval_starts,
        "features": list(FEATURES),
        "drift_day": drift["date"] if drift else None,
        "drift": drift,
        "drifted_features": {
            "covariate": ["monthly_charges", "contract", "data_usage_gb"] if drift else [],
            "concept": ["internet_service=fiber"] if drift else [],
        },
        "dq_incident": incident,
        "malformed": malformed_manifest,
        "per_day": per_day,
        "totals": {
            "captured_records": sum(p["captured_records"] for p in per_day.values()),
            "valid_records": sum(p["valid_records"] for p in per_day.values()),
            "malformed_records": len(malformed_manifest),
            "labels": int(len(labels)),
            "capture_files": sum(p["capture_files"] for p in per_day.values()),
            "label_files": label_files,
        },
        "labels": {
            "delay_seconds": int(label_delay.total_seconds()),
            "jitter_seconds": int(LABEL_JITTER.total_seconds()),
            "missing_share": LABEL_MISSING_SHARE,
            "arrivals_per_day": arrivals_per_day,
        },
        "label_delay_seconds": int(label_delay.total_seconds()),
        "model_metrics": metrics,
        "files": {
            "training": store.uri(TRAIN_PATH),
            "holdout": store.uri(HOLDOUT_PATH),
            "model": store.uri(MODEL_PATH),
            "model_card": store.uri(MODEL_CARD_PATH),
            "capture": store.uri(CAPTURE_PREFIX),
            "labels": store.uri(LABELS_PREFIX),
            "manifest": store.uri(MANIFEST_PATH),
        },
    }
    store.write_json(MANIFEST_PATH, manifest)
    return manifest


def demo_interval_starts(manifest: dict) -> list[datetime]:
    """The daily data-interval starts the scenario covers, as aware UTC datetimes."""
    return [datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
            for s in manifest["interval_starts"]]
