#!/usr/bin/env bash
# Installs what Kuryr and its local stack need on Debian 12: the apt packages listed in
# apt-packages.txt (only the missing ones) and the project venv in .venv. Idempotent.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")

fail() { echo "install-deps: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || fail "must run as root (apt packages and the local stack need it)"

mapfile -t wanted < <(grep -v '^\s*#' "$here/apt-packages.txt" | grep -v '^\s*$')
missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: apt-get install ${missing[*]}"
  log=$(mktemp)
  export DEBIAN_FRONTEND=noninteractive
  if ! { apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    tail -n 15 "$log" >&2
    fail "apt could not install: ${missing[*]} (log above)"
  fi
  rm -f "$log"
fi

python=${PYTHON:-python3}
if [ ! -x "$root/.venv/bin/python" ]; then
  "$python" -m venv "$root/.venv" || fail "could not create the venv with $python"
fi
stamp="$root/.venv/.installed"
if [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ]; then
  "$root/.venv/bin/pip" install -q --upgrade pip >/dev/null
  "$root/.venv/bin/pip" install -q -e "$root[dev]" || fail "pip could not install the project into .venv"
  touch "$stamp"
fi
