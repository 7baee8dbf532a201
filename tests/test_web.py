"""The driftline page (driftline.ui.app, plugins/driftline_plugin.py) on the demo's drifted days,
monitored by the real DAG under dag.test():

* the app alone (FastAPI's TestClient, a fixed user): models, runs, reports, Data Docs, the
  alerts and their feedback form, what it refuses to serve;
* the extra links the DAG's tasks leave for the UI;
* feedback given on the page changes the next run's verdict as the README says;
* a real browser: Airflow's API server on loopback with the plugin, headless Chromium driven by
  Playwright, a user who logs in, opens the driftline page from the UI's navigation, sees the demo
  model, opens a report and the history, and marks an alert a false positive; the store holds the
  answer under that user's name. Screenshots go to test-artifacts/browser/.
"""
from __future__ import annotations

import json
import os
import posixpath
import re
import shutil
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from urllib.request import urlopen

import pytest

from driftline.stages import answers
from driftline.store import Store, interval_key

pytestmark = pytest.mark.e2e

PROJECT = Path(__file__).resolve().parent.parent
SHOTS = PROJECT / "test-artifacts" / "browser"
#: The demo's first two drifted days: quality alerts open on the first, drift alerts (2 of 3) on the second.
RUN_DAYS = [3, 4]
NEXT_DAY = 5
CHROMIUM = os.environ.get("DRIFTLINE_CHROMIUM", "/usr/bin/chromium")
#: Chromium on a machine without a network: no background connections, no sandbox (root in CI).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _start(manifest: dict, day: int) -> datetime:
    return datetime.fromisoformat(manifest["interval_starts"][day])


def _run_days(site_env: dict, manifest: dict, days: list[int]) -> dict[int, str]:
    from driftline_airflow.local_runs import get_dag, run_interval

    with pytest.MonkeyPatch.context() as mp:
        for k, v in site_env.items():
            mp.setenv(k, v)
        dag = get_dag("driftline_monitor_churn")
        out = {}
        for d in days:
            start = _start(manifest, d)
            dr = run_interval(dag, start, start + timedelta(days=1))
            assert str(dr.state).endswith("success"), f"day {d}: {dr.state}"
            out[d] = dr.run_id
    return out


@pytest.fixture(scope="module")
def site(labelled_demo_week, airflow_db, tmp_path_factory):
    """The demo week's store with days 3 and 4 monitored by the real DAG (reports, alerts, links)."""
    root = tmp_path_factory.mktemp("web")
    shutil.copytree(labelled_demo_week["store"], root / "store")
    env = {"DRIFTLINE_DEMO_ROOT": labelled_demo_week["demo"], "DRIFTLINE_STORE_URL": f"file://{root}/store"}
    manifest = labelled_demo_week["manifest"]
    run_ids = _run_days(env, manifest, RUN_DAYS)
    return {"root": root, "env": env, "manifest": manifest, "run_ids": run_ids, "cfg": labelled_demo_week["cfg"]}


def _copy(site: dict, dest: Path) -> tuple[Store, dict]:
    """A copy of the site's store (for tests that answer alerts), and its environment."""
    shutil.copytree(site["root"] / "store", dest)
    return Store(f"file://{dest}"), {**site["env"], "DRIFTLINE_STORE_URL": f"file://{dest}"}


def _client(store: Store, cfg, user=None, **headers):
    from fastapi.testclient import TestClient

    from driftline.ui.app import Person, create_app

    app = create_app(store=lambda: store, configs=lambda: {"churn": cfg}, user=user or (lambda: Person("tester")))
    return TestClient(app, follow_redirects=False, headers=headers)


def _day_key(site: dict, day: int) -> str:
    return interval_key(_start(site["manifest"], day))


