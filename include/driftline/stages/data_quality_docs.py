"""Data Docs of a run: the Great Expectations validation result as one self-contained page.

GX's own Data Docs load jQuery, Bootstrap, Vega and fonts from CDNs and read ``sessionStorage``:
offline, or inside the driftline page's sandbox (an opaque origin, where ``sessionStorage``
throws), they show little or nothing. They also print data values as they are, so a category
value such as ``<script>...`` becomes markup of their page. This page is driftline's reading of
the same result (``gx_validation.json``): every expectation with its column, arguments, verdict,
what GX observed and its sample of unexpected values -- plain HTML with inline CSS, no script,
no request, every value from data escaped (:func:`driftline.common.html.esc`).

It is the run's ``data_docs/index.html``; GX's own Data Docs sit beside it in ``data_docs/gx/``
for those who open them with a network connection.

Sizes are bounded whatever the data: at most :data:`MAX_VALUES` distinct unexpected values and
:data:`MAX_ITEMS` items of a list argument (a categorical domain, a column set) are shown, each
held to :data:`VALUE_CHARS` characters the way every artifact shows a value from data
(``driftline.common.limits.shown``: a preview, the value's length and its hash), with a count of the rest.
"""
from __future__ import annotations

import math
from typing import Any

from driftline.common.html import STYLE, badge, esc, note, num
from driftline.common.limits import SHOWN_CHARS, TEXT_CHARS, shown

#: Distinct unexpected values shown per expectation (GX's SUMMARY keeps 20 rows anyway).
MAX_VALUES = 20
#: Items of a list-valued argument or observed value shown (a domain may hold thousands).
MAX_ITEMS = 30
#: Characters of one value shown: the cap of every artifact (a longer value is its preview, length and hash).
VALUE_CHARS = SHOWN_CHARS
#: Arguments every expectation of a run carries, or that the page shows in its own column.
_HIDDEN_KWARGS = ("batch_id", "column")
#: The argument names GX uses for the column(s) an expectation is about.
_COLUMN_KWARGS = ("column", "column_A", "column_B", "column_list")

EXTRA_STYLE = """
tr.failed td{background:#fff6f5}tr.why td{background:#fff6f5;border-top:none;color:#6b2a22;font-size:13px}
table.results{width:100%}td.args{min-width:240px;max-width:420px}td.observed{min-width:150px}
td.values{min-width:150px;max-width:360px}
td.values .n{color:#5c6773}code.v{white-space:pre-wrap;overflow-wrap:anywhere}
.null{color:#5c6773;font-style:italic}
"""


