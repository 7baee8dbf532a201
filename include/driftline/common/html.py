"""HTML basics shared by every page driftline writes (the run report, the history page, the Data
Docs page, the driftline UI): escaping, number formatting, badges, tables and the style sheet.
Every value that came from data goes through :func:`esc`."""
from __future__ import annotations

import html
import math
from typing import Any

from driftline.common.limits import TEXT_CHARS, shown

REF_COLOR, CUR_COLOR = "#9aa5b1", "#2f6fdf"


def esc(value: Any) -> str:
    """Text for HTML (and SVG): every data value goes through here, held to TEXT_CHARS
    (``driftline.common.limits.shown``: a longer text is its preview, length and hash), so no value
    from data makes the page large whatever the stage that handed it over."""
    return html.escape("" if value is None else shown(str(value), TEXT_CHARS), quote=True)


def fmt_num(x: Any, digits: int = 4) -> str:
    """A number as the report prints it: ``digits`` significant digits, 'n/a' for None/NaN.
    Plain text (not escaped): pass it through esc() on its way to HTML, or use num()."""
    if x is None:
        return "n/a"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        return "n/a" if math.isnan(x) else f"{x:.{digits}g}"
    return str(x)


def fmt_pct(x: Any, digits: int = 1) -> str:
    return "n/a" if not isinstance(x, (int, float)) or isinstance(x, bool) else f"{x:.{digits}%}"


def num(x: Any, digits: int = 4) -> str:
    return esc(fmt_num(x, digits))


def pct(x: Any, digits: int = 1) -> str:
    return esc(fmt_pct(x, digits))


def clip(text: Any, n: int) -> str:
    """Shortened raw text (escape after clipping, never before: an entity must not be cut)."""
    s = "" if text is None else str(text)
    return s if len(s) <= n else s[: n - 1] + "…"


def badge(text: str, kind: str) -> str:
    """kind: ok | bad | warn | info (a CSS class of this module, never data)."""
    return f'<span class="badge {kind}">{esc(text)}</span>'


def note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


def table(headers: list[str], rows: list[list[str]], cls: str = "") -> str:
    """headers are plain text; rows hold cells that are already HTML (built with esc/num/pct)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{esc(cls)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>{body}</section>'


STYLE = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1180px;padding:16px;color:#1d232a}
h1{font-size:22px;margin:4px 0 12px}h2{font-size:18px;border-bottom:1px solid #d5dbe1;padding-bottom:4px;margin-top:28px}
h3{font-size:15px;margin:14px 0 6px}small{color:#5c6773;font-weight:normal}code{font-size:13px}
.facts{display:flex;flex-wrap:wrap;gap:8px 20px;margin:0 0 12px}.fact dt{font-size:11px;color:#5c6773;text-transform:uppercase}
.fact dd{margin:0;font-weight:600}
table{border-collapse:collapse;margin:6px 0 10px}th,td{border:1px solid #e1e6ea;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f4f6f8;font-weight:600}table.compact td,table.compact th{padding:1px 5px;font-size:12px}
.badge{display:inline-block;padding:0 7px;border-radius:9px;font-size:12px;font-weight:600}
.badge.ok{background:#dff3e4;color:#1e6b34}.badge.bad{background:#fbe0de;color:#a12a1f}
.badge.warn{background:#fff0cc;color:#7a5800}.badge.info{background:#e5ecf6;color:#2b4c7e}
.card{border:1px solid #e1e6ea;border-radius:6px;padding:6px 12px;margin:10px 0}.card.drifted{border-left:4px solid #d9534f}
.side{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}.facts-table th{width:130px}
.note{color:#5c6773;font-style:italic}.good{color:#1e6b34}.bad-text{color:#a12a1f;font-weight:600}
.legend .swatch{display:inline-block;width:11px;height:11px;margin:0 4px 0 10px;vertical-align:-1px}
svg.chart .tick{font-size:10px;fill:#444}svg.chart .axis{stroke:#888;stroke-width:1}
footer{margin-top:30px;color:#5c6773;font-size:12px}
"""
