"""The report of one run: a self-contained HTML page for the data scientist, and a fixed-width
summary table for the on-call engineer's task log.

Both read only the artifacts the run left in its folder (``runs/<model>/<interval>/``):
``run.json``, ``ingest.json``, ``quality.json``, ``constraint_violations.json``,
``drift.json``, ``current_profile.json`` (and the baseline's ``profile.json``, whose bin
edges the current batch was profiled on), ``model_quality.json``, ``bias.json`` and
``alerts.{data,quality}.json`` -- and the people's answers to the run's alerts
(``alerts/<model>/feedback/``, driftline.stages.feedback). A stage that did not run leaves its file
missing; the report then says so in a sentence instead of failing.

Feedback is shown where it acts: a violation a false-positive or expected answer suppressed
is marked "suppressed" with who said what (in its check's section and among the alerts), the
header counts it apart ("7 violations (2 suppressed by feedback)"; the verdict is run.json's,
which leaves them out), a threshold the baseline widened from a false positive reads
"threshold 0.6 (widened from 0.1 by false-positive feedback of alice on 2026-10-06)", a
reference replaced by intervals marked expected says which; and every answer to an incident
of this run, acknowledgements included, is listed.

The page loads nothing: styles are inline, charts are SVG drawn here, there is no script.
Every value that comes from data or configuration -- feature names, category values,
descriptions, messages, the model name -- goes through :func:`esc` (``html.escape``) before it
reaches the page, SVG text included; the only markup is the literal markup of this module.
"""
from __future__ import annotations

import posixpath
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from driftline.common.html import (
    CUR_COLOR,
    REF_COLOR,
    STYLE,
    badge,
    clip,
    esc,
    fmt_num,
    fmt_pct,
    note,
    num,
    pct,
    section,
    table,
)
from driftline.config import SEVERITY_RANK, ModelConfig
from driftline.render.charts import svg_band, svg_categories, svg_histogram, svg_quantiles
from driftline.stages import answers
from driftline.store import Store, StoreError, as_utc, interval_key

#: The run artifacts the report reads, by short name.
ARTIFACTS = {
    "run": "run.json", "ingest": "ingest.json", "quality": "quality.json",
    "violations": "constraint_violations.json", "drift": "drift.json", "current_profile": "current_profile.json",
    "model_quality": "model_quality.json", "bias": "bias.json",
    "alerts_data": "alerts.data.json", "alerts_quality": "alerts.quality.json",
}
REPORT_FILE = "report.html"
#: driftline's page of the GX validation result (driftline.stages.data_quality_docs); GX's own Data Docs beside it.
DATA_DOCS = "data_docs/index.html"
GX_DATA_DOCS = "data_docs/gx/index.html"
ALERT_ORDER = ("firing", "open", "pending", "resolved")
WORST_CHARS = 200

# -- reading a run ---------------------------------------------------------------------------

def load_run(cfg: ModelConfig, store: Store, interval_start: datetime) -> dict[str, Any]:
    """Every artifact of the run (None when missing), the baseline's profile, and the
    problems met reading them (``_problems``: sentences for the page)."""
    prefix = Store.run_prefix(cfg.name, as_utc(interval_start))
    problems: list[str] = []
    art: dict[str, Any] = {name: read_artifact(store, posixpath.join(prefix, fn), problems)
                           for name, fn in ARTIFACTS.items()}
    if not art.get("run"):  # the run did not finish recording: the stages' own violation files
        from driftline.store.violations import read_violations

        try:
            art["violations"] = {"violations": read_violations(store, prefix)}
        except (StoreError, ValueError) as exc:
            problems.append(f"the stages' violations could not be read: {exc}")
    version = _baseline_version(art)
    art["baseline_profile"] = None
    if version:
        rel = posixpath.join(Store.baseline_prefix(cfg.name, version), "profile.json")
        art["baseline_profile"] = read_artifact(store, rel, problems)
    art["data_docs"] = artifact_exists(store, posixpath.join(prefix, DATA_DOCS))
    art["prefix"], art["uri"], art["_problems"] = prefix, store.uri(prefix), problems
    from driftline.store.violations import stage_failures

    try:  # the stages that failed (failures/<task>.json)
        art["failures"] = stage_failures(store, prefix)
    except (StoreError, ValueError) as exc:
        art["failures"] = {}
        problems.append(f"the run's failure records could not be read: {exc}")
    art["suppressed"] = _suppressed(art)
    art["feedback"] = _answers(cfg, store, art, problems)
    return art


def _suppressed(art: dict) -> dict[tuple[str, str], dict]:
    """(check, subject) -> the answer that suppressed it: run.json's list (what the verdict
    left out), else the alert records' suppressed alerts."""
    run = art.get("run") or {}
    if isinstance(run.get("suppressed"), list):
        return {(s.get("check"), s.get("subject")): s for s in run["suppressed"]}
    return {(a.get("check"), a.get("subject")): a.get("feedback") or {} for a in _alerts(art) or []
            if a.get("status") == "suppressed"}


def _answers(cfg: ModelConfig, store: Store, art: dict, problems: list[str]) -> list[dict]:
    """The answers to this run's incidents (any kind), and those that suppressed its alerts."""
    keys = {"|".join([cfg.name, str(a.get("check")), str(a.get("subject")), str(a["incident"])])
            for a in _alerts(art) or [] if a.get("incident")}
    said = {(c, s, fb.get("at"), fb.get("by")) for (c, s), fb in art["suppressed"].items()}
    if not keys and not said:
        return []
    try:
        records = answers.read_all(store, cfg.name)
    except (StoreError, ValueError, KeyError) as exc:
        problems.append(f"{answers.feedback_prefix(cfg.name)}: could not be read ({exc!r})")
        return []
    return [r for r in records if r.get("incident_key") in keys
            or (r.get("check"), r.get("subject"), r.get("at"), r.get("by")) in said]


def read_artifact(store: Store, rel: str, problems: list[str]) -> Any:
    try:
        return store.read_json(rel) if store.exists(rel) else None
    except (StoreError, ValueError) as exc:  # an unreadable artifact is reported, not fatal
        problems.append(f"{rel}: could not be read ({exc})")
        return None


def artifact_exists(store: Store, rel: str) -> bool:
    try:
        return store.exists(rel)
    except StoreError:
        return False


