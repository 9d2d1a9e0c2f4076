"""Autobahn|Testsuite's fuzzingserver against an echo client, and its report read back.

The fuzzingserver (autobahntestsuite 0.8.2, Python 2.7, installed by
``.ci/stages/20-autobahn.sh`` into ``~/.cache/riptide-sync/autobahn-py27``) plays a
misbehaving server; an echo client connects once per case, sends back every message it
receives with the same opcode, and lets the server judge what it saw on the wire.

Two echo clients:

* :func:`riptide_echo` -- riptide_sync's own reader: a real :class:`Connection` (the
  handshake, its reader thread, frame parser, control handling, close logic and queue).
  The only test seam is :meth:`Connection._new_parser`, overridden to ask the parser to
  record each message's opcode (a RipTide client knows every message is text) and to
  validate UTF-8 itself (a RipTide client leaves that to its JSON decoder).
* :func:`websocket_client_echo` -- websocket-client's own reader (``recv_data``), for
  comparison only.

Run by hand (both clients, a summary table each)::

    python tests/autobahn/autobahn_harness.py [riptide|websocket-client ...]
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import websocket

from riptide_sync._config import ClientConfig
from riptide_sync._transport import StreamStats
from riptide_sync._ws.connection import Connection
from riptide_sync._ws.frames import FrameParser
from riptide_sync.exceptions import StreamingError, StreamTimeoutError

HERE = Path(__file__).resolve().parent
SITE_DIR = Path(
    os.environ.get("RIPTIDE_AUTOBAHN_SITE", Path.home() / ".cache" / "riptide-sync" / "autobahn-py27")
)
"""Where the stage script installs autobahntestsuite (pip --target); read at import, as
the suite's fixtures clear RIPTIDE_* variables."""

CASES = ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "9.*", "10.*"]
EXCLUDED = ["12.*", "13.*"]  # permessage-deflate: no extension is offered
CASE_TIMEOUT = 60.0
"""Longest one case may take (the 9.x cases move up to 16 MiB messages)."""
BEHAVIORS = ("OK", "NON-STRICT", "FAILED", "INFORMATIONAL", "UNIMPLEMENTED")


def python27() -> Optional[str]:
    """pyenv's Python 2.7 (or $RIPTIDE_PY27, or python2.7 on PATH); None when none."""
    explicit = os.environ.get("RIPTIDE_PY27")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    found = sorted(glob.glob(os.path.join(root, "versions", "2.7*", "bin", "python")))
    found += sorted(glob.glob("/root/.pyenv/versions/2.7*/bin/python"))
    for candidate in found:
        if os.access(candidate, os.X_OK):
            return candidate
    for name in ("python2.7", "python2"):
        for directory in os.environ.get("PATH", "").split(os.pathsep):
            path = os.path.join(directory, name)
            if os.access(path, os.X_OK):
                return path
    return None


PYTHON27 = python27()
"""Read when this module is imported: the suite's fixtures clear RIPTIDE_* variables."""


def installed() -> bool:
    return (SITE_DIR / "autobahntestsuite" / "wstest.py").exists()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def fuzzingserver(outdir: Path, python: str, cases: list[str] = CASES) -> Iterator[str]:
    """Run the fuzzingserver on 127.0.0.1 (a free port); yield its ws:// URL."""
    port = _free_port()
    url = f"ws://127.0.0.1:{port}"
    spec = {
        "url": url,
        "outdir": str(outdir),
        "cases": cases,
        "exclude-cases": EXCLUDED,
        "exclude-agent-cases": {},
    }
    spec_path = outdir / "fuzzingserver.json"
    outdir.mkdir(parents=True, exist_ok=True)
    spec_path.write_text(json.dumps(spec))
    log = open(outdir / "fuzzingserver.log", "wb")
    proc = subprocess.Popen(
        [python, str(HERE / "fuzzingserver_loopback.py"), str(SITE_DIR), str(spec_path)],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=str(outdir),
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    try:
        deadline = time.monotonic() + 60.0
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"the fuzzingserver exited with {proc.returncode}: "
                    + (outdir / "fuzzingserver.log").read_text(errors="replace")[-2000:]
                )
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the fuzzingserver did not listen within 60 s") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(5.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _text_message(url: str) -> str:
    ws = websocket.create_connection(url, timeout=30.0, suppress_origin=True)
    try:
        data = ws.recv()
    finally:
        ws.close()
    return data if isinstance(data, str) else data.decode()


