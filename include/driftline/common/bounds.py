"""Wording a threshold crossing: which bound a value crossed, and by how much it shows.

Checks with two bounds (the PCA reconstruction error, a bias metric's band, a range check)
fire on either side; a message that prints only one of them sends the reader the wrong way.
``crossed(0.012, lower=0.020, upper=0.031)`` gives ``"0.012 < lower bound 0.02"``;
``crossed(0.31, upper=0.25)`` gives ``"0.31 > upper bound 0.25"``; a value within its bounds
gives None. Numbers get as many significant digits as it takes (3 to 10) for the value and the
bound to read differently, so a value just past its bound never prints as equal to it.
"""
from __future__ import annotations

import math


def number(x: float, *others: float, digits: int = 3, sign: bool = False) -> str:
    """``x`` with ``digits`` significant digits, more when needed to tell it from ``others``."""
    spec = "+" if sign else ""
    for d in range(digits, 11):
        text = f"{x:{spec}.{d}g}"
        if all(text != f"{o:{spec}.{d}g}" for o in others if o is not None and o != x):
            return text
    return f"{x:{spec}.10g}"


def crossed(value: float | None, lower: float | None = None, upper: float | None = None, *,
            inclusive: bool = False, sign: bool = False) -> str | None:
    """The bound ``value`` crossed, as ``"<value> < lower bound <lower>"`` or ``"<value> >
    upper bound <upper>"``; None when it is within (or either is missing or NaN).
    ``inclusive``: a value *on* a bound counts as crossing it (the check fires at ``>=`` /
    ``<=``), and the sentence says so. ``sign``: print signs (``+0.120``), for metrics whose
    sign means something."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    below = lower is not None and (value <= lower if inclusive else value < lower)
    above = upper is not None and (value >= upper if inclusive else value > upper)
    if not (below or above):
        return None
    bound, side, op = (lower, "lower", "<") if below else (upper, "upper", ">")
    if inclusive:
        op += "="
    return f"{number(value, bound, sign=sign)} {op} {side} bound {number(bound, value, sign=sign)}"


def within(value: float, lower: float | None, upper: float | None) -> str:
    """``"0.025 within [0.02, 0.031]"`` (or one open side), for a value inside its bounds."""
    lo = "-inf" if lower is None else number(lower, value)
    hi = "inf" if upper is None else number(upper, value)
    return f"{number(value, *(b for b in (lower, upper) if b is not None))} within [{lo}, {hi}]"