def _baseline_version(art: dict) -> str | None:
    for name in ("drift", "run", "quality", "model_quality"):
        if isinstance(art.get(name), dict) and art[name].get("baseline"):
            return str(art[name]["baseline"])
    return None


# -- formatting ------------------------------------------------------------------------------
# -- charts (inline SVG) ---------------------------------------------------------------------
# -- the verdict per check family (shared by the page's header and the log table) ------------
@dataclass
class Family:
    name: str
    status: str      # short, upper case when something is wrong
    level: str       # ok | bad | warn | info
    counts: str
    worst: str


def _violations(art: dict, *sources: str | None) -> list[dict]:
    vs = (art.get("violations") or {}).get("violations", [])
    return [v for v in vs if v.get("source") in sources]


def suppression(art: dict, v: dict) -> dict | None:
    """The answer that suppressed violation v in this run (None: it counts)."""
    from driftline.stages.alerts import subject_of

    return (art.get("suppressed") or {}).get((v.get("constraint_check_type"), subject_of(v)))


def _fb_note(fb: dict) -> str:
    """answers.note of an answer, plain text (tolerant of a partial record)."""

    try:
        return answers.note(fb)
    except (KeyError, TypeError):
        return f"suppressed by feedback of {fb.get('by', '?')}"


def suppressed_html(fb: dict | None) -> str:
    """'suppressed' and who said what, for a violation an answer suppressed ('' otherwise)."""
    return f'{badge("suppressed", "info")} <span class="note">{esc(_fb_note(fb))}</span>' if fb is not None else ""


def _drift_parts(name: str, r: dict) -> list[str]:
    """The drift alerts' subjects a drifted column raised: itself, and/or its missing share."""
    parts = []
    if r.get("distribution_drifted") or (r.get("drifted") and not (r.get("missing") or {}).get("drifted")):
        parts.append(name)
    if (r.get("missing") or {}).get("drifted"):
        parts.append(f"{name} (missing share)")
    return parts


def drift_suppression(art: dict, name: str, r: dict) -> list[dict]:
    """The answers that suppressed a drifted column's alerts, when every one of them is."""
    found = [(art.get("suppressed") or {}).get(("baseline_drift_check", s)) for s in _drift_parts(name, r)]
    return found if found and all(f is not None for f in found) else []


def violation_counts(art: dict) -> tuple[int, int]:
    """(violations recorded, of which suppressed by feedback)."""
    vs = (art.get("violations") or {}).get("violations", [])
    return len(vs), sum(suppression(art, v) is not None for v in vs)


def _and_suppressed(n: int) -> str:
    return f" ({n} suppressed by feedback)" if n else ""


def _dq_family(art: dict) -> Family:
    q, ing = art.get("quality"), art.get("ingest") or {}
    quarantined = ing.get("quarantined", (q or {}).get("quarantined", 0)) or 0
    if q is None:
        return Family("data quality", "not run", "info", f"quarantined {quarantined}", "no quality.json")
    if q.get("status") == "no_data":
        return Family("data quality", "NO DATA", "warn", f"{q.get('rows', 0)} rows",
                      clip(q.get("summary", ""), WORST_CHARS))
    vs = _violations(art, "data_quality", None) or (q.get("violation_list") or [])
    quiet = [v for v in vs if suppression(art, v) is not None]
    counts = f"{len(vs)} of {q.get('expectations', '?')} failed{_and_suppressed(len(quiet))}, quarantined {quarantined}"
    if not vs:
        return Family("data quality", "ok", "ok" if not quarantined else "warn", counts, "-")
    if len(quiet) == len(vs):
        return Family("data quality", "suppressed", "info", counts,
                      "; ".join(f"{v.get('constraint_check_type')} {v.get('feature_name')}: "
                                f"{_fb_note(suppression(art, v))}" for v in vs))
    vs = [v for v in vs if suppression(art, v) is None]
    worst = max(vs, key=_failed_share)
    share = _failed_share(worst)
    what = f"{worst.get('constraint_check_type')} {worst.get('feature_name')}"
    return Family("data quality", "FAIL", "bad", counts,
                  f"{what}: {fmt_pct(share)} of rows" if share else f"{what}: {worst.get('description', '')}")


def _failed_share(v: dict) -> float:
    d = v.get("details") or {}
    n, bad = d.get("element_count"), d.get("unexpected_count")
    return bad / n if isinstance(n, (int, float)) and n and isinstance(bad, (int, float)) else 0.0


def _drift_family(art: dict) -> Family:
    d = art.get("drift")
    if d is None:
        return Family("drift", "not run", "info", "-", "no drift.json")
    if d.get("status") == "no_data":
        return Family("drift", "NO DATA", "warn", f"{d.get('rows', 0)} rows", clip(d.get("why", ""), WORST_CHARS))
    if not d.get("checked", True):
        return Family("drift", "not checked", "warn", "-", clip(d.get("why", ""), WORST_CHARS))
    ds = d.get("dataset") or {}
    drifted = ds.get("drifted_features") or [n for n, r in (d.get("features") or {}).items() if r.get("drifted")]
    preds = [n for n, r in (d.get("prediction") or {}).items() if r.get("drifted")]
    multi = [k for k, v in (d.get("multivariate") or {}).items() if isinstance(v, dict) and v.get("drifted")]
    counts = f"{len(drifted)}/{ds.get('features', len(d.get('features') or {}))} features"
    if preds:
        counts += f", prediction {len(preds)}"
    if multi:
        counts += ", multivariate"
    if not (drifted or preds or multi):
        return Family("drift", "ok", "ok", counts, "-")
    quiet = {n for n in drifted if drift_suppression(art, n, d["features"].get(n) or {})}
    quiet |= {n for n in preds if drift_suppression(art, n, d["prediction"][n])}
    quiet_multi = (art.get("suppressed") or {}).get(("multivariate_drift_check", "*")) is not None
    n_quiet = len(quiet) + (1 if multi and quiet_multi else 0)
    counts += f"; {n_quiet} suppressed by feedback" if n_quiet else ""
    drifted = [n for n in drifted if n not in quiet]
    preds = [n for n in preds if n not in quiet]
    multi = [] if quiet_multi else multi
    if not (drifted or preds or multi):
        return Family("drift", "suppressed", "info", counts, "suppressed by feedback: " + ", ".join(sorted(quiet) + (
            ["multivariate"] if quiet_multi else [])))
    ordered = [n for n, _ in sorted_features(d.get("features") or {}) if n in drifted]
    parts = []
    if ordered:
        top = d["features"][ordered[0]]
        parts.append(f"drifted: {', '.join(ordered)}; worst {ordered[0]} {_stat_text(top)}"
                     + (f" ({fmt_pct(top['contribution_share'], 0)} of drift)"
                        if isinstance(top.get("contribution_share"), (int, float)) else ""))
    if preds:
        parts.append(f"prediction: {', '.join(preds)}")
    if multi:
        parts.append(f"multivariate: {', '.join(multi)}")
    return Family("drift", "DRIFT", "bad", counts, "; ".join(parts))