# -- the app alone ---------------------------------------------------------------------------
def test_index_lists_the_model_with_its_latest_verdict(site):
    store = Store(site["env"]["DRIFTLINE_STORE_URL"])
    c = _client(store, site["cfg"])
    page = c.get("/")
    assert page.status_code == 200 and "script-src" not in page.headers["content-security-policy"]
    key = _day_key(site, 4)
    run = store.read_json(posixpath.join(Store.run_prefix("churn", _start(site["manifest"], 4)), "run.json"))
    assert f'href="models/churn/runs/{key}/report.html"' in page.text
    assert run["status"] == "violations" and ">violations<" in page.text
    rows = c.get("/api/models").json()
    assert [r["model"] for r in rows] == ["churn"]
    assert rows[0]["latest"] == key and rows[0]["violations"] == run["violations"]
    assert rows[0]["intervals"] == len(site["manifest"]["interval_starts"])  # every day was ingested
    assert rows[0]["open_alerts"] > 0 and rows[0]["unanswered"] == rows[0]["open_alerts"]
    model = c.get("/models/churn/")
    assert model.status_code == 200
    for d in RUN_DAYS:
        assert f'href="runs/{_day_key(site, d)}/report.html"' in model.text
    assert c.get("/models/churn").status_code == 307
    assert c.get("/models/nope/").status_code == 404


def test_reports_and_data_docs_are_served_and_nothing_else(site):
    store = Store(site["env"]["DRIFTLINE_STORE_URL"])
    c = _client(store, site["cfg"])
    key = _day_key(site, 4)
    prefix = Store.run_prefix("churn", _start(site["manifest"], 4))
    report = c.get(f"/models/churn/runs/{key}/report.html")
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    assert report.content == store.read_bytes(posixpath.join(prefix, "report.html"))
    assert report.headers["content-security-policy"].startswith("default-src 'none'")
    docs = c.get(f"/models/churn/runs/{key}/data_docs/index.html")  # the report's relative link
    # driftline's Data Docs page: no script, no request, and sandboxed too (it prints data values)
    assert docs.status_code == 200 and docs.content == store.read_bytes(posixpath.join(prefix, "data_docs/index.html"))
    policy = [d.strip() for d in docs.headers["content-security-policy"].split(";")]
    assert policy[0] == "default-src 'none'" and "sandbox" in policy and "script-src" not in str(policy)
    assert docs.headers["x-content-type-options"] == "nosniff"
    # GX prints data values as they are: its own pages run sandboxed, in an opaque origin without the session
    gx = c.get(f"/models/churn/runs/{key}/data_docs/gx/index.html")  # linked from driftline's page
    assert gx.status_code == 200 and gx.headers["content-security-policy"].startswith("sandbox allow-scripts")
    assert "allow-same-origin" not in gx.headers["content-security-policy"]
    assert gx.headers["x-content-type-options"] == "nosniff"
    assert c.get(f"/models/churn/runs/{key}/run.json").json()["interval"] == key
    for bad in [f"/models/churn/runs/{key}/batch.parquet",                      # tables stay in the store
                f"/models/churn/runs/{key}/..%2F..%2F..%2Fbaselines%2Fchurn%2Fv1%2Fmanifest.json",
                f"/models/churn/runs/{key}/../../../baselines/churn/v1/manifest.json",
                "/models/churn/runs/not-a-key/report.html",
                "/models/churn/runs/2026-13-05T0000Z/report.html",                  # not a date
                f"/models/churn/runs/{key}%0A/report.html",
                f"/models/churn/runs/{_day_key(site, 0)}/report.html"]:           # a day never monitored
        assert c.get(bad).status_code == 404, bad


def test_pages_refuse_without_a_user(site):
    from fastapi import HTTPException

    def nobody():
        raise HTTPException(401, "Not authenticated")

    c = _client(Store(site["env"]["DRIFTLINE_STORE_URL"]), site["cfg"], user=nobody)
    key = _day_key(site, 4)
    values = {"model": "churn", "key": key, "path": "report.html"}
    routes = [r for r in c.app.routes if getattr(r, "methods", None) and r.path.startswith("/")]
    assert len(routes) >= 8
    for r in routes:  # every route the app has, so a new one cannot forget the user
        url = re.sub(r"{(\w+)(:path)?}", lambda m: values[m.group(1)], r.path)
        for method in r.methods - {"HEAD"}:
            got = c.request(method, url, data={"incident": "x", "kind": "expected"})
            assert got.status_code == 401, (method, url, got.status_code)


