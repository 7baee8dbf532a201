"""The model registry: every model version the monitoring has known, and which one serves.

Under the store's root::

    models/<model>/<vN>/model.joblib     the estimator, as joblib bytes
    models/<model>/<vN>/manifest.json    {model, version, created_at, sha256, origin, ...}
    models/<model>/champion.json         the serving version and its baseline, with history

A version folder is written once and never rewritten: the next version is the highest
existing ``vN`` + 1, and its manifest goes last, so a version is complete once its manifest
exists (a folder without one, left by a crash, is skipped and its number never reused).

``champion.json`` names the version that serves and the baseline version the monitoring
compares its traffic with (``driftline.store.baselines.resolve_baseline`` follows it)::

    {"model", "version", "baseline", "since", "reason", "actor",
     "history": [{"version", "baseline", "at", "reason", "actor"}, ...]}

The whole record is rewritten atomically on each change; ``history`` only grows.

The model a team deployed before driftline knew it (``baseline.model`` in the model file) is
imported as ``v1`` (origin ``imported``) the first time retraining runs
(:func:`import_initial`). Retrained versions (``driftline.stages.retrain``) record in their manifest
the baseline built with them (``baseline``), so a rollback restores both together.
"""
from __future__ import annotations

import hashlib
import io
import posixpath
from datetime import datetime, timezone
from typing import Any

from driftline.config import ModelConfig
from driftline.store import Resolver, Store, default_resolver
from driftline.store.versions import VERSION_RE, numbered
from driftline.store.versions import complete as complete_versions


class RegistryError(RuntimeError):
    """A model version that does not exist, cannot be loaded, or cannot serve."""


def models_prefix(model: str) -> str:
    return posixpath.join("models", model)


def version_prefix(model: str, version: str) -> str:
    return posixpath.join("models", model, version)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _numbers(store: Store, model: str) -> list[tuple[int, str]]:
    return numbered(store, models_prefix(model))


def list_model_versions(store: Store, model: str) -> list[dict]:
    """Manifests of the complete versions, oldest first."""
    out = []
    for _, name in _numbers(store, model):
        rel = posixpath.join(version_prefix(model, name), "manifest.json")
        if store.exists(rel):
            out.append(store.read_json(rel))
    return out


def model_version(store: Store, model: str, version: str) -> dict:
    """One version's manifest; RegistryError naming the versions there are when it is unknown."""
    rel = posixpath.join(version_prefix(model, version), "manifest.json")
    if not VERSION_RE.match(version) or not store.exists(rel):
        have = [m["version"] for m in list_model_versions(store, model)]
        raise RegistryError(f"model {model!r} has no version {version!r} in {store.uri(models_prefix(model))} "
                            f"(have {have or 'none'})")
    return store.read_json(rel)


def champion(store: Store, model: str) -> dict | None:
    """The champion record (see the module doc), or None before any model was registered."""
    rel = posixpath.join(models_prefix(model), "champion.json")
    return store.read_json(rel) if store.exists(rel) else None


def _register_bytes(store: Store, model: str, data: bytes, manifest: dict) -> dict:
    taken = _numbers(store, model)
    version = f"v{(taken[-1][0] if taken else 0) + 1}"
    prefix = version_prefix(model, version)
    store.write_bytes(posixpath.join(prefix, "model.joblib"), data)
    doc = {"model": model, "version": version, "created_at": _now(),
           "sha256": hashlib.sha256(data).hexdigest(), **manifest}
    doc.update(model=model, version=version)  # a caller's manifest cannot rename the version
    # The manifest goes last: the version is complete once it exists.
    store.write_json(posixpath.join(prefix, "manifest.json"), doc)
    return {**doc, "uri": store.uri(prefix)}


def register_model(store: Store, model: str, estimator: Any, manifest: dict) -> dict:
    """Write ``estimator`` as the next version; returns its manifest with the folder's ``uri``."""
    import joblib

    buf = io.BytesIO()
    joblib.dump(estimator, buf)
    return _register_bytes(store, model, buf.getvalue(), manifest)


def _baselines(store: Store, model: str) -> list[str]:
    """The model's complete baseline versions (read here rather than from
    ``driftline.store.baselines``, which follows the champion this module records)."""
    return complete_versions(store, posixpath.join("baselines", model))


def _latest_baseline(store: Store, model: str) -> str | None:
    versions = _baselines(store, model)
    return versions[-1] if versions else None


