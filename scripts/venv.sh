# Sourced by the other scripts: create ./.venv and install the pinned requirements when they
# changed since the last install, then activate it. Usage: source scripts/venv.sh [requirements file]
req="${1:-requirements.txt}"
py="${PYTHON:-python3}"
if ! "$py" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' 2>/dev/null; then
  for cand in python3.11 /usr/bin/python3.11 /usr/local/bin/python3.11; do
    if command -v "$cand" >/dev/null 2>&1; then py="$cand"; break; fi
  done
fi
if ! "$py" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' 2>/dev/null; then
  echo "error: Python 3.11 is needed (torch 2.13.0's CPU wheel is built for it); set PYTHON=/path/to/python3.11" >&2
  return 2 2>/dev/null || exit 2
fi
if [ ! -x .venv/bin/python ]; then
  echo "creating .venv with $("$py" --version)" >&2
  "$py" -m venv .venv || { echo "error: could not create .venv" >&2; return 2 2>/dev/null || exit 2; }
fi
stamp=".venv/.installed-$(cat "$req" requirements*.txt constraints.txt | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "installing $req into .venv (first time: a few minutes)…" >&2
  # This machine's pip config lists extra local indexes; their 'is ignored' notices are noise.
  if ! .venv/bin/python -m pip install -q --disable-pip-version-check -r "$req" 2>&1 | grep -v "is ignored: it is neither" >&2; then :; fi
  if ! .venv/bin/python -c 'import audits.tv, streamlit, pytorch_grad_cam, evidently' 2>/dev/null; then
    echo "error: installing $req failed (see the pip messages above)" >&2
    return 2 2>/dev/null || exit 2
  fi
  touch "$stamp"
fi
# shellcheck disable=SC1091
source .venv/bin/activate
