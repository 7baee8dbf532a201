"""The driftline page: the monitored models, their latest verdict, each run's report, the
history, and the alerts a person can answer -- as a FastAPI app.

Airflow's API server mounts it under ``/driftline`` (``plugins/driftline_plugin.py``, which
also puts it in the UI's navigation); it has no Airflow import, so tests can serve it alone.
Who is asking comes from the ``user`` dependency the caller passes (the plugin's resolves the
Airflow session); every page needs one, and feedback is stored under that name.

Routes (all links are relative, so the app works under any prefix and in the UI's iframe):

- ``/``                                 models: latest interval, verdict, violations, open alerts
- ``/models/<m>/``                      the model: runs with their verdict and report
- ``/models/<m>/history?since=&until=`` the history view (``driftline.history``)
- ``/models/<m>/alerts``                incidents with their answers, and the feedback form
- ``POST /models/<m>/feedback``         record an answer (``driftline.feedback.record``)
- ``/models/<m>/runs/<interval>/<file>`` a run's artifact: ``report.html``, the GX Data Docs, JSON
- ``/api/models``                       the overview as JSON

Pages written here escape every value that came from data or from a person (``report.esc``),
and are served with a Content-Security-Policy that allows no script, so a value that slipped
through could not run anyway. Run reports are driftline's own script-free pages and get the
same policy; Great Expectations' Data Docs carry their own scripts and are served as they are.
Answers are POSTed from a same-origin form: the Airflow session cookie is ``SameSite=Lax``,
so another site cannot post one on a user's behalf.
"""
from __future__ import annotations

import mimetypes
import posixpath
import re
from datetime import datetime, timedelta
from typing import Any, Callable
from urllib.parse import quote, urlencode

from fastapi import Depends, FastAPI, Form, HTTPException, Query
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from driftline import feedback as fb
from driftline.alerts import read_events
from driftline.config import ModelConfig
from driftline.report import STYLE, badge, esc, table
from driftline.store import Store, StoreError, as_utc, parse_interval_key

#: No script, no network: what driftline's own pages need.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'self'"
#: Files of a run folder the page serves, by suffix (the batch and merged tables stay in the store).
SERVED = (".html", ".json", ".jsonl", ".css", ".js", ".png", ".svg", ".woff", ".woff2", ".ttf")
_KEY = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{4}Z$")
KIND_LABELS = {"acknowledged": "Acknowledge", "false_positive": "False positive", "expected": "Expected"}
PAGE_STYLE = STYLE + """
nav.top{display:flex;gap:14px;align-items:baseline;border-bottom:1px solid #d5dbe1;padding-bottom:6px;margin-bottom:8px}
nav.top a{text-decoration:none}.flash{background:#dff3e4;border:1px solid #b7e0c2;padding:6px 10px;border-radius:5px}
.error{background:#fbe0de;border:1px solid #f0b8b2;padding:6px 10px;border-radius:5px}
form.feedback{display:flex;flex-wrap:wrap;gap:6px;align-items:center;margin:4px 0}
form.feedback textarea{width:260px;height:34px}.answers{font-size:12px;color:#3b4652}
"""


# -- what the pages show ---------------------------------------------------------------------
def run_keys(store: Store, model: str) -> list[str]:
    """The model's run folders (interval keys), oldest first."""
    return sorted(n for n in store.listdir(posixpath.join("runs", model)) if _KEY.match(n))


def read_run(store: Store, model: str, key: str) -> dict | None:
    """The run's ``run.json``, or None when the run did not get that far (or is unreadable)."""
    try:
        return store.read_json(posixpath.join("runs", model, key, "run.json"))
    except StoreError:
        return None


def incidents(store: Store, model: str) -> list[dict]:
    """Every alert incident of the model, newest first: check, subject, severity, the sentence of
    its latest message, opened/last interval, ``state`` (open or resolved) and its answers."""
    answers: dict[str, list[dict]] = {}
    for r in fb.read_all(store, model):
        answers.setdefault(r["incident_key"], []).append(r)
    out: dict[str, dict] = {}
    for e in read_events(store, model):
        inc = out.setdefault(e["incident_key"], {
            "incident_key": e["incident_key"], "check": e["check"], "subject": e["subject"],
            "severity": e["severity"], "opened": e["incident"], "last": e["interval"], "state": "open",
            "text": e["text"], "answers": answers.get(e["incident_key"], [])})
        if e["interval"] >= inc["last"]:
            inc["last"], inc["severity"] = e["interval"], e["severity"]
            inc["state"] = "resolved" if e["event"] == "resolved" else "open"
            if e["event"] != "resolved":
                inc["text"] = e["text"]
    return sorted(out.values(), key=lambda i: (i["opened"], i["check"], i["subject"]), reverse=True)


