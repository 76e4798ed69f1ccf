#!/usr/bin/env bash
# One command from a fresh clone: install into ./.venv, build the bundled demo (data, audits of
# two model versions, a drift run and a comparison) if missing, and open the dashboard on it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh requirements.txt
python -m audits demo --store audit-store
export AUDIT_STORE="$PWD/audit-store"
port="${PORT:-8501}"
echo "opening the dashboard at http://localhost:$port (Ctrl-C to stop)"
exec streamlit run streamlit_app.py --server.port "$port" --browser.gatherUsageStats false "$@"
