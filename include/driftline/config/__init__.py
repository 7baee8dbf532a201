"""Model registration: one YAML file per monitored model, validated on load.

A model file names the model's schema, where its captured traffic and labels live,
where its training data is, its schedule, thresholds and alert routes. Every error
names the file, the field and what is wrong, e.g.::

    include/monitors/churn.yaml: features[3].type: 'flot' is not one of numeric,
    integer, categorical, boolean, datetime

Strings may reference environment variables as ``${NAME}`` or ``${NAME:-default}``,
so one file serves the embedded default (local folders) and a deployment (S3/MinIO).
Relative locations are resolved against the folder of the YAML file, wherever the
process runs from (scheduler, worker, CLI).
"""
from __future__ import annotations

import math
import os
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from driftline.common import bounded_yaml

SCHEDULE_ALIASES = {"hourly": "0 * * * *", "daily": "0 0 * * *", "weekly": "0 0 * * 1"}
MODEL_NAME_RE = r"^[A-Za-z][A-Za-z0-9_\-]{0,62}$"
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
#: A model file larger than this is refused before it is parsed (the other limits, on nesting,
#: aliases and nodes, are driftline.common.bounded_yaml's). Model files are parsed at DAG-parse time.
MAX_MODEL_FILE_BYTES = 1024 * 1024
#: Times driftline accepts from people (a model's start_date, the CLI's dates): [EARLIEST, LATEST).
#: Later ones overflow the nanosecond timestamps of pandas and Parquet (year 2262), and no
#: captured traffic predates 1970; within these, a typo such as 9999-12-31 is refused, not run.
EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2200, 1, 1, tzinfo=timezone.utc)


class ConfigError(ValueError):
    """A model file is invalid. ``problems`` holds one line per problem."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__("\n".join(f"{source}: {p}" for p in problems))


def parse_duration(value: Any) -> timedelta:
    """'36h', '2d', '90m', '1w' or a number of seconds -> timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return timedelta(seconds=float(value))
    m = _DURATION_RE.match(str(value))
    if not m:
        raise ValueError(f"{value!r} is not a duration like '36h', '2d', '90m' or '1w'")
    n, unit = float(m.group(1)), m.group(2)
    return timedelta(seconds=n * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[unit])


def time_range_problem(t: datetime) -> str | None:
    """Why t (aware) lies outside [EARLIEST, LATEST), or None."""
    if EARLIEST <= t < LATEST:
        return None
    return (f"{t.isoformat()} is outside the supported range {EARLIEST.date().isoformat()} to "
            f"{LATEST.date().isoformat()} (EARLIEST/LATEST in driftline.config)")


Duration = Annotated[timedelta, Field(json_schema_extra={"format": "duration"})]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


#: Drift methods by name (see driftline.stats.measures and driftline.stages.drift): numeric-only,
#: categorical-only, and those that work on both (numeric ones on the baseline's bins).
NUMERIC_METHODS = ("ks", "wasserstein", "linf_cdf_simple", "linf_cdf_robust")
CATEGORICAL_METHODS = ("chi_square", "linf", "z_test")
BINNED_METHODS = ("psi", "jensen_shannon", "hellinger")
DriftMethod = Literal["auto", "ks", "wasserstein", "linf_cdf_simple", "linf_cdf_robust", "chi_square", "linf",
                      "z_test", "psi", "jensen_shannon", "hellinger"]
#: Tests flag drift when p < alpha; the distances when statistic >= threshold.
TEST_METHODS = ("ks", "chi_square", "z_test")
DEFAULT_THRESHOLDS = {"wasserstein": 0.1, "psi": 0.2, "jensen_shannon": 0.1, "hellinger": 0.1, "linf": 0.1,
                      "linf_cdf_simple": 0.1, "linf_cdf_robust": 0.1}


class FeatureDrift(_Strict):
    """Per-feature drift overrides (``features[i].drift`` in the model file)."""
    #: 'auto' = the engine's documented choice by type and sample size.
    method: DriftMethod = "auto"
    #: Threshold on the statistic (distances) or significance level (tests); default per method.
    threshold: float | None = Field(default=None, gt=0)
    #: false: the feature is not checked for drift (still profiled and shown).
    enabled: bool = True


