"""A run's violations, SageMaker's ``constraint_violations.json`` and the per-stage files it is
assembled from (store layer: no stage logic).

Each stage writes its own file, ``violations/<stage>.json``, with one PUT: stages run in
parallel and none rewrites a file another writes, so a failed or re-run stage never drops or
duplicates another's findings. ``constraint_violations.json`` (every stage's violations, in
SageMaker's format) is assembled from them once the stages are done
(``write_constraint_violations``, by the run's record and by a re-evaluation).

A stage that failed leaves ``failures/<task>.json`` (its error, inputs and next step), which
the run's last task and its report read.
"""
from __future__ import annotations

import posixpath
from datetime import datetime, timezone

from driftline.common.limits import capped
from driftline.store import Store, StoreError

VIOLATIONS_FILE = "constraint_violations.json"
#: Where each stage's violations are, in the run's folder.
VIOLATIONS_DIR = "violations"
#: The order stages' violations are listed in.
STAGE_ORDER = ("ingest", "data_quality", "drift", "model_quality", "bias")


def write_violations(store: Store, run_prefix: str, source: str, violations: list[dict]) -> str:
    """Replace this stage's violations (``violations/<source>.json``, one PUT): re-running a
    stage never duplicates or drops another's findings, and two stages never race on one file."""
    rel = posixpath.join(run_prefix, VIOLATIONS_DIR, f"{source}.json")
    # values from data are shown capped where the violation is made; this holds any text a
    # stage composed around them to the limit (driftline.common.limits), whatever the stage
    return store.write_json(rel, {"source": source,
                                  "violations": [capped({**v, "source": source}) for v in violations]})


def read_violations(store: Store, run_prefix: str) -> list[dict]:
    """Every stage's violations of the run, in stage order (for runs recorded before per-stage
    files, the run's ``constraint_violations.json``)."""
    folder = posixpath.join(run_prefix, VIOLATIONS_DIR)
    names = [n for n in store.listdir(folder) if n.endswith(".json")]
    if not names:
        rel = posixpath.join(run_prefix, VIOLATIONS_FILE)
        return store.read_json(rel).get("violations", []) if store.exists(rel) else []
    rank = {s: i for i, s in enumerate(STAGE_ORDER)}
    names.sort(key=lambda n: (rank.get(n[:-5], len(rank)), n))
    return [v for n in names for v in store.read_json(posixpath.join(folder, n)).get("violations", [])]


def write_constraint_violations(store: Store, run_prefix: str) -> list[dict]:
    """Assemble SageMaker's ``constraint_violations.json`` from the stages' files; returns the
    violations it holds (read once for the caller too)."""
    found = read_violations(store, run_prefix)
    store.write_json(posixpath.join(run_prefix, VIOLATIONS_FILE), {"violations": found})
    return found


# -- the stages that failed ----------------------------------------------------------------
#: A failed stage's record in the run's folder: ``failures/<task>.json``.
FAILURES_DIR = "failures"


def record_stage_failure(store: Store, run_prefix: str, task: str, error: BaseException | str,
                         inputs: list[str] | tuple = (), next_step: str | None = None) -> dict:
    """Record that a task of the run failed: the error, the inputs it was reading, what to do.
    A later success of the task removes it (``clear_stage_failure``)."""
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    record = {"task": task, "interval": posixpath.basename(run_prefix.rstrip("/")), "error": text[:2000],
              "inputs": list(inputs),
              "next": next_step or "read the task's log for the traceback; fix the input it names, then clear the task",
              "at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    store.write_json(posixpath.join(run_prefix, FAILURES_DIR, f"{task}.json"), record)
    return record


def clear_stage_failure(store: Store, run_prefix: str, task: str) -> None:
    store.delete(posixpath.join(run_prefix, FAILURES_DIR, f"{task}.json"))


def stage_failures(store: Store, run_prefix: str) -> dict[str, dict]:
    """The run's recorded stage failures, by task (an unreadable record is one too)."""
    folder = posixpath.join(run_prefix, FAILURES_DIR)
    out = {}
    for name in store.listdir(folder):
        if name.endswith(".json"):
            try:
                out[name[:-5]] = store.read_json(posixpath.join(folder, name))
            except (StoreError, ValueError) as exc:
                out[name[:-5]] = {"task": name[:-5], "error": f"(its failure record is unreadable: {exc})"}
    return out