def test_feedback_from_the_page_is_stored_with_who_and_shown_escaped(site, tmp_path):
    from driftline.ui.app import incidents

    store, _ = _copy(site, tmp_path / "store")
    c = _client(store, site["cfg"])
    page = c.get("/models/churn/alerts")
    incs = [i for i in incidents(store, "churn") if i["state"] == "open"]
    assert incs and all(f'data-incident="{i["incident_key"]}"' in page.text for i in incs)
    target = next(i for i in incs if i["check"] == "baseline_drift_check")
    card = _card(page.text, target["incident_key"])
    assert "No answer yet." in card and '<form class="feedback"' in card and "<details" not in card
    hostile = "promo week <script>alert(1)</script>"
    answer = {"incident": target["incident_key"], "kind": "false_positive", "comment": hostile}
    r = c.post("/models/churn/feedback", data=answer)
    assert r.status_code == 303 and r.headers["location"].startswith("alerts?answered=")
    [rec] = answers.read_all(store, "churn")
    assert (rec["incident_key"], rec["kind"], rec["by"], rec["comment"], rec["source"]) == \
        (target["incident_key"], "false_positive", "tester", hostile, "driftline-page")
    # the window runs from the interval the incident opened in, not from the latest run
    window = site["cfg"].alerting.suppress_false_positive
    assert rec["until"] == (datetime.fromisoformat(rec["from"]) + window).isoformat()
    assert rec["from"].startswith(target["opened"][:10])
    after = c.get(r.headers["location"].replace("alerts", "/models/churn/alerts", 1))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in after.text and "<script>" not in after.text
    assert "False positive recorded for baseline_drift_check" in after.text
    # answered: the card shows who said what and when, and offers a change, not a fresh answer
    card = _card(after.text, target["incident_key"])
    assert card.startswith(' data-state="suppressed" data-answered="yes"') and \
        f"suppressed until {rec['until'][:10]}" in card
    assert "<strong>Answered:</strong> marked false positive by tester on" in card and "(on this page)" in card
    assert '<details class="change"><summary>Change the answer</summary>' in card and "No answer yet" not in card
    row = c.get("/api/models").json()[0]
    assert row["open_alerts"] == len(incs) - 1 and row["unanswered"] == len(incs) - 1
    # the same answer again (a second submit, or without the comment) records nothing, and says so
    for again in (answer, {**answer, "comment": ""}):
        r2 = c.post("/models/churn/feedback", data=again)
        assert r2.status_code == 303 and r2.headers["location"].startswith("alerts?already=")
        said = c.get(r2.headers["location"].replace("alerts", "/models/churn/alerts", 1)).text
        assert "Already answered, nothing new recorded for baseline_drift_check" in said
        assert "marked false positive by tester on" in said.split('role="status">', 1)[1].split("</p>", 1)[0]
    assert len(answers.read_all(store, "churn")) == 1
    # a different answer changes it: recorded as a change, in force (the suppression ends), shown as such
    r3 = c.post("/models/churn/feedback", data={"incident": target["incident_key"], "kind": "acknowledged"})
    assert r3.status_code == 303 and r3.headers["location"].startswith("alerts?answered=")
    changed = c.get(r3.headers["location"].replace("alerts", "/models/churn/alerts", 1)).text
    assert "Answer changed for baseline_drift_check" in changed
    card = _card(changed, target["incident_key"])
    assert card.startswith(' data-state="open" data-answered="yes"')
    assert "<strong>Answered:</strong> acknowledged by tester on" in card
    assert "(was: false positive by tester on" in card
    assert "1 earlier answer(s)" in card and "&lt;script&gt;" in card
    [again] = [i for i in incidents(store, "churn") if i["incident_key"] == target["incident_key"]]
    assert (again["state"], again["suppressed_until"]) == ("open", None)
    assert c.get("/api/models").json()[0]["open_alerts"] == len(incs)
    # the flash comes from the store: a crafted link shows nothing of its own
    assert "forged" not in c.get("/models/churn/alerts?answered=forged<b>").text
    assert "forged" not in c.get("/models/churn/alerts?already=forged<b>").text
    # a wrong answer says what is wrong and records nothing
    bad = c.post("/models/churn/feedback", data={"incident": target["incident_key"], "kind": "ignore"})
    assert bad.status_code == 400 and "expected one of acknowledged, false_positive, expected" in bad.text
    unknown = c.post("/models/churn/feedback", data={"incident": "churn|x|y|2026-10-01T0000Z", "kind": "expected"})
    assert unknown.status_code == 400 and "no alert incident" in unknown.text
    assert len(answers.read_all(store, "churn")) == 2


