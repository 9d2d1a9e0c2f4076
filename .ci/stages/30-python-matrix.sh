#!/usr/bin/env bash
# The Python version matrix (noxfile.py): on every supported Python but the default one
# (3.11, which .ci/run's default suite already covers), install the package with its
# server, cli and test extras in a venv of that version and run tests/unit,
# tests/integration, tests/server and tests/legacy there. The interpreters come from
# pyenv ($PYENV_ROOT/versions, else python3.X on PATH); a missing one fails the stage.
# nox reuses its venvs (.nox/) between runs, so a second run skips most of the install.
set -euo pipefail
cd "$(dirname "$0")/../.."
started=$SECONDS
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q 'nox>=2024.4'
.venv/bin/nox --no-color -s interpreters
# Every session runs pytest; any non-zero exit (5 included: no test collected) fails it,
# and a failed session makes nox exit non-zero.
.venv/bin/nox --no-color
echo "== python matrix done in $((SECONDS - started)) s"
