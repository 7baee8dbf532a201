# Sourced by the scripts: a project-local Airflow on SQLite and the embedded local store.
PROJECT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$PROJECT_DIR/airflow_home}"
export AIRFLOW__CORE__DAGS_FOLDER="$PROJECT_DIR/dags"
export AIRFLOW__CORE__PLUGINS_FOLDER="$PROJECT_DIR/plugins"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
# The DAGs a user needs are active from the start: a paused feedback DAG would miss the alert
# events raised meanwhile, a paused retraining DAG the requests.
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="${AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION:-False}"
# Links in task logs and alert messages point at the UI (the driftline page, the run reports).
export AIRFLOW__API__BASE_URL="${AIRFLOW__API__BASE_URL:-http://localhost:8080}"
export DRIFTLINE_STORE_URL="${DRIFTLINE_STORE_URL:-file://$PROJECT_DIR/data/store}"
VENV="${DRIFTLINE_VENV:-$PROJECT_DIR/.venv}"
PY="${PYTHON:-python3}"

ensure_venv() {  # ensure_venv REQUIREMENTS_FILE
  local req="$1" stamp="$VENV/.installed-$(basename "$1")"
  if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
  fi
  # Reinstall only when the requirements changed since the last install.
  local newer=""
  for f in "$req" "$PROJECT_DIR/requirements.txt" "$PROJECT_DIR/pyproject.toml"; do
    [ "$f" -nt "$stamp" ] && newer=1
  done
  if [ ! -f "$stamp" ] || [ -n "$newer" ]; then
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -r "$req" -e "$PROJECT_DIR"
    touch "$stamp"
  fi
}

ensure_chromium() {  # the browser test drives Debian's Chromium (tests/test_web.py)
  local bin="${DRIFTLINE_CHROMIUM:-/usr/bin/chromium}"
  [ -x "$bin" ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "==> installing Debian's chromium for the browser test"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "the browser test needs Chromium at $bin: 'sudo apt-get install chromium', or set DRIFTLINE_CHROMIUM" >&2
    return 1
  fi
}
