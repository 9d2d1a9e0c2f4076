#!/usr/bin/env bash
# Stage: the stress suite (marker `stress`) and the property tests at their stress profile.
#
# - tests/stress/: the fault matrix (drop after N, silent drops, lost summaries, freeze,
#   malformed messages, queue drops) on WebSocket, NDJSON and SSE, chunked and parallel,
#   with a CPU hog process and a tiny sys.setswitchinterval, RIPTIDE_STRESS_ROUNDS rounds
#   each (default 5), every run within a deadline;
# - tests/property/ with HYPOTHESIS_PROFILE=stress (1,500 examples a property).
#
# Installs what it needs (idempotent), exits non-zero on failure; pytest's exit code 5
# (nothing collected) is a failure. About 5 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install -q -e '.[server,cli,dev]'
status=0
RIPTIDE_STRESS_ROUNDS="${RIPTIDE_STRESS_ROUNDS:-5}" \
  .venv/bin/python -m pytest tests/stress -m stress -q -p no:randomly --timeout 600 || status=$?
if [ "$status" -ne 0 ]; then
  echo "stress suite failed (pytest exit $status)" >&2
  exit 1
fi
HYPOTHESIS_PROFILE=stress .venv/bin/python -m pytest tests/property -q -p no:randomly \
  --timeout 900 || status=$?
if [ "$status" -ne 0 ]; then
  echo "property tests (stress profile) failed (pytest exit $status)" >&2
  exit 1
fi
