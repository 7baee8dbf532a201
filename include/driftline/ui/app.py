"""The driftline page: the monitored models, their latest verdict, each run's report, the
history, and the alerts a person can answer -- as a FastAPI app.

Airflow's API server mounts it under ``/driftline`` (``plugins/driftline_plugin.py``, which
also puts it in the UI's navigation); it has no Airflow import, so tests can serve it alone.
Who is asking comes from the ``user`` dependency the caller passes (the plugin's resolves the
Airflow session): a :class:`Person` with a name and whether they may answer a model's alerts.
Every route of the app depends on it; answers are stored under that name.

Routes (all links are relative, so the app works under any prefix and in the UI's iframe):

- ``/``                                 models: latest interval, verdict, violations, open alerts
- ``/models/<m>/``                      the model: runs with their verdict and report
- ``/models/<m>/history?since=&until=`` the history view (``driftline.render.history``)
- ``/models/<m>/alerts``                incidents with the answer in force (who, what, when) and the
                                        earlier ones, a form to answer (or change the answer)
- ``POST /models/<m>/feedback``         record an answer (``driftline.stages.feedback.record``; the same
                                        answer again records nothing and says so)
- ``/models/<m>/runs/<interval>/<file>`` a run's artifact: ``report.html``, the Data Docs, JSON
- ``/api/models``                       the overview as JSON

Pages written here escape every value that came from data or from a person (``driftline.common.html.esc``),
and are served with a Content-Security-Policy that allows no script, so a value that slipped
through could not run anyway. Run reports and the runs' Data Docs pages (``data_docs/index.html``,
``driftline.stages.data_quality_docs``) are driftline's own script-free pages and get the same policy (the
Data Docs page sandboxed as well). Every other file of a run folder (Great Expectations' own
Data Docs in ``data_docs/gx/``, which carry their own scripts and print data values as they
are) is served **sandboxed**: its scripts run in an opaque origin, without the user's session,
so a value crafted in the captured data cannot act on Airflow as the person viewing it.
Answers are POSTed from a same-origin form; a POST whose ``Origin`` (or ``Referer``) names
another host is refused, and the Airflow session cookie is ``SameSite=Lax``.
"""
from __future__ import annotations

import mimetypes
import posixpath
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable
from urllib.parse import quote, urlencode, urlsplit

from fastapi import Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from driftline.common.html import STYLE, badge, esc, table
from driftline.config import ModelConfig
from driftline.stages import answers as fb_answers
from driftline.stages import feedback as fb
from driftline.stages.alerts import incidents as alert_incidents
from driftline.store import Store, StoreError, as_utc, parse_interval_key

#: No script, no network: what driftline's own pages need.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'self'"
#: driftline's Data Docs page prints data values (escaped, without script): on top of CSP, a sandbox
#: gives it an opaque origin, so even a value that slipped through could not act as the viewer.
DOCS_CSP = CSP + "; sandbox"
#: Files that are not driftline's own (GX's Data Docs): scripts run, but in an opaque origin, without the session.
SANDBOX = "sandbox allow-scripts allow-popups; frame-ancestors 'self'"
#: A run's files driftline writes itself (script-free pages), and the policy each is served with.
OWN_PAGES = {("report.html",): CSP, ("data_docs", "index.html"): DOCS_CSP}
#: Files of a run folder the page serves, by suffix (the batch and merged tables stay in the store).
SERVED = (".html", ".json", ".jsonl", ".css", ".js", ".png", ".svg", ".woff", ".woff2", ".ttf")
_KEY = re.compile(r"\d{4}-\d{2}-\d{2}T\d{4}Z")
KIND_LABELS = {"acknowledged": "Acknowledge", "false_positive": "False positive", "expected": "Expected"}
STATE_BADGES = {"open": "bad", "suppressed": "info", "resolved": "ok", "withdrawn": "info"}
SOURCES = {"driftline-page": "on this page", "airflow-hitl": "in Airflow", "cli": "from the CLI"}
NAV_STYLE = """
nav.top{display:flex;gap:14px;align-items:baseline;border-bottom:1px solid #d5dbe1;padding-bottom:6px;margin-bottom:8px}
nav.top a{text-decoration:none}.flash{background:#dff3e4;border:1px solid #b7e0c2;padding:6px 10px;border-radius:5px}
.error{background:#fbe0de;border:1px solid #f0b8b2;padding:6px 10px;border-radius:5px}
form.feedback{display:flex;flex-wrap:wrap;gap:6px;align-items:center;margin:4px 0}
form.feedback textarea{width:260px;height:34px}.answers{font-size:12px;color:#3b4652}form.range{margin:8px 0}
p.answer{background:#eef3f8;border-left:3px solid #7a94ad;padding:4px 8px;margin:6px 0}
details.change summary{cursor:pointer}
"""
PAGE_STYLE = STYLE + NAV_STYLE


