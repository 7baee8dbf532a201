"""The run report: real runs of the demo (a clean day and a drifted day), read back from the
HTML page and the log table; a hand-made run whose names are HTML, to prove they stay text."""
from __future__ import annotations

import html
import posixpath
import re
from datetime import datetime, timezone

import pytest

from driftline.render.report import render_run_report, summary_table, write_run_report
from driftline.store import Store

CLEAN_DAY, DRIFT_DAY = 0, 4
SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The demo, its baseline, and the monitoring of one clean and one drifted day, once."""
    from driftline.config import default_monitors_dir, load_all
    from driftline.demo import generate_demo
    from driftline.pipeline.interval import monitor_interval
    from driftline.stages.baseline import create_baseline

    root = tmp_path_factory.mktemp("report")
    demo = f"file://{root}/demo"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DRIFTLINE_DEMO_ROOT", demo)
        manifest = generate_demo(demo, rows_per_hour=40, training_rows=6000)
        cfg = load_all(default_monitors_dir()).models["churn"]
        store = Store(f"file://{root}/store")
        create_baseline(cfg, store)
        out = {"cfg": cfg, "store": store, "root": root}
        for day in (CLEAN_DAY, DRIFT_DAY):
            start = datetime.fromisoformat(manifest["interval_starts"][day])
            monitor_interval(cfg, store, start, cfg.interval_end(start))
            uri = write_run_report(cfg, store, start)
            prefix = Store.run_prefix(cfg.name, start)
            out[day] = {"start": start, "prefix": prefix, "uri": uri,
                        "html": store.read_bytes(posixpath.join(prefix, "report.html")).decode(),
                        "read": lambda name, p=prefix: store.read_json(posixpath.join(p, name))}
    return out


def _section(page: str, anchor: str) -> str:
    start = page.index(f'<section id="{anchor}">')
    return page[start:page.index("</section>", start)]


def _cards(section: str) -> list[tuple[str, str]]:
    """(feature name as shown, the card's HTML) in page order."""
    parts = section.split('<div class="card')[1:]
    return [(html.unescape(re.search(r"<code>(.*?)</code>", p).group(1)), p) for p in parts]


def test_report_is_written_into_the_run_folder(runs):
    day = runs[DRIFT_DAY]
    assert day["uri"] == runs["store"].uri(day["prefix"], "report.html")
    assert (runs["root"] / "store" / day["prefix"] / "report.html").is_file()
    assert day["html"].startswith("<!DOCTYPE html>") and day["html"].rstrip().endswith("</html>")


def test_the_header_says_which_baseline_judged_the_run_and_its_digest(runs):
    day = runs[DRIFT_DAY]
    run = day["read"]("run.json")
    head = day["html"][:day["html"].index("</header>")]
    assert (f"judged against baseline v1, pinned {run['baseline_pin']['pinned_at'][:10]} "
            f"(the baseline in effect when the interval was first evaluated)") in head
    assert f"verdict digest {run['digest']}" in head


def test_drifted_day_leads_with_the_features_that_drive_the_drift(runs):
    day = runs[DRIFT_DAY]
    drift = day["read"]("drift.json")
    drifted = drift["dataset"]["drifted_features"]
    assert drifted, "the demo's drift day drifted nothing"
    cards = _cards(_section(day["html"], "drift"))
    names = [n for n, _ in cards]
    assert sorted(names) == sorted(drift["features"])
    assert set(names[:len(drifted)]) == set(drifted)  # drifted first ...
    shares = [drift["features"][n]["contribution_share"] for n in names[:len(drifted)]]
    assert shares == sorted(shares, reverse=True)      # ... by their share of the drift
    for name, card in cards:
        r = drift["features"][name]
        assert "<svg" in card, name
        assert f"<th>statistic</th><td>{r['statistic']:.4g}</td>" in card, name
        assert f"<th>method</th><td>{r['method']}</td>" in card
        assert ("DRIFT" in card.split("</h3>")[0]) == r["drifted"], name
        if r["pvalue"] is not None:
            assert f"<th>alpha</th><td>{r['threshold']:.4g}</td>" in card
        else:
            assert f"<th>threshold</th><td>{r['threshold']:.4g}</td>" in card
    # numeric features are drawn on the baseline's bins: two bars per bin
    base = runs["store"].read_json("baselines/churn/v1/profile.json")["columns"]["monthly_charges"]
    svg = re.search(r"<svg.*?</svg>", dict(cards)["monthly_charges"], re.S).group(0)
    assert svg.count("<rect") == 2 * (len(base["edges"]) - 1)
    # categories: one pair of bars per value
    shown = set(drift["features"]["contract"]["reference"]["top"]) | set(drift["features"]["contract"]["current"]["top"])
    assert dict(cards)["contract"].count("<rect") == 2 * len(shown)


def test_drifted_day_shows_prediction_and_multivariate_drift(runs):
    day = runs[DRIFT_DAY]
    drift = day["read"]("drift.json")
    pred = _section(day["html"], "prediction")
    for name, r in drift["prediction"].items():
        assert f"<code>{name}</code>" in pred and f"{r['statistic']:.4g}" in pred
    multi = _section(day["html"], "multivariate")
    for method, r in drift["multivariate"].items():
        if isinstance(r, dict) and "statistic" in r:
            assert method in multi and f"{r['statistic']:.4g}" in multi


def test_drifted_day_shows_model_quality_realized_vs_estimated(runs):
    day = runs[DRIFT_DAY]
    mq = day["read"]("model_quality.json")
    sec = _section(day["html"], "model-quality")
    g = mq["overall"]
    assert f"({mq['labels']['coverage']:.1%} coverage)" in sec
    for metric, value in g["realized"]["metrics"].items():
        est = g["estimated"]["metrics"][metric]
        row = sec[sec.index(f"<td><code>{metric}</code></td>"):].split("</tr>")[0]
        assert f"<td>{value:.4g}</td>" in row and f"<td>{est['value']:.4g}</td>" in row
        assert f"[{est['lower']:.4g}, {est['upper']:.4g}]" in row and "<svg" in row
    assert mq["violations"], "the demo's drift day breached no model-quality threshold"
    for v in mq["violations"]:
        assert html.escape(v["description"]) in sec
    for feature, values in mq["segments"].items():
        for value in values:
            assert f"<code>{feature}={value}</code>" in sec
    bias = _section(day["html"], "bias")
    b = day["read"]("bias.json")
    for label, facet in b["facets"].items():
        assert html.escape(label) in bias
        assert f"{facet['metrics']['DI']:.3g} ± {facet['se']['DI']:.2g}" in bias


def test_drifted_day_lists_violations_data_docs_and_alerts(runs):
    day = runs[DRIFT_DAY]
    page = day["html"]
    dq = _section(page, "data-quality")
    assert '<a href="data_docs/index.html">' in dq
    docs = runs["root"] / "store" / day["prefix"] / "data_docs"
    # the link opens driftline's page of the GX result (script-free); GX's own Data Docs are named beside it
    assert "<script" not in (docs / "index.html").read_text().lower()
    assert "<code>data_docs/gx/index.html</code>" in dq and (docs / "gx" / "index.html").is_file()
    for v in day["read"]("constraint_violations.json")["violations"]:
        assert html.escape(v["description"]) in page
    alerts = [a for g in ("data", "quality") for a in day["read"](f"alerts.{g}.json")["alerts"]]
    assert any(a["status"] == "firing" for a in alerts)
    sec = _section(page, "alerts")
    for a in alerts:
        assert html.escape(a["message"]) in sec
    firing = sum(a["status"] == "firing" for a in alerts)
    assert f"<dt>alerts firing</dt><dd>{firing}</dd>" in page
    assert '<span class="badge bad">VIOLATIONS</span>' in page


def test_clean_day_says_nothing_is_wrong(runs):
    page = runs[CLEAN_DAY]["html"]
    assert '<dt>verdict</dt><dd><span class="badge ok">OK</span></dd>' in page
    assert "No drift detected" in _section(page, "drift")
    assert "No violations" in _section(page, "data-quality")
    assert "No violations in any stage" in page and "No alerts for this interval" in page
    assert "No model-quality breaches" in page and "badge bad" not in page


@pytest.mark.parametrize("day", [CLEAN_DAY, DRIFT_DAY])
def test_the_page_loads_nothing(runs, day):
    page = runs[day]["html"].lower()
    assert "<script" not in page and "<link" not in page and "@import" not in page and "url(" not in page
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"\bsrc\s*=", page)
    assert re.findall(r'href="([^"]*)"', page) == ["data_docs/index.html"]


