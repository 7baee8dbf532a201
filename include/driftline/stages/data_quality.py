"""Data quality: validate an interval's batch with Great Expectations against the baseline.

GX Core is called here, from driftline's own code (the GX Airflow provider does not install
with Airflow 3.3 and reads data at DAG-parse time). The suite is the baseline's
``expectations.json``; every expectation carries ``meta.constraint_check_type``, so each
failure becomes one SageMaker-style violation::

    {"feature_name": "age", "constraint_check_type": "completeness_check",
     "description": "Data completeness requirement is not met. ...", "source": "data_quality",
     "details": {...}}

Outputs under ``runs/<model>/<interval>/``: ``gx_validation.json`` (the GX result),
``data_docs/index.html`` (the result as driftline's self-contained page, ``driftline.stages.data_quality_docs``:
it works offline and in the driftline page's sandbox), ``data_docs/gx/`` (GX's own Data Docs,
which need a network connection), ``constraint_violations.json`` (SageMaker's format; other
stages add their own violations to it) and ``quality.json`` (status, counts, summary).
An interval with fewer rows than ``thresholds.min_rows`` is recorded as ``no_data``.
"""
from __future__ import annotations

import logging
import os
import posixpath
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from driftline.common.limits import SHOWN_CHARS, shown
from driftline.config import ModelConfig
from driftline.stages.baseline import UNPARSED_PREFIX, typed_columns
from driftline.stages.data_quality_docs import raised as exception_message
from driftline.stages.data_quality_docs import render_validation_page
from driftline.store import Store, interval_key
from driftline.store.baselines import BaselineRef, interval_baseline, load_baseline
from driftline.store.violations import write_violations

log = logging.getLogger(__name__)

#: GX Data Docs assets worth copying to the store; fonts and images (4 MB a run) are left out,
#: the pages fall back to system fonts.
_DOCS_SUFFIXES = (".html", ".css", ".js")
#: Where GX builds its own Data Docs, inside the run's data_docs/ (whose index.html is driftline's).
GX_DOCS_DIR = "gx"


# -- violations file shared by the stages -----------------------------------------------
# -- the frame GX sees ---------------------------------------------------------------
def gx_frame(cfg: ModelConfig, batch: pa.Table) -> pd.DataFrame:
    """The batch as GX should see it.

    A value that ingest could not read as its column's type sits in ``__unparsed__<col>``
    and is null in the typed column. GX gets the typed column with the raw text put back
    (so completeness counts it as present) and the sidecar (so the type check counts it
    as wrong); range checks skip those rows with a row_condition.
    """
    df = capped_batch(batch).to_pandas()
    for col in typed_columns(cfg):
        side = UNPARSED_PREFIX + col
        if side not in df.columns:
            df[side] = pd.Series([None] * len(df), dtype=object, index=df.index)
            continue
        raw = df[side]
        if col in df.columns and raw.notna().any():
            mixed = df[col].astype(object).where(df[col].notna(), None)
            df[col] = mixed.where(raw.isna(), raw)
        df[side] = raw.astype(object).where(raw.notna(), None)
    return df


def capped_batch(batch: pa.Table) -> pa.Table:
    """The batch with every string longer than SHOWN_CHARS in its shown form (preview,
    length, hash): GX copies unexpected values into its result and its Data Docs, and
    driftline into violations and alerts. The form is deterministic and keeps distinct values
    distinct, and the suite's value sets get the same (_suite_for_gx): every check counts as
    before. Columns without a long value are not touched (one length per value, vectorised).
    A column name longer than SHOWN_CHARS (an undeclared column: declared ones are the
    model's) gets its shown form too."""
    if any(len(n) > SHOWN_CHARS for n in batch.column_names):
        batch = batch.rename_columns([shown(n) for n in batch.column_names])
    for i, f in enumerate(batch.schema):
        if not (pa.types.is_string(f.type) or pa.types.is_large_string(f.type)):
            continue
        col = batch.column(i)
        if not pc.any(pc.fill_null(pc.greater(pc.utf8_length(col), SHOWN_CHARS), False)).as_py():
            continue
        values = [v if v is None or len(v) <= SHOWN_CHARS else shown(v) for v in col.to_pylist()]
        batch = batch.set_column(i, f, pa.array(values, f.type))
    return batch