def overview(store: Store, configs: dict[str, ModelConfig]) -> list[dict]:
    """One row per monitored model: the latest run's verdict and the open alert incidents."""
    rows = []
    for name in sorted(configs):
        keys = run_keys(store, name)
        latest = next((r for r in (read_run(store, name, k) for k in reversed(keys)) if r), None)
        incs = incidents(store, name)
        rows.append({
            "model": name, "runs": len(keys), "latest": latest["interval"] if latest else None,
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


def page(title: str, body: str, crumbs: list[tuple[str, str]] | None = None) -> str:
    nav = " › ".join(f'<a href="{esc(href)}">{esc(text)}</a>' for text, href in (crumbs or []))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{esc(title)}</title><style>{PAGE_STYLE}</style></head><body>"
            f"<nav class=\"top\"><strong>driftline</strong>{' ' + nav if nav else ''}</nav>{body}</body></html>\n")


def index_page(rows: list[dict]) -> str:
    if not rows:
        body = "<h1>Monitored models</h1><p class=\"note\">No model files found (include/monitors/).</p>"
        return page("driftline", body)
    cells = []
    for r in rows:
        m = quote(r["model"], safe="")
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
                     esc(", ".join(run.get("violation_checks", [])) if run else "the run did not finish"),
                     esc((run or {}).get("drift", ""))])
    runs = table(["interval", "verdict", "baseline", "violations", "checks failed", "drift"], rows) if rows \
        else '<p class="note">No runs yet.</p>'
    body = (f"<h1>{esc(cfg.name)}</h1><p>{esc(cfg.description or '')}</p>"
            f'<p><a href="history">history</a> · <a href="alerts">alerts and feedback</a></p><h2>Runs</h2>{runs}')
    return page(f"driftline {cfg.name}", body, [("models", "../../"), (cfg.name, "./")])


def alerts_page(cfg: ModelConfig, store: Store, flash: str | None = None, error: str | None = None) -> str:
    incs = incidents(store, cfg.name)
    cards = []
    for inc in incs:
        sev = {"critical": "bad", "warning": "warn"}.get(inc["severity"], "info")
        answers = "".join(f"<li>{esc(fb.note(a))}</li>" for a in inc["answers"])
        form = (f'<form class="feedback" method="post" action="feedback">'
                f'<input type="hidden" name="incident" value="{esc(inc["incident_key"])}">'
                + "".join(f'<label><input type="radio" name="kind" value="{k}" required> {esc(v)}</label>'
                          for k, v in KIND_LABELS.items())
                + '<textarea name="comment" placeholder="comment (e.g. known seasonal change)"></textarea>'
                  '<button type="submit">Send</button></form>')
        report = f'<a href="runs/{esc(inc["last"])}/report.html">report of {esc(inc["last"])}</a>'
        cards.append(
            f'<div class="card incident" data-incident="{esc(inc["incident_key"])}">'
            f'{badge(inc["severity"], sev)} {badge(inc["state"], "bad" if inc["state"] == "open" else "ok")} '
            f'<strong>{esc(inc["check"])}</strong> on <code>{esc(inc["subject"])}</code> '
            f'<small>opened {esc(inc["opened"])}, last {esc(inc["last"])} · {report}</small>'
            f'<p>{esc(inc["text"])}</p>'
            + (f'<ul class="answers">{answers}</ul>' if answers else '<p class="answers note">No answer yet.</p>')
            + form + "</div>")
    head = (f'<p class="flash" role="status">{esc(flash)}</p>' if flash else "") + \
           (f'<p class="error" role="alert">{esc(error)}</p>' if error else "")
    doc = ("<p>Answer an alert: <em>Acknowledge</em> records that it is being handled; "
           "<em>False positive</em> and <em>Expected</em> also suppress the check on that subject for "
           f"{esc(span(cfg.alerting.suppress_false_positive))} / {esc(span(cfg.alerting.suppress_expected))} "
           "of data time "
           "(no alert, not counted in the verdict); a baseline built with <code>--absorb-feedback</code> "
           "takes them in.</p>")
    body = (f"<h1>{esc(cfg.name)}: alerts</h1>{head}{doc}"
            + ("".join(cards) if cards else '<p class="note">No alert has been raised for this model.</p>'))
    return page(f"driftline {cfg.name} alerts", body, [("models", "../../"), (cfg.name, "./"), ("alerts", "alerts")])


