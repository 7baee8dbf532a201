"""The history view: a five-day history written by hand through the code's own writers
(metrics history rows, drift.json, the drift stage's violations, then the real alert
evaluation, run recording and feedback), read back by ``load_history`` and drawn by
``render_history``; a column whose name is HTML and a comment that is, to prove they stay
text; and the demo's week, whose drift starts on 2026-10-04."""
from __future__ import annotations

import html
import json
import posixpath
import re
import shutil
from datetime import datetime, timedelta, timezone

import pytest

from driftline.render.history import load_history, render_history
from driftline.store import Store, interval_key

MODEL = "m"
SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
BY = "<b>mallory</b>"
DAYS = [datetime(2026, 10, 1 + i, tzinfo=timezone.utc) for i in range(5)]
KEYS = [interval_key(d) for d in DAYS]
# x drifts from day 3 on; SCRIPT on day 4 only; k never does, though its score beats SCRIPT's
# on the days SCRIPT is quiet (the drivers are ranked on drift first, not on score).
STAT = {"x": [0.02, 0.03, 0.25, 0.40, 0.30], SCRIPT: [0.01, 0.02, 0.03, 0.15, 0.02], "k": [0.05, 0.09, 0.06, 0.07, 0.04]}
SCORE = {"x": [0.2, 0.3, 2.5, 4.0, 3.0], SCRIPT: [0.1, 0.2, 0.3, 1.5, 0.2], "k": [0.5, 0.9, 0.6, 0.7, 0.4]}
THRESHOLD = 0.1
DOMAIN = [0.50, 0.51, 0.70, 0.80, 0.52]  # domain classifier AUC, threshold 0.55
REALIZED = [0.90, 0.89, 0.84, 0.80, None]  # no labels yet on day 5
ESTIMATED = [0.89, 0.885, 0.86, 0.83, 0.82]
COVERAGE = [1.0, 0.9, 0.8, 0.5, 0.0]
PVALUE = [0.6, 0.5, 0.4, 0.3, 0.2]  # the prediction column is tested (ks), never drifts


def _drift_result(day: int) -> dict:
    def column(name: str, ftype: str, method: str) -> dict:
        drifted = STAT[name][day] >= THRESHOLD
        return {"type": ftype, "checked": True, "method": method, "statistic": STAT[name][day],
                "threshold": THRESHOLD, "pvalue": None, "pvalue_adjusted": None, "distribution_drifted": drifted,
                "drifted": drifted, "score": SCORE[name][day], "contribution_share": 0.0,
                "missing": {"method": "absolute_change", "statistic": 0.0, "threshold": 0.05, "pvalue": None,
                            "drifted": False, "current_share": 0.0, "reference_share": 0.0, "change": 0.0}}

    features = {"x": column("x", "numeric", "wasserstein"), SCRIPT: column(SCRIPT, "categorical", "jensen_shannon"),
                "k": column("k", "integer", "wasserstein")}
    drifted = [n for n, r in features.items() if r["drifted"]]
    for n in drifted:
        features[n]["contribution_share"] = 1.0 / len(drifted)
    proba = {**column("k", "numeric", "ks"), "statistic": 0.01, "pvalue": PVALUE[day], "pvalue_adjusted": PVALUE[day],
             "threshold": 0.05, "drifted": False, "distribution_drifted": False, "score": 0.1}
    return {"checked": True, "features": features, "prediction": {"proba": proba},
            "dataset": {"features": 3, "drifted": len(drifted), "share": len(drifted) / 3, "drift_share": 0.5,
                        "dataset_drift": len(drifted) / 3 >= 0.5, "drifted_features": drifted},
            "multivariate": {"checked": True, "domain_classifier": {
                "method": "domain_classifier", "statistic": DOMAIN[day], "threshold": 0.55,
                "pvalue": 0.01, "drifted": DOMAIN[day] >= 0.55}},
            "summary": f"{len(drifted)} of 3 features drifted"}


