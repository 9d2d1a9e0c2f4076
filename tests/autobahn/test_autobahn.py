"""Autobahn|Testsuite (client mode, cases 1-7, 9, 10) against riptide_sync's reader.

Run by ``.ci/stages/20-autobahn.sh`` (``pytest -m autobahn``), which installs the suite
into a Python 2.7 cache first; see autobahn_harness.py for how the echo client is built.
"""

from __future__ import annotations

import pytest

import autobahn_harness as harness

pytestmark = pytest.mark.autobahn

WEBSOCKET_CLIENT_NON_STRICT = 4
"""websocket-client 1.9.2's own reader through the same harness: 4 NON-STRICT (6.4.1-6.4.4)."""


@pytest.mark.timeout(1800)
def test_autobahn_fuzzingserver_cases_1_to_10(tmp_path) -> None:
    """Every case passes (OK, or NON-STRICT no more often than websocket-client)."""
    python = harness.PYTHON27
    if python is None:
        pytest.skip("Autobahn|Testsuite needs Python 2.7 and none was found (pyenv's "
                    "versions/2.7*, python2.7 on PATH, or RIPTIDE_PY27)")
    assert harness.installed(), (
        f"autobahntestsuite is not installed in {harness.SITE_DIR}: "
        f"run bash .ci/stages/20-autobahn.sh"
    )
    results = harness.run(["riptide"], tmp_path, python)
    ours = results["riptide"]
    print("\n" + harness.table(results))
    for case_id, reason in ours["reasons"].items():
        print(f"{case_id}: {reason}")
    counts = ours["counts"]
    assert sum(counts.values()) > 250, f"too few cases ran: {counts}"
    failed = {c: ours["reasons"].get(c, "") for c in ours["cases"]["FAILED"]}
    assert not failed, "FAILED cases:\n" + "\n".join(f"{c}: {r}" for c, r in failed.items())
    assert counts["NON-STRICT"] <= WEBSOCKET_CLIENT_NON_STRICT, (
        "NON-STRICT cases:\n"
        + "\n".join(f"{c}: {ours['reasons'].get(c, '')}" for c in ours["cases"]["NON-STRICT"])
    )
    # The closing handshake too: the right code, from the right endpoint, every time.
    assert not ours["close"], "closing handshake not OK:\n" + "\n".join(
        f"{c}: {ours['reasons'].get(c, '')}" for c in ours["close"]
    )
