"""The history of one model over a range of intervals: the page an engineer opens to see when
things started to go wrong.

``load_history`` gathers, per interval of the range, what the runs left behind -- the metrics
history (``metrics/<model>/history/``), each run's ``run.json`` (its verdict) and
``drift.json`` (each feature's method, threshold and whether it drifted), the alert events
(``alerts/<model>/events/``) and people's answers to them (``alerts/<model>/feedback/``) --
into plain, JSON-serialisable data: every series is a list aligned with ``intervals``, ``None``
where the interval has no value. ``render_history`` draws it as one self-contained HTML page
(inline CSS and SVG, no script, no network).

The range is half-open, as Airflow's data intervals are: an interval is in it when
``since <= start < until`` (either bound may be left out).

Features are ordered by what drove the drift over the range (the *drivers* first): the number
of intervals the feature drifted in, then the sum of its share of each interval's drift
(drift score x importance, see ``driftline.stages.drift.attribution``), then its peak drift
score, then its name.

Missing parts are not errors: a model without labels has empty quality series, an interval
without ``run.json`` has no verdict, an unreadable file is skipped; each is told in
``problems`` (sentences for the page). Every value that comes from data reaches the page
through :func:`driftline.common.html.esc`.
"""
from __future__ import annotations

import math
import posixpath
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

import pandas as pd
import pyarrow as pa

from driftline.common.html import CUR_COLOR, REF_COLOR, STYLE, badge, clip, esc, note, num, section, table
from driftline.render.charts import short_num, svg_frame, svg_num
from driftline.render.report import artifact_exists, read_artifact
from driftline.stages.answers import note as answer_note
from driftline.store import Store, StoreError, as_utc, interval_key, parse_interval_key

#: history metrics of the dataset-level drift (not multivariate checks)
_DATASET_DRIFT = {"drift.score", "drift.statistic", "drift.share", "drift.drifted_features"}
#: run.json status -> (verdict shown, badge kind, colour of the timeline cell)
VERDICTS = {"ok": ("OK", "ok", "#3c9a5f"), "violations": ("VIOLATIONS", "bad", "#d9534f"),
            "no_data": ("NO DATA", "warn", "#e0a800")}
UNKNOWN_VERDICT = ("NOT RECORDED", "info", "#c3cad2")
SEVERITY_COLORS = {"critical": "#c0392b", "warning": "#e08e0b", "info": "#5b7db1"}
DRIFT_COLOR, THRESHOLD_COLOR, REALIZED_COLOR = "#c0392b", "#555555", "#1d232a"
#: Characters of a subject drawn in the timeline (the full text is in its tooltip).
SUBJECT_CHARS = 44
SCORE_NOTE = ("The drift score is the feature's effect size in multiples of the default threshold -- normed "
              "Wasserstein / 0.1 for numbers, Jensen-Shannon / 0.1 for categories, the change in missing share "
              "/ 0.05, whichever is larger -- so 1 (dashed) is the default threshold and scores compare across "
              "features. Whether a feature drifted is decided on its own method's statistic and threshold (a test "
              "on its p-value against alpha): that is the left chart; red points are intervals where it drifted.")


