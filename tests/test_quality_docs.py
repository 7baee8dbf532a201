"""driftline's Data Docs page (driftline.stages.data_quality_docs) on hand-made GX validation results: every
expectation shown, failures first with the violation they raised, hostile values kept as text,
large values bounded. The same page on a real GX run is in test_quality.py."""
from __future__ import annotations

import hashlib
import html
import re

from driftline.stages.data_quality_docs import (
    MAX_ITEMS,
    MAX_VALUES,
    VALUE_CHARS,
    render_validation_page,
    unexpected_values,
)

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'


def _result(type_, kwargs, success, result=None, meta=None, exception=None):
    return {"success": success,
            "expectation_config": {"type": type_, "kwargs": {"batch_id": "m-batch", **kwargs}, "meta": meta or {}},
            "result": result or {},
            "exception_info": {"raised_exception": exception is not None, "exception_message": exception,
                               "exception_traceback": None}}


def _validation(results):
    failed = sum(not r["success"] for r in results)
    return {"success": not failed, "suite_name": "m-v1", "results": results,
            "statistics": {"evaluated_expectations": len(results), "successful_expectations": len(results) - failed,
                           "unsuccessful_expectations": failed,
                           "success_percent": 100.0 * (len(results) - failed) / len(results)},
            "meta": {"great_expectations_version": "1.24.1", "validation_time": "2026-10-05T00:00:00+00:00",
                     "run_id": {"run_name": "2026-10-05T0000Z"}}}


def _rows(page: str) -> list[str]:
    """The expectation rows of the page (met and failed), in order, without the violation rows."""
    return re.findall(r'<tr class="(?:met|failed)">(.*?)</tr>', page, flags=re.S)


def _hostile():
    return _validation([
        _result("expect_column_to_exist", {"column": "region"}, True,
                meta={"constraint_check_type": "missing_column_check", "feature_name": "region"}),
        _result("expect_column_values_to_be_in_set", {"column": "region", "value_set": ["north", IMG], "mostly": 1.0},
                False, {"element_count": 500, "unexpected_count": 40, "unexpected_percent": 8.0,
                        "partial_unexpected_list": [SCRIPT] * 20,
                        "partial_unexpected_counts": [{"value": SCRIPT, "count": 20}]},
                meta={"constraint_check_type": "categorical_values_check", "feature_name": "region"}),
        _result("expect_column_values_to_not_be_null", {"column": "age", "mostly": 0.98}, False,
                # GX lists nulls once per row: the page merges them
                {"element_count": 500, "unexpected_count": 60, "unexpected_percent": 12.0,
                 "partial_unexpected_list": [None] * 20,
                 "partial_unexpected_counts": [{"value": None, "count": 1}] * 20},
                meta={"constraint_check_type": "completeness_check", "feature_name": "age"}),
        _result("expect_column_values_to_be_between", {"column": SCRIPT, "min_value": 0, "max_value": 1}, False,
                exception=f"column {SCRIPT} not found",
                meta={"constraint_check_type": "range_check", "feature_name": SCRIPT}),
        _result("expect_table_columns_to_match_set", {"column_set": ["age", "region"]}, True,
                {"observed_value": ["age", "region"]}, meta={"constraint_check_type": "extra_column_check"}),
    ])


