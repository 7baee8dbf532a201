"""A run's violations, SageMaker's ``constraint_violations.json`` and the per-stage files it is
assembled from (store layer: no stage logic).

Each stage writes its own file, ``violations/<stage>.json``, with one PUT: stages run in
parallel and none rewrites a file another writes, so a failed or re-run stage never drops or
duplicates another's findings. ``constraint_violations.json`` (every stage's violations, in
SageMaker's format) is assembled from them once the stages are done
(``write_constraint_violations``, by the run's record and by a re-evaluation).
"""
from __future__ import annotations

import posixpath

from driftline.limits import capped
from driftline.store import Store

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
    # stage composed around them to the limit (driftline.limits), whatever the stage
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


def write_constraint_violations(store: Store, run_prefix: str) -> str:
    """Assemble SageMaker's ``constraint_violations.json`` from the stages' files."""
    return store.write_json(posixpath.join(run_prefix, VIOLATIONS_FILE),
                            {"violations": read_violations(store, run_prefix)})