# -- loading ----------------------------------------------------------------------------------
def load_history(store: Store, model: str, since: datetime | None = None, until: datetime | None = None) -> dict:
    """The model's series over ``[since, until)``, as plain data. Keys:

    - ``model``, ``since``, ``until`` (ISO text or None), ``problems`` (sentences);
    - ``intervals``: one dict per interval, oldest first -- ``key`` ('2026-10-04T0000Z'),
      ``start``, ``end``, ``status`` (run.json's: ok | violations | no_data | ..., None when not
      recorded), ``run`` (run.json read), ``report`` (report.html exists), ``baseline``,
      ``violations`` (counted), ``drifted`` (feature names), ``rows``, ``quarantined``,
      ``violations_found`` (all, suppressed included);
    - ``features`` / ``prediction``: one dict per column, drivers first -- ``name``, ``rank``,
      ``method`` (the latest; ``methods``: all), ``drifted_intervals``, ``first_drifted`` (key or
      None), ``peak_score``, ``contribution`` (sum of its shares of the drift), and the series
      ``score``, ``statistic``, ``threshold``, ``pvalue`` (adjusted when it was), ``drifted``
      (bool, None when unknown), ``distribution_drifted`` (on the statistic alone),
      ``share_of_drift``, ``missing_share``, ``missing_reference`` (the baseline's),
      ``missing_drifted``;
    - ``share``: ``values`` (drift.share), ``drifted_features``, ``threshold`` (dataset drift
      share), ``dataset_drift``;
    - ``multivariate``: {check: ``values``, ``threshold``, ``lower_threshold``, ``drifted``};
    - ``quality``: {metric: ``realized``, ``estimated``, ``lower``, ``upper``} (overall segment);
    - ``coverage``: labels.coverage per interval;
    - ``incidents``: the alert incidents overlapping the range (``driftline.stages.alerts.incidents``:
      check, subject, severity, opened, resolved, state, text, reminders, answers, ...);
    - ``first``: the first interval of the range with the verdict ``violations``, with drift,
      with an incident opened (None when there is none).
    """
    from driftline.stages.alerts import incidents as alert_incidents
    from driftline.store.history import read_history

    lo = as_utc(since) if since else None
    hi = as_utc(until) if until else None

    def in_range(t: datetime) -> bool:
        return (lo is None or t >= lo) and (hi is None or t < hi)

    problems: list[str] = []
    rows = _history_rows(store, model, read_history, lo, hi, problems)
    keys = set(rows)
    try:
        for name in store.listdir(posixpath.join("runs", model)):
            try:
                if in_range(parse_interval_key(name)):
                    keys.add(name)
            except ValueError:
                continue
    except StoreError as exc:
        problems.append(f"runs/{model}: could not be listed ({exc})")
    keys_sorted = sorted(keys)
    n = len(keys_sorted)
    runs, drifts, reports = {}, {}, {}
    for key in keys_sorted:
        prefix = Store.run_prefix(model, parse_interval_key(key))
        runs[key] = read_artifact(store, posixpath.join(prefix, "run.json"), problems)
        drifts[key] = read_artifact(store, posixpath.join(prefix, "drift.json"), problems)
        reports[key] = artifact_exists(store, posixpath.join(prefix, "report.html"))

    def series(metric: str, segment: str = "", kind: str = "realized", field: str = "value") -> list:
        return [(rows.get(k, {}).get((metric, segment, kind)) or {}).get(field) for k in keys_sorted]

    intervals = []
    for key in keys_sorted:
        run = runs[key] if isinstance(runs[key], dict) else {}
        ends = [r.get("interval_end") for r in rows.get(key, {}).values() if r.get("interval_end")]
        intervals.append({
            "key": key, "start": parse_interval_key(key).isoformat(),
            "end": run.get("interval_end") or (ends[0] if ends else None),
            "status": run.get("status"), "run": bool(run), "report": reports[key],
            "baseline": run.get("baseline"), "violations": run.get("violations"),
            "drifted": list(run.get("drifted_features") or []),
        })
    for name, metric in (("rows", "rows"), ("quarantined", "quarantined"), ("violations_found", "violations")):
        for item, v in zip(intervals, series(metric)):
            item[name] = int(v) if isinstance(v, float) and v.is_integer() else v
    missing_runs = [i["key"] for i in intervals if not i["run"]]
    if missing_runs:
        problems.append(f"{len(missing_runs)} interval(s) without a readable run.json (no verdict): "
                        + ", ".join(missing_runs[:10]) + (" ..." if len(missing_runs) > 10 else ""))

    groups = {"features": [], "prediction": []}
    for group, names in _drift_columns(rows, drifts).items():
        for name in names:
            groups[group].append(_feature_series(name, group, keys_sorted, drifts, series))
    for group, items in groups.items():
        items.sort(key=lambda f: (-f["drifted_intervals"], -f["contribution"], -(f["peak_score"] or 0.0), f["name"]))
        for i, f in enumerate(items, 1):
            f["rank"] = i

    share = {"values": series("drift.share"), "drifted_features": series("drift.drifted_features"),
             "threshold": [((d or {}).get("dataset") or {}).get("drift_share") for d in map(drifts.get, keys_sorted)],
             "dataset_drift": [((d or {}).get("dataset") or {}).get("dataset_drift")
                               for d in map(drifts.get, keys_sorted)]}
    multivariate = {}
    for metric in sorted({m for r in rows.values() for (m, s, _) in r if m.startswith("drift.") and not s
                          and m not in _DATASET_DRIFT}):
        check = metric[len("drift."):]
        info = [(((d or {}).get("multivariate") or {}).get(check) or {}) for d in map(drifts.get, keys_sorted)]
        multivariate[check] = {"values": series(metric), "threshold": [x.get("threshold") for x in info],
                               "lower_threshold": [x.get("lower_threshold") for x in info],
                               "drifted": [x.get("drifted") for x in info]}

    quality = {}
    for metric in sorted({m for r in rows.values() for (m, s, _) in r if m.startswith("quality.") and not s}):
        quality[metric[len("quality."):]] = {
            "realized": series(metric), "estimated": series(metric, kind="estimated"),
            "lower": series(metric, kind="estimated", field="lower"),
            "upper": series(metric, kind="estimated", field="upper")}
    coverage = series("labels.coverage")
    if n and not quality and all(c is None for c in coverage):
        problems.append("no model-quality history in the range: the model has no labels configured, "
                        "or model quality has not been evaluated yet")

    incidents = alert_incidents(store, model, since=lo, until=hi, problems=problems)
    if not n:
        problems.append(f"no monitored interval of model {model!r} in the range" + (
            "" if lo is None and hi is None else f" {_range_text(lo, hi)}") + f" (store {store.uri()})")
    first = {
        # the verdict "violations" only: an interval without data (no_data) or without a complete
        # verdict found nothing, and naming it here sent readers to an empty interval
        "violations": next((i["key"] for i in intervals if i["status"] == "violations"), None),
        "drift": next((k for j, k in enumerate(keys_sorted)
                       if any(f["drifted"][j] for g in groups.values() for f in g)), None),
        "incident": min((x["opened"] for x in incidents if lo is None or parse_interval_key(x["opened"]) >= lo),
                        default=None),
    }
    return {"model": model, "since": lo.isoformat() if lo else None, "until": hi.isoformat() if hi else None,
            "intervals": intervals, "features": groups["features"], "prediction": groups["prediction"],
            "share": share, "multivariate": multivariate, "quality": quality, "coverage": coverage,
            "incidents": incidents, "first": first, "problems": problems}