def test_summary_table_names_the_drifted_features_and_failing_checks(runs):
    day = runs[DRIFT_DAY]
    lines = summary_table(runs["cfg"], runs["store"], day["start"])
    assert lines[0].startswith("churn 2026-10-05T0000Z baseline v1: VIOLATIONS; report file://")
    rows = {line[:13].strip(): line for line in lines[2:]}
    assert list(rows) == ["data quality", "drift", "model quality", "bias", "alerts"]
    counts_at, worst_at = lines[1].index("counts"), lines[1].index("worst")  # fixed-width columns
    assert all(line[counts_at - 1] == line[worst_at - 1] == " " != line[counts_at] for line in lines[2:])
    drifted = day["read"]("drift.json")["dataset"]["drifted_features"]
    assert " DRIFT " in rows["drift"] and all(f in rows["drift"] for f in drifted)
    assert f"{len(drifted)}/11 features" in rows["drift"]
    violations = day["read"]("constraint_violations.json")["violations"]
    dq = [v for v in violations if v["source"] == "data_quality"]
    assert " FAIL " in rows["data quality"] and f"{len(dq)} of " in rows["data quality"]
    assert any(f"{v['constraint_check_type']} {v['feature_name']}" in rows["data quality"] for v in dq)
    mq = [v for v in violations if v["source"] == "model_quality"]
    assert " FAIL " in rows["model quality"] and any(v["feature_name"] in rows["model quality"] for v in mq)
    assert " FIRING " in rows["alerts"]
    clean = summary_table(runs["cfg"], runs["store"], runs[CLEAN_DAY]["start"])
    assert ": OK;" in clean[0] and all(line[14:].split()[0] == "ok" for line in clean[2:])


