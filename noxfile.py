"""The Python version matrix: ``nox`` runs the suite on every supported interpreter.

``.ci/run`` runs the whole default suite on the default interpreter (3.11); the stage
``.ci/stages/30-python-matrix.sh`` runs ``nox`` for the other versions, which installs the
package with its ``server``, ``cli`` and ``test`` extras in a venv per version and runs the
unit, integration, local-server and legacy (fork, threads, gevent, eventlet) suites there;
the recipes' Celery and Flask tests run on the default interpreter only.

Interpreters are looked up in pyenv's tree (``$PYENV_ROOT/versions/X.Y.Z``, the newest
patch release of each X.Y), then on ``PATH`` as ``pythonX.Y``. A version that is not found
FAILS its session (``error_on_missing_interpreters``): a matrix that silently runs on fewer
versions than it claims is worse than a red build.

Usage::

    nox                       # every version but the default one (what CI runs)
    nox -s "tests(3.9)"       # one version
    nox -s "tests(3.11)"      # the default interpreter too, on demand
    nox -R                    # reuse existing venvs, skip the install step
"""

from __future__ import annotations

import glob
import os
import shutil

import nox

SUPPORTED = ["3.9", "3.10", "3.11", "3.12", "3.13"]
"""Every Python the package supports (setup.cfg ``python_requires``, classifiers)."""

DEFAULT = "3.11"
"""The interpreter ``.ci/run`` runs the full default suite on; left out of ``nox``'s
default sessions so CI does not run it twice."""

SUITES = ["tests/unit", "tests/integration", "tests/server", "tests/legacy"]

nox.options.error_on_missing_interpreters = True
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = [f"tests({v})" for v in SUPPORTED if v != DEFAULT]


def _interpreter(version: str) -> str:
    """The path of a Python ``version`` ("3.9"), or the bare version for nox to report."""
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    found = []
    for path in glob.glob(os.path.join(root, "versions", f"{version}.*", "bin", "python")):
        patch = os.path.basename(os.path.dirname(os.path.dirname(path)))[len(version) + 1 :]
        if patch.isdigit():
            found.append((int(patch), path))
    if found:
        return max(found)[1]
    on_path = shutil.which(f"python{version}")
    return on_path or version


@nox.session(python=False)
def interpreters(session: nox.Session) -> None:
    """Print which interpreter each supported version resolves to; fail on a missing one."""
    missing = []
    for version in SUPPORTED:
        path = _interpreter(version)
        session.log(f"Python {version}: {path if os.path.isabs(path) else 'NOT FOUND'}")
        if not os.path.isabs(path):
            missing.append(version)
    if missing:
        session.error(f"missing interpreters: {', '.join(missing)}")


@nox.session(name="tests")
@nox.parametrize("python", [_interpreter(v) for v in SUPPORTED], ids=SUPPORTED)
def tests(session: nox.Session) -> None:
    """Install the package (server, cli, test extras) and run the unit, integration,
    server and legacy suites; extra arguments go to pytest (``nox -s "tests(3.9)" -- -x -k fork``)."""
    # With reused venvs (the default here) pip only checks what is installed: seconds.
    # --prefer-binary: an older release with a wheel for this Python over building a newer
    # one from source (gevent has no 3.9 wheel in its newest releases: minutes of C build).
    session.install("-q", "--prefer-binary", "-e", ".[server,cli,test]")
    session.run("python", "-c", "import sys; print(sys.version)")
    args = session.posargs or ["-q", "-x", "-p", "no:randomly"]
    session.run("python", "-m", "pytest", *SUITES, *args)
