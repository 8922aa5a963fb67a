#!/usr/bin/env bash
# Creates .venv with Python 3.10 on first use, installs the package into it and
# the extras asked for: scripts/venv.sh examples,docs (or EXTRAS=...; default:
# test). Each Makefile target asks for what its command needs; extras only ever
# add up, so switching targets installs what is missing and reinstalls nothing.
# Up to date, it prints nothing; pip's output is kept in .venv/install.log and
# shown only when pip fails.
#
# The package is installed in setuptools' strict editable mode: a tree of links
# to the sources, on sys.path through a plain .pth entry, which type checkers
# (mypy, pyright) and editors follow, where the default mode's import hook
# hides the package from them. A file added to or removed from nnabla_modules/
# reinstalls it (the stamp below lists the files).
#
# NNabla 1.39 ships wheels for Python 3.8-3.10 only, so the interpreter must be
# a 3.10; this script finds one itself (PYTHON=..., python3.10 on PATH, pyenv).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
EXTRAS="${1:-${EXTRAS:-test}}"
PACKAGE_STAMP="$VENV/.installed"
EXTRAS_STAMP="$VENV/.extras"
LOG="$VENV/install.log"

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

# Runs pip quietly: its output goes to the log, shown only when it fails.
pip_install() {
    if ! "$VENV/bin/python" -m pip install --disable-pip-version-check "$@" >"$LOG" 2>&1; then
        cat "$LOG" >&2
        echo "error: pip install $* failed (log: $LOG)" >&2
        exit 1
    fi
}

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

package=$({ cat setup.cfg pyproject.toml; find nnabla_modules \( -name '*.py' -o -name '*.pyi' -o -name py.typed \) -not -path '*/__pycache__/*' | LC_ALL=C sort; } | cksum)
if [ "$(cat "$PACKAGE_STAMP" 2>/dev/null)" != "$package" ]; then
    echo "installing nnabla_modules and NNabla into $VENV" >&2
    pip_install --upgrade pip
    pip_install -e . --config-settings editable_mode=strict
    echo "$package" >"$PACKAGE_STAMP"
    rm -f "$EXTRAS_STAMP" # the extras' requirements may have changed with setup.cfg
fi

# The requirements of the extras not installed yet, read from the installed metadata.
missing=$(
    "$VENV/bin/python" - "$EXTRAS" "$EXTRAS_STAMP" <<'PY'
import os, re, sys
from importlib.metadata import metadata, requires
wanted, stamp = sys.argv[1].split(","), sys.argv[2]
known = metadata("nnabla-modules").get_all("Provides-Extra") or []
unknown = [e for e in wanted if e and e not in known]
if unknown:
    sys.exit(f"error: no extra {', '.join(unknown)}; setup.cfg has {', '.join(known)}")
done = open(stamp).read().split() if os.path.exists(stamp) else []
extras = [e for e in wanted if e and e not in done]
for requirement in requires("nnabla-modules") or []:
    spec, _, marker = requirement.partition(";")
    extra = re.search(r"extra\s*==\s*['\"]([\w-]+)['\"]", marker)
    if extra and extra.group(1) in extras:
        print(spec.strip())
print("extras:" + ",".join(extras))
PY
)
extras=$(echo "$missing" | sed -n 's/^extras://p')
if [ -n "$extras" ]; then
    requirements=$(echo "$missing" | grep -v '^extras:' || true)
    echo "installing the extras $extras into $VENV" >&2
    # shellcheck disable=SC2086  # one requirement a word
    [ -z "$requirements" ] || pip_install $requirements
    echo "$extras" | tr ',' '\n' >>"$EXTRAS_STAMP"
fi