# -- the app ---------------------------------------------------------------------------------
def create_app(*, store: Callable[[], Store], configs: Callable[[], dict[str, ModelConfig]],
               user: Callable[..., str], history: Callable[..., str] | None = None) -> FastAPI:
    """The driftline page as a FastAPI app.

    ``store()`` and ``configs()`` are called per request (a changed model file or store shows
    without a restart); ``user`` is a FastAPI dependency returning who is asking (it raises to
    refuse); ``history(store, cfg, since, until)`` renders the history view (default:
    ``driftline.history``)."""
    app = FastAPI(title="driftline", docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def _trailing_slash(request, call_next):
        # "/driftline" must become "/driftline/", or every relative link would miss the prefix
        root = request.scope.get("root_path", "")
        if root and request.url.path == root:
            query = f"?{request.url.query}" if request.url.query else ""
            return RedirectResponse(f"{root}/{query}", status_code=307)
        return await call_next(request)

    def html(text: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(text, status_code=status, headers={"Content-Security-Policy": CSP})

    def model_cfg(model: str) -> ModelConfig:
        cfgs = configs()
        if model not in cfgs:
            raise HTTPException(404, f"no monitored model {model!r} (known: {', '.join(sorted(cfgs)) or 'none'})")
        return cfgs[model]

    @app.get("/", response_class=HTMLResponse)
    def index(who: str = Depends(user)):
        return html(index_page(overview(store(), configs())))

    @app.get("/api/models")
    def api_models(who: str = Depends(user)):
        return JSONResponse(overview(store(), configs()))

    @app.get("/models/{model}")
    def model_noslash(model: str, who: str = Depends(user)):
        return RedirectResponse(f"{quote(model, safe='')}/", status_code=307)

    @app.get("/models/{model}/", response_class=HTMLResponse)
    def model_view(model: str, who: str = Depends(user)):
        return html(model_page(model_cfg(model), store()))

    @app.get("/models/{model}/history", response_class=HTMLResponse)
    def history_view(model: str, since: str | None = Query(None), until: str | None = Query(None),
                     who: str = Depends(user)):
        cfg = model_cfg(model)
        try:
            lo = as_utc(datetime.fromisoformat(since)) if since else None
            hi = as_utc(datetime.fromisoformat(until)) if until else None
        except ValueError as exc:
            raise HTTPException(400, f"since/until: an ISO date or time is expected ({exc})") from None
        render = history or _default_history
        return html(render(store(), cfg, lo, hi))

    @app.get("/models/{model}/alerts", response_class=HTMLResponse)
    def alerts_view(model: str, recorded: str | None = None, who: str = Depends(user)):
        return html(alerts_page(model_cfg(model), store(), flash=recorded))

    @app.post("/models/{model}/feedback")
    def feedback_post(model: str, incident: str = Form(...), kind: str = Form(...), comment: str = Form(""),
                      who: str = Depends(user)):
        cfg = model_cfg(model)
        st = store()
        try:
            rec = fb.record(cfg, st, incident, kind, by=who, comment=comment.strip(), source="driftline-page")
        except fb.FeedbackError as exc:
            return html(alerts_page(cfg, st, error=str(exc)), status=400)
        said = f"{KIND_LABELS[rec['kind']]} recorded for {rec['check']} on {rec['subject']}: {fb.note(rec)}"
        return RedirectResponse(f"alerts?{urlencode({'recorded': said})}", status_code=303)

    @app.get("/models/{model}/runs/{key}/{path:path}")
    def run_file(model: str, key: str, path: str, who: str = Depends(user)):
        cfg = model_cfg(model)
        if not _KEY.match(key):
            raise HTTPException(404, f"{key!r} is not an interval key like 2026-10-05T0000Z")
        parts = [p for p in path.split("/") if p]
        if not parts or any(p in (".", "..") or "\\" in p for p in parts) or not path.lower().endswith(SERVED):
            raise HTTPException(404, f"{path!r} is not a page or artifact of a run")
        rel = posixpath.join(Store.run_prefix(cfg.name, parse_interval_key(key)), *parts)
        st = store()
        try:
            data = st.read_bytes(rel)
        except StoreError:
            raise HTTPException(404, f"{cfg.name} {key}: no {'/'.join(parts)} in {st.uri(rel)}") from None
        media = mimetypes.guess_type(parts[-1])[0] or "application/octet-stream"
        headers: dict[str, Any] = {}
        if parts == ["report.html"] or media == "application/json":
            headers["Content-Security-Policy"] = CSP
        return Response(data, media_type=media, headers=headers)

    return app


def _default_history(store: Store, cfg: ModelConfig, since: datetime | None, until: datetime | None) -> str:
    from driftline.history import load_history, render_history

    data = load_history(store, cfg.name, since=since, until=until)
    doc = render_history(data, report_href=lambda key: f"runs/{quote(key, safe='')}/report.html")
    return doc.replace("<body>", "<body>" + _history_nav(cfg, since, until), 1)


def _history_nav(cfg: ModelConfig, since: datetime | None, until: datetime | None) -> str:
    """The page's navigation and the range selector (a GET form: the range is in the URL)."""
    def day(t: datetime | None) -> str:
        return t.date().isoformat() if t else ""

    crumbs = (f'<nav class="top"><strong>driftline</strong> <a href="../../">models</a> › '
              f'<a href="./">{esc(cfg.name)}</a> › <a href="history">history</a> · <a href="alerts">alerts</a></nav>')
    form = ('<form class="range" method="get" action="history">range: '
            f'<label>from <input type="date" name="since" value="{esc(day(since))}"></label> '
            f'<label>to (excluded) <input type="date" name="until" value="{esc(day(until))}"></label> '
            '<button type="submit">Show</button> <a href="history">everything</a></form>')
    return ("<style>nav.top{display:flex;gap:10px;border-bottom:1px solid #d5dbe1;padding-bottom:6px}"
            "form.range{margin:8px 0}</style>" + crumbs + form)