def _card(html: str, key: str) -> str:
    """The alerts page's card of one incident, from just after its data-incident attribute."""
    return html.split(f'data-incident="{key}"', 1)[1].split('<div class="card incident"', 1)[0]


def test_answering_takes_the_right_and_the_page_itself(site, tmp_path):
    from driftline.ui.app import Person, incidents

    store, _ = _copy(site, tmp_path / "store")
    key = next(i for i in incidents(store, "churn") if i["state"] == "open")["incident_key"]
    answer = {"incident": key, "kind": "expected"}
    reader = _client(store, site["cfg"], user=lambda: Person("viewer", may_answer=lambda model: False))
    page = reader.get("/models/churn/alerts")
    assert page.status_code == 200 and "viewer may read these alerts but not answer them" in page.text
    assert '<form class="feedback"' not in page.text
    refused = reader.post("/models/churn/feedback", data=answer)
    assert refused.status_code == 403 and "needs edit permission on the DAG driftline_monitor_churn" in refused.text
    # a form posted from another site (its Origin names another host) is refused
    elsewhere = _client(store, site["cfg"], origin="https://evil.example")
    assert elsewhere.post("/models/churn/feedback", data=answer).status_code == 403
    assert answers.read_all(store, "churn") == []
    # browsers say where a request comes from: cross-site is refused whatever the Origin says
    forged = _client(store, site["cfg"], origin="http://testserver", **{"sec-fetch-site": "cross-site"})
    assert forged.post("/models/churn/feedback", data=answer).status_code == 403
    assert answers.read_all(store, "churn") == []
    same = _client(store, site["cfg"], origin="http://testserver")
    assert same.post("/models/churn/feedback", data=answer).status_code == 303
    # behind a proxy that rewrites Host, the browser's same-origin or the forwarded host vouch
    # (each says what the first said: answered already, nothing new recorded)
    proxied = _client(store, site["cfg"], origin="https://airflow.example.com", **{"sec-fetch-site": "same-origin"})
    assert proxied.post("/models/churn/feedback", data=answer).headers["location"].startswith("alerts?already=")
    forwarded = _client(store, site["cfg"], origin="https://airflow.example.com",
                        **{"x-forwarded-host": "airflow.example.com"})
    assert forwarded.post("/models/churn/feedback", data=answer).headers["location"].startswith("alerts?already=")
    assert [r["by"] for r in answers.read_all(store, "churn")] == ["tester"]