def _write_day(cfg, store: Store, day: int) -> None:
    """What the drift and model-quality stages of a run leave, then the real alert evaluation
    and run record."""
    from driftline.pipeline.interval import run_alerts
    from driftline.pipeline.records import record_run
    from driftline.stages.data_quality import write_violations
    from driftline.stages.drift import violations
    from driftline.store.history import write_history_rows

    start, end = DAYS[day], DAYS[day] + timedelta(days=1)
    prefix = Store.run_prefix(MODEL, start)
    result = _drift_result(day)
    store.write_json(posixpath.join(prefix, "drift.json"),
                     {"model": MODEL, "interval_start": start.isoformat(), "interval_end": end.isoformat(),
                      "baseline": "v1", "rows": 100, "partitions": 1, **result})
    write_violations(store, prefix, "drift", violations(result))
    base = {"model": MODEL, "interval_start": start, "interval_end": end, "kind": "realized", "baseline_version": "v1",
            "computed_at": start}
    rows = [{**base, "metric": "drift.share", "segment": "", "value": result["dataset"]["share"]},
            {**base, "metric": "drift.drifted_features", "segment": "", "value": float(result["dataset"]["drifted"])},
            {**base, "metric": "drift.domain_classifier", "segment": "", "value": DOMAIN[day]}]
    for group in ("features", "prediction"):
        for name, r in result[group].items():
            rows += [{**base, "metric": "drift.statistic", "segment": name, "value": r["statistic"]},
                     {**base, "metric": "drift.score", "segment": name, "value": r["score"]},
                     {**base, "metric": "missing_share", "segment": name, "value": 0.0}]
    write_history_rows(store, MODEL, start, "drift", rows)
    cov = {"coverage": COVERAGE[day]}
    mq = [{**base, **cov, "metric": "labels.coverage", "segment": "", "value": COVERAGE[day]},
          {**base, **cov, "metric": "quality.accuracy", "segment": "", "kind": "estimated", "value": ESTIMATED[day],
           "lower": ESTIMATED[day] - 0.02, "upper": ESTIMATED[day] + 0.02},
          {**base, **cov, "metric": "quality.accuracy", "segment": "c=a", "value": 0.1}]  # a segment: not overall
    if REALIZED[day] is not None:
        mq.append({**base, **cov, "metric": "quality.accuracy", "segment": "", "value": REALIZED[day]})
    write_history_rows(store, MODEL, start, "model_quality", mq)
    run_alerts(cfg, store, start, "data")
    record_run(cfg, store, start, end, {"ingest": {"rows": 100 + day, "records_seen": 100 + day, "quarantined": day},
                                        "data_quality": {"status": "ok", "baseline": "v1"},
                                        "drift": {"drifted": result["dataset"]["drifted_features"],
                                                  "summary": result["summary"]}})


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The five days, then a person's answer to x's incident. Returns (cfg, store, root)."""
    from driftline.config import parse_model_config
    from driftline.stages import feedback

    root = tmp_path_factory.mktemp("history")
    cfg = parse_model_config({
        "name": MODEL, "problem_type": "binary_classification", "start_date": "2026-10-01",
        "features": [{"name": "x", "type": "numeric"}, {"name": "k", "type": "integer"}],
        "prediction": {"label": "pred", "probability": "proba"},
        "capture": {"uri": "capture"}, "baseline": {"training_data": "train.parquet"},
        "alerting": {"drift": {"persistence": {"hold": 1, "of": 1}}},
    }, "test.yaml", base_dir=root)
    store = Store(f"file://{root}/store")
    for day in range(len(DAYS)):
        _write_day(cfg, store, day)
    feedback.record(cfg, store, f"{MODEL}|baseline_drift_check|x|{KEYS[2]}", "expected", by=BY, comment=IMG,
                    at=datetime(2026, 10, 6, tzinfo=timezone.utc))
    return cfg, store, root


@pytest.fixture(scope="module")
def data(built):
    return load_history(built[1], MODEL)


@pytest.fixture(scope="module")
def page(data):
    return render_history(data, report_href=lambda key: f"/driftline/{MODEL}/runs/{key}?view=report&x=1")


def _card(page: str, name: str) -> str:
    """The HTML of the drift card of a column, found by its (escaped) name."""
    for part in page.split('<div class="card')[1:]:
        if f"<code>{html.escape(name)}</code>" in part:
            return part
    raise AssertionError(f"no card for {name!r}")


def _points(polyline: str) -> list[tuple[float, float]]:
    pts = re.search(r'points="([^"]*)"', polyline).group(1).split()
    return [tuple(map(float, p.split(","))) for p in pts]


# -- the data ---------------------------------------------------------------------------------
def test_series_are_the_values_written(data):
    json.dumps(data, allow_nan=False)  # plain data, as the web app serves it
    assert [i["key"] for i in data["intervals"]] == KEYS
    assert [i["status"] for i in data["intervals"]] == ["ok", "ok", "violations", "violations", "violations"]
    assert [i["rows"] for i in data["intervals"]] == [100, 101, 102, 103, 104]
    assert [i["quarantined"] for i in data["intervals"]] == [0, 1, 2, 3, 4]
    assert data["intervals"][3]["drifted"] == ["x", SCRIPT]
    x = next(f for f in data["features"] if f["name"] == "x")
    assert x["score"] == pytest.approx(SCORE["x"])
    assert x["statistic"] == pytest.approx(STAT["x"])
    assert x["threshold"] == [THRESHOLD] * 5
    assert x["drifted"] == [False, False, True, True, True]
    assert x["first_drifted"] == KEYS[2] and x["drifted_intervals"] == 3
    assert x["peak_score"] == pytest.approx(4.0)
    assert data["share"]["values"] == pytest.approx([0, 0, 1 / 3, 2 / 3, 1 / 3])
    assert data["share"]["threshold"] == [0.5] * 5
    mv = data["multivariate"]["domain_classifier"]
    assert mv["values"] == pytest.approx(DOMAIN) and mv["threshold"] == [0.55] * 5
    assert mv["drifted"] == [False, False, True, True, False]
    acc = data["quality"]["accuracy"]
    assert acc["realized"][:4] == pytest.approx(REALIZED[:4]) and acc["realized"][4] is None
    assert acc["estimated"] == pytest.approx(ESTIMATED)
    assert acc["lower"] == pytest.approx([v - 0.02 for v in ESTIMATED])
    assert acc["upper"] == pytest.approx([v + 0.02 for v in ESTIMATED])
    assert data["coverage"] == pytest.approx(COVERAGE)
    assert [p["name"] for p in data["prediction"]] == ["proba"]
    assert data["prediction"][0]["pvalue"] == pytest.approx(PVALUE)
    assert data["first"] == {"violations": KEYS[2], "drift": KEYS[2], "incident": KEYS[2]}
    assert data["problems"] == []


def test_drivers_come_first(data):
    assert [(f["name"], f["rank"]) for f in data["features"]] == [("x", 1), (SCRIPT, 2), ("k", 3)]
    assert [f["drifted_intervals"] for f in data["features"]] == [3, 1, 0]


def test_incidents_from_the_alert_events_with_feedback(data):
    got = {(i["check"], i["subject"]): i for i in data["incidents"]}
    assert set(got) == {("baseline_drift_check", "x"), ("baseline_drift_check", SCRIPT),
                        ("multivariate_drift_check", "*")}
    x = got["baseline_drift_check", "x"]
    assert (x["opened"], x["resolved"], x["severity"]) == (KEYS[2], None, "warning")
    assert "wasserstein 0.25 > 0.1" in x["text"]
    assert got["baseline_drift_check", SCRIPT]["opened"] == KEYS[3]
    assert got["baseline_drift_check", SCRIPT]["resolved"] == KEYS[4]
    assert got["multivariate_drift_check", "*"]["resolved"] == KEYS[4]
    [answer] = x["answers"]
    assert (answer["kind"], answer["by"], answer["comment"]) == ("expected", BY, IMG)
    assert answer["until"]
    # answered "expected" and never resolved: suppressed (no message follows), not open forever
    assert (x["state"], x["suppressed_until"]) == ("suppressed", answer["until"])
    assert got["baseline_drift_check", SCRIPT]["state"] == "resolved"


def test_range_keeps_intervals_and_incidents_inside_it(built):
    store = built[1]
    d = load_history(store, MODEL, since=DAYS[1], until=DAYS[3])  # [10-02, 10-04)
    assert [i["key"] for i in d["intervals"]] == KEYS[1:3]
    x = next(f for f in d["features"] if f["name"] == "x")
    assert x["score"] == pytest.approx(SCORE["x"][1:3])
    assert d["quality"]["accuracy"]["estimated"] == pytest.approx(ESTIMATED[1:3])
    assert {(i["subject"], i["opened"]) for i in d["incidents"]} == {("x", KEYS[2]), ("*", KEYS[2])}
    late = load_history(store, MODEL, since=DAYS[4])
    assert [i["key"] for i in late["intervals"]] == KEYS[4:]
    # SCRIPT's incident ended when day 5 began; x's is still open
    assert {i["subject"] for i in late["incidents"]} == {"x"}
    assert late["first"]["incident"] is None  # it opened before the range


# -- the page ---------------------------------------------------------------------------------
def test_page_draws_a_chart_per_feature_with_its_threshold(page):
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert page.index("<code>x</code>") < page.index(f"<code>{html.escape(SCRIPT)}</code>") < page.index(
        "<code>k</code>")
    for name in ("x", SCRIPT, "k"):
        card = _card(page, name)
        series = re.findall(r'<polyline class="series s0"[^>]*>', card)
        assert series and all(len(_points(s)) == len(KEYS) for s in series)
        assert re.search(r'class="threshold"[^>]*><title>threshold 0\.1</title>', card)
    x = _card(page, "x")
    assert x.count('class="hit"') == 2 * 3  # drifted days, on the statistic and on the score chart
    assert re.search(r'class="threshold"[^>]*><title>default threshold \(score 1\) 1</title>', x)
    # the higher the statistic, the higher on the chart (SVG y grows downwards)
    ys = [y for _, y in _points(re.search(r'<polyline class="series s0"[^>]*>', x).group(0))]
    assert ys.index(min(ys)) == 3 and ys[3] < ys[2] < ys[0]
    proba = _card(page, "proba")
    assert "p-value" in proba and re.search(r"<title>alpha 0\.05</title>", proba)


def test_page_draws_quality_band_and_realized_line(page):
    sec = page[page.index('<section id="model-quality">'):]
    sec = sec[:sec.index("</section>")]
    assert sec.count('<polygon class="band"') == 1
    band = re.search(r'<polygon class="band" points="([^"]*)"', sec).group(1).split()
    assert len(band) == 2 * len(KEYS)  # upper edge there, lower edge back
    realized = re.findall(r'<polyline class="series s1"[^>]*>', sec)
    assert [len(_points(p)) for p in realized] == [4]  # day 5 has no labels: the line stops
    assert "label coverage" in sec


def test_page_shows_incidents_verdicts_and_report_links(page):
    timeline = page[page.index('<section id="timeline">'):page.index('<section id="dataset-drift">')]
    assert timeline.count('class="incident') == 3
    assert timeline.count('class="incident open"') == 1
    for key in KEYS:
        link = html.escape(f"/driftline/{MODEL}/runs/{key}?view=report&x=1")
        assert f'href="{link}"' in timeline
        assert f'href="{link}">{key}</a>' in page  # the runs table
    assert timeline.count('class="verdict"') == 5
    assert "<dt>intervals</dt><dd>5 <small>" in page and "2 ok, 3 violations" in page
    incidents = page[page.index('<section id="incidents">'):page.index('<section id="runs">')]
    assert "marked expected by " + html.escape(BY) in incidents
    assert html.escape(IMG) in incidents


def test_every_data_value_is_escaped(page, data):
    assert SCRIPT not in page and IMG not in page and BY not in page and "<img" not in page
    assert html.escape(SCRIPT) in page
    titled = render_history(data, title=SCRIPT)
    assert SCRIPT not in titled and f"<title>{html.escape(SCRIPT)}</title>" in titled


def test_default_links_point_to_the_run_reports(data):
    page = render_history(data)
    assert f'href="../../runs/{MODEL}/{KEYS[0]}/report.html"' in page


# -- missing parts ----------------------------------------------------------------------------
def test_missing_and_unreadable_parts_are_problems_not_errors(built, tmp_path):
    _, store, root = built
    empty = load_history(store, "nobody")
    assert empty["intervals"] == [] and empty["incidents"] == [] and empty["features"] == []
    assert any("no monitored interval" in p for p in empty["problems"])
    assert "No interval in the range" in render_history(empty)

    shutil.copytree(root / "store", tmp_path / "store")
    copy = Store(f"file://{tmp_path}/store")
    copy.write_text(posixpath.join(Store.run_prefix(MODEL, DAYS[1]), "run.json"), "{not json")
    copy.delete(posixpath.join(Store.run_prefix(MODEL, DAYS[2]), "drift.json"))
    for key in KEYS:
        copy.delete(f"metrics/{MODEL}/history/{key}__model_quality.parquet")
    d = load_history(copy, MODEL)
    assert [i["key"] for i in d["intervals"]] == KEYS
    assert d["intervals"][1]["status"] is None and not d["intervals"][1]["run"]
    assert any("run.json: could not be read" in p for p in d["problems"])
    assert any("no model-quality history" in p for p in d["problems"])
    assert d["quality"] == {} and d["coverage"] == [None] * 5
    x = next(f for f in d["features"] if f["name"] == "x")
    assert x["score"][2] == pytest.approx(SCORE["x"][2])  # from the history still
    assert x["drifted"][2] is None and x["threshold"][2] is None  # drift.json is gone
    page = render_history(d)
    assert "NOT RECORDED" in page and "run.json: could not be read" in page


# -- the demo ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_history(labelled_demo_week, tmp_path_factory):
    """The demo week's drift stage run on a copy of the shared store (ingest and baseline
    are the conftest's)."""
    from driftline.demo import demo_interval_starts
    from driftline.pipeline.interval import plan_partitions, profile_partition, run_drift

    w = labelled_demo_week
    root = tmp_path_factory.mktemp("history-demo")
    shutil.copytree(w["store"], root / "store")
    store, cfg = Store(f"file://{root}/store"), w["cfg"]
    starts = demo_interval_starts(w["manifest"])
    for start in starts:
        parts = [profile_partition(cfg, store, start, p) for p in plan_partitions(cfg, store, start)]
        run_drift(cfg, store, start, cfg.interval_end(start), parts)
    return load_history(store, cfg.name), [interval_key(s) for s in starts]


