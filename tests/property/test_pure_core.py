"""Property-based tests (hypothesis) of the pure core: the frame parser, the NDJSON and
SSE decoders, envelope decoding and the crawl session's bookkeeping.

Each property holds for every input hypothesis draws, including every way of cutting a
byte stream into reads (the reader threads see arbitrary recv() boundaries). Example
counts are kept small enough for the default suite; the stress stage raises them with
HYPOTHESIS_PROFILE=stress.
"""

from __future__ import annotations

import json
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.frames import Frame, Opcode

from riptide_sync._ws.frames import FrameParser
from riptide_sync.models import StreamingResult
from riptide_sync.protocol.envelope import MALFORMED_MESSAGE, decode_message
from riptide_sync.protocol.ndjson import NDJSONDecoder
from riptide_sync.protocol.session import CrawlSession
from riptide_sync.protocol.sse import SSEDecoder

settings.register_profile(
    "default", max_examples=60, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "stress", max_examples=1500, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut at the given positions (any, repeated or out of range)."""
    points = sorted({c % (len(data) + 1) for c in cuts}) if data else []
    pieces, last = [], 0
    for point in points:
        pieces.append(data[last:point])
        last = point
    pieces.append(data[last:])
    return pieces


cuts = st.lists(st.integers(min_value=0, max_value=1 << 20), max_size=40)


# --- FrameParser ------------------------------------------------------------------------

messages = st.lists(
    st.tuples(
        st.sampled_from([Opcode.TEXT, Opcode.BINARY]),
        st.binary(max_size=70_000).filter(lambda b: True),
        st.integers(min_value=1, max_value=4),  # fragments
        st.lists(st.binary(max_size=125), max_size=2),  # pings between fragments
    ),
    max_size=8,
)


@given(messages, cuts)
def test_frame_parser_any_fragmentation_any_reads(msgs, cut_points):
    """Messages fragmented any way, pings between fragments, the stream cut into reads
    anywhere: the parser returns exactly the messages, in order, and every ping."""
    wire = bytearray()
    pings = []
    for opcode, payload, fragments, between in msgs:
        size = -(-len(payload) // fragments) if payload else 0
        parts = [payload[i : i + size] for i in range(0, len(payload), size)] if size else [b""]
        for number, part in enumerate(parts):
            first, last = number == 0, number == len(parts) - 1
            frame = Frame(opcode if first else Opcode.CONT, part, fin=last)
            wire += frame.serialize(mask=False)
            if not last:
                for ping in between:
                    wire += Frame(Opcode.PING, ping).serialize(mask=False)
                    pings.append(ping)
    parser = FrameParser()
    got = []
    for piece in split_at(bytes(wire), cut_points):
        got.extend(parser.feed(piece))
    assert got == [payload for _, payload, _, _ in msgs]
    assert [p for _, op, p in parser.controls if op == Opcode.PING] == pings
    assert parser.payload_bytes == sum(len(m[1]) for m in msgs)


# --- NDJSON ----------------------------------------------------------------------------

line_bytes = st.binary(max_size=300).map(lambda b: b.replace(b"\n", b"").replace(b"\r", b""))


@given(st.lists(st.tuples(line_bytes, st.sampled_from([b"\n", b"\r\n"])), max_size=30), cuts)
def test_ndjson_decoder_any_reads_gives_the_lines(lines, cut_points):
    """Lines with LF or CRLF, cut into reads anywhere: the non-blank lines, in order, and a
    clean end."""
    body = b"".join(line + end for line, end in lines)
    decoder = NDJSONDecoder()
    got = []
    for piece in split_at(body, cut_points):
        got.extend(decoder.feed(piece))
    assert got == [line for line, _ in lines if line and not line.isspace()]
    assert decoder.end() is None


@given(line_bytes.filter(lambda b: b.strip() != b""), cuts)
def test_ndjson_decoder_reports_a_cut_last_line(line, cut_points):
    """A body cut mid-line: end() returns the unterminated rest, never a silent success."""
    decoder = NDJSONDecoder()
    for piece in split_at(b'{"a":1}\n' + line, cut_points):
        decoder.feed(piece)
    assert decoder.end() == line


# --- SSE -------------------------------------------------------------------------------

sse_text = st.text(max_size=60).map(lambda s: s.replace("\r", "").replace("\n", ""))
sse_events = st.lists(
    st.tuples(
        st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=10),
        st.lists(sse_text, min_size=1, max_size=4),
    ),
    max_size=15,
)


@given(sse_events, st.sampled_from(["\n", "\r\n", "\r"]), st.booleans(), cuts)
def test_sse_decoder_any_line_ends_any_reads(events, newline, heartbeats, cut_points):
    """Events with any line-end convention, comments between them, cut into reads
    anywhere: the same events (data lines joined with LF), every comment counted."""
    blocks = []
    for name, data_lines in events:
        lines = [f"event: {name}"] + [f"data: {line}" for line in data_lines]
        if heartbeats:
            lines.insert(0, "::heartbeat")
        blocks.append(newline.join(lines) + newline + newline)
    body = "".join(blocks).encode("utf-8")
    decoder = SSEDecoder()
    got = []
    for piece in split_at(body, cut_points):
        got.extend(decoder.feed(piece))
    if newline == "\r":
        got.extend(decoder.feed(b"\n"))  # a final CR may wait for a possible LF
    assert [(e.event, e.data) for e in got] == [(n, "\n".join(d)) for n, d in events]
    assert decoder.comments == (len(events) if heartbeats else 0)
    assert not decoder.end()


# --- envelopes -------------------------------------------------------------------------

# Integers within 64 bits: the [fast] extra's orjson decodes larger ones as floats (found by
# this test; the server never sends such numbers).
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@given(st.binary(max_size=400))
def test_decode_message_never_raises_on_any_bytes(payload):
    """Any frame payload becomes an event; unreadable ones the malformed error event."""
    event = decode_message(payload)
    assert isinstance(event, StreamingResult)
    assert isinstance(event.event_type, str) and isinstance(event.data, dict)


@given(st.text(min_size=1, max_size=20), st.dictionaries(st.text(max_size=8), json_values,
                                                          max_size=6),
       st.one_of(st.none(), st.text(max_size=30)), st.booleans())
def test_decode_message_round_trips_envelopes(kind, data, timestamp, as_text):
    """A well-formed envelope decodes to its type, data and timestamp, as bytes or text."""
    wire = json.dumps({"message_type": kind, "data": data, "timestamp": timestamp})
    event = decode_message(wire if as_text else wire.encode())
    assert (event.event_type, event.data, event.timestamp) == (kind, data, timestamp)


@given(json_values.filter(lambda v: not isinstance(v, dict)))
def test_decode_message_non_objects_are_malformed(value):
    """A JSON value that is not an object is reported, not guessed at."""
    event = decode_message(json.dumps(value))
    assert event.event_type == "error" and event.data["error_type"] == MALFORMED_MESSAGE


# --- CrawlSession ----------------------------------------------------------------------

@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(st.integers(min_value=0, max_value=60), st.integers(min_value=1, max_value=12),
       st.integers(min_value=1, max_value=4), st.data())
def test_crawl_session_any_interleaving_each_index_exactly_once(total, per_request, lanes, data):
    """Up to ``lanes`` requests in flight; the server delivers results in any order,
    drops some, repeats some, delivers late ones for released requests; requests end
    (released) at any time and are re-planned. Throughout: a plan never carries a position
    delivered or in flight; each index is delivered (accept_result not None) at most once;
    missing_indices names exactly the undelivered ones. Then a clean server finishes: each
    index exactly once, and the summary counts the whole list."""
    urls = [f"u{i}" for i in range(total)]
    session = CrawlSession(urls, max_per_request=per_request)
    delivered: list[int] = []
    in_flight: list = []
    released: list = []

    def plan_more():
        while len(in_flight) < lanes:
            plan = session.next_request()
            if plan is None:
                return
            assert 0 < len(plan.indices) <= per_request
            busy = {i for p in in_flight for i in p.indices}
            assert not busy & set(plan.indices)
            assert not set(plan.indices) & set(delivered)
            assert plan.urls == [urls[i] for i in plan.indices]
            in_flight.append(plan)

    def accept(plan, server_index):
        mapped = session.accept_result(plan, {"index": server_index, "result": {"url": "x"}})
        if mapped is not None:
            delivered.append(mapped["index"])
            assert mapped["index"] == plan.indices[server_index]

    for _ in range(data.draw(st.integers(min_value=0, max_value=120), label="steps")):
        plan_more()
        if not in_flight:
            break
        plan = data.draw(st.sampled_from(in_flight), label="plan")
        action = data.draw(st.sampled_from(["result", "result", "duplicate", "release",
                                            "late"]), label="action")
        if action in ("result", "duplicate"):
            accept(plan, data.draw(st.integers(0, len(plan.indices) - 1), label="index"))
        elif action == "release":
            missing = session.release(plan)
            in_flight.remove(plan)
            released.append(plan)
            assert missing == [i for i in plan.indices if i not in delivered]
        elif released:
            late = data.draw(st.sampled_from(released), label="late plan")
            accept(late, data.draw(st.integers(0, len(late.indices) - 1), label="late index"))
        assert len(delivered) == len(set(delivered)) == session.completed
        assert session.missing_indices() == [i for i in range(total) if i not in delivered]

    for plan in list(in_flight):  # the connections are lost
        session.release(plan)
        in_flight.remove(plan)
    rounds = 0
    while not session.complete:  # a clean server now answers every request fully
        rounds += 1
        assert rounds <= total + 1
        plan = session.next_request()
        assert plan is not None, "positions missing but nothing left to plan"
        for server_index in range(len(plan.indices)):
            accept(plan, server_index)
        assert session.release(plan) == []
    assert session.next_request() is None
    assert sorted(delivered) == list(range(total))
    summary = session.summary([{"total_urls": 1, "successful": 1, "failed": 0}], 5)
    assert summary["total_urls"] == total and summary["successful"] == total


# URL-like text: mostly the common shape, with the characters and ports that are at its edges.
_url_parts = st.text(alphabet="abAZ09.-_~:/?#%@[] \t\n\x00\x1f\x7f\u00e9", max_size=12)
_urlish = st.one_of(
    st.builds(lambda scheme, host, port, rest: f"{scheme}{host}{port}{rest}",
              st.sampled_from(["http://", "https://", "HTTP://", "ftp://", "https:/", ""]),
              st.text(alphabet="abz09.-_~[]:@ ", max_size=8),
              st.one_of(st.just(""), st.integers(0, 99999).map(lambda p: f":{p}"),
                        st.just(":"), st.just(":0065535")),
              _url_parts),
    st.text(max_size=20),
    st.just("https://example.org/" + "a" * 2028), st.just("https://example.org/" + "a" * 2029),
    # two plain URLs glued by a separator-like character: one value, not two URLs
    st.sampled_from(" \n\t\r\x0b\x00").map(lambda sep: f"https://a.example/x{sep}https://b.example/"),
)


@given(st.lists(_urlish, min_size=1, max_size=6))
def test_url_list_fast_path_accepts_only_valid_urls(urls):
    """The one-match check of a whole list accepts a list only when every URL passes the
    per-URL check (and so validate_urls gives the same answer either way)."""
    from riptide_sync.protocol.urls import _all_plain, url_problem

    if _all_plain(urls):
        assert all(url_problem(url) is None for url in urls), urls


@given(st.sampled_from(["https://a.example/", "http://a.example:8080/", "https://a.example?",
                        "https://a.example#", "https://a.example", "https://a.example:99999/"]),
       st.lists(_url_parts, min_size=1, max_size=6))
def test_url_list_fast_path_one_site_accepts_only_valid_urls(site, rests):
    """The same for lists from one site (the shortcut that skips the per-URL match)."""
    from riptide_sync.protocol.urls import _all_plain, url_problem

    urls = [site + rest for rest in rests]
    if _all_plain(urls):
        assert all(url_problem(url) is None for url in urls), urls