def test_the_tasks_link_to_their_run_report(site):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    key = _day_key(site, 4)
    with create_session() as session:
        rows = session.execute(select(XComModel.task_id, XComModel.key, XComModel.value).where(
            XComModel.dag_id == "driftline_monitor_churn", XComModel.run_id == site["run_ids"][4],
            XComModel.key.like("_link_%"))).all()
    links = {(t, k): XComModel.deserialize_value(type("X", (), {"value": v})()) for t, k, v in rows}
    for task in ("ingest", "data_quality", "drift", "model_quality", "alert_data", "record_run", "report"):
        assert links[(task, "_link_RunReportLink")] == f"/driftline/models/churn/runs/{key}/report.html", task
        assert links[(task, "_link_HistoryLink")] == "/driftline/models/churn/history"


# -- feedback changes the next run's verdict ---------------------------------------------------
def test_a_false_positive_from_the_page_leaves_the_next_verdict(site, tmp_path):
    """README: a false positive suppresses the check on that subject for
    alerting.suppress_false_positive of data time -- the violation stays in
    constraint_violations.json, raises no alert and does not count in run.json's verdict."""
    store, env = _copy(site, tmp_path / "store")
    c = _client(store, site["cfg"])
    from driftline.ui.app import incidents

    answered = [i for i in incidents(store, "churn") if i["state"] == "open"]
    assert answered
    for inc in answered:
        assert c.post("/models/churn/feedback", data={"incident": inc["incident_key"], "kind": "false_positive",
                                                      "comment": "known promo"}).status_code == 303
    _run_days(env, site["manifest"], [NEXT_DAY])
    prefix = Store.run_prefix("churn", _start(site["manifest"], NEXT_DAY))
    run = store.read_json(posixpath.join(prefix, "run.json"))
    violations = store.read_json(posixpath.join(prefix, "constraint_violations.json"))["violations"]
    from driftline.stages.alerts import subject_of

    pairs = {(i["check"], i["subject"]) for i in answered}
    muted = [v for v in violations if (v["constraint_check_type"], subject_of(v)) in pairs]
    assert muted, "the next day still fails some answered check (the demo keeps drifting)"
    assert run["violations"] == len(violations) - len(muted)
    assert {(s["check"], s["subject"]) for s in run["suppressed"]} == {(v["constraint_check_type"], subject_of(v))
                                                                       for v in muted}
    alerts = {g: store.read_json(posixpath.join(prefix, f"alerts.{g}.json")) for g in ("data", "quality")}
    statuses = {(a["check"], a["subject"]): a["status"] for g in alerts.values() for a in g["alerts"]}
    assert all(statuses.get(p) in (None, "suppressed", "resolved") for p in pairs), \
        {p: statuses.get(p) for p in pairs}
    assert any(statuses.get(p) == "suppressed" for p in pairs)