def case_count(url: str) -> int:
    return int(_text_message(f"{url}/getCaseCount"))


def update_reports(url: str, agent: str) -> None:
    ws = websocket.create_connection(f"{url}/updateReports?agent={agent}", timeout=120.0,
                                     suppress_origin=True)
    sock = ws.sock  # websocket-client drops its reference when the peer closes first
    try:
        # The server writes the reports, then closes: wait for its Close frame.
        with contextlib.suppress(websocket.WebSocketException, OSError):
            while ws.recv_data(control_frame=False)[0] != websocket.ABNF.OPCODE_CLOSE:
                pass
    finally:
        ws.close()
        if sock is not None:
            sock.close()


# --- our reader ------------------------------------------------------------------------


class EchoConnection(Connection):
    """A real :class:`Connection` whose parser also records opcodes and checks UTF-8."""

    parser: FrameParser | None = None

    def _new_parser(self) -> FrameParser:
        self.parser = FrameParser(self.config.max_message_size, validate_utf8=True,
                                  record_opcodes=True)
        return self.parser


def riptide_echo_case(url: str) -> None:
    config = ClientConfig(
        # The case URL carries a query (runCase?case=N): the base URL is its origin only,
        # and the Connection is given the full URL.
        base_url="http://" + urllib.parse.urlsplit(url).netloc,
        ping_interval=None,  # the fuzzingserver judges every frame: no pings of our own
        ping_timeout=None,
        connect_timeout=CASE_TIMEOUT,
        timeout=CASE_TIMEOUT,
    )
    conn = EchoConnection(config, StreamStats(), url)
    try:
        conn.connect(read_welcome=False)
    except StreamingError:
        return  # a refused handshake is the server's verdict to report
    deadline = time.monotonic() + CASE_TIMEOUT
    try:
        while time.monotonic() < deadline:
            try:
                payload = conn.queue.get(max(0.0, deadline - time.monotonic()))
            except StreamTimeoutError:
                break
            except StreamingError:
                break  # closed by the server, or a protocol error (the reader closed)
            assert isinstance(payload, bytes) and conn.parser is not None
            opcode = conn.parser.opcodes.popleft()  # type: ignore[union-attr]
            ws = conn._ws
            if ws is None:
                break
            try:
                ws.send(payload, opcode)
            except (websocket.WebSocketException, OSError):
                break
    finally:
        conn.close()


# --- websocket-client's reader, for comparison -------------------------------------------


def websocket_client_echo_case(url: str) -> None:
    """websocket-client's own echo for this suite (its compliance/test_fuzzingclient.py):
    recv_data, decode text, echo; a failure closes with the code its type calls for."""
    try:
        ws = websocket.create_connection(url, timeout=CASE_TIMEOUT, suppress_origin=True)
    except (websocket.WebSocketException, OSError):
        return
    status = websocket.STATUS_NORMAL
    try:
        while True:
            opcode, data = ws.recv_data()
            if opcode == websocket.ABNF.OPCODE_TEXT:
                data.decode("utf-8")
            if opcode in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY):
                ws.send(data, opcode)
    except UnicodeDecodeError:
        status = websocket.STATUS_PROTOCOL_ERROR
    except websocket.WebSocketProtocolException:
        status = websocket.STATUS_PROTOCOL_ERROR
    except websocket.WebSocketPayloadException:
        status = websocket.STATUS_INVALID_PAYLOAD
    except (websocket.WebSocketException, OSError):
        pass
    finally:
        sock = ws.sock
        with contextlib.suppress(websocket.WebSocketException, OSError):
            ws.close(status)
        if sock is not None:
            sock.close()