def _stat_text(r: dict) -> str:
    """'wasserstein 0.4479 >= 0.1', 'ks p=0.001 < alpha 0.05' or 'missing 0.0% -> 7.9%' (plain text)."""
    drifted = r.get("distribution_drifted", r.get("drifted"))
    if r.get("distribution_drifted") is False and (r.get("missing") or {}).get("drifted"):
        m = r["missing"]
        return f"missing {fmt_pct(m.get('reference_share'))} -> {fmt_pct(m.get('current_share'))}"
    if r.get("pvalue") is not None:  # a test: the threshold is its alpha
        p = r.get("pvalue_adjusted", r["pvalue"])
        return f"{r.get('method')} p={fmt_num(p, 3)} {'<' if drifted else '>='} alpha {fmt_num(r.get('threshold'))}"
    return f"{r.get('method')} {fmt_num(r.get('statistic'))} {'>=' if drifted else '<'} {fmt_num(r.get('threshold'))}"


def _mq_family(art: dict) -> Family:
    mq = art.get("model_quality")
    if mq is None:
        return Family("model quality", "not run", "info", "-", "no model_quality.json")
    if mq.get("status") == "no_data":
        return Family("model quality", "NO DATA", "warn", f"{(mq.get('labels') or {}).get('predicted', 0)} predictions",
                      clip(mq.get("why", ""), WORST_CHARS))
    g = mq.get("overall") or {}
    labels = mq.get("labels") or g
    breaches = mq.get("violations") or []
    quiet = [v for v in breaches if suppression(art, v) is not None]
    counts = f"{len(breaches)} breach(es){_and_suppressed(len(quiet))}, labels {fmt_pct(labels.get('coverage'), 0)}"
    realized_ok = (g.get("realized") or {}).get("status") == "ok"
    breaches = [v for v in breaches if suppression(art, v) is None]
    if quiet and not breaches:
        return Family("model quality", "suppressed", "info", counts,
                      "; ".join(f"{v.get('feature_name')}: {_fb_note(suppression(art, v))}" for v in quiet))
    if breaches:
        worst = max(breaches, key=_shortfall)
        return Family("model quality", "FAIL", "bad", counts, f"{worst.get('feature_name')}: {worst.get('description')}")
    if not realized_ok:
        why = (g.get("realized") or {}).get("why") or (g.get("realized") or {}).get("status", "no labels")
        est = "estimate ok" if (g.get("estimated") or {}).get("status") == "ok" else "no estimate"
        return Family("model quality", "no labels", "warn", counts, f"{why}; {est}")
    return Family("model quality", "ok", "ok", counts, "-")


def _shortfall(v: dict) -> float:
    d = v.get("details") or {}
    a, b = d.get("value"), d.get("bound")
    return abs(a - b) if isinstance(a, (int, float)) and isinstance(b, (int, float)) else 0.0


def _bias_family(art: dict) -> Family:
    b = art.get("bias")
    if b is None:
        return Family("bias", "not run", "info", "-", "no bias.json")
    if b.get("status") == "no_data":
        return Family("bias", "NO DATA", "warn", "-", clip(b.get("why", ""), WORST_CHARS))
    facets = b.get("facets") or {}
    vs = b.get("violations") or []
    quiet = [v for v in vs if suppression(art, v) is not None]
    counts = f"{len(vs)} breach(es){_and_suppressed(len(quiet))} in {len(facets)} facet(s)"
    vs = [v for v in vs if suppression(art, v) is None]
    if quiet and not vs:
        return Family("bias", "suppressed", "info", counts, _fb_note(suppression(art, quiet[0])))
    if vs:
        return Family("bias", "FAIL", "bad", counts, str(vs[0].get("description", vs[0].get("feature_name"))))
    if not any(f.get("status") == "ok" for f in facets.values()):
        return Family("bias", "not checked", "warn", counts, b.get("note") or "no facet large enough")
    return Family("bias", "ok", "ok", counts, "-")


def _alerts(art: dict) -> list[dict] | None:
    records = [art.get("alerts_data"), art.get("alerts_quality")]
    if not any(isinstance(r, dict) for r in records):
        return None
    alerts = [a for r in records if isinstance(r, dict) for a in r.get("alerts", [])]
    rank = {s: i for i, s in enumerate(ALERT_ORDER)}
    return sorted(alerts, key=lambda a: (rank.get(a.get("status"), 9), -SEVERITY_RANK.get(a.get("severity"), -1),
                                         str(a.get("check")), str(a.get("subject"))))


def _alerts_family(art: dict) -> Family:
    alerts = _alerts(art)
    if alerts is None:
        return Family("alerts", "not run", "info", "-", "no alerts.*.json")
    by = {s: sum(a.get("status") == s for a in alerts) for s in (*ALERT_ORDER, "suppressed")}
    counts = ", ".join(f"{n} {s}" for s, n in by.items() if n) or "none"
    firing = [a for a in alerts if a.get("status") in ("firing", "open")]
    if firing:
        worst = firing[0]  # the most severe: _alerts sorts by status, then severity
        return Family("alerts", "FIRING", "bad", counts, f"[{worst.get('severity')}] {worst.get('message')}")
    if by["pending"]:
        return Family("alerts", "pending", "warn", counts, str(alerts[0].get("message")))
    if by["suppressed"]:
        return Family("alerts", "suppressed", "info", counts,
                      str(next(a for a in alerts if a.get("status") == "suppressed").get("message")))
    return Family("alerts", "ok", "ok", counts, "-")


