"""The sentence of a threshold crossing names the bound actually crossed."""
from driftline.common.bounds import crossed, number, within


def test_lower_and_upper_bound_crossings():
    assert crossed(0.012, lower=0.020, upper=0.031) == "0.012 < lower bound 0.02"
    assert crossed(0.31, lower=0.1, upper=0.25) == "0.31 > upper bound 0.25"
    assert crossed(0.31, upper=0.25) == "0.31 > upper bound 0.25"
    assert crossed(-0.3, lower=-0.2, upper=0.2, sign=True) == "-0.3 < lower bound -0.2"
    assert crossed(0.3, lower=-0.2, upper=0.2, sign=True) == "+0.3 > upper bound +0.2"


def test_within_and_on_the_bound():
    assert crossed(0.025, lower=0.02, upper=0.031) is None
    assert crossed(0.25, upper=0.25) is None                       # strict: on the bound is no breach
    assert crossed(0.25, upper=0.25, inclusive=True) == "0.25 >= upper bound 0.25"
    assert crossed(None, upper=1.0) is None and crossed(float("nan"), lower=0.0) is None
    assert within(0.025, 0.02, 0.031) == "0.025 within [0.02, 0.031]"
    assert within(0.5, None, 0.55) == "0.5 within [-inf, 0.55]"


def test_a_value_just_past_its_bound_never_reads_as_equal():
    assert number(0.020004, 0.02) == "0.020004" and number(0.02, 0.020004) == "0.02"
    assert crossed(0.0200004, upper=0.02) == "0.0200004 > upper bound 0.02"
    assert number(123456.0) == "1.23e+05"