CLIENTS: dict[str, tuple[str, Callable[[str], None]]] = {
    "riptide": ("riptide_sync", riptide_echo_case),
    "websocket-client": ("websocket-client", websocket_client_echo_case),
}


def run_agent(url: str, agent: str, echo: Callable[[str], None]) -> None:
    """Run every case with ``echo``, then have the server write the agent's report."""
    for case in range(1, case_count(url) + 1):
        worker = threading.Thread(
            target=echo, args=(f"{url}/runCase?case={case}&agent={agent}",), daemon=True
        )
        worker.start()
        worker.join(CASE_TIMEOUT + 10.0)
        if worker.is_alive():
            raise RuntimeError(f"case {case} did not finish in {CASE_TIMEOUT + 10:g} s")
    update_reports(url, agent)


def summarize(outdir: Path, agent: str) -> dict[str, Any]:
    """The agent's verdicts from the report index: ``counts`` and ``cases`` by behavior
    (the report's verdict on what the client did), ``close`` (case ids whose closing
    handshake the report did not call OK: wrong code, unclean, failed by the wrong
    endpoint) and ``reasons`` (the report's own words, for every case in either)."""
    index = json.loads((outdir / "index.json").read_text())[agent]
    cases: dict[str, list[str]] = {b: [] for b in BEHAVIORS}
    close: list[str] = []
    reasons: dict[str, str] = {}
    for case_id in sorted(index, key=lambda c: [int(p) for p in c.split(".")]):
        entry = index[case_id]
        behavior = entry["behavior"]
        cases.setdefault(behavior, []).append(case_id)
        close_ok = entry.get("behaviorClose") in ("OK", "INFORMATIONAL")
        if not close_ok:
            close.append(case_id)
        if behavior in ("FAILED", "NON-STRICT") or not close_ok:
            detail = json.loads((outdir / entry["reportfile"]).read_text())
            reasons[case_id] = (
                f"{entry['behavior']}/{entry['behaviorClose']}: {detail.get('result')}; "
                f"close: {detail.get('resultClose')}; expected {detail.get('expected')}, "
                f"received {str(detail.get('received'))[:300]}"
            )
    return {"counts": {b: len(v) for b, v in cases.items()}, "cases": cases, "close": close,
            "reasons": reasons}


def run(clients: list[str], outdir: Path, python: str) -> dict[str, dict[str, Any]]:
    results = {}
    with fuzzingserver(outdir, python) as url:
        for name in clients:
            agent, echo = CLIENTS[name]
            started = time.monotonic()
            run_agent(url, agent, echo)
            results[name] = summarize(outdir, agent)
            results[name]["seconds"] = time.monotonic() - started
    return results


def table(results: dict[str, dict[str, Any]]) -> str:
    lines = ["| client | " + " | ".join(BEHAVIORS) + " | close not OK | time |",
             "|---" * (len(BEHAVIORS) + 3) + "|"]
    for name, result in results.items():
        counts = result["counts"]
        lines.append(f"| {name} | " + " | ".join(str(counts.get(b, 0)) for b in BEHAVIORS)
                     + f" | {len(result['close'])} | {result['seconds']:.0f} s |")
    return "\n".join(lines)


if __name__ == "__main__":
    python = PYTHON27
    if python is None or not installed():
        sys.exit("needs Python 2.7 and autobahntestsuite: run .ci/stages/20-autobahn.sh")
    names = sys.argv[1:] or list(CLIENTS)
    out = Path(tempfile.mkdtemp(prefix="autobahn-"))
    results = run(names, out, python)
    for name, result in results.items():
        for case_id, reason in result["reasons"].items():
            print(f"{name} {case_id}: {reason}")
    print(table(results))
    print(f"reports in {out}")