def test_every_expectation_is_shown_failures_first_with_their_violation():
    page = render_validation_page(_hostile(), model="churn", interval="2026-10-05T0000Z", baseline="v1", rows=500,
                                  violations=[{"constraint_check_type": "categorical_values_check",
                                               "feature_name": "region",
                                               "description": f"40 of 500 values unknown: {SCRIPT!r} (40)"}])
    rows = _rows(page)
    assert len(rows) == 5
    kinds = re.findall(r'<tr class="(met|failed)">', page)
    assert kinds == ["failed", "failed", "failed", "met", "met"]
    text = [re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", r))) for r in rows]
    # failures first, in the suite's order; each with its expectation, column, check and what was observed
    assert "expect_column_values_to_be_in_set" in text[0] and " region " in text[0]
    assert "categorical_values_check" in text[0] and "40 of 500 unexpected (8.00%)" in text[0]
    assert f'"{SCRIPT}" ×20' in text[0] and "first 20 of 40 unexpected rows" in text[0]
    assert "expect_column_values_to_not_be_null" in text[1] and "null ×20" in text[1]
    assert text[1].count("null ×") == 1  # twenty nulls are one value
    assert "mostly: 98%" in text[1]
    assert "error" in text[2] and f"could not run: column {SCRIPT} not found" in text[2]
    assert "expect_column_to_exist" in text[3] and "met" in text[3]
    assert "observed [\"age\", \"region\"]" in text[4] and " table " in text[4]
    # the violation a failure raised, below it (driftline's exact count, not GX's sample)
    why = re.findall(r'<tr class="why">(.*?)</tr>', page, flags=re.S)
    assert len(why) == 1 and "40 of 500 values unknown" in html.unescape(why[0])
    assert page.index("expect_column_values_to_be_in_set") < page.index('<tr class="why">') < \
        page.index("expect_column_values_to_not_be_null")
    assert '<dt>failed</dt><dd>3</dd>' in page and "3 of 5 failed" in page and "<dt>rows</dt><dd>500</dd>" in page


def test_values_from_data_stay_text():
    page = render_validation_page(_hostile(), model=SCRIPT, interval="2026-10-05T0000Z",
                                  violations=[{"constraint_check_type": "categorical_values_check",
                                               "feature_name": "region", "description": IMG}])
    low = page.lower()
    # the page's only markup is its own: no script, no image, no attribute from data
    assert "<script" not in low and "<img" not in low
    assert html.escape(SCRIPT) in page and html.escape(f'"{SCRIPT}"') in page
    assert html.escape(IMG) in page
    assert f"<title>Data Docs: {html.escape(SCRIPT)} 2026-10-05T0000Z</title>" in page


def test_the_page_loads_nothing_and_links_only_its_neighbours():
    page = render_validation_page(_hostile(), model="churn", interval="2026-10-05T0000Z").lower()
    assert "<script" not in page and "<link" not in page and "@import" not in page and "url(" not in page
    # data values are escaped, so any tag here is the page's own: none loads anything
    assert "http://" not in page and "https://" not in page and not re.search(r"<[^>]*\bsrc\s*=", page)
    assert re.findall(r'href="([^"]*)"', page) == ["../report.html", "gx/index.html"]
    no_gx = render_validation_page(_hostile(), model="churn", interval="k", gx_docs_href=None)
    assert re.findall(r'href="([^"]*)"', no_gx) == ["../report.html"]


def test_large_values_are_bounded_with_a_count_of_the_rest():
    domain = [f"category-{i}" for i in range(5000)]
    unexpected = [f"new-{i}-" + "x" * 5000 for i in range(1000)]
    result = _validation([_result(
        "expect_column_values_to_be_in_set", {"column": "c", "value_set": domain}, False,
        {"element_count": 10**6, "unexpected_count": 10**5, "unexpected_percent": 10.0,
         "partial_unexpected_list": unexpected,
         "partial_unexpected_counts": [{"value": v, "count": 1000 - i} for i, v in enumerate(unexpected)]})])
    page = render_validation_page(result, model="m", interval="k")
    assert len(page) < 40_000  # the values are 5 MB
    assert f"… (+{5000 - MAX_ITEMS} more)" in page and f"category-{MAX_ITEMS - 1}" in page
    assert f'"category-{MAX_ITEMS}"' not in page
    assert f"+{1000 - MAX_VALUES} more distinct value(s)" in page
    assert page.count("×") == MAX_VALUES and "new-0-" in page and f"new-{MAX_VALUES}-" not in page
    # each value: a preview, its length and its hash (driftline.common.limits.shown), never the 5,000 x's
    assert "x" * VALUE_CHARS not in page and "x" * (VALUE_CHARS // 2) in page
    first = unexpected[0]
    assert f"[{len(first):,} chars, sha256 {hashlib.sha256(first.encode()).hexdigest()[:16]}]" in page


def test_unexpected_values_merge_equal_values_most_frequent_first():
    values, left = unexpected_values({"partial_unexpected_counts": [
        {"value": None, "count": 1}, {"value": "b", "count": 3}, {"value": None, "count": 1}, {"value": 1.5, "count": 4}]})
    assert values == [(1.5, 4), ("b", 3), (None, 2)] and left == 0
    # without counts, the sample list is counted
    assert unexpected_values({"partial_unexpected_list": ["a", "b", "a"]}) == ([("a", 2), ("b", 1)], 0)
    assert unexpected_values({}) == ([], 0)


def test_a_result_without_expectations_says_so():
    page = render_validation_page({"results": [], "statistics": {}}, model="m", interval="k")
    assert "The validation result holds no expectation result." in page and "nothing checked" in page