# -- hand-made runs ---------------------------------------------------------------------------
START = datetime(2026, 10, 1, tzinfo=timezone.utc)


def _hostile_run(store: Store) -> None:
    prefix = Store.run_prefix("m", START)
    w = lambda name, doc: store.write_json(posixpath.join(prefix, name), doc)  # noqa: E731
    w("run.json", {"model": "m", "interval_start": START.isoformat(), "interval_end": "2026-10-02T00:00:00+00:00",
                   "status": "violations", "baseline": IMG, "violations": 2})
    numeric = {"count": 100, "missing": 0, "mean": 1.0, "std": 1.0, "min": 0.0, "max": 3.0,
               **{q: v for q, v in zip(("p05", "p25", "p50", "p75", "p95"), (0.1, 0.5, 1.0, 1.5, 2.5))}}
    w("drift.json", {
        "model": "m", "baseline": IMG, "checked": True, "summary": f"`{SCRIPT}` drifted",
        "dataset": {"features": 2, "drifted": 1, "share": 0.5, "drift_share": 0.5, "dataset_drift": True,
                    "drifted_features": [SCRIPT]},
        "features": {
            SCRIPT: {"type": "categorical", "checked": True, "method": "jensen_shannon", "statistic": 0.3,
                     "threshold": 0.1, "pvalue": None, "drifted": True, "score": 3.0, "contribution_share": 1.0,
                     "why": SCRIPT,
                     "reference": {"count": 100, "top": {SCRIPT: 0.2, "a": 0.8}, "other_share": 0.0},
                     "current": {"count": 100, "top": {IMG: 0.5, "a": 0.5}, "other_share": 0.0}},
            IMG: {"type": "numeric", "checked": True, "method": "ks", "statistic": 0.05, "threshold": 0.05,
                  "pvalue": 0.4, "drifted": False, "score": 0.1, "reference": numeric, "current": numeric},
        },
        "prediction": {}, "multivariate": {"checked": False, "why": SCRIPT}})
    w("constraint_violations.json", {"violations": [
        {"feature_name": SCRIPT, "constraint_check_type": "categorical_values_check", "source": "data_quality",
         "description": f"unknown value {IMG}", "details": {"element_count": 100, "unexpected_count": 50}},
        {"feature_name": IMG, "constraint_check_type": "baseline_drift_check", "source": "drift",
         "description": SCRIPT}]})
    w("quality.json", {"status": "violations", "summary": SCRIPT, "expectations": 3, "baseline": IMG})
    w("alerts.data.json", {"group": "data", "alerts": [
        {"check": "categorical_values_check", "subject": SCRIPT, "severity": "critical", "status": "firing",
         "incident": "2026-10-01T0000Z", "message": f"{SCRIPT} {IMG}"}]})
    w("bias.json", {"facets": {SCRIPT: {"feature": IMG, "n_a": 60, "n_d": 40, "metrics": {"DI": 0.9},
                                        "se": {"DI": 0.1}, "status": "ok", "labels_status": "ok"}},
                    "reference": {}, "rules": {"DI": {"max_change": 0.2}}, "violations": []})


def test_names_from_data_are_text_never_markup(tmp_path, make_config):
    cfg = make_config()
    store = Store(f"file://{tmp_path}/store")
    _hostile_run(store)
    page = render_run_report(cfg, store, START)
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    # the hostile category and feature are drawn (SVG text is escaped too)
    cards = _cards(_section(page, "drift"))
    assert [n for n, _ in cards] == [SCRIPT, IMG]
    assert all("<svg" in c for _, c in cards)
    lines = summary_table(cfg, store, START)
    assert SCRIPT in lines[3]  # the log is plain text: the name as it is


