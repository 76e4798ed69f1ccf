#!/usr/bin/env bash
# One command from a fresh clone: install into ./.venv (with the test tools), install the Debian
# packages the tests drive (Chromium for the browser test, poppler for PDF text and pages), lint,
# and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v pdftoppm >/dev/null 2>&1 || need+=(poppler-utils)
dpkg -s libpango-1.0-0 >/dev/null 2>&1 || need+=(libpango-1.0-0 libpangoft2-1.0-0)
fc-list 2>/dev/null | grep -qi dejavu || need+=(fonts-dejavu-core)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "installing Debian packages: ${need[*]}" >&2
  $sudo apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi
source scripts/venv.sh requirements-dev.txt
ruff check .
ruff format --check .
# The demo store (data, two audited versions, drift, comparison) is what the demo-store tests
# of the dashboard, the drift and the leakage checks run against; built once, then reused.
python -m audits demo --store audit-store >/dev/null
python -m pytest "$@"