def test_demo_monthly_charges_drives_the_drift_from_october_4(demo_history):
    data, keys = demo_history
    assert [i["key"] for i in data["intervals"]] == keys
    top = [f["name"] for f in data["features"][:3]]
    assert "monthly_charges" in top
    mc = next(f for f in data["features"] if f["name"] == "monthly_charges")
    crossed = [k for k, s, t in zip(keys, mc["statistic"], mc["threshold"]) if s >= t]
    assert crossed == [k for k in keys if k >= "2026-10-04"]
    assert mc["first_drifted"] == "2026-10-04T0000Z"
    assert all((s >= 1) == (k >= "2026-10-04") for k, s in zip(keys, mc["score"]))
    page = render_history(data)
    assert page.index("<code>monthly_charges</code>") < page.index("<code>tenure_months</code>")


def test_an_interval_without_data_is_not_the_first_violation(built, tmp_path):
    """`driftline history` named an empty interval (verdict no_data) as the first violation."""
    _, _, root = built
    shutil.copytree(root / "store", tmp_path / "store")
    copy = Store(f"file://{tmp_path}/store")
    for day, status in ((0, "no_data"), (1, "unknown")):
        rel = posixpath.join(Store.run_prefix(MODEL, DAYS[day]), "run.json")
        copy.write_json(rel, {**copy.read_json(rel), "status": status, "violations": 0})
    d = load_history(copy, MODEL)
    assert [i["status"] for i in d["intervals"]][:3] == ["no_data", "unknown", "violations"]
    assert d["first"]["violations"] == KEYS[2]