def families(art: dict) -> list[Family]:
    return [_dq_family(art), _drift_family(art), _mq_family(art), _bias_family(art), _alerts_family(art)]


# -- header ----------------------------------------------------------------------------------
def _verdict(art: dict) -> tuple[str, str]:
    status = (art.get("run") or {}).get("status")
    if status is None:
        bad = any(f.level == "bad" for f in families(art))
        return ("VIOLATIONS" if bad else "UNKNOWN"), ("bad" if bad else "warn")
    return {"ok": ("OK", "ok"), "violations": ("VIOLATIONS", "bad"), "no_data": ("NO DATA", "warn"),
            "incomplete": ("INCOMPLETE", "bad")}.get(
        status, (str(status).upper(), "warn"))


def _interval(cfg: ModelConfig, art: dict, start: datetime) -> tuple[str, str]:
    for name in ("run", "drift", "model_quality"):
        doc = art.get(name)
        if isinstance(doc, dict) and doc.get("interval_end"):
            return str(doc.get("interval_start", start.isoformat())), str(doc["interval_end"])
    try:
        end = cfg.interval_end(start).isoformat()
    except Exception:  # noqa: BLE001 - a start off the schedule: the end is just unknown
        end = "?"
    return start.isoformat(), end


def _header(cfg: ModelConfig, art: dict, start: datetime) -> str:
    run, ing, q = art.get("run") or {}, art.get("ingest") or {}, art.get("quality") or {}
    stages_ingest = (run.get("stages") or {}).get("ingest") or {}
    verdict, level = _verdict(art)
    begin, end = _interval(cfg, art, start)
    alerts = _alerts(art) or []
    facts = [
        ("model", esc(cfg.name)), ("interval", f"{esc(begin)} → {esc(end)}"),
        ("baseline", esc(_baseline_version(art) or "none")), ("verdict", badge(verdict, level)),
        ("rows", num(ing.get("rows", stages_ingest.get("rows", q.get("rows"))))),
        ("records seen", num(ing.get("records_seen", stages_ingest.get("records_seen")))),
        ("quarantined", num(ing.get("quarantined", stages_ingest.get("quarantined", q.get("quarantined"))))),
        ("violations", num(violation_counts(art)[0]) + esc(_and_suppressed(violation_counts(art)[1]))),
        ("alerts firing", num(sum(a.get("status") == "firing" for a in alerts))),
    ]
    if any(a.get("status") == "suppressed" for a in alerts):
        facts.append(("alerts suppressed", num(sum(a.get("status") == "suppressed" for a in alerts))))
    dl = "".join(f'<div class="fact"><dt>{esc(k)}</dt><dd>{v}</dd></div>' for k, v in facts)
    fam = table(["check", "status", "counts", "worst"],
                [[esc(f.name), badge(f.status, f.level), esc(f.counts), esc(f.worst)] for f in families(art)],
                "families")
    problems = "".join(note(p) for p in art.get("_problems", []))
    for task, rec in sorted((art.get("failures") or {}).items()):
        problems += note(f"{task} FAILED: {rec.get('error')}. Next: {rec.get('next')}")
    if run.get("incomplete"):
        problems += note(f"did not complete: {', '.join(run['incomplete'])}; this verdict is partial")
    if not art.get("run"):
        problems += note("run.json is missing: the run has not finished recording (or did not run).")
    return (f"<header><h1>driftline · {esc(cfg.name)} · {esc(interval_key(start))}</h1>"
            f'<dl class="facts">{dl}</dl>{_record_line(run)}{fam}{problems}</header>')


def _record_line(run: dict) -> str:
    """Where the verdict comes from: the baseline pin (and who moved it) and the verdict's digest,
    so a reader can tell a re-run that reproduced the verdict from one that re-judged it."""
    pin = run.get("baseline_pin") or {}
    if not pin and not run.get("digest"):
        return ""
    parts = []
    if pin:
        parts.append(f"judged against baseline {pin.get('version')}, pinned {str(pin.get('pinned_at', ''))[:10]} "
                     f"({pin.get('why', '')})")
        for c in pin.get("changes") or []:
            parts.append(f"re-judged: baseline {c.get('from')} → {c.get('to')} by {c.get('by')} at "
                         f"{str(c.get('at', ''))[:16]}")
    if run.get("digest"):
        parts.append(f"verdict digest {run['digest']} (the same data and baseline give the same digest; each "
                     f"execution is recorded in executions/)")
    return '<p class="record"><small>' + "; ".join(esc(p) for p in parts) + "</small></p>"


# -- drift -----------------------------------------------------------------------------------
def sorted_features(features: dict) -> list[tuple[str, dict]]:
    """Drifted first, then by share of the drift, drift score and name."""
    def key(item: tuple[str, dict]) -> tuple:
        name, r = item
        share = r.get("contribution_share")
        return (not r.get("drifted"), -(share if isinstance(share, (int, float)) else 0.0),
                -(r.get("score") if isinstance(r.get("score"), (int, float)) else 0.0), str(name))
    return sorted(features.items(), key=key)


def _chart(name: str, r: dict, art: dict) -> str:
    label = f"{name}: reference vs current"
    if r.get("type") in ("categorical", "boolean") or "top" in (r.get("reference") or {}):
        ref, cur = r.get("reference") or {}, r.get("current") or {}
        if ref.get("top") is None and cur.get("top") is None:
            return note("no category shares on record")
        return svg_categories(ref.get("top") or {}, cur.get("top") or {}, label,
                              ref.get("other_share") or 0.0, cur.get("other_share") or 0.0)
    base = ((art.get("baseline_profile") or {}).get("columns") or {}).get(name) or {}
    curp = ((art.get("current_profile") or {}).get("columns") or {}).get(name) or {}
    edges, rc, cc = base.get("edges"), base.get("bin_counts"), curp.get("bin_counts")
    if edges and rc and cc and len(rc) == len(cc) == len(edges) - 1 and curp.get("edges") in (None, edges):
        return svg_histogram([float(e) for e in edges], rc, cc, label)
    return svg_quantiles(r.get("reference") or {}, r.get("current") or {}, label) or note("no distribution on record")


