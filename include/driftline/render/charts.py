"""Inline SVG charts for the report and the history page: histograms, category bars, quantiles,
estimate bands."""
from __future__ import annotations

import math

from driftline.common.html import CUR_COLOR, REF_COLOR, clip, esc, fmt_num, num, pct

#: Categories drawn per feature; the rest are summed into "(other)".
MAX_CATEGORIES = 10
#: Characters of a label drawn in a chart (the full value is in the bar's tooltip).
LABEL_CHARS = 22


def svg_num(x: float) -> str:
    """An SVG coordinate."""
    return f"{x:.1f}"


def short_num(x: float) -> str:
    """A compact axis label: 3 significant digits, thousands as k."""
    if not math.isfinite(x):
        return "∞" if x > 0 else "-∞"
    return f"{x / 1000:.3g}k" if abs(x) >= 1000 else f"{x:.3g}"


def svg_frame(width: int, height: int, label: str, body: str) -> str:
    return (f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            f'role="img" aria-label="{esc(label)}"><title>{esc(label)}</title>{body}</svg>')


def _shares(counts: list[float]) -> list[float]:
    total = float(sum(counts))
    return [c / total if total else 0.0 for c in counts]


def svg_histogram(edges: list[float], ref_counts: list[float], cur_counts: list[float], label: str) -> str:
    """Reference and current shares of rows per bin of the baseline's edges, bars side by side.
    Bins are drawn at equal widths (they are the baseline's quantile bins): the x-axis labels
    give the edges."""
    ref, cur = _shares(ref_counts), _shares(cur_counts)
    n = len(ref)
    width, height, left, bottom, top = 460, 170, 40, 30, 12
    plot_w, plot_h = width - left - 10, height - bottom - top
    peak = max([*ref, *cur, 1e-12])
    slot = plot_w / n
    parts = [f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 10}" y2="{top + plot_h}" class="axis"/>',
             f'<text x="{left - 4}" y="{top + 4}" class="tick" text-anchor="end">{pct(peak, 0)}</text>',
             f'<text x="{left - 4}" y="{top + plot_h}" class="tick" text-anchor="end">0%</text>']
    for i in range(n):
        lo, hi = edges[i], edges[i + 1]
        span = f"[{short_num(lo)}, {short_num(hi)})"
        for j, (share, color) in enumerate(((ref[i], REF_COLOR), (cur[i], CUR_COLOR))):
            h = share / peak * plot_h
            x = left + i * slot + slot * (0.1 + 0.4 * j)
            who = "reference" if j == 0 else "current"
            parts.append(f'<rect x="{svg_num(x)}" y="{svg_num(top + plot_h - h)}" width="{svg_num(slot * 0.4)}" height="{svg_num(h)}" '
                         f'fill="{color}"><title>{esc(span)} {who}: {pct(share)}</title></rect>')
        if i:
            parts.append(f'<text x="{svg_num(left + i * slot)}" y="{top + plot_h + 12}" class="tick" '
                         f'text-anchor="middle">{esc(short_num(lo))}</text>')
    return svg_frame(width, height, label, "".join(parts))


def _category_rows(ref_top: dict, cur_top: dict, ref_other: float, cur_other: float) -> list[tuple[str, float, float]]:
    names = sorted(set(ref_top) | set(cur_top), key=lambda k: (-max(ref_top.get(k, 0.0), cur_top.get(k, 0.0)), str(k)))
    rows = [(str(k), float(ref_top.get(k, 0.0)), float(cur_top.get(k, 0.0))) for k in names[:MAX_CATEGORIES]]
    rest = names[MAX_CATEGORIES:]
    ro = ref_other + sum(ref_top.get(k, 0.0) for k in rest)
    co = cur_other + sum(cur_top.get(k, 0.0) for k in rest)
    if ro > 0 or co > 0:
        rows.append(("(other)", ro, co))
    return rows


def svg_categories(ref_top: dict, cur_top: dict, label: str, ref_other: float = 0.0, cur_other: float = 0.0) -> str:
    """Reference and current shares of each category, a pair of horizontal bars per value."""
    rows = _category_rows(ref_top, cur_top, ref_other or 0.0, cur_other or 0.0)
    width, left, row_h, right = 460, 150, 24, 50
    height = max(row_h * len(rows) + 8, 30)
    peak = max([r for _, a, b in rows for r in (a, b)] + [1e-12])
    plot_w = width - left - right
    parts = []
    for i, (name, a, b) in enumerate(rows):
        y = 4 + i * row_h
        parts.append(f'<text x="{left - 6}" y="{y + 14}" class="tick" text-anchor="end">'
                     f'<title>{esc(name)}</title>{esc(clip(name, LABEL_CHARS))}</text>')
        for j, (share, color) in enumerate(((a, REF_COLOR), (b, CUR_COLOR))):
            w = share / peak * plot_w
            yy = y + 2 + j * 10
            who = "reference" if j == 0 else "current"
            parts.append(f'<rect x="{left}" y="{yy}" width="{svg_num(w)}" height="9" fill="{color}">'
                         f'<title>{esc(name)} {who}: {pct(share)}</title></rect>'
                         f'<text x="{svg_num(left + w + 4)}" y="{yy + 8}" class="tick">{pct(share)}</text>')
    return svg_frame(width, height, label, "".join(parts))


