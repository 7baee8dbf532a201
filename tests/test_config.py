from datetime import timedelta
from pathlib import Path

import pytest

from driftline.config import ConfigError, load_all, load_model_config, parse_duration

PROJECT_MONITORS = Path(__file__).resolve().parent.parent / "include" / "monitors"


def _errors(tmp_path, text: str, name="bad.yaml") -> list[str]:
    f = tmp_path / name
    f.write_text(text)
    with pytest.raises(ConfigError) as ei:
        load_model_config(f)
    assert all(str(f) in line for line in str(ei.value).splitlines())
    return ei.value.problems


def test_demo_model_file_is_valid():
    cfg = load_model_config(PROJECT_MONITORS / "churn.yaml")
    assert cfg.name == "churn" and cfg.problem_type == "binary_classification"
    assert cfg.feature_types["contract"] == "categorical" and cfg.feature_types["tenure_months"] == "integer"
    assert cfg.labels.delay == timedelta(days=2)
    assert cfg.cron == "0 0 * * *"
    assert cfg.capture.uri.startswith("file:///") and cfg.capture.uri.endswith("data/demo/capture/churn-endpoint/AllTraffic")


BASE = """
name: m
problem_type: binary_classification
start_date: 2026-10-01
capture: {uri: cap}
baseline: {training_data: t.parquet}
features:
  - {name: a, type: numeric}
  - {name: b, type: categorical}
"""


def test_bad_feature_type_names_file_field_and_choices(tmp_path):
    problems = _errors(tmp_path, BASE.replace("type: categorical", "type: flot"))
    assert problems == ["features[1].type: 'flot' is not one of numeric, integer, categorical, boolean, datetime"]


def test_missing_required_field(tmp_path):
    problems = _errors(tmp_path, BASE.replace("problem_type: binary_classification\n", ""))
    assert problems == ["problem_type: required field is missing"]


def test_unknown_field_is_a_typo_not_ignored(tmp_path):
    problems = _errors(tmp_path, BASE + "tresholds: {}\n")
    assert problems == ["tresholds: unknown field (check its spelling)"]


def test_several_problems_reported_together(tmp_path):
    text = BASE.replace("type: numeric", "type: nope").replace("name: m", "name: 9bad")
    problems = _errors(tmp_path, text)
    assert len(problems) == 2 and any(p.startswith("name:") for p in problems)


def test_invalid_yaml_points_at_line(tmp_path):
    problems = _errors(tmp_path, "name: m\nfeatures: [\n")
    assert "not valid YAML" in problems[0] and "line" in problems[0]


def test_duplicate_feature_and_reserved_names(tmp_path):
    assert "duplicate names ['a']" in _errors(tmp_path, BASE.replace("name: b,", "name: a,"))[0]
    clash = BASE.replace("name: b,", "name: prediction,")
    assert "clash" in _errors(tmp_path, clash)[0]


def test_bad_schedule_and_duration(tmp_path):
    assert "cron" in _errors(tmp_path, BASE + "schedule: every tuesday\n")[0]
    assert _errors(tmp_path, BASE + "schedule: '61 * * * *'\n")[0].startswith("schedule: '61 * * * *' is neither")
    assert _errors(tmp_path, BASE + "schedule: '0 0 30 2 *'\n") == [
        "schedule: '0 0 30 2 *' never fires (it names a date no month has, e.g. 30 2 = February 30)"]
    problems = _errors(tmp_path, BASE + "labels: {uri: l, delay: soon}\n")
    assert problems[0].startswith("labels.delay:") and "duration" in problems[0]


def test_alert_route_needs_connection(tmp_path):
    problems = _errors(tmp_path, BASE + "alerts: [{type: slack}]\n")
    assert problems[0].startswith("alerts[0]:") and "conn_id" in problems[0]


