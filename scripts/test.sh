#!/usr/bin/env bash
# Install what the tests need (once) and run them. Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$PROJECT_DIR"
ensure_venv requirements-dev.txt
ensure_chromium
exec "$VENV/bin/python" -m pytest "$@"