class DriftSettings(_Strict):
    """How drift is decided (``drift:`` in the model file). The defaults are documented in
    driftline.stages.drift and chosen so that neither a 100-row nor a million-row batch is
    flagged for noise."""
    enabled: bool = True
    #: Dataset drift: at least this share of the checked features drifted.
    drift_share: float = Field(default=0.5, gt=0.0, le=1.0)
    #: Batches (or baselines) with at most this many values are judged by tests with
    #: p-values; larger ones by effect-size distances with thresholds.
    small_sample: int = Field(default=1000, ge=1)
    #: Significance level of the tests (KS, chi-square, z-test).
    alpha: float = Field(default=0.05, gt=0.0, lt=1.0)
    #: Multiple testing: with 20 features tested at 5% each, a batch from the very same
    #: distribution is flagged 64% of the time. 'holm' (Holm-Bonferroni) keeps the chance of
    #: any false alarm in a run at alpha; 'none' tests each feature alone.
    correction: Literal["holm", "none"] = "holm"
    #: Defaults for every numeric/categorical feature ('auto' unless set).
    numeric_method: DriftMethod = "auto"
    categorical_method: DriftMethod = "auto"
    #: Thresholds per distance method, overriding DEFAULT_THRESHOLDS.
    thresholds: dict[str, float] = Field(default_factory=dict)
    #: Missing-value share: an absolute change of at least this much is drift (large batches).
    missing_share: float = Field(default=0.05, gt=0.0, le=1.0)
    #: Quantile bins of numeric features (PSI, Jensen-Shannon, Hellinger on numbers).
    bins: int = Field(default=10, ge=2, le=1000)
    #: PCA reconstruction error and a domain classifier on the joint distribution.
    multivariate: bool = True
    #: Rows of an interval's batch per profiling task (dynamic task mapping fans out over them).
    partition_rows: int = Field(default=1_000_000, ge=1)

    @field_validator("thresholds")
    @classmethod
    def _known(cls, v: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(v) - set(DEFAULT_THRESHOLDS))
        if unknown:
            raise ValueError(f"{unknown} take no threshold here (distances only: {sorted(DEFAULT_THRESHOLDS)}; "
                             f"tests use alpha)")
        bad = sorted(k for k, x in v.items() if not x > 0)
        if bad:
            raise ValueError(f"{bad}: a threshold must be > 0")
        return v


class Feature(_Strict):
    #: No whitespace, commas (CSV payloads) or backticks (GX row conditions quote names with them).
    name: str = Field(pattern=r"^[^\s,`]+$")
    type: Literal["numeric", "integer", "categorical", "boolean", "datetime"]
    description: str = ""
    #: Overrides of the drift method/threshold for this feature (used by the drift engine).
    drift: FeatureDrift = FeatureDrift()
    #: Known importance of the feature to the model (optional; drift attribution uses it).
    importance: float | None = None


class Prediction(_Strict):
    #: Name of the predicted label column in the batch.
    label: str = "prediction"
    #: Name of the predicted probability (score) column, for classifiers that emit one.
    probability: str | None = None
    #: Decision threshold that turns the probability into the predicted label (binary).
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    #: Order of the fields in a CSV endpoint output, by batch column name.
    output_fields: list[str] | None = None