# -- a real browser ----------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def api_server(site, tmp_path_factory, airflow_db):
    """Airflow's API server on a loopback port with the driftline plugin, on the session's
    metadata DB and a copy of the site's store, and two users (alice, an admin; vic, a viewer)
    with a password. Once per module: the browser tests share it (only one of them answers)."""
    tmp_path = tmp_path_factory.mktemp("api-server")
    store, env = _copy(site, tmp_path / "store")
    port = _free_port()
    passwords = tmp_path / "passwords.json"
    passwords.write_text(json.dumps({"alice": "wonderland", "vic": "viewer-pw"}))
    env = {**os.environ, **env,
           "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT / "plugins"),
           "AIRFLOW__CORE__LAZY_LOAD_PLUGINS": "False",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "alice:admin,vic:viewer",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
           "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
           "AIRFLOW__API_AUTH__JWT_SECRET": "driftline-test-secret"}
    log = (tmp_path / "api-server.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "airflow", "api-server", "-H", "127.0.0.1", "-p", str(port),
                             "-w", "1"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urlopen(f"{base}/api/v2/monitor/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the API server did not start:\n{(tmp_path / 'api-server.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield {"base": base, "store": store}
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
        log.close()


def _log_in(page, base: str, user: str = "alice", password: str = "wonderland") -> None:
    """Open the driftline page without a session: Airflow's login, then back to the page."""
    page.goto(f"{base}/driftline/")
    page.wait_for_url("**/login**")
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/driftline/")


def test_browser_driftline_page_report_and_false_positive(site, api_server):
    from playwright.sync_api import expect, sync_playwright

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} missing: scripts/test.sh installs Debian's chromium"
    SHOTS.mkdir(parents=True, exist_ok=True)
    base, store = api_server["base"], api_server["store"]
    key = _day_key(site, 4)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(30_000)
            # the driftline page without a session goes to Airflow's login, then comes back
            _log_in(page, base)
            expect(page.get_by_role("link", name="churn", exact=True)).to_be_visible()

            # inside the UI: the navigation's "driftline" entry shows the page (exact: the home page's
            # asset events link driftline_alerts_churn & co. once they have loaded)
            page.goto(f"{base}/")
            page.get_by_role("link", name="driftline", exact=True).click()
            frame = page.frame_locator("iframe")
            expect(frame.get_by_role("heading", name="Monitored models")).to_be_visible()
            expect(frame.get_by_role("link", name="churn", exact=True)).to_be_visible()
            expect(frame.get_by_text("violations").first).to_be_visible()
            page.screenshot(path=str(SHOTS / "1-driftline-in-airflow-ui.png"))

            # the latest run's report, from the models table
            frame.get_by_role("link", name=key).click()
            expect(frame.get_by_text("monthly_charges").first).to_be_visible()
            page.screenshot(path=str(SHOTS / "2-run-report.png"), full_page=True)

            # the history, from the model's page
            page.goto(f"{base}/driftline/models/churn/")
            page.get_by_role("link", name="history").click()
            expect(page.get_by_role("heading", name="Feature drift (drivers first)")).to_be_visible()
            expect(page.locator("body")).to_contain_text("monthly_charges")
            page.screenshot(path=str(SHOTS / "3-history.png"), full_page=True)

            # the report task's extra link, as the UI gets it from the REST API
            links = page.request.get(f"{base}/api/v2/dags/driftline_monitor_churn/dagRuns/{site['run_ids'][4]}"
                                     "/taskInstances/report/links").json()["extra_links"]
            # computed by the worker (here dag.test(), without [api] base_url): a path on the UI's host
            assert links["driftline report"] == f"/driftline/models/churn/runs/{key}/report.html", links
            assert links["driftline history"] == "/driftline/models/churn/history", links
            page.goto(base + links["driftline report"])
            expect(page.get_by_role("heading").first).to_contain_text("churn")

            # mark a drift alert a false positive
            page.goto(f"{base}/driftline/models/churn/alerts")
            card = page.locator(".incident", has_text="baseline_drift_check").first
            incident = card.get_attribute("data-incident")
            card.get_by_label("False positive").check()
            card.locator("textarea").fill("promo week, not a real shift")
            card.get_by_role("button", name="Send").click()
            expect(page.get_by_role("status")).to_contain_text("False positive recorded")
            expect(page.locator(f'.incident[data-incident="{incident}"]')).to_contain_text(
                "marked false positive by alice")
            page.screenshot(path=str(SHOTS / "4-false-positive-recorded.png"), full_page=True)

            # the card shows the answer; sending the same again (a second submit) records nothing
            card = page.locator(f'.incident[data-incident="{incident}"]')
            expect(card.locator("p.answer")).to_contain_text("Answered: marked false positive by alice")
            expect(card.get_by_text("No answer yet")).to_have_count(0)
            card.get_by_text("Change the answer").click()
            card.get_by_label("False positive").check()
            card.get_by_role("button", name="Change").click()
            expect(page.get_by_role("status")).to_contain_text("Already answered, nothing new recorded")
            expect(page.get_by_role("status")).to_contain_text("marked false positive by alice")
            page.screenshot(path=str(SHOTS / "4b-already-answered.png"), full_page=True)
        finally:
            browser.close()
    [rec] = answers.read_all(store, "churn")
    assert (rec["incident_key"], rec["kind"], rec["by"], rec["comment"], rec["source"]) == \
        (incident, "false_positive", "alice", "promo week, not a real shift", "driftline-page")
    assert rec["until"] > rec["from"]
    # a viewer (Airflow's role, through the plugin) reads the page but may not answer
    import urllib.request

    def call(method: str, path: str, token: str | None = None, data: bytes | None = None, ctype=None):
        req = urllib.request.Request(base + path, data=data, method=method)
        for k, v in {"Authorization": f"Bearer {token}" if token else None, "Content-Type": ctype}.items():
            if v:
                req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    status, body = call("POST", "/auth/token", data=json.dumps({"username": "vic", "password": "viewer-pw"}).encode(),
                        ctype="application/json")
    assert status in (200, 201), body
    token = json.loads(body)["access_token"]
    assert call("GET", "/driftline/api/models", token)[0] == 200
    assert call("GET", "/driftline/api/models")[0] == 401
    status, body = call("POST", "/driftline/models/churn/feedback", token, ctype="application/x-www-form-urlencoded",
                        data=f"incident={incident}&kind=expected".encode())
    assert status == 403 and "vic may not answer churn's alerts" in body, (status, body)
    assert len(answers.read_all(store, "churn")) == 1


def _on_loopback(url: str) -> bool:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.scheme in ("data", "about", "blob") or parts.hostname == "127.0.0.1"


def test_browser_data_docs_offline_in_the_sandbox(site, api_server):
    """A run's Data Docs, opened from its report inside the Airflow UI, on a machine without a
    network: the browser reaches only the API server on loopback, every request the pages make
    and every console or page error is recorded; none leaves loopback, none is an error, and
    the failed expectations (their name and column) are on screen."""
    from playwright.sync_api import expect, sync_playwright

    base = api_server["base"]
    key = _day_key(site, 4)
    result = api_server["store"].read_json(
        posixpath.join(Store.run_prefix("churn", _start(site["manifest"], 4)), "gx_validation.json"))
    failed = [(r["expectation_config"]["type"], r["expectation_config"]["kwargs"]["column"])
              for r in result["results"] if not r["success"]]
    assert failed, "the demo's day 4 fails some expectation (a range check)"
    requests: list[str] = []
    errors: list[str] = []
    with sync_playwright() as p:
        # no name resolves but loopback's, and every request elsewhere fails (the network is off)
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=CHROMIUM_ARGS + ["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"])
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            context.route("**/*", lambda route: route.continue_() if _on_loopback(route.request.url)
                          else route.abort("internetdisconnected"))
            page = context.new_page()
            page.set_default_timeout(30_000)
            _log_in(page, base)
            context.on("request", lambda r: requests.append(r.url))
            page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(f"page error: {e}"))

            # in the UI: driftline > the run's report > its Data Docs, all in the UI's iframe
            page.goto(f"{base}/")
            page.get_by_role("link", name="driftline", exact=True).click()
            frame = page.frame_locator("iframe")
            frame.get_by_role("link", name=key).click()
            frame.get_by_role("link", name="Data Docs of this run").click()
            expect(frame.get_by_role("heading", name=f"Data Docs: churn {key}")).to_be_visible()
            for type_, column in failed:
                row = frame.locator("tr.failed").filter(has_text=type_).filter(has_text=column)
                expect(row.first).to_be_visible()
                expect(row.first.get_by_text("failed", exact=True)).to_be_visible()
            page.screenshot(path=str(SHOTS / "5-data-docs-in-airflow-ui-offline.png"))

            # the page alone, as the report's link opens it outside the UI
            page.goto(f"{base}/driftline/models/churn/runs/{key}/data_docs/index.html")
            for type_, column in failed:
                expect(page.locator("tr.failed").filter(has_text=type_).filter(has_text=column).first).to_be_visible()
            expect(page.locator("tr.met").first).to_be_visible()
            page.screenshot(path=str(SHOTS / "6-data-docs-offline.png"), full_page=True)
        finally:
            browser.close()
    assert any(u.endswith(f"/runs/{key}/data_docs/index.html") for u in requests), requests
    assert [u for u in requests if not _on_loopback(u)] == []
    assert errors == []