def _clean(v: Any) -> Any:
    """A JSON-safe scalar: NaN/NaT become None, numpy and pandas scalars plain Python."""
    if v is None or (not isinstance(v, (str, list, dict)) and pd.isna(v)):
        return None
    if hasattr(v, "to_pydatetime"):
        v = v.to_pydatetime()
    if isinstance(v, datetime):
        return as_utc(v).isoformat()
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _history_rows(store: Store, model: str, read_history: Callable, lo: datetime | None, hi: datetime | None,
                  problems: list[str]) -> dict[str, dict[tuple, dict]]:
    """{interval key: {(metric, segment, kind): row}} for the range."""
    try:
        hist = read_history(store, model)
    except (StoreError, ValueError, pa.ArrowException) as exc:
        problems.append(f"metrics/{model}/history: could not be read ({exc})")
        return {}
    starts = pd.to_datetime(hist["interval_start"], utc=True)
    keep = starts.notna()
    if lo is not None:
        keep &= starts >= pd.Timestamp(lo)
    if hi is not None:
        keep &= starts < pd.Timestamp(hi)
    out: dict[str, dict[tuple, dict]] = {}
    fields = ("value", "lower", "upper", "coverage", "interval_end")
    for start, rec in zip(starts[keep], hist[keep].to_dict("records")):
        key = (str(rec["metric"]), "" if rec["segment"] is None else str(rec["segment"]), rec["kind"] or "realized")
        out.setdefault(interval_key(start.to_pydatetime()), {})[key] = {f: _clean(rec[f]) for f in fields}
    return out


def _drift_columns(rows: dict, drifts: dict) -> dict[str, list[str]]:
    """Column names with drift on record, split into features and prediction columns."""
    names: set[str] = set()
    prediction: set[str] = set()
    for r in rows.values():
        names |= {s for (m, s, _) in r if m in ("drift.score", "drift.statistic") and s}
    for d in drifts.values():
        if not isinstance(d, dict):
            continue
        for group in ("features", "prediction"):
            for name, res in (d.get(group) or {}).items():
                if isinstance(res, dict) and (res.get("checked") or res.get("drifted")):
                    names.add(name)
                if group == "prediction":
                    prediction.add(name)
    return {"features": sorted(names - prediction), "prediction": sorted(names & prediction)}


def _feature_series(name: str, group: str, keys: list[str], drifts: dict, series: Callable) -> dict:
    info = []
    for k in keys:
        d = drifts.get(k)
        res = ((d.get(group) or {}).get(name) if isinstance(d, dict) else None) or {}
        info.append(res if isinstance(res, dict) else {})
    score = [h if h is not None else _num(r.get("score")) for h, r in zip(series("drift.score", name), info)]
    stat = [h if h is not None else _num(r.get("statistic")) for h, r in zip(series("drift.statistic", name), info)]
    drifted = [bool(r["drifted"]) if "drifted" in r else None for r in info]
    by_distribution = [bool(r["distribution_drifted"]) if "distribution_drifted" in r else d
                       for r, d in zip(info, drifted)]
    missing = [r.get("missing") if isinstance(r.get("missing"), dict) else {} for r in info]
    share = [_num(r.get("contribution_share")) for r in info]
    methods = [r.get("method") for r in info if r.get("method")]
    hits = [k for k, x in zip(keys, drifted) if x]
    known = [s for s in score if s is not None]
    return {"name": name, "group": group, "rank": 0, "method": methods[-1] if methods else None,
            "methods": sorted(set(methods)), "drifted_intervals": len(hits), "first_drifted": hits[0] if hits else None,
            "peak_score": max(known) if known else None, "contribution": sum(s for s in share if s),
            "score": score, "statistic": stat, "threshold": [_num(r.get("threshold")) for r in info],
            "pvalue": [_num(r.get("pvalue_adjusted", r.get("pvalue"))) for r in info],
            "drifted": drifted, "distribution_drifted": by_distribution, "share_of_drift": share,
            "missing_share": [h if h is not None else _num(m.get("current_share"))
                              for h, m in zip(series("missing_share", name), missing)],
            "missing_reference": [_num(m.get("reference_share")) for m in missing],
            "missing_drifted": [bool(m["drifted"]) if "drifted" in m else None for m in missing]}


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


def _range_text(lo: datetime | None, hi: datetime | None) -> str:
    return f"[{lo.isoformat() if lo else '…'}, {hi.isoformat() if hi else '…'})"


