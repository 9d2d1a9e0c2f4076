"""The hot-path JSON decoder works with and without orjson (extra [fast])."""

import subprocess
import sys

CHECK = r"""
import sys
if BLOCK:
    sys.modules["orjson"] = None  # as if orjson were not installed
from riptide_sync.protocol import _json
from riptide_sync.protocol.envelope import decode_message
from riptide_sync.protocol.ndjson import classify_line
from riptide_sync.protocol.sse import ServerSentEvent, sse_to_event
assert _json.BACKEND == EXPECTED, _json.BACKEND
event = decode_message(b'{"message_type":"result","data":{"index":1,"result":{"url":"u"},"progress":{}}}')
assert (event.event_type, event.data["index"]) == ("result", 1)
assert decode_message(b"{nope").data["error_type"] == "malformed_message"
assert classify_line(b'{"index":0,"result":{},"progress":{}}').event_type == "result"
assert classify_line(b"\xff").event_type == "error"
assert sse_to_event(ServerSentEvent("complete", '{"successful":1}', None, None)).event_type == "summary"
print("ok")
"""


def run(block: bool, expected: str) -> subprocess.CompletedProcess[str]:
    code = f"BLOCK = {block}\nEXPECTED = {expected!r}\n" + CHECK
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_json_backend_stdlib_fallback_decodes_the_same():
    """Without orjson the decoders fall back to json and behave the same."""
    proc = run(True, "json")
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_json_backend_orjson_when_installed():
    """With orjson installed (the server and fast extras bring it) the decoders use it."""
    proc = run(False, "orjson")
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