@dataclass(frozen=True)
class Person:
    """Who is asking: a name (stored with each answer) and whether they may answer a model's
    alerts (an answer can silence them, so a read-only user may not)."""

    name: str
    may_answer: Callable[[str], bool] = field(default=lambda model: True, compare=False)


# -- what the pages show ---------------------------------------------------------------------
def is_interval_key(key: str) -> bool:
    if not _KEY.fullmatch(key):
        return False
    try:
        parse_interval_key(key)
    except ValueError:
        return False
    return True


def run_keys(store: Store, model: str) -> list[str]:
    """The model's run folders (interval keys), oldest first."""
    return sorted(n for n in store.listdir(posixpath.join("runs", model)) if is_interval_key(n))


def read_run(store: Store, model: str, key: str) -> dict | None:
    """The run's ``run.json``, or None when the run did not get that far (or is unreadable)."""
    try:
        run = store.read_json(posixpath.join("runs", model, key, "run.json"))
    except (StoreError, ValueError):
        return None
    return run if isinstance(run, dict) and "status" in run else None


def incidents(store: Store, model: str) -> list[dict]:
    """Every alert incident of the model (``driftline.stages.alerts.incidents``), newest first."""
    return list(reversed(alert_incidents(store, model)))


def overview(store: Store, configs: dict[str, ModelConfig]) -> list[dict]:
    """One row per monitored model: the latest run's verdict and the open alert incidents. A model
    whose artifacts cannot be read gets a row saying so, and the others are shown."""
    rows = []
    for name in sorted(configs):
        try:
            keys = run_keys(store, name)
            latest = next((r for r in (read_run(store, name, k) for k in reversed(keys)) if r), None)
            incs = incidents(store, name)
        except StoreError as exc:
            rows.append({"model": name, "error": str(exc), "intervals": None, "latest": None, "status": None,
                         "baseline": None, "violations": None, "drift": None, "model_quality": None,
                         "open_alerts": 0, "unanswered": 0})
            continue
        rows.append({
            "model": name, "error": None, "intervals": len(keys), "latest": latest["interval"] if latest else None,
            "status": latest["status"] if latest else None, "baseline": latest.get("baseline") if latest else None,
            "violations": latest.get("violations") if latest else None,
            "drift": latest.get("drift") if latest else None,
            "model_quality": latest.get("model_quality") if latest else None,
            "open_alerts": sum(1 for i in incs if i["state"] == "open"),
            "unanswered": sum(1 for i in incs if i["state"] == "open" and not i["answers"]),
        })
    return rows