def test_env_interpolation_and_relative_paths(tmp_path, monkeypatch):
    monkeypatch.setenv("CAP_ROOT", "s3://bucket/cap")
    f = tmp_path / "m.yaml"
    f.write_text(BASE.replace("uri: cap", "uri: '${CAP_ROOT}/x'").replace("t.parquet", "'${NOPE:-data}/t.parquet'"))
    cfg = load_model_config(f)
    assert cfg.capture.uri == "s3://bucket/cap/x"
    assert cfg.baseline.training_data == f"file://{tmp_path}/data/t.parquet"
    monkeypatch.delenv("CAP_ROOT")
    assert "CAP_ROOT is not set" in _errors(tmp_path, f.read_text(), "again.yaml")[0]


def test_load_all_isolates_broken_files(tmp_path):
    (tmp_path / "good.yaml").write_text(BASE)
    (tmp_path / "bad.yaml").write_text(BASE.replace("type: numeric", "type: flot").replace("name: m", "name: m2"))
    (tmp_path / "dupe.yml").write_text(BASE)
    (tmp_path / "latin1.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    loaded = load_all(tmp_path)
    assert list(loaded.models) == ["m"] and loaded.models["m"].source == str(tmp_path / "dupe.yml")  # sorted order
    assert set(loaded.errors) == {str(tmp_path / n) for n in ("bad.yaml", "good.yaml", "latin1.yaml")}
    assert "already declared in " + str(tmp_path / "dupe.yml") in str(loaded.errors[str(tmp_path / "good.yaml")])
    assert "not UTF-8" in str(loaded.errors[str(tmp_path / "latin1.yaml")])


@pytest.mark.parametrize("text,seconds", [("36h", 129600), ("2d", 172800), ("90m", 5400), (60, 60), ("1w", 604800)])
def test_parse_duration(text, seconds):
    assert parse_duration(text).total_seconds() == seconds


def test_feature_names_cannot_break_csv_or_queries(tmp_path):
    assert _errors(tmp_path, BASE.replace("name: a,", "name: 'a`b',"))[0].startswith("features[0].name:")


def test_drift_settings_and_overrides_are_checked(tmp_path):
    ok = load_model_config(_write(tmp_path, BASE.replace("{name: a, type: numeric}",
                                                         "{name: a, type: numeric, drift: {method: psi, threshold: 0.15}}")
                                  + "drift: {drift_share: 0.3, thresholds: {wasserstein: 0.2}, partition_rows: 5000}\n"))
    assert ok.features[0].drift.method == "psi" and ok.features[0].drift.threshold == 0.15
    assert ok.drift.drift_share == 0.3 and ok.drift.thresholds == {"wasserstein": 0.2} and ok.drift.correction == "holm"
    assert _errors(tmp_path, BASE.replace("{name: b, type: categorical}",
                                          "{name: b, type: categorical, drift: {method: ks}}")) == [
        "features[1].drift.method: 'ks' applies to numeric features, not categorical"]
    assert _errors(tmp_path, BASE.replace("{name: a, type: numeric}", "{name: a, type: numeric, drift: {method: kss}}"))[0] \
        .startswith("features[0].drift.method: 'kss' is not one of auto, ks, wasserstein")
    assert _errors(tmp_path, BASE + "drift: {thresholds: {ks: 0.1}}\n") == [
        "drift.thresholds: ['ks'] take no threshold here (distances only: ['hellinger', 'jensen_shannon', 'linf', "
        "'linf_cdf_robust', 'linf_cdf_simple', 'psi', 'wasserstein']; tests use alpha)"]
    assert _errors(tmp_path, BASE + "drift: {categorical_method: wasserstein}\n") == [
        "drift.categorical_method: 'wasserstein' applies to numeric features, not categorical"]


def _write(tmp_path, text: str) -> Path:
    f = tmp_path / "ok.yaml"
    f.write_text(text)
    return f


# -- bounded parsing: a model file is parsed at DAG-parse time, so no file may be slow --------
def billion_laughs(levels: int = 9, fan_out: int = 9) -> str:
    """The classic alias bomb: each anchor a list of fan_out aliases of the previous one, so the
    last expands to fan_out**levels strings (9**9 = 387 million) from a few hundred bytes."""
    lines = [f"a0: &a0 [{', '.join(['lol'] * fan_out)}]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * fan_out)}]" for i in range(1, levels)]
    return "\n".join(lines) + f"\nname: *a{levels - 1}\n"


def test_alias_bomb_is_refused_at_once_naming_the_file(tmp_path):
    import time
    import tracemalloc

    text = billion_laughs()
    assert len(text.encode()) < 700  # the size of the probe that kept `validate` busy for 40 s at 1.4 GB
    f = tmp_path / "bomb.yaml"
    f.write_text(text)
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(ConfigError) as ei:
            load_model_config(f)
        seconds = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert seconds < 5 and peak < 50 * 2**20, (seconds, peak)  # generous: it takes milliseconds and ~1 MB
    (line,) = str(ei.value).splitlines()
    assert line.startswith(f"{f}: line ") and "refused: the document expands to more than 50000 nodes" in line


def test_recursive_alias_deep_nesting_and_too_many_aliases_are_refused(tmp_path):
    assert _errors(tmp_path, BASE + "tags: &t [*t]\n") == [
        "line 10, column 11: refused: alias *t refers to a node that contains it (a recursive structure)"]
    (deep,) = _errors(tmp_path, BASE + "description: " + "[" * 200 + "]" * 200 + "\n")
    assert deep.startswith("line 10, column ") and deep.endswith("refused: nested deeper than 50 levels (the limit "
                                                                 "of a model file)")
    many = BASE + "x: &x 1\n" + "".join(f"y{i}: *x\n" for i in range(1001))
    assert _errors(tmp_path, many)[0].endswith("refused: more than 1000 aliases (the limit of a model file)")


def test_oversized_file_is_refused_before_it_is_parsed(tmp_path):
    from driftline.config import MAX_MODEL_FILE_BYTES

    text = BASE + "#" * (MAX_MODEL_FILE_BYTES - len(BASE)) + "\n"  # a valid model, one byte too many
    assert len(text.encode()) == MAX_MODEL_FILE_BYTES + 1
    assert _errors(tmp_path, text) == [f"refused: {MAX_MODEL_FILE_BYTES + 1} bytes is more than the limit of a "
                                       f"model file, 1 MiB ({MAX_MODEL_FILE_BYTES} bytes); a model file is a few "
                                       f"kilobytes"]
    assert load_model_config(_write(tmp_path, text[:-2] + "\n")).name == "m"  # at the limit: fine


def test_within_the_limits_anchors_and_large_models_load(tmp_path):
    shared = BASE.replace("{name: a, type: numeric}", "{name: a, type: numeric, drift: &psi {method: psi}}") \
        .replace("{name: b, type: categorical}", "{name: b, type: numeric, drift: *psi}")
    cfg = load_model_config(_write(tmp_path, shared))
    assert [f.drift.method for f in cfg.features] == ["psi", "psi"]
    many = BASE + "".join(f"  - {{name: f{i}, type: numeric, description: feature {i}}}\n" for i in range(5000))
    assert len(load_model_config(_write(tmp_path, many)).features) == 5002


def test_values_yaml_cannot_build_name_their_line(tmp_path):
    assert _errors(tmp_path, BASE.replace("2026-10-01", "2026-02-30")) == [
        "line 4, column 13: not valid YAML (day is out of range for month)"]


def test_load_all_refuses_a_bomb_without_hiding_the_good_model(tmp_path):
    (tmp_path / "bomb.yaml").write_text(billion_laughs())
    (tmp_path / "good.yaml").write_text(BASE)
    loaded = load_all(tmp_path)
    assert list(loaded.models) == ["m"] and list(loaded.errors) == [str(tmp_path / "bomb.yaml")]


@pytest.mark.parametrize("value,problem", [
    ("12", "start_date: 12 is a number, not a date: write a date like 2026-10-01 or 2026-10-01T06:00Z"),
    ("9999-12-31", "start_date: 9999-12-31T00:00:00+00:00 is outside the supported range 1970-01-01 to 2200-01-01"),
    ("1969-12-31", "start_date: 1969-12-31T00:00:00+00:00 is outside the supported range 1970-01-01 to 2200-01-01"),
])
def test_start_date_is_a_date_in_the_supported_range(tmp_path, value, problem):
    (msg,) = _errors(tmp_path, BASE.replace("start_date: 2026-10-01", f"start_date: {value}"))
    assert msg.startswith(problem)
