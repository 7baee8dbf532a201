"""The demo scenario plants what its manifest says, and nothing else."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score

from driftline.config import load_model_config
from driftline.demo import FEATURES, demo_interval_starts, generate_demo

SMALL = dict(days=7, rows_per_hour=20, training_rows=3000)
REPO = Path(__file__).resolve().parent.parent
REGIONS = {"north", "south", "east", "west"}
TIME_FMT = "%Y-%m-%dT%H:%M:%SZ"


def _generate(root: Path, **kw):
    return generate_demo(f"file://{root}", **{**SMALL, **kw})


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    manifest = _generate(root)
    return root, manifest


def _tree(root: Path, sub: str) -> dict[str, bytes]:
    base = root / sub
    return {str(p.relative_to(base)): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()}


def _parse_line(line: str) -> dict | None:
    """A well-formed SageMaker capture line -> its fields; anything else -> None."""
    try:
        rec = json.loads(line)
        cap = rec["captureData"]
        inp, out = cap["endpointInput"], cap["endpointOutput"]
        assert inp["observedContentType"] == "text/csv" and inp["encoding"] == "CSV"
        assert inp["mode"] == "INPUT" and out["mode"] == "OUTPUT"
        fields = inp["data"].split(",")
        assert len(fields) == len(FEATURES)
        proba = float(out["data"])
        assert 0.0 <= proba <= 1.0
        meta = rec["eventMetadata"]
        when = datetime.strptime(meta["inferenceTime"], TIME_FMT).replace(tzinfo=timezone.utc)
        assert rec["eventVersion"] == "0"
    except (ValueError, KeyError, TypeError, AssertionError):
        return None
    return {**dict(zip(FEATURES, fields)), "proba": proba, "event_id": meta["eventId"], "time": when}


def _parse_capture(root: Path):
    """(records DataFrame of the well-formed lines, set of (file URI, line) that are not)."""
    rows, bad = [], set()
    base = root / "capture" / "churn-endpoint" / "AllTraffic"
    for path in sorted(base.rglob("*.jsonl")):
        parts = path.relative_to(base).parts  # YYYY, MM, DD, HH, name
        for i, line in enumerate(path.read_text().splitlines(), start=1):
            rec = _parse_line(line)
            if rec is None:
                bad.add((f"file://{path}", i))
            else:
                rows.append({**rec, "partition": parts[:4], "file": path.name})
    return pd.DataFrame(rows), bad


def _parse_labels(root: Path) -> pd.DataFrame:
    rows = []
    base = root / "ground-truth" / "churn-endpoint"
    for path in sorted(base.rglob("*.jsonl")):
        y, m, d, h = path.relative_to(base).parts[:4]
        hour = datetime(int(y), int(m), int(d), int(h), tzinfo=timezone.utc)
        for line in path.read_text().splitlines():
            rec = json.loads(line)
            assert rec["eventVersion"] == "0" and rec["groundTruthData"]["encoding"] == "CSV"
            rows.append({"event_id": rec["eventMetadata"]["eventId"],
                         "label": int(rec["groundTruthData"]["data"]), "arrival_hour": hour})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def parsed(demo):
    root, manifest = demo
    records, bad = _parse_capture(root)
    labels = _parse_labels(root)
    return records, bad, labels


# ---------------------------------------------------------------------------------------
def test_features_follow_the_model_file():
    cfg = load_model_config(REPO / "include" / "monitors" / "churn.yaml")
    assert cfg.feature_names == FEATURES


def test_deterministic_by_seed(tmp_path, demo):
    root, _ = demo
    again = tmp_path / "again"
    _generate(again)
    for sub in ("capture", "ground-truth"):
        first, second = _tree(root, sub), _tree(again, sub)
        assert first and first == second
    other = tmp_path / "other"
    _generate(other, seed=8)
    assert _tree(other, "capture") != _tree(root, "capture")
    assert _tree(other, "ground-truth") != _tree(root, "ground-truth")


def test_layout_and_manifest(demo):
    root, manifest = demo
    for rel in ("training/churn_train.parquet", "training/churn_holdout.parquet", "model/model.joblib",
                "model/model_card.json", "manifest.json"):
        assert (root / rel).is_file(), rel
    assert json.loads((root / "manifest.json").read_text()) == manifest
    train = pd.read_parquet(root / "training" / "churn_train.parquet")
    assert list(train.columns) == FEATURES + ["churned"] and len(train) == 3000
    assert 0.2 <= train["churned"].mean() <= 0.3
    assert 0.003 <= train["total_charges"].isna().mean() <= 0.02
    assert len(pd.read_parquet(root / "training" / "churn_holdout.parquet")) == 5000
    card = json.loads((root / "model" / "model_card.json").read_text())
    assert card["training_rows"] == 3000 and card["metrics"]["holdout_roc_auc"] > 0.75

    starts = demo_interval_starts(manifest)
    assert starts == [datetime(2026, 10, 1, tzinfo=timezone.utc) + timedelta(days=d) for d in range(7)]
    assert manifest["drift_day"] == "2026-10-04"
    assert manifest["drifted_features"] == {"covariate": ["monthly_charges", "contract", "data_usage_gb"],
                                            "concept": ["internet_service=fiber"]}
    inc = manifest["dq_incident"]
    assert inc["date"] == "2026-10-06" and inc["hours"] == [9, 10, 11, 12]
    assert inc["checks"] == {"age": "completeness_check", "region": "categorical_values_check",
                             "support_calls": "data_type_check"}
    assert manifest["label_delay_seconds"] == 2 * 86400
    assert list(manifest["per_day"]) == [s[:10] for s in manifest["interval_starts"]]
    assert all(d["captured_records"] > 0 for d in manifest["per_day"].values())
    assert {(v["check"], v["feature"]) for v in inc["expected_violations"]} == {
        ("completeness_check", "age"), ("categorical_values_check", "region"),
        ("data_type_check", "support_calls")}


def test_capture_lines_are_sagemaker_records(demo, parsed):
    root, manifest = demo
    records, bad, _ = parsed
    assert len(records) == manifest["totals"]["valid_records"]
    assert len(records) + len(bad) == manifest["totals"]["captured_records"]
    # Partition folders match the inference hour.
    part = records["partition"].map(lambda p: "/".join(p))
    assert (part == records["time"].map(lambda t: t.strftime("%Y/%m/%d/%H"))).all()
    assert records["file"].str.match(r"^capture-\d{8}T\d{2}-[01]\.jsonl$").all()
    assert records["event_id"].is_unique
    # Every hour has traffic; per-day counts agree with the manifest.
    hours = records["time"].map(lambda t: t.replace(minute=0, second=0))
    assert hours.nunique() == 7 * 24
    by_day = records["time"].map(lambda t: t.date().isoformat()).value_counts()
    for day, counts in manifest["per_day"].items():
        assert by_day[day] == counts["valid_records"]


def test_malformed_lines_are_exactly_the_listed_ones(demo, parsed):
    root, manifest = demo
    _, bad, _ = parsed
    listed = {(m["file"], m["line"]) for m in manifest["malformed"]}
    assert bad == listed
    kinds = {(m["day_index"], m["kind"]) for m in manifest["malformed"]}
    assert kinds == {(1, "truncated_json"), (1, "wrong_field_count"), (1, "not_json"),
                     (5, "output_not_a_number"), (5, "missing_capture_data")}
    assert [d["malformed_records"] for d in manifest["per_day"].values()] == [0, 3, 0, 0, 0, 2, 0]
    assert {m["day"] for m in manifest["malformed"]} == {"2026-10-02", "2026-10-06"}


def test_labels_arrive_late_and_some_never(demo, parsed):
    root, manifest = demo
    records, _, labels = parsed
    assert labels["event_id"].is_unique
    assert len(labels) == manifest["totals"]["labels"]
    joined = labels.merge(records[["event_id", "time"]], on="event_id", how="left")
    assert joined["time"].notna().all(), "every label belongs to a well-formed inference"
    delay = timedelta(seconds=manifest["label_delay_seconds"])
    due = joined["time"] + delay
    assert (joined["arrival_hour"] >= due.map(lambda t: t.replace(minute=0, second=0))).all()
    assert (joined["arrival_hour"] < due + timedelta(hours=12)).all()
    missing = 1 - len(labels) / len(records)
    assert 0.025 <= missing <= 0.055
    malformed_ids = {m["event_id"] for m in manifest["malformed"]}
    assert not malformed_ids & set(labels["event_id"])


def _numbers(s: pd.Series) -> pd.Series:
    return pd.to_numeric(s.replace("", np.nan), errors="coerce")


def test_drift_is_there(demo, parsed):
    root, manifest = demo
    records, _, labels = parsed
    drift_start = datetime(2026, 10, 4, tzinfo=timezone.utc)
    after = records["time"] >= drift_start
    charges = _numbers(records["monthly_charges"])
    assert charges[after].mean() >= 1.12 * charges[~after].mean()
    usage = _numbers(records["data_usage_gb"])
    assert usage[after].mean() >= 1.25 * usage[~after].mean()
    mtm = records["contract"] == "month-to-month"
    assert mtm[after].mean() >= mtm[~after].mean() + 0.12

    joined = records.merge(labels, on="event_id")
    pre = joined[joined["time"] < drift_start]
    post = joined[joined["time"] >= drift_start]
    acc_pre = accuracy_score(pre["label"], pre["proba"] >= 0.5)
    acc_post = accuracy_score(post["label"], post["proba"] >= 0.5)
    assert acc_pre > acc_post + 0.04
    fiber = joined["internet_service"] == "fiber"
    assert post.loc[fiber, "label"].mean() > pre.loc[fiber, "label"].mean() + 0.15


def test_incident_hours_and_only_they_have_dq_problems(demo, parsed):
    root, manifest = demo
    records, _, _ = parsed
    inc = manifest["dq_incident"]
    t0 = datetime.strptime(inc["start"], TIME_FMT).replace(tzinfo=timezone.utc)
    t1 = datetime.strptime(inc["end"], TIME_FMT).replace(tzinfo=timezone.utc)
    during = (records["time"] >= t0) & (records["time"] < t1)
    assert during.sum() == inc["rows"]

    age_missing = records["age"] == ""
    central = records["region"] == "central"
    not_int = ~records["support_calls"].str.fullmatch(r"\d+")
    expected = {p["feature"]: p["rows"] for p in inc["problems"]}
    assert age_missing[during].sum() == expected["age"]
    assert central[during].sum() == expected["region"]
    assert not_int[during].sum() == expected["support_calls"]
    assert 0.45 <= age_missing[during].mean() <= 0.75
    assert 0.2 <= central[during].mean() <= 0.4
    assert 0.15 <= not_int[during].mean() <= 0.35
    assert set(records.loc[during & not_int, "support_calls"]) == {"n/a"}

    outside = records[~during]
    assert not (outside["age"] == "").any()
    assert set(outside["region"]) == REGIONS
    assert outside["support_calls"].str.fullmatch(r"\d+").all()
    assert _numbers(outside["age"]).between(18, 90).all()
    # total_charges is missing at its training rate everywhere, incident or not.
    tc_missing = (records["total_charges"] == "").mean()
    assert 0.002 <= tc_missing <= 0.025


def test_start_must_be_midnight(tmp_path):
    with pytest.raises(ValueError, match="midnight"):
        generate_demo(f"file://{tmp_path}", start=datetime(2026, 10, 1, 6, tzinfo=timezone.utc), **SMALL)


@pytest.mark.s3
def test_generates_on_s3_through_a_resolver(monkeypatch):
    """The same scenario goes to an object store, through the resolver it is given."""
    fsspec = pytest.importorskip("fsspec")
    pytest.importorskip("s3fs")
    moto_server = pytest.importorskip("moto.server")
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"

        def resolver(url):
            return fsspec.core.url_to_fs(url, endpoint_url=endpoint, skip_instance_cache=True)

        fs, _ = resolver("s3://demo-bucket")
        fs.mkdir("demo-bucket")
        manifest = generate_demo("s3://demo-bucket/demo", days=2, rows_per_hour=5, training_rows=500,
                                 drift_day=1, resolver=resolver)
        fs, _ = resolver("s3://demo-bucket")
        files = fs.find("demo-bucket/demo")
        assert "demo-bucket/demo/manifest.json" in files
        assert "demo-bucket/demo/model/model.joblib" in files
        captures = [f for f in files if "/capture/churn-endpoint/AllTraffic/2026/10/0" in f]
        assert len(captures) == manifest["totals"]["capture_files"] >= 48
        labels = [f for f in files if "/ground-truth/churn-endpoint/" in f]
        assert len(labels) == manifest["totals"]["label_files"]
        assert [m["kind"] for m in manifest["malformed"]] and all(
            m["file"].startswith("s3://demo-bucket/demo/capture/") for m in manifest["malformed"])
        for bad in manifest["malformed"]:
            lines = fs.cat_file(bad["file"]).decode().splitlines()
            assert _parse_line(lines[bad["line"] - 1]) is None
            assert all(_parse_line(x) for i, x in enumerate(lines) if i != bad["line"] - 1)
        assert manifest["dq_incident"] is None  # day 5 is past a 2-day scenario
    finally:
        server.stop()