# -- HTML ------------------------------------------------------------------------------------
def span(d: timedelta) -> str:
    """7 days -> '7d', 36 hours -> '1d 12h', 90 minutes -> '1h 30m'."""
    mins = int(d.total_seconds() // 60)
    parts = [(mins // 1440, "d"), (mins % 1440 // 60, "h"), (mins % 60, "m")]
    return " ".join(f"{n}{u}" for n, u in parts if n) or "0m"


def status_badge(status: str | None) -> str:
    kind = {"ok": "ok", "no_data": "warn", "violations": "bad", "failed": "bad"}.get(status or "", "info")
    return badge(status or "no run", kind)


def nav_bar(crumbs: list[tuple[str, str]] | None = None) -> str:
    nav = " › ".join(f'<a href="{esc(href)}">{esc(text)}</a>' for text, href in (crumbs or []))
    return f"<nav class=\"top\"><strong>driftline</strong>{' ' + nav if nav else ''}</nav>"


def page(title: str, body: str, crumbs: list[tuple[str, str]] | None = None) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{esc(title)}</title><style>{PAGE_STYLE}</style></head><body>"
            f"{nav_bar(crumbs)}{body}</body></html>\n")


def index_page(rows: list[dict]) -> str:
    if not rows:
        body = "<h1>Monitored models</h1><p class=\"note\">No model files found (include/monitors/).</p>"
        return page("driftline", body)
    cells = []
    for r in rows:
        m = quote(r["model"], safe="")
        if r.get("error"):
            cells.append([f'<strong>{esc(r["model"])}</strong>', "", badge("unreadable", "bad"), "",
                          esc(r["error"]), "", ""])
            continue
        latest = (f'<a href="models/{m}/runs/{esc(r["latest"])}/report.html">{esc(r["latest"])}</a>'
                  if r["latest"] else '<span class="note">no run yet</span>')
        alerts = (f'<a href="models/{m}/alerts">{r["open_alerts"]} open, {r["unanswered"]} unanswered</a>'
                  if r["open_alerts"] else f'<a href="models/{m}/alerts">none open</a>')
        cells.append([f'<a href="models/{m}/"><strong>{esc(r["model"])}</strong></a>', latest,
                      status_badge(r["status"]), esc(r["violations"] if r["violations"] is not None else "–"),
                      esc(r["drift"] or "–"), alerts,
                      f'<a href="models/{m}/history">history</a>'])
    return page("driftline", "<h1>Monitored models</h1>" + table(
        ["model", "latest interval", "verdict", "violations", "drift", "alerts", ""], cells))


def model_page(cfg: ModelConfig, store: Store) -> str:
    rows = []
    for key in reversed(run_keys(store, cfg.name)):
        run = read_run(store, cfg.name, key)
        has_report = store.exists(posixpath.join("runs", cfg.name, key, "report.html"))
        rows.append([f'<a href="runs/{esc(key)}/report.html">{esc(key)}</a>' if has_report else esc(key),
                     status_badge(run["status"] if run else None),
                     esc(run.get("baseline", "–") if run else "–"),
                     esc(run.get("violations", "–") if run else "–"),
                     esc(", ".join(run.get("violation_checks", [])) if run else "ingested, not evaluated (yet)"),
                     esc((run or {}).get("drift", ""))])
    runs = table(["interval", "verdict", "baseline", "violations", "checks failed", "drift"], rows) if rows \
        else '<p class="note">No runs yet.</p>'
    body = (f"<h1>{esc(cfg.name)}</h1><p>{esc(cfg.description or '')}</p>"
            f'<p><a href="history">history</a> · <a href="alerts">alerts and feedback</a></p><h2>Runs</h2>{runs}')
    return page(f"driftline {cfg.name}", body, [("models", "../../"), (cfg.name, "./")])


def _form(inc: dict, change: bool) -> str:
    form = (f'<form class="feedback" method="post" action="feedback">'
            f'<input type="hidden" name="incident" value="{esc(inc["incident_key"])}">'
            + "".join(f'<label><input type="radio" name="kind" value="{k}" required> {esc(v)}</label>'
                      for k, v in KIND_LABELS.items())
            + '<textarea name="comment" placeholder="comment (e.g. known seasonal change)"></textarea>'
            f'<button type="submit">{"Change" if change else "Send"}</button></form>')
    # an answered incident shows its answer first; changing it is a deliberate second step
    return f'<details class="change"><summary>Change the answer</summary>{form}</details>' if change else form


def _answer_block(inc: dict, request: dict | None) -> str:
    """Who answered what and when (the answer in force, then the earlier ones), or that nobody
    has -- and whether a request in Airflow waits for an answer."""
    answer = inc.get("answer")
    if answer:
        earlier = "".join(f"<li>{esc(fb_answers.note(a))}</li>" for a in reversed(inc["answers"][:-1]))
        return (f'<p class="answer"><strong>Answered:</strong> {esc(fb_answers.note(answer))}'
                f' <small>({esc(SOURCES.get(answer.get("source"), answer.get("source") or ""))})</small></p>'
                + (f'<details class="answers"><summary>{len(inc["answers"]) - 1} earlier answer(s)</summary>'
                   f'<ul class="answers">{earlier}</ul></details>' if earlier else ""))
    if inc["state"] == "withdrawn":
        return '<p class="answers note">Withdrawn by a re-judgement: nothing to answer.</p>'
    asked = (f' Asked in Airflow (Required Actions of <code>{esc(request.get("dag_id") or "")}</code>, run '
             f'<code>{esc(request.get("run_id"))}</code>, until {esc(str(request.get("expires") or "")[:16])}).'
             if request else "")
    return f'<p class="answers note">No answer yet.{asked}</p>'


def alerts_page(cfg: ModelConfig, store: Store, who: Person, flash: str | None = None,
                error: str | None = None) -> str:
    may = who.may_answer(cfg.name)
    try:
        requests = fb.waiting(fb.read_requests(store, cfg.name), datetime.now(timezone.utc))
    except (StoreError, ValueError, KeyError):
        requests = {}  # what Airflow asked is a hint here; the answers below are what counts
    cards = []
    for inc in incidents(store, cfg.name):
        sev = {"critical": "bad", "warning": "warn"}.get(inc["severity"], "info")
        answerable = may and inc["state"] != "withdrawn"
        form = _form(inc, change=bool(inc["answers"])) if answerable else ""
        state = inc["state"] + (f" until {inc['suppressed_until'][:10]}" if inc.get("suppressed_until") else "")
        report = f'<a href="runs/{esc(inc["last"])}/report.html">report of {esc(inc["last"])}</a>'
        cards.append(
            f'<div class="card incident" data-incident="{esc(inc["incident_key"])}" data-state="{esc(inc["state"])}"'
            f' data-answered="{"yes" if inc["answers"] else "no"}">'
            f'{badge(str(inc["severity"]), sev)} {badge(state, STATE_BADGES.get(inc["state"], "info"))} '
            f'<strong>{esc(inc["check"])}</strong> on <code>{esc(inc["subject"])}</code> '
            f'<small>opened {esc(inc["opened"])}, last {esc(inc["last"])} · {report}</small>'
            f'<p>{esc(inc["latest_text"] or inc["text"] or "")}</p>'
            + _answer_block(inc, requests.get(inc["incident_key"])) + form + "</div>")
    head = (f'<p class="flash" role="status">{esc(flash)}</p>' if flash else "") + \
           (f'<p class="error" role="alert">{esc(error)}</p>' if error else "")
    doc = ("<p>Answer an alert: <em>Acknowledge</em> records that it is being handled; "
           "<em>False positive</em> and <em>Expected</em> also suppress the check on that subject for "
           f"{esc(span(cfg.alerting.suppress_false_positive))} / {esc(span(cfg.alerting.suppress_expected))} "
           "of data time from the interval the incident opened in (no alert, not counted in the verdict); "
           "a baseline built with <code>--absorb-feedback</code> takes them in. An incident has one answer in "
           "force, the latest: the same answer again records nothing; a different one changes it.</p>")
    if not may:
        doc += f'<p class="note">{esc(who.name)} may read these alerts but not answer them.</p>'
    body = (f"<h1>{esc(cfg.name)}: alerts</h1>{head}{doc}"
            + ("".join(cards) if cards else '<p class="note">No alert has been raised for this model.</p>'))
    return page(f"driftline {cfg.name} alerts", body, [("models", "../../"), (cfg.name, "./"), ("alerts", "alerts")])


def _answered_flash(store: Store, model: str, incident_key: str, already: bool = False) -> str | None:
    """What the page says after an answer: read back from the store, never from the URL (which
    only names the incident, and whether the answer was one already recorded)."""
    try:
        answers = fb_answers.incident_answers(store, model, incident_key)
    except (StoreError, ValueError, KeyError):
        return None
    if not answers:
        return None
    a = answers[-1]
    what = f"{a['check']} on {a['subject']}"
    if already:
        return f"Already answered, nothing new recorded for {what}: {fb_answers.note(a)}"
    if a.get("replaces"):
        return f"Answer changed for {what}: {fb_answers.note(a)}"
    return f"{KIND_LABELS.get(a['kind'], a['kind'])} recorded for {what}: {fb_answers.note(a)}"


def _same_origin(request: Request) -> bool:
    """A browser's POST must come from this site's own page. Browsers say so in Sec-Fetch-Site
    (right behind a proxy that rewrites Host too); without it, the Origin (or Referer) must name
    this host (Host, or X-Forwarded-Host from a proxy). No header at all: not a browser form (a
    script with a bearer token); ``null``: an opaque, sandboxed origin -- refused."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site == "same-origin"
    source = request.headers.get("origin") or request.headers.get("referer")
    if source is None:
        return True
    hosts = {request.headers.get("host"), request.headers.get("x-forwarded-host")} - {None}
    return source != "null" and urlsplit(source).netloc in hosts


# -- the app ---------------------------------------------------------------------------------
def create_app(*, store: Callable[[], Store], configs: Callable[[], dict[str, ModelConfig]],
               user: Callable[..., Person], history: Callable[..., str] | None = None) -> FastAPI:
    """The driftline page as a FastAPI app.

    ``store()`` and ``configs()`` are called per request (a changed model file or store shows
    without a restart); ``user`` is a FastAPI dependency returning the :class:`Person` asking (it
    raises to refuse) -- every route depends on it; ``history(store, cfg, since, until)`` renders
    the history view (default: ``driftline.render.history``)."""
    app = FastAPI(title="driftline", docs_url=None, redoc_url=None, openapi_url=None,
                  dependencies=[Depends(user)])

    @app.middleware("http")
    async def _headers(request, call_next):
        # "/driftline" must become "/driftline/", or every relative link would miss the prefix
        root = request.scope.get("root_path", "")
        if root and request.url.path == root:
            query = f"?{request.url.query}" if request.url.query else ""
            return RedirectResponse(f"{root}/{query}", status_code=307)
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response

    def html(text: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(text, status_code=status, headers={"Content-Security-Policy": CSP})

    def model_cfg(model: str) -> ModelConfig:
        cfgs = configs()
        if model not in cfgs:
            raise HTTPException(404, f"no monitored model {model!r} (known: {', '.join(sorted(cfgs)) or 'none'})")
        return cfgs[model]

    @app.get("/", response_class=HTMLResponse)
    def index():
        return html(index_page(overview(store(), configs())))

    @app.get("/api/models")
    def api_models():
        return JSONResponse(overview(store(), configs()))

    @app.get("/models/{model}")
    def model_noslash(model: str):
        return RedirectResponse(f"{quote(model, safe='')}/", status_code=307)

    @app.get("/models/{model}/", response_class=HTMLResponse)
    def model_view(model: str):
        return html(model_page(model_cfg(model), store()))

    @app.get("/models/{model}/history", response_class=HTMLResponse)
    def history_view(model: str, since: str | None = Query(None), until: str | None = Query(None),
                     to: str | None = Query(None, description="last day shown (inclusive), as the form sends it")):
        cfg = model_cfg(model)
        try:
            lo = as_utc(datetime.fromisoformat(since)) if since else None
            hi = as_utc(datetime.fromisoformat(until)) if until else None
            if to and not until:
                hi = as_utc(datetime.fromisoformat(to)) + timedelta(days=1)
        except ValueError as exc:
            raise HTTPException(400, f"since/until/to: an ISO date or time is expected ({exc})") from None
        render = history or _default_history
        return html(render(store(), cfg, lo, hi))

    @app.get("/models/{model}/alerts", response_class=HTMLResponse)
    def alerts_view(model: str, answered: str | None = None, already: str | None = None,
                    who: Person = Depends(user)):
        cfg = model_cfg(model)
        st = store()
        key = already or answered
        return html(alerts_page(cfg, st, who,
                                flash=_answered_flash(st, cfg.name, key, already=bool(already)) if key else None))

    @app.post("/models/{model}/feedback")
    def feedback_post(request: Request, model: str, incident: str = Form(...), kind: str = Form(...),
                      comment: str = Form(""), who: Person = Depends(user)):
        cfg = model_cfg(model)
        if not _same_origin(request):
            raise HTTPException(403, "an answer must come from the driftline page itself (Origin mismatch)")
        if not who.may_answer(cfg.name):
            raise HTTPException(403, f"{who.name} may not answer {cfg.name}'s alerts "
                                     f"(needs edit permission on the DAG driftline_monitor_{cfg.name})")
        st = store()
        try:
            done = fb.record(cfg, st, incident, kind, by=who.name, comment=comment.strip(), source="driftline-page")
        except fb_answers.FeedbackError as exc:
            return html(alerts_page(cfg, st, who, error=str(exc)), status=400)
        said = "answered" if done.new else "already"
        return RedirectResponse(f"alerts?{urlencode({said: done.record['incident_key']})}", status_code=303)

    @app.get("/models/{model}/runs/{key}/{path:path}")
    def run_file(model: str, key: str, path: str):
        cfg = model_cfg(model)
        if not is_interval_key(key):
            raise HTTPException(404, f"{key!r} is not an interval key like 2026-10-05T0000Z")
        parts = [p for p in path.split("/") if p]
        if not parts or any(p in (".", "..") or "\\" in p for p in parts) or not path.lower().endswith(SERVED):
            raise HTTPException(404, f"{path!r} is not a page or artifact of a run")
        rel = posixpath.join(Store.run_prefix(cfg.name, parse_interval_key(key)), *parts)
        try:
            data = store().read_bytes(rel)
        except StoreError:
            raise HTTPException(404, f"{cfg.name} {key}: no {'/'.join(parts)} in this run") from None
        media = mimetypes.guess_type(parts[-1])[0] or "application/octet-stream"
        policy = OWN_PAGES.get(tuple(parts), CSP if media == "application/json" else SANDBOX)
        headers: dict[str, Any] = {"Content-Security-Policy": policy}
        return Response(data, media_type=media, headers=headers)

    return app


def _default_history(store: Store, cfg: ModelConfig, since: datetime | None, until: datetime | None) -> str:
    from driftline.render.history import load_history, render_history

    data = load_history(store, cfg.name, since=since, until=until)
    return render_history(data, report_href=lambda key: f"runs/{quote(key, safe='')}/report.html",
                          nav=_history_nav(cfg, since, until))


def _history_nav(cfg: ModelConfig, since: datetime | None, until: datetime | None) -> str:
    """The page's navigation and the range selector (a GET form: the range is in the URL; the
    form's last day is inclusive)."""
    last = (until - timedelta(days=1)).date().isoformat() if until else ""
    form = ('<form class="range" method="get" action="history">range: '
            f'<label>from <input type="date" name="since" value="{esc(since.date().isoformat() if since else "")}">'
            f'</label> <label>to <input type="date" name="to" value="{esc(last)}"></label> '
            '<button type="submit">Show</button> <a href="history">everything</a></form>')
    return (f"<style>{NAV_STYLE}</style>" + nav_bar([("models", "../../"), (cfg.name, "./"), ("history", "history"),
                                                      ("alerts", "alerts")]) + form)