def _numeric_summary(r: dict) -> str:
    ref, cur = r.get("reference") or {}, r.get("current") or {}
    keys = [k for k in ("mean", "std", "min", "p05", "p50", "p95", "max") if k in ref or k in cur]
    if not keys:
        return ""
    return table(["", *keys], [[esc("reference"), *(num(ref.get(k)) for k in keys)],
                               [esc("current"), *(num(cur.get(k)) for k in keys)]], "compact")


def widened_text(r: dict) -> str:
    """' (widened from 0.1 by false-positive feedback of alice on 2026-10-05)' for a threshold
    the baseline took from a false positive ('' otherwise); plain text."""
    tf = r.get("threshold_feedback")
    if not isinstance(tf, dict):
        return ""
    how = "lowered" if r.get("pvalue") is not None else "widened"
    return (f" ({how} from {fmt_num(tf.get('was'))} by false-positive feedback of {tf.get('by', '?')} "
            f"on {str(tf.get('at', '?'))[:10]})")


def _threshold_why(r: dict) -> str:
    tf = r["threshold_feedback"]
    seen = (f"p={fmt_num(tf.get('pvalue'), 3)}" if r.get("pvalue") is not None
            else f"{r.get('method')} {fmt_num(tf.get('statistic'))}")
    text = f"flagged {seen} in {tf.get('interval', '?')}" + (
        f" against baseline {tf['baseline']}" if tf.get("baseline") else "")
    return text + (f"; “{tf['comment']}”" if tf.get("comment") else "")


def reference_text(r: dict) -> str:
    """'values of 2026-10-04T0000Z … 2026-10-05T0000Z (2 intervals, 5,400 rows), marked expected
    by bob' for a column whose baseline reference feedback replaced ('' otherwise)."""
    rf = r.get("reference_feedback")
    if not isinstance(rf, dict):
        return ""
    iv = rf.get("intervals") or []
    span = iv[0] if len(iv) == 1 else f"{iv[0]} … {iv[-1]}" if iv else "?"
    rows = f"{rf['rows']:,} rows" if isinstance(rf.get("rows"), int) else "? rows"
    return (f"values of {span} ({len(iv)} interval{'s' if len(iv) != 1 else ''}, {rows}), marked expected by "
            f"{', '.join(map(str, rf.get('by') or ['?']))}" + (f" (since baseline {rf['carried_from']})"
                                                              if rf.get("carried_from") else ""))


def _test_cells(r: dict) -> list[tuple[str, str]]:
    if not r.get("checked", True):
        return [("not checked", esc(r.get("why", "")))]
    out = [("method", esc(r.get("method"))), ("statistic", num(r.get("statistic")))]
    if r.get("pvalue") is not None:
        out += [("p-value", num(r.get("pvalue"), 3))]
        if r.get("pvalue_adjusted") is not None:
            out += [("adjusted p-value", num(r["pvalue_adjusted"], 3))]
        out += [("alpha", num(r.get("threshold")) + esc(widened_text(r)))]
    else:
        out += [("threshold", num(r.get("threshold")) + esc(widened_text(r)))]
    if widened_text(r):
        out += [("threshold feedback", esc(_threshold_why(r)))]
    if reference_text(r):
        out += [("reference", esc(reference_text(r)))]
    m = r.get("missing") or {}
    if m:
        out += [("missing", f"{pct(m.get('reference_share'))} → {pct(m.get('current_share'))}"
                            + (" " + badge("missing drift", "bad") if m.get("drifted") else ""))]
    if r.get("importance_rank") is not None:
        out += [("importance rank", num(r.get("importance_rank")))]
    if isinstance(r.get("contribution_share"), (int, float)):
        out += [("share of drift", pct(r["contribution_share"]))]
    if r.get("why"):
        out += [("why this method", esc(r["why"]))]
    return out


def _feature_card(name: str, r: dict, art: dict) -> str:
    verdict = badge("DRIFT", "bad") if r.get("drifted") else badge("no drift", "ok")
    said = [(s, (art.get("suppressed") or {}).get(("baseline_drift_check", s))) for s in _drift_parts(name, r)]
    quiet = "".join(f"<p>{suppressed_html(fb)}" + (f" <small>({esc(s)})</small>" if s != name else "") + "</p>"
                    for s, fb in said if fb is not None)
    if quiet and all(fb is not None for _, fb in said):
        verdict += " " + badge("suppressed", "info")
    facts = "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in _test_cells(r))
    summary = _numeric_summary(r) if "mean" in (r.get("reference") or {}) else ""
    kind = esc(r.get("type", ""))
    return (f'<div class="card{" drifted" if r.get("drifted") else ""}">'
            f'<h3><code>{esc(name)}</code> <small>{kind}</small> {verdict}</h3>{quiet}'
            f'<div class="side"><div>{_chart(name, r, art)}{summary}</div>'
            f'<table class="facts-table">{facts}</table></div></div>')


def _legend(version: str | None) -> str:
    return (f'<p class="legend"><span class="swatch" style="background:{REF_COLOR}"></span>reference '
            f'(baseline {esc(version or "?")}) <span class="swatch" style="background:{CUR_COLOR}"></span>current</p>')


def _drift_section(art: dict) -> str:
    d = art.get("drift")
    if d is None:
        return section("drift", "Drift", note("Drift was not computed for this interval (no drift.json)."))
    if d.get("status") == "no_data":
        return section("drift", "Drift", note(f"No data: {d.get('why', '')}; drift not checked."))
    if not d.get("checked", True):
        return section("drift", "Drift", note(f"Drift not checked: {d.get('why', 'unknown reason')}."))
    ds = d.get("dataset") or {}
    feats = d.get("features") or {}
    head = (f"<p>{esc(d.get('summary', ''))}</p>"
            f"<p>{num(ds.get('drifted'))} of {num(ds.get('features'))} features drifted "
            f"({pct(ds.get('share'))}; dataset drift at {pct(ds.get('drift_share'))}: "
            f"{badge('yes', 'bad') if ds.get('dataset_drift') else badge('no', 'ok')}). "
            f"Importance: {esc(d.get('importance_source', 'none'))}.</p>")
    if not ds.get("drifted"):
        head += '<p class="good">No drift detected: every feature is within its threshold.</p>'
    cards = "".join(_feature_card(n, r, art) for n, r in sorted_features(feats))
    return section("drift", "Feature drift (sorted by what drives it)", head + _legend(d.get("baseline")) + cards)