def test_missing_artifacts_become_notes(tmp_path, make_config):
    cfg = make_config()
    store = Store(f"file://{tmp_path}/store")
    page = render_run_report(cfg, store, START)  # nothing ran at all
    for words in ("run.json is missing", "Drift was not computed", "Model quality was not evaluated",
                  "Bias was not computed", "Data quality was not checked", "Alerts were not evaluated"):
        assert words in page, words
    lines = summary_table(cfg, store, START)
    assert "UNKNOWN" in lines[0] and all(" not run " in line for line in lines[2:])
    # drift and data quality ran, labels are not in yet
    prefix = Store.run_prefix("m", START)
    store.write_json(posixpath.join(prefix, "model_quality.json"), {
        "labels": {"predicted": 500, "labelled": 0, "coverage": 0.0},
        "overall": {"realized": {"status": "not_enough_labels", "why": "not enough labels: 0 of 500 predictions labelled"},
                    "estimated": {"status": "ok", "metrics": {"accuracy": {"value": 0.8, "lower": 0.75, "upper": 0.85}}}},
        "violations": []})
    page = render_run_report(cfg, store, START)
    assert "not enough labels: 0 of 500 predictions labelled" in page and "[0.75, 0.85]" in page
    mq = [line for line in summary_table(cfg, store, START) if line.startswith("model quality")][0]
    assert " no labels " in mq


# -- feedback: suppressed violations and the answers to the run's alerts ------------------------
def test_feedback_suppresses_violations_visibly(runs, tmp_path):
    """On a copy of the drifted day: drift alerts fire at once (1 of 1), dave marks the range
    check on monthly_charges a false positive, bob marks data_usage_gb's drift expected and
    carol acknowledges contract's; the alerts are evaluated again and the run recorded."""
    import shutil

    from driftline.config import AlertPolicy, Persistence
    from driftline.pipeline.records import record_run
    from driftline.stages import feedback
    from driftline.stages.alerts import dispatch, evaluate

    shutil.copytree(runs["root"] / "store", tmp_path / "store")
    store = Store(f"file://{tmp_path}/store")
    base = runs["cfg"]
    cfg = base.model_copy(update={"alerting": base.alerting.model_copy(update={
        "drift": AlertPolicy(severity="warning", persistence=Persistence(hold=1, of=1))})})
    day = runs[DRIFT_DAY]
    start, prefix, key = day["start"], day["prefix"], "2026-10-05T0000Z"
    dispatch(cfg, store, evaluate(cfg, store, start, "data")["messages"], None)
    drifted = day["read"]("drift.json")["dataset"]["drifted_features"]
    assert {"monthly_charges", "data_usage_gb", "contract"} <= set(drifted)
    range_incident = next(a["incident"] for a in day["read"]("alerts.data.json")["alerts"]
                          if a["check"] == "range_check" and a["subject"] == "monthly_charges")
    feedback.record(cfg, store, f"churn|range_check|monthly_charges|{range_incident}", "false_positive", "dave",
                    "the price list changed")
    feedback.record(cfg, store, f"churn|baseline_drift_check|data_usage_gb|{key}", "expected", "bob", SCRIPT)
    feedback.record(cfg, store, f"churn|baseline_drift_check|contract|{key}", "acknowledged", "carol")
    evaluate(cfg, store, start, "data")
    read = lambda name: store.read_json(posixpath.join(prefix, name))  # noqa: E731
    record_run(cfg, store, start, cfg.interval_end(start), read("run.json")["stages"])
    run = read("run.json")
    page = render_run_report(cfg, store, start)

    violations = read("constraint_violations.json")["violations"]
    quiet = [v for v in violations if (v["constraint_check_type"], v["feature_name"]) in
             {("range_check", "monthly_charges"), ("baseline_drift_check", "data_usage_gb")}]
    assert len(quiet) == 2 and run["violations"] == len(violations) - 2
    assert {(s["check"], s["subject"]) for s in run["suppressed"]} == {("range_check", "monthly_charges"),
                                                                        ("baseline_drift_check", "data_usage_gb")}
    assert f"<dt>violations</dt><dd>{len(violations)} (2 suppressed by feedback)</dd>" in page
    assert run["violations"] > 0 and run["status"] == "violations"  # the other checks still fail
    verdict = "VIOLATIONS"
    assert f'<dt>verdict</dt><dd><span class="badge bad">{verdict}</span>' in page
    # where each violation is shown: its check's section, the alerts, the list of all violations
    dq = _section(page, "data-quality")
    row = dq[dq.index("<td>range_check</td><td><code>monthly_charges</code></td>"):].split("</tr>")[0]
    assert '<span class="badge info">suppressed</span>' in row and "marked false positive by dave on" in row
    assert "the price list changed (suppressed until" in row
    card = dict(_cards(_section(page, "drift")))["data_usage_gb"]
    assert '<span class="badge info">suppressed</span>' in card.split("</h3>")[0]
    assert "marked expected by bob on" in card and html.escape(SCRIPT) in card
    assert "suppressed" not in dict(_cards(_section(page, "drift")))["contract"].split("</h3>")[0]
    alerts = _section(page, "alerts")
    quiet_rows = [r for r in alerts.split("<tr>") if r.startswith('<td><span class="badge info">suppressed')]
    assert len(quiet_rows) == 2
    contract = next(r for r in alerts.split("<tr>") if "<code>contract</code>" in r)
    assert "acknowledged by carol on" in contract and "badge bad" in contract  # acknowledging suppresses nothing
    answers = _section(page, "feedback")
    assert answers.count("<tr><td><span class=\"badge") == 3
    for who in ("dave", "bob", "carol"):
        assert f"<td>{who}</td>" in answers
    assert html.escape(SCRIPT) in answers and "<script" not in page
    everything = _section(page, "violations")
    assert f"{len(violations)} violation(s) (2 suppressed by feedback); the verdict counts {len(violations) - 2}" \
        in everything
    # the log table
    lines = summary_table(cfg, store, start)
    assert f": {verdict}; {len(violations)} violations (2 suppressed by feedback); report " in lines[0]
    rows = {line[:13].strip(): line for line in lines[2:]}
    assert "(1 suppressed by feedback)" in rows["data quality"]
    assert "1 suppressed by feedback" in rows["drift"] and "data_usage_gb" not in rows["drift"].split("drifted:")[1]
    assert "2 suppressed" in rows["alerts"]


