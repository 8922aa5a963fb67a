#!/usr/bin/env bash
# Creates .venv with Python 3.10 on first use and installs the package into it.
# NNabla 1.39 ships wheels for Python 3.8-3.10 only, so the interpreter must be
# a 3.10; this script finds one itself (PYTHON=..., python3.10 on PATH, pyenv).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
STAMP="$VENV/.installed"
EXTRAS="${EXTRAS:-test}"

is_python310() {
    "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' >/dev/null 2>&1
}

find_python310() {
    local candidates=()
    [ -n "${PYTHON:-}" ] && candidates+=("$PYTHON")
    candidates+=(python3.10)
    if command -v pyenv >/dev/null 2>&1; then
        for dir in "$(pyenv root)"/versions/3.10*; do
            [ -x "$dir/bin/python3.10" ] && candidates+=("$dir/bin/python3.10")
        done
    fi
    candidates+=(/usr/bin/python3.10 /usr/local/bin/python3.10 python3)
    for candidate in "${candidates[@]}"; do
        if command -v "$candidate" >/dev/null 2>&1 && is_python310 "$candidate"; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

wanted="extras=$EXTRAS $(cat setup.cfg pyproject.toml | cksum)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$wanted" ]; then
    exit 0
fi

if [ ! -x "$VENV/bin/python" ] || ! is_python310 "$VENV/bin/python"; then
    if ! python=$(find_python310); then
        cat >&2 <<'MSG'
error: no Python 3.10 interpreter found.
NNabla 1.39 publishes wheels for Python 3.8-3.10 only; this project uses 3.10.
Install one, then run the command again:
  pyenv install 3.10.13          (pyenv: .python-version selects it)
  apt-get install python3.10 python3.10-venv   (Debian/Ubuntu with 3.10 packages)
or point to one explicitly:  PYTHON=/path/to/python3.10 make test
MSG
        exit 1
    fi
    echo "creating $VENV with $python" >&2
    rm -rf "$VENV"
    "$python" -m venv "$VENV"
fi

"$VENV/bin/python" -m pip install --quiet --upgrade pip >&2
"$VENV/bin/python" -m pip install --quiet -e ".[$EXTRAS]" >&2
echo "$wanted" > "$STAMP"