def _suite_for_gx(suite_json: dict, cfg: ModelConfig):
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    exps = []
    for e in suite_json["expectations"]:
        kwargs = dict(e["kwargs"])
        if isinstance(kwargs.get("value_set"), list):  # as the frame's values are (gx_frame)
            kwargs["value_set"] = [shown(v) if isinstance(v, str) else v for v in kwargs["value_set"]]
        if e.get("meta", {}).get("driftline_type") == "datetime":
            # GX compares string bounds against timestamps silently wrong: pass Timestamps.
            for k in ("min_value", "max_value"):
                if isinstance(kwargs.get(k), str):
                    kwargs[k] = pd.Timestamp(kwargs[k])
        exps.append(ExpectationConfiguration(type=e["type"], kwargs=kwargs, meta=e.get("meta", {})).to_domain_obj())
    return gx.ExpectationSuite(name=suite_json["name"], expectations=exps)


#: GX logs "Skipping registering function <name> because it is a closure" (and "... because
#: it does not have a class") at INFO from this logger, ~200 lines while GX's modules load: its
#: public-API registry at work, nothing about the data.
_GX_REGISTRY_LOGGER = "great_expectations._docs_decorators"
_GX_REGISTRY_NOISE = "Skipping registering function"


class _DropRegistryNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_GX_REGISTRY_NOISE)


@contextmanager
def quiet_gx() -> Iterator[None]:
    """Keep GX's registration noise (above) and its INFO chatter out of the task log while
    GX loads and validates; its warnings and errors still come through. Both are undone on
    exit, so the process's logging is as it was."""
    registry = logging.getLogger(_GX_REGISTRY_LOGGER)
    gx_root = logging.getLogger("great_expectations")
    noise, level = _DropRegistryNoise(), gx_root.level
    registry.addFilter(noise)
    gx_root.setLevel(logging.WARNING)
    try:
        yield
    finally:
        registry.removeFilter(noise)
        gx_root.setLevel(level)


def validate_frame(cfg: ModelConfig, df: pd.DataFrame, suite_json: dict, run_name: str,
                   run_time: datetime, docs_dir: str | None = None) -> dict:
    """Run the suite on df with an ephemeral GX context; optionally build Data Docs into
    docs_dir. Returns the GX validation result as JSON."""
    # the noise is logged while GX's modules load: the import goes inside the quiet block
    with quiet_gx():
        return _validate_frame(cfg, df, suite_json, run_name, run_time, docs_dir)