# -- charts (inline SVG) ----------------------------------------------------------------------
CHART_W, CHART_H, LEFT, RIGHT, TOP, BOTTOM = 460, 150, 48, 10, 10, 22


def svg_line_chart(x_labels: list[str], series: list[dict], *, label: str, refs: list[dict] = (),
                   bands: list[dict] = (), zero: bool = False, share: bool = False, width: int = CHART_W,
                   height: int = CHART_H) -> str:
    """Lines over the intervals of a range, one evenly spaced slot per interval (x_labels:
    one per interval, oldest first), so charts of one range line up.

    - ``series``: {"name", "values" (None breaks the line), "color", "dash" (bool), "flags"
      (per point: True draws it as a red hit)};
    - ``refs``: dashed reference lines {"name", "values" (a number, or one per interval)};
    - ``bands``: shaded areas {"name", "lower", "upper", "color"};
    - ``zero``: the y axis starts at 0 (when every value is positive); ``share``: the values are
      shares, the y axis is [0, 1].

    Every text (names, labels) is escaped here. Returns a short note when there is nothing
    to draw."""
    n = len(x_labels)
    ref_values = [(r, r["values"] if isinstance(r["values"], list) else [r["values"]] * n) for r in refs]
    found = [v for s in series for v in s["values"]] + [v for _, vs in ref_values for v in vs] + \
            [v for b in bands for v in (*b["lower"], *b["upper"])]
    found = [float(v) for v in found if isinstance(v, (int, float)) and math.isfinite(v)]
    if not n or not found:
        return note(f"{label}: no values in the range")
    lo, hi = min(found), max(found)
    if zero and lo > 0:
        lo = 0.0
    pad = (hi - lo) * 0.06 or (abs(hi) * 0.1 or 1.0)
    lo, hi = (lo if zero and lo == 0 else lo - pad), hi + pad
    if share:
        lo, hi = 0.0, max(1.0, max(found))
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM
    slot = plot_w / n

    def x(i: int) -> float:
        return LEFT + (i + 0.5) * slot

    def y(v: float) -> float:
        return TOP + (hi - v) / (hi - lo) * plot_h

    parts = [f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{width - RIGHT}" y2="{TOP + plot_h}" class="axis"/>',
             f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" class="axis"/>']
    for v in (hi, (hi + lo) / 2, lo):
        parts.append(f'<text x="{LEFT - 4}" y="{svg_num(y(v) + 3)}" class="tick" text-anchor="end">{esc(short_num(v))}</text>')
    for i in _tick_slots(n, max(2, int(plot_w // (6 * max(len(_tick_label(k)) for k in x_labels) + 6)))):
        parts.append(f'<text x="{svg_num(x(i))}" y="{height - 6}" class="tick" text-anchor="middle">'
                     f'{esc(_tick_label(x_labels[i]))}</text>')
    for b in bands:
        for seg in _segments([(i, u, l_) for i, (l_, u) in enumerate(zip(b["lower"], b["upper"]))
                              if _num(l_) is not None and _num(u) is not None]):
            if len(seg) < 2:
                i, u, l_ = seg[0]
                parts.append(f'<rect class="band" x="{svg_num(x(i) - 3)}" y="{svg_num(y(u))}" width="6" '
                             f'height="{svg_num(max(y(l_) - y(u), 1.0))}" fill="{b.get("color", CUR_COLOR)}" '
                             f'fill-opacity="0.2"><title>{esc(b["name"])}</title></rect>')
                continue
            pts = ([f"{svg_num(x(i))},{svg_num(y(u))}" for i, u, _ in seg]
                   + [f"{svg_num(x(i))},{svg_num(y(l_))}" for i, _, l_ in reversed(seg)])
            parts.append(f'<polygon class="band" points="{" ".join(pts)}" fill="{b.get("color", CUR_COLOR)}" '
                         f'fill-opacity="0.2" stroke="none"><title>{esc(b["name"])}</title></polygon>')
    for r, vs in ref_values:
        known = {_num(v) for v in vs} - {None}
        if len(known) == 1:
            v = known.pop()
            parts.append(f'<line class="threshold" x1="{LEFT}" y1="{svg_num(y(v))}" x2="{width - RIGHT}" y2="{svg_num(y(v))}" '
                         f'stroke="{THRESHOLD_COLOR}" stroke-width="1.2" stroke-dasharray="5 4">'
                         f'<title>{esc(r["name"])} {num(v)}</title></line>')
        elif known:
            for seg in _segments([(i, v) for i, v in enumerate(vs) if _num(v) is not None]):
                pts = " ".join(f"{svg_num(x(i) - (slot / 2 if j == 0 else 0))},{svg_num(y(v))} "
                               f"{svg_num(x(i) + (slot / 2 if j == len(seg) - 1 else 0))},{svg_num(y(v))}"
                               for j, (i, v) in enumerate(seg))
                parts.append(f'<polyline class="threshold" points="{pts}" fill="none" stroke="{THRESHOLD_COLOR}" '
                             f'stroke-width="1.2" stroke-dasharray="5 4"><title>{esc(r["name"])}</title></polyline>')
    for k, s in enumerate(series):
        color = s.get("color", CUR_COLOR)
        dash = ' stroke-dasharray="3 3"' if s.get("dash") else ""
        for seg in _segments([(i, v) for i, v in enumerate(s["values"]) if _num(v) is not None]):
            if len(seg) > 1:
                pts = " ".join(f"{svg_num(x(i))},{svg_num(y(v))}" for i, v in seg)
                parts.append(f'<polyline class="series s{k}" points="{pts}" fill="none" stroke="{color}" '
                             f'stroke-width="1.8"{dash}><title>{esc(s["name"])}</title></polyline>')
        flags = s.get("flags") or [None] * n
        for i, v in enumerate(s["values"]):
            if _num(v) is None:
                continue
            hit = bool(flags[i])
            parts.append(f'<circle class="{"hit" if hit else "pt"}" cx="{svg_num(x(i))}" cy="{svg_num(y(v))}" '
                         f'r="{3.6 if hit else 2.4}" fill="{DRIFT_COLOR if hit else color}">'
                         f'<title>{esc(s["name"])} {esc(x_labels[i])}: {num(v)}{" (drifted)" if hit else ""}'
                         f'</title></circle>')
    return svg_frame(width, height, label, "".join(parts))


def _segments(points: list[tuple]) -> list[list[tuple]]:
    """Runs of consecutive slots (point[0] is the slot index): a missing value breaks a line."""
    out: list[list[tuple]] = []
    for p in points:
        if out and out[-1][-1][0] == p[0] - 1:
            out[-1].append(p)
        else:
            out.append([p])
    return out


def _tick_slots(n: int, most: int = 6) -> list[int]:
    if n <= most:
        return list(range(n))
    step = (n - 1) / (most - 1)
    return sorted({round(i * step) for i in range(most)})


def _tick_label(key: str) -> str:
    """'2026-10-04T0000Z' -> '10-04', '2026-10-04T1300Z' -> '10-04 13:00'."""
    try:
        t = parse_interval_key(key)
    except ValueError:
        return key
    return t.strftime("%m-%d") if (t.hour, t.minute) == (0, 0) else t.strftime("%m-%d %H:%M")


def svg_timeline(intervals: list[dict], incidents: list[dict], href: Callable[[dict], str | None]) -> str:
    """One cell per interval coloured by the run's verdict (a link to its report), then one
    row per incident: a bar from the interval it opened in to the one it resolved in (to the
    end of the range while open), coloured by severity."""
    n = len(intervals)
    if not n:
        return ""
    label_w, width, row_h = 290, 1120, 18
    slot = (width - label_w - 10) / n
    keys = [i["key"] for i in intervals]

    def slot_of(key: str | None, default: int) -> int:
        if key is None:
            return default
        if key in keys:
            return keys.index(key)
        return 0 if key < keys[0] else n if key > keys[-1] else sum(k < key for k in keys)

    height = 14 + row_h * (len(incidents) + 1) + 18
    parts = [f'<text x="{label_w - 6}" y="{14 + 12}" class="tick" text-anchor="end">run verdict</text>']
    for i, it in enumerate(intervals):
        verdict, _, color = VERDICTS.get(it.get("status"), UNKNOWN_VERDICT) if it.get("run") else UNKNOWN_VERDICT
        if it.get("run") and it.get("status") not in VERDICTS:
            verdict = str(it.get("status")).upper()
        cell = (f'<rect class="verdict" x="{svg_num(label_w + i * slot + 1)}" y="14" width="{svg_num(max(slot - 2, 1))}" '
                f'height="{row_h - 3}" fill="{color}"><title>{esc(it["key"])}: {esc(verdict)}</title></rect>')
        link = href(it)
        parts.append(f'<a href="{esc(link)}">{cell}</a>' if link else cell)
    for r, inc in enumerate(incidents, 1):
        y0 = 14 + r * row_h
        a = slot_of(inc["opened"], 0)
        end = inc.get("ended", inc["resolved"])
        b = slot_of(end, n) if end else n
        open_ = end is None or end not in keys and end > keys[-1]
        who = f"{_check_name(inc['check'])}: {inc['subject']}"
        color = SEVERITY_COLORS.get(inc.get("severity"), "#888")
        tip = (f"{who} [{inc.get('severity')}] opened {inc['opened']}, "
               + (f"resolved {inc['resolved']}" if inc["resolved"] else
                  f"suppressed until {str(inc.get('suppressed_until'))[:10]}" if inc.get("state") == "suppressed"
                  else "still open") + f": {inc.get('text') or ''}"
               + "".join(f"; {fb.get('kind')} by {fb.get('by')}" for fb in inc.get("answers") or []))
        parts.append(f'<text x="{label_w - 6}" y="{y0 + 12}" class="tick" text-anchor="end"><title>{esc(who)}</title>'
                     f'{esc(clip(who, SUBJECT_CHARS))}</text>')
        w = max((b - a) * slot - 2, 3)
        parts.append(f'<rect class="incident{" open" if open_ else ""}" x="{svg_num(label_w + a * slot + 1)}" y="{y0 + 2}" '
                     f'width="{svg_num(w)}" height="{row_h - 6}" rx="3" fill="{color}" fill-opacity="0.85">'
                     f'<title>{esc(tip)}</title></rect>')
        answered = [fb.get("kind") for fb in inc.get("answers") or []]
        if answered and w > 60:
            parts.append(f'<text x="{svg_num(label_w + a * slot + 10)}" y="{y0 + 11}" class="tick" fill="#fff" '
                         f'style="fill:#fff">{esc(str(answered[-1]).replace("_", " "))}</text>')
        if a < n and inc["opened"] in keys:
            parts.append(f'<circle class="opened" cx="{svg_num(label_w + a * slot + 4)}" cy="{y0 + 8}" r="2.5" '
                         f'fill="#fff"/>')
    for i in _tick_slots(n, 10):
        parts.append(f'<text x="{svg_num(label_w + (i + 0.5) * slot)}" y="{height - 4}" class="tick" text-anchor="middle">'
                     f'{esc(_tick_label(keys[i]))}</text>')
    return svg_frame(width, height, "run verdicts and alert incidents", "".join(parts))


def _check_name(check: Any) -> str:
    from driftline.stages.alerts import CHECK_NAMES

    return CHECK_NAMES.get(check, str(check))


# -- the page ---------------------------------------------------------------------------------
HISTORY_STYLE = """
.charts{display:flex;flex-wrap:wrap;gap:4px 18px}figure{margin:0}figcaption{font-size:12px;color:#5c6773}
.legend .dash{display:inline-block;width:18px;border-top:2px dashed #555;margin:0 4px 3px 10px}
.rank{color:#5c6773;font-weight:normal;font-size:13px}.nw{white-space:nowrap}
.quiet{display:flex;flex-wrap:wrap;gap:8px}.quiet .card{margin:0;padding:4px 8px;width:350px}.quiet h3{margin:4px 0}
"""


def default_report_href(model: str) -> Callable[[str], str]:
    """Links relative to a page kept at ``metrics/<model>/history.html`` in the store."""
    return lambda key: f"../../runs/{quote(model)}/{quote(key)}/report.html"


def render_history(data: dict, *, report_href: Callable[[str], str] | None = None, title: str | None = None,
                   nav: str = "") -> str:
    """The history page of ``load_history``'s data: one self-contained HTML page. ``report_href``
    gives the link of an interval's run report from its key (default: relative to
    ``metrics/<model>/history.html``); a run is linked when its run.json or report.html exists.
    ``nav`` is markup the caller puts first in the body (the driftline page's navigation)."""
    model = data.get("model", "")
    href_of = report_href or default_report_href(model)

    def href(it: dict) -> str | None:
        return href_of(it["key"]) if it.get("run") or it.get("report") else None

    keys = [i["key"] for i in data.get("intervals", [])]
    body = "".join([
        _page_header(data, title),
        section("timeline", "Run verdicts and alert incidents", _timeline_body(data, href)),
        section("dataset-drift", "Dataset drift", _dataset_drift(data, keys)),
        section("features", "Feature drift (drivers first)", _drift_cards(data.get("features") or [], keys, "feature")),
        section("prediction", "Prediction drift", _drift_cards(data.get("prediction") or [], keys, "prediction")),
        section("model-quality", "Model quality: realized vs estimated", _quality(data, keys)),
        section("incidents", "Alert incidents", _incident_table(data)),
        section("runs", "Runs", _runs_table(data, href)),
    ])
    made = datetime.now(timezone.utc).isoformat(timespec="seconds")
    page_title = title or f"driftline {model} history"
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{esc(page_title)}</title><style>{STYLE}{HISTORY_STYLE}</style></head><body>{nav}{body}"
            f"<footer>driftline history of {esc(model)} · generated {esc(made)}</footer></body></html>\n")


def _page_header(data: dict, title: str | None) -> str:
    intervals = data.get("intervals", [])
    since, until = data.get("since"), data.get("until")
    span = (f"{intervals[0]['key']} → {intervals[-1]['key']}" if intervals else "none")
    verdicts: dict[str, int] = {}
    for it in intervals:
        v = (VERDICTS.get(it.get("status"), (str(it.get("status")).upper(),))[0] if it.get("run")
             else UNKNOWN_VERDICT[0])
        verdicts[v] = verdicts.get(v, 0) + 1
    first = data.get("first") or {}
    open_now = sum(1 for i in data.get("incidents", []) if i.get("state") == "open")
    facts = [
        ("model", esc(data.get("model"))),
        ("range", esc(f"{since or 'start'} → {until or 'now'}")),
        ("intervals", f"{num(len(intervals))} <small>({esc(span)})</small>"),
        ("verdicts", ", ".join(f"{num(c)} {esc(v.lower())}" for v, c in verdicts.items()) or "none"),
        ("first drift", esc(first.get("drift") or "none")),
        ("first violation verdict", esc(first.get("violations") or "none")),
        ("incidents", f"{num(len(data.get('incidents', [])))} ({num(open_now)} open)"),
    ]
    dl = "".join(f'<div class="fact"><dt>{esc(k)}</dt><dd>{v}</dd></div>' for k, v in facts)
    problems = "".join(note(p) for p in data.get("problems", []))
    head = title or f"driftline · {data.get('model', '')} · history"
    return f'<header><h1>{esc(head)}</h1><dl class="facts">{dl}</dl>{problems}</header>'


def _timeline_body(data: dict, href: Callable[[dict], str | None]) -> str:
    intervals = data.get("intervals", [])
    if not intervals:
        return note("No interval in the range.")
    legend = ('<p class="legend">' + "".join(
        f'<span class="swatch" style="background:{c}"></span>{esc(v.lower())}'
        for v, _, c in (*VERDICTS.values(), UNKNOWN_VERDICT)) + " · incidents: " + "".join(
        f'<span class="swatch" style="background:{c}"></span>{esc(s)}' for s, c in SEVERITY_COLORS.items())
        + " · each verdict cell links to its run's report</p>")
    return legend + svg_timeline(intervals, data.get("incidents", []), href)


def _dataset_drift(data: dict, keys: list[str]) -> str:
    share = data.get("share") or {}
    charts = []
    if any(v is not None for v in share.get("values", [])):
        flags = share.get("dataset_drift") or []
        charts.append(_figure("share of features drifted (dashed: dataset drift share)", svg_line_chart(
            keys, [{"name": "drift share", "values": share["values"], "color": CUR_COLOR, "flags": flags}],
            refs=[{"name": "dataset drift at", "values": share.get("threshold") or []}],
            label="share of drifted features", share=True)))
    for check, m in (data.get("multivariate") or {}).items():
        refs = [{"name": "threshold", "values": m.get("threshold") or []}]
        if any(v is not None for v in m.get("lower_threshold") or []):
            refs.append({"name": "lower threshold", "values": m["lower_threshold"]})
        charts.append(_figure(f"multivariate: {check} (dashed: threshold)", svg_line_chart(
            keys, [{"name": check, "values": m["values"], "color": CUR_COLOR, "flags": m.get("drifted")}],
            refs=refs, label=f"multivariate drift {check}")))
    if not charts:
        return note("No dataset drift on record in the range.")
    return f'<div class="charts">{"".join(charts)}</div>'


def _figure(caption: str, chart: str) -> str:
    return f"<figure>{chart}<figcaption>{esc(caption)}</figcaption></figure>"


def _decision_chart(f: dict, keys: list[str], **size: int) -> tuple[str, str]:
    """The chart the feature's verdict is decided on, and its caption: the statistic against
    its threshold, or a test's p-value against alpha."""
    if any(p is not None for p in f["pvalue"]):
        return (svg_line_chart(keys, [{"name": "p-value", "values": f["pvalue"], "color": CUR_COLOR,
                                       "flags": f["distribution_drifted"]}],
                               refs=[{"name": "alpha", "values": f["threshold"]}],
                               label=f"{f['name']}: {f['method']} p-value vs alpha", share=True, **size),
                f"{f['method']} p-value (below alpha = drift)")
    what = f["method"] or "statistic"
    return (svg_line_chart(keys, [{"name": what, "values": f["statistic"], "color": CUR_COLOR,
                                   "flags": f["distribution_drifted"]}],
                           refs=[{"name": "threshold", "values": f["threshold"]}],
                           label=f"{f['name']}: {what} vs threshold", zero=True, **size),
            f"{what} vs its threshold (dashed)")


def _drift_cards(items: list[dict], keys: list[str], group: str) -> str:
    """A full card (decision chart and drift score) per column that drifted in the range, in
    driver order; then a small card per quiet column."""
    if not items:
        return note(f"No {group} drift on record in the range.")
    out = note(SCORE_NOTE) if group == "feature" else ""
    out += (f'<p class="legend"><span class="swatch" style="background:{CUR_COLOR}"></span>value '
            f'<span class="swatch" style="background:{DRIFT_COLOR}"></span>drifted '
            f'<span class="dash"></span>threshold</p>')
    quiet = []
    for f in items:
        head = (f'<h3><span class="rank">#{num(f["rank"])}</span> <code>{esc(f["name"])}</code> '
                f'<small>{esc(f["method"] or "")}</small> ')
        if not f["drifted_intervals"]:
            chart, caption = _decision_chart(f, keys, width=340, height=110)
            quiet.append(f'<div class="card" id="{group}-{f["rank"]}">{head}{badge("no drift", "ok")} '
                         f'<small>peak score {num(f["peak_score"], 3)}</small></h3>{_figure(caption, chart)}</div>')
            continue
        left, left_cap = _decision_chart(f, keys)
        right = svg_line_chart(keys, [{"name": "drift score", "values": f["score"], "color": REF_COLOR,
                                       "flags": f["drifted"]}],
                               refs=[{"name": "default threshold (score 1)", "values": 1.0}],
                               label=f"{f['name']}: drift score", zero=True)
        charts = _figure(left_cap, left) + _figure("drift score (dashed: 1 = default threshold)", right)
        if any(f["missing_drifted"]):
            charts += _figure("missing share (dashed: baseline's)", svg_line_chart(
                keys, [{"name": "missing share", "values": f["missing_share"], "color": CUR_COLOR,
                        "flags": f["missing_drifted"]}],
                refs=[{"name": "baseline missing share", "values": f["missing_reference"]}],
                label=f"{f['name']}: missing share", zero=True))
        facts = (f"drifted in {num(f['drifted_intervals'])} of {num(len(keys))} intervals, first in "
                 f"{esc(f['first_drifted'])}; peak drift score {num(f['peak_score'], 3)}"
                 + (f"; sum of its shares of the drift {num(f['contribution'], 3)}" if f["contribution"] else "")
                 + (f"; methods {esc(', '.join(f['methods']))}" if len(f["methods"]) > 1 else "")
                 + (f"; its missing-value share drifted in {num(sum(map(bool, f['missing_drifted'])))} of them"
                    if any(f["missing_drifted"]) else ""))
        out += (f'<div class="card drifted" id="{group}-{f["rank"]}">{head}{badge("DRIFT", "bad")}</h3><p>{facts}</p>'
                f'<div class="charts">{charts}</div></div>')
    if quiet:
        out += f'<h3>No drift in the range</h3><div class="quiet">{"".join(quiet)}</div>'
    return out


def _quality(data: dict, keys: list[str]) -> str:
    quality = data.get("quality") or {}
    coverage = data.get("coverage") or []
    if not quality and all(c is None for c in coverage):
        return note("No model-quality history in the range (no labels configured, or not evaluated yet).")
    legend = (f'<p class="legend"><span class="swatch" style="background:{REALIZED_COLOR}"></span>realized (labels) '
              f'<span class="swatch" style="background:{CUR_COLOR}"></span>estimated, with its band (shaded)</p>')
    charts = []
    for metric, q in quality.items():
        charts.append(_figure(metric, svg_line_chart(
            keys, [{"name": "estimated", "values": q["estimated"], "color": CUR_COLOR, "dash": True},
                   {"name": "realized", "values": q["realized"], "color": REALIZED_COLOR}],
            bands=[{"name": "estimate band", "lower": q["lower"], "upper": q["upper"], "color": CUR_COLOR}],
            label=f"{metric}: realized vs estimated")))
    if any(c is not None for c in coverage):
        charts.append(_figure("label coverage (share of predictions labelled)", svg_line_chart(
            keys, [{"name": "label coverage", "values": coverage, "color": REALIZED_COLOR}],
            label="label coverage", share=True)))
    return legend + f'<div class="charts">{"".join(charts)}</div>'


def _incident_table(data: dict) -> str:
    incidents = data.get("incidents") or []
    if not incidents:
        return '<p class="good">No alert incident in the range.</p>'
    level = {"critical": "bad", "warning": "warn", "info": "info"}
    rows = []
    for i in incidents:
        state = (f'{badge("withdrawn", "info")} <span class="nw">{esc(i.get("withdrawn"))}</span>'
                 if i.get("state") == "withdrawn" else
                 f'{badge("resolved", "ok")} <span class="nw">{esc(i["resolved"])}</span>' if i["resolved"]
                 else badge("suppressed", "info") if i.get("state") == "suppressed" else badge("open", "bad"))
        fb = "<br>".join(esc(answer_note(f)) for f in i["answers"])
        rows.append([f'<span class="nw">{esc(i["opened"])}</span>', state,
                     badge(str(i.get("severity")), level.get(i.get("severity"), "info")),
                     esc(_check_name(i["check"])), f"<code>{esc(i['subject'])}</code>",
                     esc(i.get("text") or "") + (f" <small>(+{num(i['reminders'])} reminders)</small>"
                                                 if i["reminders"] else "")
                     + "".join(f"<br><small>re-judged: {esc(r.get('text'))}</small>" for r in i.get("rejudged") or []),
                     fb])
    return table(["opened", "state", "severity", "check", "subject", "message", "feedback"], rows)


def _runs_table(data: dict, href: Callable[[dict], str | None]) -> str:
    intervals = data.get("intervals") or []
    if not intervals:
        return note("No run in the range.")
    rows = []
    for it in intervals:
        verdict, kind, _ = VERDICTS.get(it.get("status"), (str(it.get("status")).upper(), "warn", "")) \
            if it.get("run") else UNKNOWN_VERDICT
        link = href(it)
        key = f'<a class="nw" href="{esc(link)}">{esc(it["key"])}</a>' if link else esc(it["key"])
        drifted = ", ".join(f"<code>{esc(n)}</code>" for n in it.get("drifted") or [])
        rows.append([key, badge(verdict, kind), num(it.get("rows")), num(it.get("quarantined")),
                     num(it.get("violations")), num(it.get("violations_found")), drifted,
                     esc(it.get("baseline") or "")])
    return table(["interval", "verdict", "rows", "quarantined", "violations counted", "violations found",
                  "drifted", "baseline"], rows, "compact")


__all__ = ["load_history", "render_history", "svg_line_chart", "svg_timeline", "default_report_href"]