def import_initial(cfg: ModelConfig, store: Store, resolver: Resolver | None = None) -> dict:
    """Make the deployed model (``baseline.model``) version v1 and the champion, with the latest
    baseline, unless the registry already holds versions; returns the champion record.
    Idempotent: a second call only reads."""
    record = champion(store, cfg.name)
    if record is not None:
        return record
    versions = list_model_versions(store, cfg.name)
    if not versions:
        if not cfg.baseline.model:
            raise RegistryError(f"{cfg.source or cfg.name}: baseline.model is not set, so there is no deployed "
                                f"model to import as {cfg.name}/v1")
        fs, path = (resolver or default_resolver)(cfg.baseline.model)
        try:
            with fs.open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise RegistryError(f"{cfg.baseline.model}: no such model file (baseline.model)") from None
        _loads(data, cfg.baseline.model)
        versions = [_register_bytes(store, cfg.name, data, {"origin": "imported", "source": cfg.baseline.model})]
    # versions without a champion: an import that stopped before naming one
    first = versions[0]
    return set_champion(store, cfg.name, first["version"], _latest_baseline(store, cfg.name),
                        reason=f"imported from {first.get('source', 'baseline.model')}", actor="driftline")


def set_champion(store: Store, model: str, version: str, baseline: str | None, reason: str,
                 actor: str = "driftline") -> dict:
    """Make ``version`` (with baseline version ``baseline``) the champion; returns the record."""

    model_version(store, model, version)
    if baseline is not None and baseline not in _baselines(store, model):
        raise RegistryError(f"model {model!r} has no complete baseline {baseline!r} "
                            f"(have {_baselines(store, model) or 'none'})")
    at = _now()
    old = champion(store, model) or {}
    record = {"model": model, "version": version, "baseline": baseline, "since": at, "reason": reason,
              "actor": actor, "history": [*old.get("history", []), {"version": version, "baseline": baseline,
                                                                    "at": at, "reason": reason, "actor": actor}]}
    store.write_json(posixpath.join(models_prefix(model), "champion.json"), record)
    return record


def baseline_of(store: Store, model: str, version: str) -> str | None:
    """The baseline version that goes with a model version: its manifest's ``baseline``, else
    (an imported version) the last one it served with."""
    manifest = model_version(store, model, version)
    if manifest.get("baseline"):
        return manifest["baseline"]
    served = [h for h in (champion(store, model) or {}).get("history", [])
              if h["version"] == version and h.get("baseline")]
    return served[-1]["baseline"] if served else None


def rollback(store: Store, model: str, to_version: str, actor: str = "cli") -> dict:
    """Make an earlier version the champion again, with its baseline. Returns the new record
    plus ``previous`` ({version, baseline}) and a one-line ``summary``."""

    old = champion(store, model)
    if old is None:
        raise RegistryError(f"model {model!r} has no champion in {store.uri(models_prefix(model))}: "
                            f"nothing was registered yet, so there is nothing to roll back")
    baseline = baseline_of(store, model, to_version)
    if baseline is None:
        raise RegistryError(f"model {model}/{to_version} has no baseline on record: build one "
                            f"(`driftline baseline --model {model}`) while it is champion, or roll back to another "
                            f"version")
    if baseline not in _baselines(store, model):
        raise RegistryError(f"model {model}/{to_version} goes with baseline {baseline}, which is missing from "
                            f"{store.uri('baselines', model)}")
    previous = {"version": old["version"], "baseline": old["baseline"]}
    if previous == {"version": to_version, "baseline": baseline}:
        record = old
    else:
        record = set_champion(store, model, to_version, baseline,
                              reason=f"rollback from {old['version']} (baseline {old['baseline']})", actor=actor)
    summary = (f"{model}: champion {previous['version']} -> {to_version}, baseline {previous['baseline']} -> "
               f"{baseline}" + (" (already the champion: nothing changed)" if record is old else ""))
    return {**record, "previous": previous, "summary": summary}


def _loads(data: bytes, source: str) -> Any:
    import joblib

    try:
        return joblib.load(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - unpickling fails in many ways
        raise RegistryError(f"{source}: cannot load the model ({type(exc).__name__}: {exc})") from exc


def load_model_version(store: Store, model: str, version: str) -> tuple[Any, dict]:
    """A registered version's estimator and manifest; the bytes must match the manifest's sha256."""
    manifest = model_version(store, model, version)
    rel = posixpath.join(version_prefix(model, version), "model.joblib")
    data = store.read_bytes(rel)
    if hashlib.sha256(data).hexdigest() != manifest.get("sha256"):
        raise RegistryError(f"{store.uri(rel)}: the file does not match the sha256 in its manifest: "
                            f"it was changed after registration")
    return _loads(data, store.uri(rel)), manifest


def load_champion(cfg: ModelConfig, store: Store, resolver: Resolver | None = None) -> tuple[Any, dict]:
    """The serving estimator and its manifest: the registry's champion, or (nothing registered)
    the file ``baseline.model`` with manifest ``{"version": None, "source": uri}``."""
    record = champion(store, cfg.name)
    if record is not None:
        return load_model_version(store, cfg.name, record["version"])
    if not cfg.baseline.model:
        raise RegistryError(f"{cfg.source or cfg.name}: no registered model and baseline.model is not set")
    from driftline.store.models import load_model

    return load_model(cfg.baseline.model, resolver), {"version": None, "source": cfg.baseline.model}