class Capture(_Strict):
    uri: str
    format: Literal["sagemaker_capture", "jsonl", "csv", "parquet"] = "sagemaker_capture"
    #: Airflow connection used to read the capture location (default: the store's).
    conn_id: str | None = None
    #: For CSV payloads (SageMaker capture) and header-less CSV files: field order.
    #: Default: the features in the order they are declared.
    input_fields: list[str] | None = None
    #: Column/key holding the inference time, for formats other than SageMaker capture.
    time_field: str | None = None
    #: How long after its records an object may be written. Objects sit under the hour they
    #: were written (SageMaker buffers captured records for a while before it writes them), so
    #: an interval reads the hour folders [start, end + write_delay) touches, and the DAG waits
    #: until end + write_delay (a sensor) before it ingests. 0: only the interval's own hours.
    write_delay: Duration = Field(default=timedelta(minutes=5), le=timedelta(hours=1))

    @field_validator("write_delay", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> timedelta:
        d = parse_duration(v)
        if d < timedelta(0):
            raise ValueError(f"{v!r} is negative")
        return d


class Labels(_Strict):
    """Where the true labels arrive: ``<uri>/YYYY/MM/DD/HH/`` partitions of their *arrival*
    hour, keyed by the inference id."""
    uri: str
    format: Literal["sagemaker_ground_truth", "jsonl", "csv", "parquet"] = "sagemaker_ground_truth"
    conn_id: str | None = None
    #: Name of the true-label column in merged data (and in jsonl/csv/parquet label files).
    column: str = "label"
    #: Column/key of the inference id in jsonl/csv/parquet label files (default: inference_id).
    id_field: str | None = None
    #: How long after an inference its label is expected to have arrived: a run waits for
    #: the labels of its interval until interval end + delay.
    delay: Duration = timedelta(days=1)
    #: Label coverage (labelled / predicted) at which a run stops waiting before the delay is over.
    min_coverage: float = Field(default=0.95, gt=0.0, le=1.0)
    #: How often the waiting run looks for new labels (the task gives its worker slot back between looks).
    poke_interval: Duration = timedelta(minutes=30)
    #: Labels may arrive before their prediction is captured (clock skew, labels known at once):
    #: an interval's merge also reads labels that arrived this long before it started.
    lookback: Duration = timedelta(days=1)
    #: Intervals are re-evaluated as late labels land for this long after they end; a label for
    #: an older prediction, or for an id no prediction has, is quarantined as ``unknown_id``.
    horizon: Duration = timedelta(days=30)

    @field_validator("delay", "poke_interval", "lookback", "horizon", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> timedelta:
        return parse_duration(v)


class MetricThreshold(_Strict):
    """Bounds on one model-quality metric: absolute (min/max) and/or relative to the
    baseline's value (max_drop: a fraction; for error metrics such as mae it bounds the rise)."""
    min: float | None = None
    max: float | None = None
    max_drop: float | None = Field(default=None, gt=0.0)

    @model_validator(mode="after")
    def _some(self) -> "MetricThreshold":
        if self.min is None and self.max is None and self.max_drop is None:
            raise ValueError("give at least one of min, max, max_drop")
        return self


#: Thresholds a model gets when its file names none: a 5% drop of the headline metrics
#: against the baseline (for regression: a 10% rise of the errors).
DEFAULT_QUALITY_THRESHOLDS = {
    "binary_classification": {"accuracy": {"max_drop": 0.05}, "roc_auc": {"max_drop": 0.05}},
    "multiclass_classification": {"accuracy": {"max_drop": 0.05}, "f1_macro": {"max_drop": 0.05}},
    "regression": {"mae": {"max_drop": 0.10}, "rmse": {"max_drop": 0.10}},
}


class PerformanceSettings(_Strict):
    """Model quality: realized metrics once labels arrive, estimated ones before."""
    enabled: bool = True
    #: Fewer labelled rows than this (per interval, and per segment) is "not enough labels":
    #: realized metrics are still recorded but never raise a violation.
    min_samples: int = Field(default=200, ge=1)
    #: Per metric bounds; default: DEFAULT_QUALITY_THRESHOLDS for the problem type.
    thresholds: dict[str, MetricThreshold] | None = None
    #: Feature columns whose values split the metrics into segments (e.g. region).
    segments: list[str] = Field(default_factory=list)
    #: Estimate quality before labels (CBPE for classifiers with a probability, direct loss
    #: estimation for regression), from a calibration fitted on the baseline's labelled data.
    estimate: bool = True
    #: Width of the estimate's uncertainty band (a central probability).
    band: float = Field(default=0.9, gt=0.0, lt=1.0)


class Baseline(_Strict):
    #: Training (or reference) data: a Parquet or CSV file, or a folder of Parquet files.
    training_data: str
    #: 'latest', or a version such as 'v3' to pin one.
    version: str = Field(default="latest", pattern=r"^(latest|v\d+)$")
    #: Rows kept in the baseline as a raw reference sample (for exact tests on small batches).
    sample_rows: int = Field(default=10_000, ge=0)
    #: The deployed model (a joblib/pickle file of a scikit-learn-style estimator taking a
    #: DataFrame of the features). Optional; with it the baseline stores the model's
    #: reference predictions (prediction drift) and permutation importance (drift
    #: attribution). Loading a pickle runs code: point this only at your own model files.
    model: str | None = None
    #: Labelled data the model did not train on (holdout), for the reference predictions and
    #: permutation importance; default: training_data. Needs the labels.column.
    evaluation_data: str | None = None


class Thresholds(_Strict):
    #: SageMaker monitoring_config.datatype_check_threshold: share of values that must have
    #: the baseline's type.
    datatype_check: float = Field(default=1.0, ge=0.0, le=1.0)
    #: SageMaker monitoring_config.domain_content_threshold: share of categorical values that
    #: must lie in the baseline's domain.
    domain_content: float = Field(default=1.0, ge=0.0, le=1.0)
    #: Absolute slack below the baseline's completeness before completeness_check fires, so
    #: sampling noise in a clean interval does not raise an alarm.
    completeness_slack: float = Field(default=0.02, ge=0.0, le=1.0)
    #: Numeric range check: bounds are the baseline's [min, max] widened by this fraction of
    #: its range on each side ...
    range_margin: float = Field(default=0.1, ge=0.0)
    #: ... and this share of values may still fall outside them.
    range_tolerance: float = Field(default=0.001, ge=0.0, le=1.0)
    #: Share of captured records that may be quarantined before quarantine_check fires.
    max_quarantine_share: float = Field(default=0.01, ge=0.0, le=1.0)
    #: Fewer rows than this in an interval is recorded as 'no data' (checks are skipped).
    min_rows: int = Field(default=1, ge=1)


class AlertRoute(_Strict):
    type: Literal["log", "email", "slack", "sns", "webhook"]
    #: Airflow connection holding the route's credentials/endpoint (never the secret itself).
    conn_id: str | None = None
    min_severity: Literal["info", "warning", "critical"] = "warning"
    #: Recipients (email) or topic ARN (sns); never a credential.
    target: str | None = None

    @model_validator(mode="after")
    def _needs_conn(self) -> "AlertRoute":
        if self.type in ("slack", "webhook", "sns", "email") and not self.conn_id:
            raise ValueError(f"alert route of type {self.type!r} needs a conn_id (an Airflow connection)")
        return self


Severity = Literal["info", "warning", "critical"]
SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}


class Persistence(_Strict):
    """Alert only when a check failed in at least ``hold`` of the last ``of`` intervals (this
    one included): 2 of 3 keeps one noisy interval from paging anyone."""
    hold: int = Field(default=1, ge=1)
    of: int = Field(default=1, ge=1, le=1000)

    @model_validator(mode="after")
    def _fits(self) -> "Persistence":
        if self.hold > self.of:
            raise ValueError(f"hold ({self.hold}) cannot exceed of ({self.of})")
        return self


class AlertPolicy(_Strict):
    enabled: bool = True
    severity: Severity = "warning"
    persistence: Persistence = Persistence()


#: Which policy a violation's constraint_check_type falls under.
CHECK_FAMILIES = {
    "data_type_check": "data_quality", "completeness_check": "data_quality",
    "categorical_values_check": "data_quality", "missing_column_check": "data_quality",
    "extra_column_check": "data_quality", "range_check": "data_quality", "quarantine_check": "data_quality",
    "baseline_drift_check": "drift", "multivariate_drift_check": "drift",
    "model_quality_check": "model_quality", "model_quality_estimate_check": "model_quality_estimate",
    "bias_drift_check": "bias",
}


class Alerting(_Strict):
    """How violations become alerts (``alerting:`` in the model file). Each check family has a
    policy: its severity and its persistence rule."""
    data_quality: AlertPolicy = AlertPolicy(severity="critical")
    drift: AlertPolicy = AlertPolicy(severity="warning", persistence=Persistence(hold=2, of=3))
    model_quality: AlertPolicy = AlertPolicy(severity="critical")
    model_quality_estimate: AlertPolicy = AlertPolicy(severity="warning")
    bias: AlertPolicy = AlertPolicy(severity="warning")
    #: Severity per check type, overriding its family's (e.g. {quarantine_check: warning}).
    severities: dict[str, Severity] = Field(default_factory=dict)
    #: Re-send an incident still open after this many intervals (0: one message per incident).
    repeat_every: int = Field(default=0, ge=0)
    #: A person's answer to an alert (driftline.stages.feedback): "false positive" or "expected" (e.g.
    #: a known seasonal change) suppresses that check on that subject for this long, in data
    #: time from the latest interval evaluated when the answer came; "acknowledged" only records.
    suppress_false_positive: Duration = timedelta(days=7)
    suppress_expected: Duration = timedelta(days=7)

    @field_validator("suppress_false_positive", "suppress_expected", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> timedelta:
        return parse_duration(v)

    @field_validator("severities")
    @classmethod
    def _checks(cls, v: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(v) - set(CHECK_FAMILIES))
        if unknown:
            raise ValueError(f"{unknown} are not check types (known: {', '.join(sorted(CHECK_FAMILIES))})")
        return v

    def policy(self, check: str) -> AlertPolicy:
        pol = getattr(self, CHECK_FAMILIES.get(check, "data_quality"))
        if check in self.severities:
            pol = pol.model_copy(update={"severity": self.severities[check]})
        return pol


class CloudWatchOut(_Strict):
    """Publish each run's metrics to Amazon CloudWatch (as SageMaker Model Monitor does)."""
    enabled: bool = False
    conn_id: str = "aws_default"
    namespace: str = "driftline"
    region: str | None = None


class MetricsOut(_Strict):
    cloudwatch: CloudWatchOut = CloudWatchOut()


class BiasFacet(_Strict):
    """A facet: the rows of the protected group ``d`` (Clarify's facet). Categorical/boolean
    features name their ``values``; numeric ones a ``threshold`` (d = value > threshold, as
    Clarify's facet_values_or_threshold)."""
    feature: str
    values: list[str | int | float | bool] | None = None
    threshold: float | None = None
    #: How reports and alerts name the group (default: "<feature> in [values]" / "<feature> > t").
    name: str | None = None

    @model_validator(mode="after")
    def _one(self) -> "BiasFacet":
        if (self.values is None) == (self.threshold is None):
            raise ValueError("give exactly one of values (categories) or threshold (numbers)")
        return self

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        return f"{self.feature} > {self.threshold:g}" if self.threshold is not None else \
            f"{self.feature} in {list(self.values)}"


#: Bias bounds when the file names none: how far each metric may move from the baseline.
DEFAULT_BIAS_THRESHOLDS = {"DPPL": {"max_change": 0.1}, "DI": {"max_change": 0.2}, "DPL": {"max_change": 0.1},
                           "AD": {"max_change": 0.1}, "RD": {"max_change": 0.1}}


class BiasSettings(_Strict):
    """Bias drift per facet, with SageMaker Clarify's metrics (driftline.stats.bias), compared with the
    baseline's values on its evaluation data."""
    facets: list[BiasFacet] = Field(default_factory=list)
    #: Per metric rules: max_abs, min_di, max_change. Default: DEFAULT_BIAS_THRESHOLDS.
    thresholds: dict[str, dict[str, float]] | None = None
    #: Fewer rows than this in either group: metrics recorded, never a violation.
    min_rows: int = Field(default=50, ge=1)

    @field_validator("thresholds")
    @classmethod
    def _known(cls, v):
        if v is None:
            return v
        from driftline.stats.bias import METRICS

        unknown = sorted(set(v) - set(METRICS))
        if unknown:
            raise ValueError(f"{unknown} are not bias metrics (known: {', '.join(METRICS)})")
        for name, rules in v.items():
            bad = sorted(set(rules) - {"max_abs", "min_di", "max_change"})
            if bad:
                raise ValueError(f"{name}: unknown rule(s) {bad} (max_abs, min_di, max_change)")
        return v

    @property
    def rules(self) -> dict[str, dict[str, float]]:
        return dict(self.thresholds) if self.thresholds is not None else {k: dict(v) for k, v in
                                                                           DEFAULT_BIAS_THRESHOLDS.items()}


class RetrainWhen(_Strict):
    """When the retraining policy holds (any of the conditions)."""
    #: A realized model-quality violation in the interval.
    model_quality: bool = True
    #: Dataset drift in at least hold of the last of intervals (null: drift alone never retrains).
    drift: Persistence | None = Persistence(hold=3, of=5)
    #: ... and at least this many labelled rows in the recent window (no labels: nothing to train on).
    min_labels: int = Field(default=500, ge=1)


class Search(_Strict):
    """Bounded hyperparameter search (scikit-learn RandomizedSearchCV) around the champion's
    estimator: ``space`` maps parameter names (as get_params() names them, e.g.
    classifier__learning_rate) to lists of candidates; empty: a default space for known
    estimators."""
    n_iter: int = Field(default=6, ge=1, le=200)
    cv: int = Field(default=3, ge=2, le=10)
    space: dict[str, list[Any]] = Field(default_factory=dict)
    seed: int = 0


class Approval(_Strict):
    """A person approves a promotion (Airflow's ApprovalOperator); no answer before the
    timeout: nothing is promoted."""
    required: bool = False
    timeout: Duration = timedelta(days=1)
    #: Airflow users who may answer (empty: anyone with access).
    approvers: list[str] = Field(default_factory=list)

    @field_validator("timeout", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> timedelta:
        return parse_duration(v)


class Retraining(_Strict):
    enabled: bool = False
    when: RetrainWhen = RetrainWhen()
    #: Recent labelled data: the merged predictions and labels of the intervals in this window.
    window: Duration = timedelta(days=14)
    #: Train on the training data too (recent data weighs as much as its rows).
    include_training_data: bool = True
    #: Share of the recent labelled rows held out (the latest ones) to compare champion and challenger.
    holdout: float = Field(default=0.3, gt=0.0, lt=1.0)
    #: Metric of the comparison (default: roc_auc / f1_macro / rmse by problem type).
    metric: str | None = None
    #: The challenger must beat the champion by this much (in the metric's units).
    margin: float = Field(default=0.005, ge=0.0)
    search: Search = Search()
    approval: Approval = Approval()
    #: After a retraining request, none again for this long.
    cooldown: Duration = timedelta(days=3)

    @field_validator("window", "cooldown", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> timedelta:
        return parse_duration(v)


class ModelConfig(_Strict):
    name: str = Field(pattern=MODEL_NAME_RE)
    description: str = ""
    problem_type: Literal["binary_classification", "multiclass_classification", "regression"]
    features: list[Feature] = Field(min_length=1)
    prediction: Prediction = Prediction()
    inference_id: str = "inference_id"
    capture: Capture
    labels: Labels | None = None
    baseline: Baseline
    schedule: str = "daily"
    start_date: datetime
    tags: list[str] = Field(default_factory=list)
    thresholds: Thresholds = Thresholds()
    drift: DriftSettings = DriftSettings()
    performance: PerformanceSettings = PerformanceSettings()
    alerts: list[AlertRoute] = Field(default_factory=lambda: [AlertRoute(type="log")])
    alerting: Alerting = Alerting()
    metrics_out: MetricsOut = MetricsOut()
    bias: BiasSettings = BiasSettings()
    retraining: Retraining = Retraining()
    #: Where this file was loaded from (set by load_model_config).
    source: str = ""

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, v: str) -> str:
        from croniter import CroniterBadDateError, croniter

        cron = SCHEDULE_ALIASES.get(v, v)
        if len(cron.split()) != 5 or not croniter.is_valid(cron):
            raise ValueError(f"{v!r} is neither hourly/daily/weekly nor a valid 5-field cron expression")
        try:  # a valid expression may name no date at all; found here, not when a DAG file builds the DAG
            croniter(cron, EARLIEST).get_next(datetime)
        except CroniterBadDateError:
            raise ValueError(f"{v!r} never fires (it names a date no month has, e.g. 30 2 = February 30)") from None
        return v

    @field_validator("start_date", mode="before")
    @classmethod
    def _not_a_number(cls, v: Any) -> Any:
        # pydantic reads a number as seconds since 1970: `start_date: 2026` would be 1970-01-01T00:33:46
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            raise ValueError(f"{v!r} is a number, not a date: write a date like 2026-10-01 or 2026-10-01T06:00Z")
        return v

    @field_validator("start_date")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        v = v.replace(tzinfo=timezone.utc) if v.tzinfo is None else v.astimezone(timezone.utc)
        problem = time_range_problem(v)
        if problem:
            raise ValueError(problem)
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "ModelConfig":
        names = [f.name for f in self.features]
        dupes = sorted(n for n, k in Counter(names).items() if k > 1)  # not names.count(): quadratic in features
        if dupes:
            raise ValueError(f"features: duplicate names {dupes}")
        reserved = {self.inference_id, self.prediction.label, self.prediction.probability,
                    "inference_time"} - {None}
        clash = sorted(reserved & set(names))
        if clash:
            raise ValueError(f"features: {clash} clash with the inference-id/prediction/time columns")
        if self.problem_type == "regression" and self.prediction.probability:
            raise ValueError("prediction.probability: a regression model has no probability output")
        for i, f in enumerate(self.features):
            problem = _method_problem(f.drift.method, f.type)
            if problem:
                raise ValueError(f"features[{i}].drift.method: {problem}")
        for fld, typ in (("numeric_method", "numeric"), ("categorical_method", "categorical")):
            problem = _method_problem(getattr(self.drift, fld), typ)
            if problem:
                raise ValueError(f"drift.{fld}: {problem}")
        types = self.feature_types  # once: a lookup per segment/facet in a list would be quadratic
        for i, seg in enumerate(self.performance.segments):
            if seg not in types:
                raise ValueError(f"performance.segments[{i}]: {seg!r} is not a declared feature")
        if self.performance.thresholds:
            from driftline.stats.metric_names import METRICS

            known = METRICS[self.problem_type]
            unknown = sorted(set(self.performance.thresholds) - set(known))
            if unknown:
                raise ValueError(f"performance.thresholds: {unknown} are not metrics of a {self.problem_type} "
                                 f"model (known: {', '.join(known)})")
        for i, facet in enumerate(self.bias.facets):
            ftype = types.get(facet.feature)
            if ftype is None:
                raise ValueError(f"bias.facets[{i}].feature: {facet.feature!r} is not a declared feature")
            if facet.threshold is not None and ftype not in ("numeric", "integer"):
                raise ValueError(f"bias.facets[{i}]: a threshold needs a numeric feature ({facet.feature} is {ftype})")
        if self.bias.facets and self.problem_type != "binary_classification":
            raise ValueError("bias: facets need a binary classifier (Clarify's metrics compare positive outcomes)")
        if self.retraining.enabled:
            if not self.labels:
                raise ValueError("retraining.enabled: retraining needs labels (a labels section)")
            if not self.baseline.model:
                raise ValueError("retraining.enabled: retraining needs the champion model (baseline.model)")
        if self.retraining.metric is not None:
            from driftline.stats.metric_names import METRICS

            if self.retraining.metric not in METRICS[self.problem_type]:
                raise ValueError(f"retraining.metric: {self.retraining.metric!r} is not a metric of a "
                                 f"{self.problem_type} model (known: {', '.join(METRICS[self.problem_type])})")
        for fld, allowed in (("capture.input_fields", self.capture.input_fields),):
            if allowed is not None:
                unknown = sorted(set(allowed) - set(names))
                if unknown:
                    raise ValueError(f"{fld}: {unknown} are not declared features")
        return self

    # -- derived ---------------------------------------------------------------
    @property
    def cron(self) -> str:
        return SCHEDULE_ALIASES.get(self.schedule, self.schedule)

    def interval_end(self, start: datetime) -> datetime:
        """End of the schedule's data interval that starts at start (which must be a tick)."""
        from croniter import croniter  # the cron library Airflow itself schedules with

        start = start.astimezone(timezone.utc)
        if not croniter.match(self.cron, start):
            raise ValueError(f"{start.isoformat()} is not the start of a {self.schedule!r} interval of {self.name}")
        return croniter(self.cron, start).get_next(datetime)

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def feature_types(self) -> dict[str, str]:
        return {f.name: f.type for f in self.features}

    @property
    def prediction_columns(self) -> list[str]:
        cols = [self.prediction.label]
        if self.prediction.probability:
            cols.append(self.prediction.probability)
        return cols

    @property
    def concurrent_runs(self) -> int:
        """How many monitoring runs may be active at once. A run waits for its labels up to
        labels.delay: enough that the waiting ones do not hold back the next intervals (an
        hourly model with a 2-day delay has ~48 waiting), plus room for retries; at most 64."""
        from croniter import croniter

        ticks = croniter(self.cron, self.start_date)
        first = ticks.get_next(datetime)
        waiting = math.ceil(self.labels.delay / (ticks.get_next(datetime) - first)) if self.labels else 0
        return min(64, max(4, waiting + 2))

    @property
    def quality_thresholds(self) -> dict[str, dict]:
        """The model-quality thresholds in force: the file's, or the problem type's defaults."""
        if self.performance.thresholds is not None:
            return {k: v.model_dump(exclude_none=True) for k, v in self.performance.thresholds.items()}
        return {k: dict(v) for k, v in DEFAULT_QUALITY_THRESHOLDS[self.problem_type].items()}

    @property
    def retrain_metric(self) -> str:
        return self.retraining.metric or {"binary_classification": "roc_auc",
                                          "multiclass_classification": "f1_macro",
                                          "regression": "rmse"}[self.problem_type]

    @property
    def label_id_field(self) -> str:
        return (self.labels.id_field if self.labels and self.labels.id_field else self.inference_id)

    @property
    def output_fields(self) -> list[str]:
        """Order of fields in a CSV endpoint output (SageMaker capture)."""
        if self.prediction.output_fields:
            return list(self.prediction.output_fields)
        return [self.prediction.probability] if self.prediction.probability else [self.prediction.label]

    @property
    def input_fields(self) -> list[str]:
        return list(self.capture.input_fields or self.feature_names)


def _method_problem(method: str, ftype: str) -> str | None:
    """Why a drift method cannot apply to a feature type (None if it can)."""
    if method == "auto" or method in BINNED_METHODS:
        return None
    if ftype == "datetime":
        return "datetime features are not checked for drift; set drift.enabled: false or leave method auto"
    numeric = ftype in ("numeric", "integer")
    if method in NUMERIC_METHODS and not numeric:
        return f"{method!r} applies to numeric features, not {ftype}"
    if method in CATEGORICAL_METHODS and numeric:
        return f"{method!r} applies to categorical or boolean features, not {ftype}"
    return None


@dataclass(frozen=True)
class LoadedConfigs:
    models: dict[str, ModelConfig]
    errors: dict[str, ConfigError]


def _expand_env(value: Any, where: str) -> Any:
    if isinstance(value, str):
        def sub(m: re.Match) -> str:
            name, default = m.group(1), m.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            raise ConfigError(where, [f"environment variable {name} is not set and has no default"])
        return _ENV_RE.sub(sub, value)
    if isinstance(value, dict):
        return {k: _expand_env(v, where) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, where) for v in value]
    return value


def resolve_location(uri: str, base_dir: Path) -> str:
    """Make a location absolute: URLs stay as they are, relative paths join base_dir."""
    if "://" in uri:
        if uri.startswith("file://"):
            path = uri[len("file://"):]
            return "file://" + str((base_dir / path).resolve()) if not path.startswith("/") else uri
        return uri
    p = Path(uri)
    return "file://" + str(p if p.is_absolute() else (base_dir / p).resolve())


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("function-after", "function-before") or str(part).startswith(("function-", "literal[")):
            continue
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _problem(err: dict) -> str:
    where = _loc(err["loc"])
    typ = err["type"]
    if typ == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        options = ", ".join(re.findall(r"'([^']*)'", expected))
        return f"{where}: {err['input']!r} is not one of {options}"
    if typ == "missing":
        return f"{where}: required field is missing"
    if typ == "extra_forbidden":
        return f"{where}: unknown field (check its spelling)"
    msg = err["msg"].removeprefix("Value error, ")
    if not err["loc"] and re.match(r"^[\w\[\]\.]+: ", msg):  # a model-level check that names its field
        return msg
    return f"{where}: {msg}"


def parse_model_config(data: Any, source: str, base_dir: Path | None = None) -> ModelConfig:
    """Validate an already-parsed YAML document. Raises ConfigError."""
    if not isinstance(data, dict):
        raise ConfigError(source, ["the file must hold a mapping of fields (name, features, capture, ...)"])
    data = _expand_env(data, source)
    base = Path(base_dir or Path.cwd())
    for section, key in (("capture", "uri"), ("labels", "uri"), ("baseline", "training_data"),
                         ("baseline", "model"), ("baseline", "evaluation_data")):
        sec = data.get(section)
        if isinstance(sec, dict) and isinstance(sec.get(key), str):
            data[section] = {**sec, key: resolve_location(sec[key], base)}
    try:
        return ModelConfig.model_validate({**data, "source": source})
    except ValidationError as exc:
        raise ConfigError(source, [_problem(e) for e in exc.errors()]) from None


def load_model_config(path: str | os.PathLike) -> ModelConfig:
    """Read, parse (within the limits of driftline.common.bounded_yaml and MAX_MODEL_FILE_BYTES) and
    validate one model file. Raises ConfigError naming the file."""
    path = Path(path)
    source = str(path)
    try:
        with path.open("rb") as f:
            # at most one byte past the limit, whatever stat() said: the file may still be growing
            raw = f.read(MAX_MODEL_FILE_BYTES + 1)
            size = max(os.fstat(f.fileno()).st_size, len(raw))
    except OSError as exc:
        raise ConfigError(source, [f"cannot read the file: {exc.strerror or exc}"]) from None
    if len(raw) > MAX_MODEL_FILE_BYTES:
        raise ConfigError(source, [f"refused: {size} bytes is more than the limit of a model file, 1 MiB "
                                   f"({MAX_MODEL_FILE_BYTES} bytes); a model file is a few kilobytes"])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(source, [f"not UTF-8 text (byte {exc.start}): save the file as UTF-8"]) from None
    try:
        data = bounded_yaml.safe_load(text)
    except bounded_yaml.YAMLLimitError as exc:
        raise ConfigError(source, [f"{_where(exc)}refused: {exc.problem}"]) from None
    except yaml.YAMLError as exc:
        # context and problem: "found duplicate anchor 'x'; first occurrence" / "second occurrence"
        why = "; ".join(p for p in (getattr(exc, "context", None), getattr(exc, "problem", None)) if p) or str(exc)
        raise ConfigError(source, [f"{_where(exc)}not valid YAML ({why})"]) from None
    return parse_model_config(data, source, base_dir=path.parent)


def _where(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    return f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""


def load_all(folder: str | os.PathLike) -> LoadedConfigs:
    """Load every *.yaml/*.yml in folder. A broken file is reported, not raised, so the
    other models still load; two files declaring the same model name are both errors."""
    models: dict[str, ModelConfig] = {}
    errors: dict[str, ConfigError] = {}
    seen: dict[str, str] = {}
    for path in sorted(Path(folder).glob("*.y*ml")):
        try:
            cfg = load_model_config(path)
        except ConfigError as exc:
            errors[str(path)] = exc
            continue
        except Exception as exc:  # noqa: BLE001 - one odd file must not take the others down
            errors[str(path)] = ConfigError(str(path), [f"cannot load ({type(exc).__name__}: {exc})"])
            continue
        if cfg.name in seen:
            errors[str(path)] = ConfigError(str(path), [f"name: model {cfg.name!r} is already declared in {seen[cfg.name]}"])
            continue
        seen[cfg.name] = str(path)
        models[cfg.name] = cfg
    return LoadedConfigs(models, errors)


def project_dir() -> Path:
    """The project holding this package's source tree (include/driftline/config -> project)."""
    return Path(__file__).resolve().parents[3]


def default_monitors_dir() -> Path:
    """DRIFTLINE_MONITORS_DIR, or the project's include/monitors."""
    return Path(os.environ.get("DRIFTLINE_MONITORS_DIR") or project_dir() / "include" / "monitors")


def default_store_url() -> str:
    """DRIFTLINE_STORE_URL, or the embedded default: a folder in the project."""
    return os.environ.get("DRIFTLINE_STORE_URL") or f"file://{project_dir() / 'data' / 'store'}"


def default_demo_root() -> str:
    """DRIFTLINE_DEMO_ROOT, or the project's data/demo."""
    return os.environ.get("DRIFTLINE_DEMO_ROOT") or f"file://{project_dir() / 'data' / 'demo'}"
