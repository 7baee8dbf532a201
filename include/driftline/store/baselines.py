"""Baseline versions in the store: which exist, which one is in effect, and which one judges
each interval (the pin in ``runs/<model>/<interval>/baseline.json``). Building a baseline is
``driftline.stages.baseline``."""
from __future__ import annotations

import posixpath
from dataclasses import dataclass
from datetime import datetime, timezone

from driftline.config import ModelConfig
from driftline.store import Store, StoreError, interval_key
from driftline.store.versions import complete as complete_versions
from driftline.store.versions import next_version as next_free_version


class BaselineError(RuntimeError):
    """No usable baseline, or training data that cannot become one."""


@dataclass(frozen=True)
class BaselineRef:
    model: str
    version: str
    prefix: str


def list_versions(store: Store, model: str) -> list[str]:
    """Complete versions (with a manifest), oldest first."""
    return complete_versions(store, posixpath.join("baselines", model))


def next_version(store: Store, model: str) -> str:
    return next_free_version(store, posixpath.join("baselines", model))


def resolve_baseline(cfg: ModelConfig, store: Store, version: str | None = None) -> BaselineRef:
    wanted = version or cfg.baseline.version
    versions = list_versions(store, cfg.name)
    if not versions:
        raise BaselineError(f"model {cfg.name!r} has no baseline in {store.uri('baselines', cfg.name)}: "
                            f"run `driftline baseline --model {cfg.name}` or the driftline_baseline DAG first")
    if wanted == "latest":
        # the champion's baseline (driftline.store.registry) when one is on record: after a rollback
        # "latest" is the baseline of the model that serves, not the newest one built
        from driftline.store.registry import champion  # noqa: PLC0415 - registry imports this module

        record = champion(store, cfg.name)
        wanted = record["baseline"] if record and record.get("baseline") in versions else versions[-1]
    elif wanted not in versions:
        raise BaselineError(f"model {cfg.name!r}: baseline {wanted} not found (have {versions})")
    return BaselineRef(cfg.name, wanted, Store.baseline_prefix(cfg.name, wanted))


#: The baseline an interval is judged against, recorded when it is first evaluated.
PIN_FILE = "baseline.json"


def pin_interval_baseline(cfg: ModelConfig, store: Store, start: datetime, requested: str | None = None,
                          by: str | None = None) -> dict:
    """Decide and record which baseline judges the interval starting ``start``; returns the pin
    (``runs/<model>/<interval>/baseline.json``):

    - the first evaluation of an interval pins the baseline in effect then (the champion's, see
      :func:`resolve_baseline`), so a re-run or a backfill months later is judged as it was,
      not against whatever was promoted since;
    - an interval evaluated before pins existed keeps the version its ``run.json`` names;
    - ``requested`` (a DAG Param, ``driftline monitor --baseline``) deliberately judges it
      against another version: the pin moves and the change is appended to its ``changes``
      with who asked and when. Asking for the pinned version changes nothing.

    Raises BaselineError when the version asked for, or pinned, does not exist."""
    rel = posixpath.join(Store.run_prefix(cfg.name, start), PIN_FILE)
    versions = list_versions(store, cfg.name)
    pin = None
    if store.exists(rel):
        try:
            pin = store.read_json(rel)
        except (ValueError, StoreError) as exc:
            raise BaselineError(f"{store.uri(rel)}: unreadable ({exc}); it records which baseline judges the "
                                f"interval: repair it, or delete it to pin the baseline in effect now") from exc
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    if pin is None:
        run_rel = posixpath.join(Store.run_prefix(cfg.name, start), "run.json")
        earlier = None
        if store.exists(run_rel):
            try:
                earlier = store.read_json(run_rel).get("baseline")
            except (ValueError, StoreError):
                earlier = None
        if earlier in versions:
            pin = {"version": earlier, "pinned_at": now, "why": "the version its earlier run.json recorded",
                   "changes": []}
        else:
            ref = resolve_baseline(cfg, store)
            pin = {"version": ref.version, "pinned_at": now,
                   "why": "the baseline in effect when the interval was first evaluated", "changes": []}
        pin = {"model": cfg.name, "interval": interval_key(start), **pin}
        if not requested or requested == pin["version"]:
            store.write_json(rel, pin)
    if requested and requested != pin["version"]:
        if requested not in versions:
            raise BaselineError(f"model {cfg.name!r}: baseline {requested} was asked for the interval "
                                f"{interval_key(start)} but does not exist (have {versions})")
        pin["changes"] = [*pin.get("changes", []),
                          {"from": pin["version"], "to": requested, "at": now, "by": by or "unknown",
                           "why": "asked for explicitly (Param 'baseline' / --baseline)"}]
        pin["version"] = requested
        store.write_json(rel, pin)
    if pin["version"] not in versions:
        raise BaselineError(f"{store.uri(rel)}: the interval is pinned to baseline {pin['version']}, which no longer "
                            f"exists (have {versions}); re-run it with the Param 'baseline' (or --baseline) "
                            f"set to one of them")
    return pin


def interval_baseline(cfg: ModelConfig, store: Store, start: datetime) -> BaselineRef:
    """The baseline pinned for the interval (pinning the one in effect if nothing is yet)."""
    pin = pin_interval_baseline(cfg, store, start)
    return BaselineRef(cfg.name, pin["version"], Store.baseline_prefix(cfg.name, pin["version"]))


def load_baseline(store: Store, ref: BaselineRef) -> dict:
    return {name: store.read_json(posixpath.join(ref.prefix, f"{name}.json"))
            for name in ("statistics", "constraints", "expectations", "manifest")}