def test_feedback_from_data_is_text_never_markup(tmp_path, make_config):
    """Who and what people wrote, and the widened threshold's story, are escaped too."""
    from driftline.stages import feedback

    cfg = make_config()
    store = Store(f"file://{tmp_path}/store")
    _hostile_run(store)
    key = f"m|categorical_values_check|{SCRIPT}|2026-10-01T0000Z"
    store.write_json("alerts/m/events/x.json", {"incident_key": key, "check": "categorical_values_check",
                                                "subject": SCRIPT, "incident": "2026-10-01T0000Z",
                                                "severity": "critical", "text": SCRIPT, "interval": "2026-10-01T0000Z",
                                                "event": "firing"})
    rec = feedback.record(cfg, store, key, "false_positive", IMG, SCRIPT).record
    fb = {k: rec[k] for k in ("kind", "by", "at", "comment", "until")}
    prefix = Store.run_prefix("m", START)
    run = store.read_json(posixpath.join(prefix, "run.json"))
    store.write_json(posixpath.join(prefix, "run.json"), {**run, "suppressed": [
        {"check": "categorical_values_check", "subject": SCRIPT, **fb}]})
    alerts = store.read_json(posixpath.join(prefix, "alerts.data.json"))
    alerts["alerts"][0].update(status="suppressed", incident=None, feedback=fb)
    store.write_json(posixpath.join(prefix, "alerts.data.json"), alerts)
    drift = store.read_json(posixpath.join(prefix, "drift.json"))
    drift["features"][SCRIPT].update(threshold=0.375, threshold_feedback={
        "was": 0.1, "by": IMG, "at": "2026-10-06T10:00:00+00:00", "comment": SCRIPT, "interval": SCRIPT,
        "statistic": 0.3})
    drift["features"][IMG]["reference_feedback"] = {"intervals": [SCRIPT], "rows": 10, "by": [IMG]}
    store.write_json(posixpath.join(prefix, "drift.json"), drift)
    page = render_run_report(cfg, store, START)
    assert "<script" not in page and "<img" not in page
    assert f"marked false positive by {html.escape(IMG)} on" in page
    assert (f"<th>threshold</th><td>0.375 (widened from 0.1 by false-positive feedback of {html.escape(IMG)} "
            f"on 2026-10-06)</td>") in page
    assert f"marked expected by {html.escape(IMG)}" in page
    answers = _section(page, "feedback")
    assert f"<td>{html.escape(IMG)}</td>" in answers and f"<td>{html.escape(SCRIPT)}</td>" in answers
    assert "<dt>violations</dt><dd>2 (1 suppressed by feedback)</dd>" in page