def test_cli_writes_the_history_page_next_to_the_metrics(site, tmp_path, capsys, monkeypatch):
    from driftline.cli import main

    store, env = _copy(site, tmp_path / "store")
    monkeypatch.setenv("DRIFTLINE_DEMO_ROOT", env["DRIFTLINE_DEMO_ROOT"])
    since = _start(site["manifest"], 4).date().isoformat()
    assert main(["--store", env["DRIFTLINE_STORE_URL"], "history", "--model", "churn", "--since", since]) == 0
    out = capsys.readouterr().out
    # days 5 and 6 were ingested (the fixture) but never monitored: in the range, without a verdict
    assert f"churn: 3 interval(s); first drift {_day_key(site, 4)}" in out
    assert "2 interval(s) without a readable run.json" in out
    page = store.read_bytes("metrics/churn/history.html").decode()
    # from metrics/churn/, the verdicts link to the run reports in the store
    assert f'href="../../runs/churn/{_day_key(site, 4)}/report.html"' in page
    assert f"runs/churn/{_day_key(site, 3)}/report.html" not in page   # before the range


@pytest.mark.s3
def test_the_page_reads_an_s3_store_and_sees_new_runs(site, s3_conn, monkeypatch):
    """The plugin's store (DRIFTLINE_STORE_URL s3://..., the Airflow aws connection) on moto's S3
    server: pages, reports and answers go through the S3 API; a run written after the first look
    shows (s3fs would otherwise serve its first listing for ever in the long-lived API server)."""
    import boto3

    from driftline_airflow.runtime import get_store

    endpoint, bucket = s3_conn
    monkeypatch.setenv("DRIFTLINE_STORE_URL", f"s3://{bucket}/store")
    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="x", aws_secret_access_key="y",
                      region_name="us-east-1")
    local = site["root"] / "store"
    skip = (".parquet",)  # tables are not read by the page; keep the upload small
    for path in local.rglob("*"):
        if path.is_file() and not path.name.endswith(skip):
            s3.upload_file(str(path), bucket, f"store/{path.relative_to(local).as_posix()}")
    from fastapi.testclient import TestClient

    from driftline.ui.app import Person, create_app

    c = TestClient(create_app(store=get_store, configs=lambda: {"churn": site["cfg"]}, user=lambda: Person("s3-user")),
                   follow_redirects=False)
    key4 = _day_key(site, 4)
    key5 = interval_key(_start(site["manifest"], len(site["manifest"]["interval_starts"]) - 1) + timedelta(days=1))
    assert c.get("/api/models").json()[0]["latest"] == key4
    report = c.get(f"/models/churn/runs/{key4}/report.html")
    assert report.status_code == 200 and report.content == (local / "runs/churn" / key4 / "report.html").read_bytes()
    # a worker writes a new interval's run (a folder the page has not listed before); it shows at once
    run5 = {**json.loads((local / "runs/churn" / key4 / "run.json").read_text()), "interval": key5}
    s3.put_object(Bucket=bucket, Key=f"store/runs/churn/{key5}/run.json", Body=json.dumps(run5).encode())
    assert c.get("/api/models").json()[0]["latest"] == key5
    # an answer lands in the bucket
    from driftline.ui.app import incidents

    target = next(i for i in incidents(get_store(), "churn") if i["state"] == "open")
    assert c.post("/models/churn/feedback", data={"incident": target["incident_key"],
                                                  "kind": "acknowledged"}).status_code == 303
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="store/alerts/churn/feedback/")["Contents"]]
    assert len(keys) == 1 and json.loads(s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read())["by"] == "s3-user"
    assert "acknowledged by s3-user" in c.get("/models/churn/alerts").text