def _validate_frame(cfg: ModelConfig, df: pd.DataFrame, suite_json: dict, run_name: str,
                    run_time: datetime, docs_dir: str | None) -> dict:
    import great_expectations as gx  # heavy (~6 s): imported only when a check runs
    from great_expectations.checkpoint import UpdateDataDocsAction
    from great_expectations.core.run_identifier import RunIdentifier

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = {"globally": False, "metric_calculations": False}
    actions = []
    if docs_dir:
        ctx.add_data_docs_site(site_name="driftline", site_config={
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": docs_dir},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        })
        actions.append(UpdateDataDocsAction(name="data_docs", site_names=["driftline"]))
    batch_def = (ctx.data_sources.add_pandas(f"{cfg.name}_capture")
                 .add_dataframe_asset("batch").add_batch_definition_whole_dataframe("interval"))
    suite = ctx.suites.add(_suite_for_gx(suite_json, cfg))
    vd = ctx.validation_definitions.add(gx.ValidationDefinition(name=f"{cfg.name}_quality", data=batch_def, suite=suite))
    cp = ctx.checkpoints.add(gx.Checkpoint(name=f"{cfg.name}_checkpoint", validation_definitions=[vd],
                                           actions=actions, result_format="SUMMARY"))
    result = cp.run(batch_parameters={"dataframe": df}, run_id=RunIdentifier(run_name=run_name, run_time=run_time))
    return next(iter(result.run_results.values())).to_json_dict()


# -- violations from GX results -------------------------------------------------------
def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _examples(values: list | None, k: int = 3) -> str:
    vals = [v for v in (values or []) if v is not None][:k]
    return ", ".join(repr(shown(v)) if isinstance(v, str) else repr(v) for v in vals)


def violations_from_result(result: dict, cfg: ModelConfig, observed_columns: list[str],
                           frame: pd.DataFrame | None = None) -> list[dict]:
    """One SageMaker-style violation per failed expectation. With the validated frame, the
    unknown categories are counted exactly (GX's SUMMARY counts only its first 20 examples)."""
    out: list[dict] = []
    missing_cols = set()
    results = result.get("results", [])
    for r in results:
        cfg_ = r["expectation_config"]
        if cfg_["type"] == "expect_column_to_exist" and not r["success"]:
            missing_cols.add(cfg_["kwargs"]["column"])
    n_expected = len(cfg.feature_names) + len(cfg.prediction_columns) + 2
    n_observed = len([c for c in observed_columns if not c.startswith(UNPARSED_PREFIX)])
    for r in results:
        if r["success"]:
            continue
        e = r["expectation_config"]
        meta, kw, res = e.get("meta", {}), e["kwargs"], r.get("result", {}) or {}
        check, feature = meta.get("constraint_check_type", "check_error"), meta.get("feature_name", kw.get("column", "*"))
        if check != "missing_column_check" and (feature in missing_cols or kw.get("column") in missing_cols):
            continue  # a missing column is reported once, as missing_column_check
        raised = exception_message(r.get("exception_info"))
        if raised is not None:
            out.append({"feature_name": feature, "constraint_check_type": "check_error",
                        "description": f"{e['type']} could not run on {feature!r}: {raised}",
                        "details": {"expectation": e["type"]}})
            continue
        n = res.get("element_count") or 0
        bad = res.get("unexpected_count") or 0
        pct_bad = (res.get("unexpected_percent") or 0.0) / 100.0
        details: dict[str, Any] = {"expectation": e["type"], "element_count": n, "unexpected_count": bad}
        if check == "missing_column_check":
            desc = (f"There are missing columns in current dataset: {feature!r} is expected but absent. "
                    f"Number of columns in current dataset: {n_observed}, expected: {n_expected}.")
        elif check == "extra_column_check":
            extra = sorted(c for c in set(res.get("observed_value") or observed_columns) - set(kw["column_set"])
                           if not c.startswith(UNPARSED_PREFIX))  # sidecars: see untyped_column_violations
            if not extra:
                continue  # the mismatch is only missing columns, reported one by one
            details["extra_columns"] = extra
            desc = (f"There are extra columns in current dataset: {extra}. Number of columns in current "
                    f"dataset: {n_observed}, expected: {n_expected}.")
        elif check == "completeness_check":
            observed = 1.0 - pct_bad
            details.update(observed_completeness=observed, required=kw.get("mostly"),
                           baseline_completeness=meta.get("baseline_completeness"))
            desc = (f"Data completeness requirement is not met. Expected: at least {_pct(kw.get('mostly', 1.0))} "
                    f"complete (baseline {_pct(meta.get('baseline_completeness', 1.0))}, slack "
                    f"{_pct(cfg.thresholds.completeness_slack)}). Observed: only {_pct(observed)} of {n} values "
                    f"are present ({bad} missing).")
        elif check == "data_type_check":
            observed = 1.0 - pct_bad
            typ = meta.get("expected_type", "")
            details.update(observed_match=observed, required=kw.get("mostly", 1.0),
                           examples=(res.get("partial_unexpected_list") or [])[:5])
            desc = (f"Data type match requirement is not met. Expected data type: {typ}, Expected match: "
                    f"{_pct(kw.get('mostly', 1.0))}. Observed: Only {_pct(observed)} of data is {typ} "
                    f"({bad} of {n} values could not be read, e.g. {_examples(res.get('partial_unexpected_list'))}).")
        elif check == "categorical_values_check":
            if frame is not None and kw["column"] in frame.columns:
                col = frame[kw["column"]]
                outside = col[col.notna() & ~col.isin(kw["value_set"])]
                unknown = {str(k): int(c) for k, c in outside.value_counts().head(20).items()}
            else:
                unknown = {str(c["value"]): c["count"] for c in res.get("partial_unexpected_counts") or []}
            details.update(observed_in_domain=1.0 - pct_bad, required=kw.get("mostly", 1.0), unknown_values=unknown)
            shown = ", ".join(f"{v!r} ({c})" for v, c in list(unknown.items())[:5])
            desc = (f"Categorical value requirement is not met. Expected: {_pct(kw.get('mostly', 1.0))} of values in the "
                    f"baseline domain. Observed: {_pct(1.0 - pct_bad)} ({bad} of {n} values unknown: {shown}).")
        elif check == "range_check":
            lo, hi = kw.get("min_value"), kw.get("max_value")
            details.update(min_allowed=lo, max_allowed=hi, observed_outside=pct_bad,
                           examples=(res.get("partial_unexpected_list") or [])[:5])
            sides = _range_sides(frame, kw["column"], lo, hi) if frame is not None else None
            where = ""
            if sides is not None:
                details.update(below=sides[0], above=sides[1])
                # the range has two bounds: say which one the values crossed
                where = ": " + ", ".join(f"{n} below the lower bound {_bound(b)}" if i == 0 else
                                         f"{n} above the upper bound {_bound(b)}"
                                         for i, (n, b) in enumerate(zip(sides, (lo, hi))) if n)
            desc = (f"Range requirement is not met. Expected: at least {_pct(kw.get('mostly', 1.0))} of values in "
                    f"[{lo}, {hi}] (baseline range widened by {_pct(cfg.thresholds.range_margin)}). Observed: "
                    f"{_pct(pct_bad)} outside ({bad} values{where}; e.g. "
                    f"{_examples(res.get('partial_unexpected_list'))}).")
        else:
            desc = f"{e['type']} failed on {feature}: {bad} of {n} values unexpected."
        out.append({"feature_name": feature, "constraint_check_type": check, "description": desc, "details": details})
    return out


def _range_sides(frame: pd.DataFrame, column: str, lo: Any, hi: Any) -> tuple[int, int] | None:
    """Values of ``column`` below ``lo`` and above ``hi``, on the rows the range check saw
    (those ingest could read: the others are type errors). None when it cannot tell."""
    if column not in frame.columns:
        return None
    side = UNPARSED_PREFIX + column
    readable = frame[side].isna() if side in frame.columns else pd.Series(True, index=frame.index)
    col = frame.loc[readable, column]
    try:
        if isinstance(lo, (str, pd.Timestamp)) or isinstance(hi, (str, pd.Timestamp)):
            values = pd.to_datetime(col, utc=True, errors="coerce")
            lo, hi = (None if b is None else pd.Timestamp(b) for b in (lo, hi))
            lo, hi = (b.tz_localize("UTC") if b is not None and b.tzinfo is None else b for b in (lo, hi))
        else:
            values = pd.to_numeric(col, errors="coerce")
        below = int((values < lo).sum()) if lo is not None else 0
        above = int((values > hi).sum()) if hi is not None else 0
    except (TypeError, ValueError):
        return None
    return below, above


def untyped_column_violations(cfg: ModelConfig, batch: pa.Table) -> list[dict]:
    """data_type_check for the non-feature columns (inference time, prediction) that ingest
    could not read; the suite checks the features' types itself."""
    out = []
    features = set(cfg.feature_names)
    for side in batch.column_names:
        col = side[len(UNPARSED_PREFIX):]
        if not side.startswith(UNPARSED_PREFIX) or col in features:
            continue
        raw = batch.column(side)
        bad = len(raw) - raw.null_count
        if bad:
            examples = [shown(v) for v in raw.drop_null().to_pylist()[:3]]
            out.append({"feature_name": col, "constraint_check_type": "data_type_check",
                        "description": (f"Data type match requirement is not met for {col!r}: {bad} of {len(raw)} "
                                        f"values could not be read (e.g. {_examples(examples)})."),
                        "details": {"unexpected_count": bad, "element_count": len(raw), "examples": examples,
                                    "observed_match": 1 - bad / len(raw), "required": 1.0}})
    return out


def quarantine_violation(cfg: ModelConfig, ingest: dict) -> list[dict]:
    """quarantine_check: more than ``max_quarantine_share`` of the captured records (records,
    not objects or entries) quarantined -- or any object that could not be read to its end,
    whatever the share: how many records it held is unknown, so the share cannot clear it."""
    seen, bad = ingest.get("records_seen", 0), ingest.get("quarantined", 0)
    share = bad / seen if seen else 0.0
    unreadable = ingest.get("unreadable_objects") or []
    if not (bad and share > cfg.thresholds.max_quarantine_share) and not unreadable:
        return []
    desc = (f"Malformed records requirement is not met. Expected: at most "
            f"{_pct(cfg.thresholds.max_quarantine_share)} of captured records quarantined. "
            f"Observed: {bad} of {seen} ({_pct(share)}).")
    if unreadable:
        names = ", ".join(posixpath.basename(str(u["source"])) for u in unreadable[:3])
        desc += (f" {len(unreadable)} object(s) could not be read to their end ({names}"
                 f"{', ...' if len(unreadable) > 3 else ''}): the records they held past that point are "
                 f"unknown in number, and counted above as one each.")
    return [{"feature_name": "*", "constraint_check_type": "quarantine_check", "description": desc,
             "details": {"quarantined": bad, "records_seen": seen, "share": share,
                         "unreadable_objects": unreadable[:20]}}]


# -- the stage ----------------------------------------------------------------------
def _bound(x: Any) -> str:
    return f"{x:.4g}" if isinstance(x, (int, float)) else str(x)


def _short(v: dict) -> str:
    d = v.get("details", {})
    check, f = v["constraint_check_type"], v["feature_name"]
    if check == "completeness_check":
        return f"{check} {f}: {_pct(d['observed_completeness'])} present < {_pct(d['required'])}"
    if check == "data_type_check":
        return f"{check} {f}: {_pct(d['observed_match'])} typed < {_pct(d['required'])}"
    if check == "categorical_values_check":
        return f"{check} {f}: {_pct(1 - d['observed_in_domain'])} unknown ({', '.join(map(repr, list(d['unknown_values'])[:3]))})"
    if check == "range_check":
        sides = [f"{n} < {_bound(b)}" if i == 0 else f"{n} > {_bound(b)}"
                 for i, (n, b) in enumerate(((d.get("below"), d["min_allowed"]), (d.get("above"), d["max_allowed"])))
                 if n]
        return (f"{check} {f}: {_pct(d['observed_outside'])} outside [{_bound(d['min_allowed'])}, "
                f"{_bound(d['max_allowed'])}]" + (f" ({', '.join(sides)})" if sides else ""))
    if check == "quarantine_check":
        cut = d.get("unreadable_objects") or []
        return (f"{check}: {d['quarantined']} of {d['records_seen']} records quarantined"
                + (f"; {len(cut)} object(s) not readable to their end" if cut else ""))
    if check == "extra_column_check":
        return f"{check}: {d['extra_columns']}"
    return f"{check} {f}"


def run_quality(cfg: ModelConfig, store: Store, interval_start: datetime,
                baseline: BaselineRef | None = None) -> dict:
    """Validate the interval's batch; write the stage's artifacts; return a small summary."""
    t0 = time.perf_counter()
    prefix = Store.run_prefix(cfg.name, interval_start)
    ref = baseline or interval_baseline(cfg, store, interval_start)
    base = load_baseline(store, ref)
    batch = store.read_parquet(posixpath.join(prefix, "batch.parquet"))
    ingest_rel = posixpath.join(prefix, "ingest.json")
    ingest = store.read_json(ingest_rel) if store.exists(ingest_rel) else {}
    key = interval_key(interval_start)
    docs_rel = posixpath.join(prefix, "data_docs")
    out: dict[str, Any] = {"model": cfg.name, "interval": key, "baseline": ref.version, "rows": batch.num_rows,
                           "quarantined": ingest.get("quarantined", 0)}

    violations = quarantine_violation(cfg, ingest)
    if batch.num_rows < cfg.thresholds.min_rows:
        store.delete(docs_rel)
        store.write_json(posixpath.join(prefix, "gx_validation.json"), {"status": "no_data"})
        # Every record malformed is an outage of bad data, not an interval without traffic.
        out.update(status="violations" if violations else "no_data", expectations=0,
                   violations=len(violations), data_docs=None)
        out["summary"] = (f"data_quality {cfg.name} {key}: NO DATA — {batch.num_rows} rows "
                          f"(minimum {cfg.thresholds.min_rows}); checks skipped")
    else:
        df = gx_frame(cfg, batch)
        with tempfile.TemporaryDirectory(prefix="driftline-docs-") as tmp:
            result = validate_frame(cfg, df, base["expectations"], run_name=key,
                                    run_time=interval_start, docs_dir=os.path.join(tmp, GX_DOCS_DIR))
            violations += violations_from_result(result, cfg, list(batch.column_names), frame=df)
            violations += untyped_column_violations(cfg, batch)
            page = render_validation_page(result, model=cfg.name, interval=key, baseline=ref.version,
                                          rows=batch.num_rows, violations=violations,
                                          gx_docs_href=f"{GX_DOCS_DIR}/index.html")
            with open(os.path.join(tmp, "index.html"), "w", encoding="utf-8") as f:
                f.write(page)
            store.put_tree(tmp, docs_rel, suffixes=_DOCS_SUFFIXES)
        store.write_json(posixpath.join(prefix, "gx_validation.json"), result)
        stats = result.get("statistics", {})
        out.update(status="violations" if violations else "ok",
                   expectations=stats.get("evaluated_expectations", len(base["expectations"]["expectations"])),
                   violations=len(violations), data_docs=store.uri(docs_rel, "index.html"))
        verdict = f"{len(violations)} violation(s)" if violations else "no violations"
        out["summary"] = (f"data_quality {cfg.name} {key}: {batch.num_rows} rows checked against baseline "
                          f"{ref.version} ({out['expectations']} expectations): {verdict}")
    out["violations_uri"] = write_violations(store, prefix, "data_quality", violations)
    out["findings"] = [_short(v) for v in violations]
    # the record holds what was found, not how long it took: a re-run of the same batch writes
    # the same bytes (timings are in the run's executions/ record)
    store.write_json(posixpath.join(prefix, "quality.json"), {**out, "violation_list": violations})
    out["seconds"] = round(time.perf_counter() - t0, 2)
    return out