def _prediction_section(art: dict) -> str:
    d = art.get("drift") or {}
    preds = d.get("prediction") or {}
    if not preds:
        return section("prediction", "Prediction drift", note("No prediction drift on record (no prediction columns "
                                                               "in the baseline, or drift did not run)."))
    cards = "".join(_feature_card(n, r, art) for n, r in sorted_features(preds))
    return section("prediction", "Prediction drift", _legend(d.get("baseline")) + cards)


def _multivariate_section(art: dict) -> str:
    mv = (art.get("drift") or {}).get("multivariate")
    if not mv:
        return section("multivariate", "Multivariate drift", note("No multivariate drift check on record."))
    if not mv.get("checked", True):
        return section("multivariate", "Multivariate drift", note(f"Not checked: {mv.get('why', 'unknown reason')}."))
    rows, extra = [], ""
    for method, r in mv.items():
        if not isinstance(r, dict):
            continue
        if "statistic" not in r:
            rows.append([esc(method), esc(r.get("why", r.get("status", "not run"))), "", "", "", ""])
            continue
        thr = num(r.get("threshold")) + (f" (lower {num(r['lower_threshold'])})" if "lower_threshold" in r else "")
        rows.append([esc(method), num(r.get("statistic")), thr, num(r.get("pvalue"), 3),
                     badge("DRIFT", "bad") if r.get("drifted") else badge("no drift", "ok"),
                     num(r.get("rows", r.get("rows_current")))])
        if r.get("features"):
            top = sorted(r["features"], key=lambda f: -(f.get("importance") or 0.0))[:6]
            extra += (f"<p>{esc(method)}: features that separate current from reference: "
                      + ", ".join(f"<code>{esc(f.get('feature'))}</code> {num(f.get('importance'), 2)}" for f in top)
                      + "</p>")
    quiet = suppressed_html((art.get("suppressed") or {}).get(("multivariate_drift_check", "*")))
    return section("multivariate", "Multivariate drift",
                   (f"<p>{quiet}</p>" if quiet else "")
                   + table(["method", "statistic", "threshold", "p-value", "verdict", "rows"], rows) + extra)


# -- model quality ---------------------------------------------------------------------------
def _metric_names(g: dict, base: dict) -> list[str]:
    names: list[str] = []
    for src in (((g.get("realized") or {}).get("metrics") or {}), ((g.get("estimated") or {}).get("metrics") or {}), base):
        names += [m for m in src if m not in names]
    return names


def _breach_of(breaches: list[dict], metric: str, segment: str = "") -> list[dict]:
    return [b for b in breaches if (b.get("details") or b).get("metric") == metric
            and (b.get("details") or {}).get("segment", segment) == segment]


def _quality_rows(g: dict, base: dict, thresholds: dict, breaches: list[dict], segment: str = "") -> list[list[str]]:
    real = (g.get("realized") or {}).get("metrics") or {}
    est = (g.get("estimated") or {}).get("metrics") or {}
    err = g.get("estimate_error") or {}
    rows = []
    for m in _metric_names(g, base):
        e = est.get(m) if isinstance(est.get(m), dict) else {}
        found = _breach_of(breaches, m, segment)
        bound = (found[0].get("details") or {}).get("bound") if found else None
        rule = "; ".join(f"{k} {fmt_num(v)}" for k, v in (thresholds.get(m) or {}).items())
        verdict = badge("BREACH", "bad") if found else (badge("ok", "ok") if rule else "")
        rows.append([f"<code>{esc(m)}</code>", num(base.get(m)), num(real.get(m)), num(e.get("value")),
                     f"[{num(e.get('lower'))}, {num(e.get('upper'))}]" if e else "", num(err.get(m), 3),
                     svg_band(e.get("value"), e.get("lower"), e.get("upper"), real.get(m), base.get(m), bound),
                     esc(rule), verdict])
    return rows


def _status_note(g: dict) -> str:
    out = ""
    for kind in ("realized", "estimated"):
        r = g.get(kind) or {}
        if r and r.get("status") != "ok":
            out += note(f"{kind}: {r.get('why') or r.get('status')}")
    return out


def _segments(mq: dict) -> str:
    segs = mq.get("segments") or {}
    overall = mq.get("overall") or {}
    names = list((mq.get("thresholds") or {}).keys()) or _metric_names(overall, {})[:3]
    breaches = mq.get("violations") or []
    rows = []
    for feature, values in segs.items():
        for value, g in values.items():
            seg = f"{feature}={value}"
            real = (g.get("realized") or {}).get("metrics") or {}
            est = (g.get("estimated") or {}).get("metrics") or {}
            cells = [f"<code>{esc(seg)}</code>",
                     f"{num(g.get('labelled'))}/{num(g.get('predicted'))} ({pct(g.get('coverage'), 0)})"]
            for m in names:
                e = est.get(m) if isinstance(est.get(m), dict) else {}
                bad = _breach_of(breaches, m, seg)
                cell = (f"{num(real.get(m), 3)} · est {num(e.get('value'), 3)} "
                        f"[{num(e.get('lower'), 3)}, {num(e.get('upper'), 3)}]")
                cells.append(f'<span class="{"bad-text" if bad else ""}">{cell}</span>'
                             + (" " + badge("BREACH", "bad") if bad else ""))
            rows.append(cells)
    if not rows:
        return ""
    headers = ["segment", "labels", *(f"{m}: realized · estimated [band]" for m in names)]
    return "<h3>Per segment</h3>" + table(headers, rows)