# -- values as text ----------------------------------------------------------------------------
def value_text(v: Any) -> str:
    """One value as plain text (escape on the way to HTML): strings quoted so blanks show,
    floats to 6 significant digits, lists and mappings bounded by MAX_ITEMS."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if not math.isfinite(v):
            return repr(v)
        # a whole number prints whole (1000000.0, not 1e+06): outliers are often round
        return f"{v:.1f}" if v.is_integer() and abs(v) < 1e15 else f"{v:.6g}"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return '"' + shown(v, VALUE_CHARS) + '"'
    if isinstance(v, (list, tuple)):
        items = ", ".join(value_text(x) for x in v[:MAX_ITEMS])
        more = f", … (+{len(v) - MAX_ITEMS} more)" if len(v) > MAX_ITEMS else ""
        return f"[{items}{more}]"
    if isinstance(v, dict):
        items = list(v.items())
        pairs = ", ".join(f"{shown(str(k), VALUE_CHARS)}: {value_text(x)}" for k, x in items[:MAX_ITEMS])
        more = f", … (+{len(items) - MAX_ITEMS} more)" if len(items) > MAX_ITEMS else ""
        return "{" + pairs + more + "}"
    return shown(v, VALUE_CHARS)


def value_html(v: Any) -> str:
    return '<span class="null">null</span>' if v is None else f'<code class="v">{esc(value_text(v))}</code>'


def unexpected_values(res: dict) -> tuple[list[tuple[Any, int]], int]:
    """GX's sample of unexpected values as (value, count) pairs, most frequent first, at most
    MAX_VALUES of them, and the number of distinct values left out. GX lists a value once per
    row in some results (nulls among them), so equal values are merged here."""
    counts: dict[str, list] = {}
    pairs = [(c.get("value"), c.get("count") or 0) for c in res.get("partial_unexpected_counts") or []
             if isinstance(c, dict)]
    if not pairs:
        pairs = [(v, 1) for v in res.get("partial_unexpected_list") or []]
    for value, count in pairs:
        key = value_text(value)
        if key in counts:
            counts[key][1] += count
        else:
            counts[key] = [value, count]
    ranked = sorted(counts.values(), key=lambda vc: -vc[1])  # stable: GX's order among ties
    return [(v, c) for v, c in ranked[:MAX_VALUES]], max(0, len(ranked) - MAX_VALUES)


# -- one expectation -----------------------------------------------------------------------------
def raised(info: Any) -> str | None:
    """The exception message of a GX result, whether exception_info is flat or keyed by metric."""
    if not isinstance(info, dict):
        return None
    if "raised_exception" in info:
        return (info.get("exception_message") or "unknown error") if info["raised_exception"] else None
    for sub in info.values():
        msg = raised(sub)
        if msg:
            return msg
    return None


def column_of(cfg: dict) -> str | None:
    kw = cfg.get("kwargs") or {}
    for k in _COLUMN_KWARGS:
        if kw.get(k) is not None:
            return value_text(kw[k]) if isinstance(kw[k], list) else str(kw[k])
    return None


def _args_cell(kw: dict) -> str:
    lines = []
    for k, v in kw.items():
        if k in _HIDDEN_KWARGS:
            continue
        text = f"{100 * v:g}%" if k == "mostly" and isinstance(v, (int, float)) else value_text(v)
        lines.append(f"<div>{esc(k)}: <code class=\"v\">{esc(text)}</code></div>")
    return "".join(lines)


def _observed_cell(res: dict, error: str | None) -> str:
    if error is not None:
        return f'<span class="bad-text">could not run:</span> {esc(shown(error, 500))}'
    parts = []
    if "observed_value" in res:
        parts.append(f"observed {value_html(res['observed_value'])}")
    if res.get("element_count") is not None:
        bad, n = res.get("unexpected_count") or 0, res["element_count"]
        share = res.get("unexpected_percent")
        parts.append(f"{num(bad)} of {num(n)} unexpected"
                     + (f" ({esc(f'{share:.2f}')}%)" if isinstance(share, (int, float)) else ""))
        if res.get("missing_count"):
            parts.append(f"{num(res['missing_count'])} null (not checked)")
    return "<br>".join(parts) or '<span class="note">–</span>'


def _values_cell(res: dict) -> str:
    values, left_out = unexpected_values(res)
    if not values:
        return ""
    cells = "".join(f'<div>{value_html(v)} <span class="n">×{num(c)}</span></div>' for v, c in values)
    if left_out:
        cells += f'<div class="note">+{num(left_out)} more distinct value(s)</div>'
    sample, total = len(res.get("partial_unexpected_list") or []), res.get("unexpected_count") or 0
    if sample and total > sample:
        cells += f'<div class="note">in GX\'s sample of the first {num(sample)} of {num(total)} unexpected rows</div>'
    return cells


def expectation_rows(r: dict, why: str | None) -> str:
    """The table rows of one expectation result: its own, and for a failure the violation it
    raised (``why``, driftline's description with exact counts) on a row below."""
    cfg = r.get("expectation_config") or {}
    meta, kw, res = cfg.get("meta") or {}, cfg.get("kwargs") or {}, r.get("result") or {}
    error = raised(r.get("exception_info"))
    if error is not None:
        verdict, cls = badge("error", "bad"), "failed"
    elif r.get("success"):
        verdict, cls = badge("met", "ok"), "met"
    else:
        verdict, cls = badge("failed", "bad"), "failed"
    column = column_of(cfg)
    cells = [verdict, f"<code>{esc(cfg.get('type'))}</code>",
             f"<code>{esc(column)}</code>" if column else '<span class="note">table</span>',
             esc(meta.get("constraint_check_type", ""))]
    out = (f'<tr class="{cls}">' + "".join(f"<td>{c}</td>" for c in cells)
           + f'<td class="args">{_args_cell(kw)}</td><td class="observed">{_observed_cell(res, error)}</td>'
           f'<td class="values">{_values_cell(res)}</td></tr>')
    if why and cls == "failed":
        out += f'<tr class="why"><td></td><td colspan="6">violation: {esc(shown(why, TEXT_CHARS))}</td></tr>'
    return out


# -- the page ------------------------------------------------------------------------------------
HEADERS = ["result", "expectation", "column", "check", "arguments", "observed", "unexpected values (GX's sample)"]


def _fact(label: str, body: str) -> str:
    """A labelled fact of the page's header; body is HTML already."""
    return f'<div class="fact"><dt>{esc(label)}</dt><dd>{body}</dd></div>'


def render_validation_page(result: dict, *, model: str, interval: str, baseline: str | None = None,
                           rows: int | None = None, violations: list[dict] | None = None,
                           report_href: str = "../report.html", gx_docs_href: str | None = "gx/index.html") -> str:
    """The page of one GX validation result (``ExpectationSuiteValidationResult.to_json_dict()``).

    Failed expectations come first (then the suite's order); a failure that raised one of
    ``violations`` (driftline's, matched on check and feature) shows its description below it.
    Links are relative: ``report_href`` to the run's report, ``gx_docs_href`` to GX's own Data
    Docs (None when there are none)."""
    results = [r for r in result.get("results") or [] if isinstance(r, dict)]
    ordered = sorted(results, key=lambda r: bool(r.get("success")) and raised(r.get("exception_info")) is None)
    why = {(v.get("constraint_check_type"), v.get("feature_name")): v.get("description")
           for v in violations or []}

    def reason(r: dict) -> str | None:
        cfg = r.get("expectation_config") or {}
        meta = cfg.get("meta") or {}
        feature = meta.get("feature_name", (cfg.get("kwargs") or {}).get("column", "*"))
        return why.get((meta.get("constraint_check_type"), feature))

    stats, meta = result.get("statistics") or {}, result.get("meta") or {}
    n_failed = stats.get("unsuccessful_expectations", sum(1 for r in results if not r.get("success")))
    if not results:
        verdict = badge("nothing checked", "warn")
    elif n_failed:
        verdict = badge(f"{n_failed} of {stats.get('evaluated_expectations', len(results))} failed", "bad")
    else:
        verdict = badge("all expectations met", "ok")
    run_name = (meta.get("run_id") or {}).get("run_name") if isinstance(meta.get("run_id"), dict) else None
    facts = "".join([
        _fact("verdict", verdict), _fact("expectations", num(stats.get("evaluated_expectations", len(results)))),
        _fact("met", num(stats.get("successful_expectations"))), _fact("failed", num(n_failed)),
        _fact("rows", num(rows)) if rows is not None else "",
        _fact("suite", f"<code>{esc(result.get('suite_name'))}</code>"),
        _fact("baseline", esc(baseline)) if baseline else "",
        _fact("validated", esc(meta.get("validation_time") or run_name or "")),
        _fact("great expectations", esc(meta.get("great_expectations_version", ""))),
    ])
    links = [f'<a href="{esc(report_href)}">the run\'s report</a>']
    if gx_docs_href:
        links.append(f'<a href="{esc(gx_docs_href)}">Great Expectations\' own Data Docs</a> (they load their '
                     "scripts, styles and fonts from CDNs: they need a network connection, and show little "
                     "inside the driftline page's sandbox)")
    intro = (f"<p>Every expectation of the baseline's suite, checked by Great Expectations on this interval's "
             f"batch, failures first. Unexpected values are GX's sample: it keeps the first "
             f"{MAX_VALUES} unexpected rows of each expectation; the violation below a failure counts them all. "
             f"See also {' · '.join(links)}.</p>")
    head = "".join(f"<th>{esc(h)}</th>" for h in HEADERS)
    body = (f'<table class="results"><thead><tr>{head}</tr></thead><tbody>'
            + "".join(expectation_rows(r, reason(r)) for r in ordered) + "</tbody></table>" if results
            else note("The validation result holds no expectation result."))
    title = f"Data Docs: {model} {interval}"
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{esc(title)}</title><style>{STYLE}{EXTRA_STYLE}</style></head><body>"
            f"<h1>{esc(title)} <small>Great Expectations validation result</small></h1>"
            f"<dl class=\"facts\">{facts}</dl>"
            f"{intro}<section id=\"expectations\"><h2>Expectations</h2>{body}</section>"
            "<footer>rendered by driftline from Great Expectations' validation result "
            "(<code>gx_validation.json</code> in the run folder)</footer></body></html>\n")
