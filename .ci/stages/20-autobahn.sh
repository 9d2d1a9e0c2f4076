#!/usr/bin/env bash
# Autobahn|Testsuite's fuzzingserver (cases 1-7, 9, 10) against riptide_sync's WebSocket
# reader: `pytest -m autobahn` (tests/autobahn/). The suite needs Python 2.7: pyenv's
# 2.7 interpreter installs autobahntestsuite 0.8.2 and the 2.7-compatible versions of its
# dependencies pinned in tests/autobahn/requirements-py27.txt into a cache outside the
# repo (~/.cache/riptide-sync/autobahn-py27), once; later runs reuse it.
# Measured on 2 shared cores: about 1 min 45 s on a fresh machine (the install is most of
# it), about 30 s with the cache.
set -euo pipefail
cd "$(dirname "$0")/../.."

[ -x .venv/bin/python ] || { python3 -m venv .venv && .venv/bin/pip install -q -e '.[server,cli,dev]'; }

py27="${RIPTIDE_PY27:-}"
if [ -z "$py27" ]; then
  for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/2.7*/bin/python /root/.pyenv/versions/2.7*/bin/python; do
    if [ -x "$candidate" ]; then py27="$candidate"; break; fi
  done
fi
if [ -z "$py27" ] || [ ! -x "$py27" ]; then
  echo "== autobahn: SKIPPED: no Python 2.7 interpreter (pyenv's versions/2.7*, or RIPTIDE_PY27)"
  exit 0
fi

site="${RIPTIDE_AUTOBAHN_SITE:-$HOME/.cache/riptide-sync/autobahn-py27}"
requirements=tests/autobahn/requirements-py27.txt
stamp="$site/.requirements-$(sha256sum "$requirements" | cut -c1-16)"
if [ ! -e "$stamp" ]; then
  echo "== autobahn: installing autobahntestsuite into $site with $py27"
  tmp="$site.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$(dirname "$site")"  # a fresh machine has no ~/.cache/riptide-sync yet
  if ! PIP_DISABLE_PIP_VERSION_CHECK=1 "$py27" -m pip install -q --no-warn-script-location \
      --target "$tmp" -r "$requirements" > "$tmp.log" 2>&1; then
    grep -v "is ignored: it is neither" "$tmp.log" >&2 || true
    echo "== autobahn: installing autobahntestsuite failed" >&2
    exit 1
  fi
  rm -f "$tmp.log"
  PYTHONWARNINGS=ignore "$py27" -c "import site, sys; site.addsitedir(sys.argv[1]); from autobahntestsuite import wstest" "$tmp"
  rm -rf "$site"
  mv "$tmp" "$site"
  touch "$site/.requirements-$(sha256sum "$requirements" | cut -c1-16)"
fi

export RIPTIDE_PY27="$py27" RIPTIDE_AUTOBAHN_SITE="$site"
status=0
.venv/bin/python -m pytest -m autobahn tests/autobahn -p no:randomly -p no:cacheprovider -rs -s || status=$?
if [ "$status" -eq 5 ]; then
  echo "== autobahn: pytest collected no test (exit 5)" >&2
  exit 1
fi
exit "$status"