def _model_quality_section(art: dict) -> str:
    mq = art.get("model_quality")
    if mq is None:
        return section("model-quality", "Model quality",
                       note("Model quality was not evaluated for this interval (no model_quality.json): "
                            "the stage has not run yet."))
    if mq.get("status") == "no_data":
        return section("model-quality", "Model quality", note(f"No data: {mq.get('why', '')}; nothing to evaluate."))
    labels = mq.get("labels") or {}
    g = mq.get("overall") or {}
    breaches = mq.get("violations") or []
    cov = (f"<p>Labels: {num(labels.get('labelled', g.get('labelled')))} of "
           f"{num(labels.get('predicted', g.get('predicted')))} predictions "
           f"({pct(labels.get('coverage', g.get('coverage')))} coverage)"
           + (f", latest arrival {esc(labels['latest_arrival'])}" if labels.get("latest_arrival") else "")
           + (f"; the wait timed out at {esc((mq.get('waited') or {}).get('deadline'))}"
              if (mq.get("waited") or {}).get("timed_out") else "") + ".</p>")
    base = (mq.get("baseline_metrics") or {}).get("metrics") or {}
    method = (g.get("estimated") or {}).get("method")
    overall = table(["metric", "baseline", "realized", f"estimated{f' ({method})' if method else ''}", "band",
                     "estimate error", "realized vs estimated", "rule", ""],
                    _quality_rows(g, base, mq.get("thresholds") or {}, breaches))
    found = ("<h3>Breaches</h3><ul>" + "".join(
        f"<li><code>{esc(b.get('feature_name'))}</code>: {esc(b.get('description'))}"
        + (f" {suppressed_html(suppression(art, b))}" if suppression(art, b) is not None else "") + "</li>"
        for b in breaches) + "</ul>"
             if breaches else '<p class="good">No model-quality breaches.</p>')
    return section("model-quality", "Model quality: realized vs estimated",
                   cov + _status_note(g) + "<h3>Overall</h3>" + overall + _segments(mq) + found)


# -- bias ------------------------------------------------------------------------------------
def _bias_rows(label: str, cur: dict, ref: dict, rules: dict, breaches: list[dict],
               art: dict | None = None) -> list[list[str]]:
    rows = []
    cm, cs, rm, rs = cur.get("metrics") or {}, cur.get("se") or {}, ref.get("metrics") or {}, ref.get("se") or {}
    for m in list(dict.fromkeys([*cm, *rm])):
        a, b = rm.get(m), cm.get(m)
        change = b - a if isinstance(a, (int, float)) and isinstance(b, (int, float)) else None
        found = [v for v in breaches if (v.get("details") or {}).get("facet") == label
                 and (v.get("details") or {}).get("metric") == m]
        undefined = (cur.get("undefined") or {}).get(m)
        rule = "; ".join(f"{k} {fmt_num(v)}" for k, v in (rules.get(m) or {}).items())
        if found:
            verdict = badge("BREACH", "bad") + " " + esc(found[0].get("description"))
            if art and suppression(art, found[0]) is not None:
                verdict += " " + suppressed_html(suppression(art, found[0]))
        else:
            verdict = badge("ok", "ok") if rule and b is not None else ""
        rows.append([f"<code>{esc(m)}</code>", f"{num(a, 3)} ± {num(rs.get(m), 2)}",
                     (f"{num(b, 3)} ± {num(cs.get(m), 2)}" if b is not None else esc(undefined or "n/a")),
                     num(change, 3), esc(rule), verdict])
    return rows


def _bias_section(art: dict) -> str:
    b = art.get("bias")
    if b is None:
        return section("bias", "Bias", note("Bias was not computed for this interval (no bias.json: no facet is "
                                            "configured, or the stage has not run)."))
    if b.get("status") == "no_data":
        return section("bias", "Bias", note(f"No data: {b.get('why', '')}; no facet evaluated."))
    out = note(b["note"]) if b.get("note") else ""
    breaches = b.get("violations") or []
    for label, cur in (b.get("facets") or {}).items():
        ref = (b.get("reference") or {}).get(label) or {}
        status = f"status {cur.get('status')}, labels {cur.get('labels_status')}"
        out += (f"<h3>Facet <code>{esc(label)}</code> <small>feature {esc(cur.get('feature'))}: "
                f"{num(cur.get('n_a'))} rows in the advantaged group, {num(cur.get('n_d'))} in the disadvantaged; "
                f"{num(cur.get('labelled'))} labelled; {esc(status)}</small></h3>"
                + table(["metric", "baseline ± SE", "current ± SE", "change", "rule", "breach"],
                        _bias_rows(label, cur, ref, b.get("rules") or {}, breaches, art)))
    if not b.get("facets"):
        out += note("No facet evaluated.")
    out += ('<p class="good">No bias breaches.</p>' if not breaches else "")
    return section("bias", "Bias per facet vs baseline", out)


# -- data quality, violations, alerts --------------------------------------------------------
def _violation_rows(vs: list[dict], art: dict, with_source: bool = False) -> list[list[str]]:
    """One row per violation; one an answer suppressed says so, and who said what."""
    rows = []
    for v in vs:
        fb = suppression(art, v)
        rows.append(([esc(v.get("source", ""))] if with_source else [])
                    + [esc(v.get("constraint_check_type")), f"<code>{esc(v.get('feature_name'))}</code>",
                       esc(v.get("description")) + (f"<br>{suppressed_html(fb)}" if fb is not None else "")])
    return rows


def _quarantine(art: dict) -> str:
    ing = art.get("ingest")
    if ing is None:
        return note("Ingest left no report (no ingest.json).")
    reasons = ing.get("quarantine_reasons") or {}
    text = (f"<p>Ingest: {num(ing.get('records_seen'))} records seen, {num(ing.get('rows'))} rows, "
            f"{num(ing.get('quarantined'))} quarantined.</p>")
    if reasons:
        text += table(["reason", "count", "description", "example"],
                      [[esc(k), num(r.get("count")), esc(r.get("description")), esc(clip(r.get("example"), 200))]
                       for k, r in reasons.items()])
    return text


def _data_quality_section(art: dict) -> str:
    q = art.get("quality")
    docs = (f'<p><a href="{esc(DATA_DOCS)}">Data Docs of this run</a>: every expectation with what Great '
            "Expectations observed and a sample of the unexpected values (GX's own Data Docs, which need a "
            f"network connection, are in <code>{esc(GX_DATA_DOCS)}</code>)</p>"
            if art.get("data_docs") or (q or {}).get("data_docs") else note("No Data Docs for this run."))
    if q is None:
        return section("data-quality", "Data quality",
                       note("Data quality was not checked for this interval (no quality.json).") + _quarantine(art))
    vs = _violations(art, "data_quality", None) if art.get("violations") else (q.get("violation_list") or [])
    body = f"<p>{esc(q.get('summary', ''))}</p>" + docs + _quarantine(art)
    if vs:
        body += table(["check", "feature", "description"], _violation_rows(vs, art))
    elif q.get("status") == "no_data":
        body += note("Too few rows to check.")
    else:
        body += f'<p class="good">No violations: all {num(q.get("expectations"))} expectations met.</p>'
    return section("data-quality", "Data quality", body)