QUANTILES = ("p05", "p25", "p50", "p75", "p95")


def svg_quantiles(ref: dict, cur: dict, label: str) -> str | None:
    """Box plots (p05-p95 whiskers, p25-p75 box, median, mean dot) of reference and current,
    on one scale: the fallback when no histogram is on record. None without quantiles."""
    if not all(isinstance(s.get(q), (int, float)) for s in (ref, cur) for q in QUANTILES):
        return None
    values = [s[q] for s in (ref, cur) for q in QUANTILES]
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.05 or 1.0
    lo, hi = lo - pad, hi + pad
    width, left, right = 460, 80, 10
    plot_w = width - left - right

    def x(v: float) -> float:
        return left + (v - lo) / (hi - lo) * plot_w

    parts = []
    for i, (who, s, color) in enumerate((("reference", ref, REF_COLOR), ("current", cur, CUR_COLOR))):
        y = 10 + i * 34
        q = [s[k] for k in QUANTILES]
        tip = esc(f"{who}: " + ", ".join(f"{k} {fmt_num(s[k])}" for k in QUANTILES))
        parts.append(f'<g><title>{tip}</title>'
                     f'<text x="{left - 6}" y="{y + 14}" class="tick" text-anchor="end">{esc(who)}</text>'
                     f'<line x1="{svg_num(x(q[0]))}" y1="{y + 10}" x2="{svg_num(x(q[4]))}" y2="{y + 10}" stroke="{color}"/>'
                     f'<rect x="{svg_num(x(q[1]))}" y="{y}" width="{svg_num(max(x(q[3]) - x(q[1]), 1))}" height="20" '
                     f'fill="{color}" fill-opacity="0.5" stroke="{color}"/>'
                     f'<line x1="{svg_num(x(q[2]))}" y1="{y}" x2="{svg_num(x(q[2]))}" y2="{y + 20}" stroke="#222"/></g>')
        if isinstance(s.get("mean"), (int, float)):
            parts.append(f'<circle cx="{svg_num(x(s["mean"]))}" cy="{y + 10}" r="3" fill="#222"/>')
    parts.append(f'<text x="{left}" y="84" class="tick">{esc(short_num(lo))}</text>'
                 f'<text x="{width - right}" y="84" class="tick" text-anchor="end">{esc(short_num(hi))}</text>')
    return svg_frame(width, 90, label, "".join(parts))


def svg_band(value: float | None, lower: float | None, upper: float | None, realized: float | None,
             baseline: float | None, bound: float | None) -> str:
    """One metric on a line: the estimate's band and value (blue), the realized value (black
    diamond), the baseline (grey tick) and the breach bound (red tick)."""
    points = [v for v in (value, lower, upper, realized, baseline, bound) if isinstance(v, (int, float))]
    if not points:
        return ""
    lo, hi = min(points), max(points)
    pad = (hi - lo) * 0.1 or 0.05
    lo, hi = lo - pad, hi + pad
    width, height = 170, 18

    def x(v: float) -> str:
        return svg_num(4 + (v - lo) / (hi - lo) * (width - 8))

    parts = [f'<line x1="4" y1="9" x2="{width - 4}" y2="9" class="axis"/>']
    if isinstance(baseline, (int, float)):
        parts.append(f'<line x1="{x(baseline)}" y1="2" x2="{x(baseline)}" y2="16" stroke="{REF_COLOR}" stroke-width="2">'
                     f'<title>baseline {num(baseline)}</title></line>')
    if isinstance(bound, (int, float)):
        parts.append(f'<line x1="{x(bound)}" y1="2" x2="{x(bound)}" y2="16" stroke="#c0392b" stroke-width="2">'
                     f'<title>bound {num(bound)}</title></line>')
    if isinstance(lower, (int, float)) and isinstance(upper, (int, float)):
        parts.append(f'<rect x="{x(lower)}" y="5" width="{svg_num(float(x(upper)) - float(x(lower)))}" height="8" '
                     f'fill="{CUR_COLOR}" fill-opacity="0.25">'
                     f'<title>estimate band [{num(lower)}, {num(upper)}]</title></rect>')
    if isinstance(value, (int, float)):
        parts.append(f'<circle cx="{x(value)}" cy="9" r="3.5" fill="{CUR_COLOR}">'
                     f'<title>estimated {num(value)}</title></circle>')
    if isinstance(realized, (int, float)):
        cx = float(x(realized))
        parts.append(f'<path d="M{svg_num(cx)} 3 L{svg_num(cx + 5)} 9 L{svg_num(cx)} 15 L{svg_num(cx - 5)} 9 Z" fill="#222">'
                     f'<title>realized {num(realized)}</title></path>')
    return svg_frame(width, height, "realized vs estimated", "".join(parts))