def _all_violations_section(art: dict) -> str:
    doc = art.get("violations")
    if doc is None:
        return section("violations", "Constraint violations (all stages)", note("No constraint_violations.json."))
    vs = doc.get("violations", [])
    n, quiet = violation_counts(art)
    body = (f"<p>{num(n)} violation(s){esc(_and_suppressed(quiet))}; the verdict counts "
            f"{num(n - quiet)}.</p>" if quiet else "")
    body += (table(["stage", "check", "subject", "description"], _violation_rows(vs, art, with_source=True)) if vs
            else '<p class="good">No violations in any stage.</p>')
    return section("violations", "Constraint violations (all stages)", body)


def _alerts_section(art: dict) -> str:
    alerts = _alerts(art)
    if alerts is None:
        return section("alerts", "Alerts", note("Alerts were not evaluated for this interval."))
    if not alerts:
        return section("alerts", "Alerts", '<p class="good">No alerts for this interval.</p>')
    level = {"firing": "bad", "open": "bad", "pending": "warn", "resolved": "ok", "suppressed": "info"}
    rows = [[badge(str(a.get("status")), level.get(a.get("status"), "info")), esc(a.get("severity")),
             esc(a.get("check")), f"<code>{esc(a.get('subject'))}</code>", esc(a.get("incident") or ""),
             esc(a.get("message")), _alert_feedback(a, art)] for a in alerts]
    return section("alerts", "Alerts", table(["status", "severity", "check", "subject", "incident since", "message",
                                              "feedback"], rows))


def _alert_feedback(a: dict, art: dict) -> str:
    """Who answered the alert: the suppressing answer, or the answers to its incident."""
    if a.get("status") == "suppressed":
        return suppressed_html(a.get("feedback") or {})
    if not a.get("incident"):
        return ""
    key = "|".join(str(x) for x in (a.get("model"), a.get("check"), a.get("subject"), a.get("incident")))
    return "<br>".join(esc(_fb_note(r)) for r in art.get("feedback") or [] if r.get("incident_key") == key)


def _feedback_section(art: dict) -> str:
    answers = art.get("feedback") or []
    if not answers:
        return section("feedback", "Feedback", note("Nobody has answered this run's alerts."))
    kind = {"false_positive": ("false positive", "info"), "expected": ("expected", "info"),
            "acknowledged": ("acknowledged", "ok")}
    rows = [[badge(*kind.get(r.get("kind"), (str(r.get("kind")), "warn"))), esc(r.get("by")), esc(r.get("at")),
             esc(r.get("check")), f"<code>{esc(r.get('subject'))}</code>", esc(r.get("incident")),
             esc(r.get("comment")), esc(str(r["until"])[:10] if r.get("until") else ""), esc(r.get("source"))]
            for r in answers]
    return section("feedback", "Feedback on this run's alerts",
                   "<p>False positive and expected suppress the check on that subject until the date shown; "
                   "a baseline built with <code>--absorb-feedback</code> absorbs the answers to drift alerts.</p>"
                   + table(["answer", "by", "at", "check", "subject", "incident since", "comment",
                            "suppressed until", "source"], rows))


# -- the page --------------------------------------------------------------------------------
def render_run_report(cfg: ModelConfig, store: Store, interval_start: datetime) -> str:
    """The run's report: one self-contained HTML page (inline CSS and SVG, no script, no
    network). Missing artifacts become short notes."""
    start = as_utc(interval_start)
    art = load_run(cfg, store, start)
    body = "".join([
        _header(cfg, art, start), _data_quality_section(art), _drift_section(art), _prediction_section(art),
        _multivariate_section(art), _model_quality_section(art), _bias_section(art), _alerts_section(art),
        _feedback_section(art), _all_violations_section(art),
    ])
    made = datetime.now(timezone.utc).isoformat(timespec="seconds")
    title = f"driftline {cfg.name} {interval_key(start)}"
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>{body}"
            f"<footer>artifacts: <code>{esc(art['uri'])}</code> · generated {esc(made)}</footer></body></html>\n")


def write_run_report(cfg: ModelConfig, store: Store, interval_start: datetime) -> str:
    """Render the report and write it as ``report.html`` in the run's folder; returns its URI."""
    prefix = Store.run_prefix(cfg.name, as_utc(interval_start))
    return store.write_text(posixpath.join(prefix, REPORT_FILE), render_run_report(cfg, store, interval_start))


def summary_table(cfg: ModelConfig, store: Store, interval_start: datetime) -> list[str]:
    """The same verdict as fixed-width text for the task log: a title line, a header and one
    line per check family (data quality, drift, model quality, bias, alerts) with its status,
    counts and worst item. Violations an answer suppressed are counted apart, in the title
    ("7 violations (2 suppressed by feedback)") and in their family's counts; a family whose
    every finding is suppressed reads "suppressed"."""
    start = as_utc(interval_start)
    art = load_run(cfg, store, start)
    verdict, _ = _verdict(art)
    fams = families(art)
    w_status = max(len("status"), *(len(f.status) for f in fams))
    w_counts = max(len("counts"), *(len(f.counts) for f in fams))
    line = "{:<13} {:<%d} {:<%d} {}" % (w_status, w_counts)
    report = posixpath.join(art["prefix"], REPORT_FILE)
    where = f"report {store.uri(report)}" if artifact_exists(store, report) else f"artifacts {art['uri']}"
    n, quiet = violation_counts(art)
    counted = f"; {n} violations{_and_suppressed(quiet)}" if quiet else ""
    return [f"{cfg.name} {interval_key(start)} baseline {_baseline_version(art) or 'none'}: {verdict}{counted}; {where}",
            line.format("check", "status", "counts", "worst").rstrip(),
            *(line.format(f.name, f.status, f.counts, clip(f.worst, WORST_CHARS)) for f in fams)]

