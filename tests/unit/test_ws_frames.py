"""The sans-I/O frame parser of the WebSocket bridge, checked against websockets' encoder."""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode

from riptide_sync._ws.codes import CloseCode, explain_close
from riptide_sync._ws.frames import FrameError, FrameParser, MessageTooBig, parse_close


def frame(opcode: Opcode, data: bytes, fin: bool = True, **kw: bool) -> bytes:
    """Serialize a server frame with an independent implementation (websockets)."""
    return Frame(opcode, data, fin, **kw).serialize(mask=False)


def feed_all(parser: FrameParser, chunks: list[bytes]) -> list[bytes]:
    out: list[bytes] = []
    for chunk in chunks:
        out.extend(parser.feed(chunk))
    return out


SAMPLE = [b"x" * 10, b"y" * 200, b"z" * 70_000, b"", b'{"message_type":"summary"}']
STREAM = b"".join(frame(Opcode.TEXT, m) for m in SAMPLE)


def test_frames_whole_stream_parsed_in_order() -> None:
    """Messages of 7-, 16- and 64-bit lengths come out whole and in order."""
    parser = FrameParser()
    assert parser.feed(STREAM) == SAMPLE
    assert parser.payload_bytes == sum(map(len, SAMPLE))


@pytest.mark.parametrize("step", [1, 2, 3, 7, 1000, 65_536])
def test_frames_chunk_boundaries_do_not_matter(step: int) -> None:
    """Splitting the byte stream anywhere yields the same messages."""
    parser = FrameParser()
    chunks = [STREAM[i : i + step] for i in range(0, len(STREAM), step)]
    assert feed_all(parser, chunks) == SAMPLE


def test_frames_every_split_offset_of_small_stream() -> None:
    """Every two-way split of a stream of small frames parses identically."""
    data = b"".join(frame(Opcode.TEXT, bytes([65 + i]) * (i * 20)) for i in range(8))
    expected = FrameParser().feed(data)
    for cut in range(len(data) + 1):
        assert feed_all(FrameParser(), [data[:cut], data[cut:]]) == expected


def test_frames_fragments_joined_and_controls_interleaved() -> None:
    """A fragmented message is joined; a ping between fragments is reported apart."""
    data = (
        frame(Opcode.TEXT, b"hel", fin=False)
        + frame(Opcode.PING, b"123")
        + frame(Opcode.CONT, b"lo", fin=False)
        + frame(Opcode.CONT, b"!", fin=True)
    )
    parser = FrameParser()
    assert parser.feed(data) == [b"hello!"]
    assert parser.controls == [(0, Opcode.PING, b"123")]


def test_frames_close_stops_parsing() -> None:
    """After a Close frame, later bytes are ignored and ``closed`` is set."""
    parser = FrameParser()
    data = frame(Opcode.TEXT, b"a") + frame(Opcode.CLOSE, b"\x03\xe8bye") + frame(Opcode.TEXT, b"b")
    assert parser.feed(data) == [b"a"]
    assert parser.closed
    assert parser.controls == [(1, Opcode.CLOSE, b"\x03\xe8bye")]
    assert (parser.close_code, parser.close_reason) == (1000, "bye")
    assert parse_close(parser.controls[0][2]) == (1000, "bye")
    assert parse_close(b"") == (CloseCode.NO_STATUS, "")
    assert explain_close(1009) == "1009 (message too big)"


def test_frames_oversize_refused_before_payload() -> None:
    """A header announcing more than max_message_size raises at once (code 1009)."""
    parser = FrameParser(max_message_size=100)
    header = frame(Opcode.TEXT, b"x" * 101)[:4]  # header only: the payload never comes
    with pytest.raises(MessageTooBig) as info:
        parser.feed(header)
    assert info.value.code == CloseCode.MESSAGE_TOO_BIG
    assert "max_message_size=100" in str(info.value)


def test_frames_oversize_fragments_refused() -> None:
    """Fragments that add up past max_message_size raise MessageTooBig."""
    parser = FrameParser(max_message_size=100)
    with pytest.raises(MessageTooBig):
        parser.feed(frame(Opcode.TEXT, b"x" * 60, fin=False) + frame(Opcode.CONT, b"x" * 60))


@pytest.mark.parametrize(
    "data",
    [
        Frame(Opcode.TEXT, b"masked").serialize(mask=True),
        bytes([0xC1, 0x01]) + b"x",  # FIN + RSV1 + text
        frame(Opcode.CONT, b"x"),
        frame(Opcode.TEXT, b"a", fin=False) + frame(Opcode.TEXT, b"b"),
        bytes([0x83, 0x00]),  # reserved data opcode
        bytes([0x8B, 0x00]),  # reserved control opcode
        bytes([0x09, 0x00]),  # ping without FIN
    ],
    ids=["masked", "rsv1", "stray-cont", "interleaved", "opcode3", "opcodeB", "frag-ping"],
)
def test_frames_protocol_errors_raise(data: bytes) -> None:
    """Frames that break RFC 6455 raise FrameError with code 1002."""
    with pytest.raises(FrameError) as info:
        FrameParser().feed(data)
    assert info.value.code == CloseCode.PROTOCOL_ERROR


def test_frames_large_message_joined_once() -> None:
    """A large message split in many chunks is buffered, not re-joined per chunk."""
    big = b"q" * 3_000_000
    data = frame(Opcode.TEXT, big)
    parser = FrameParser()
    out = []
    for i in range(0, len(data), 65_536):
        out.extend(parser.feed(data[i : i + 65_536]))
        if i + 65_536 < len(data):
            assert len(parser._chunks) == i // 65_536 + 1  # appended, not joined
    assert out == [big]


# --- found by the Autobahn testsuite (tests/autobahn/) -----------------------------------

from riptide_sync._ws.codes import is_valid_close_code, sendable_close_code  # noqa: E402

KAPPA = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"  # "κόσμε" as Autobahn 6.x sends it


def close_frame(payload: bytes) -> bytes:
    """A Close frame with an arbitrary payload (websockets' Close class refuses bad ones)."""
    return frame(Opcode.CLOSE, payload)


@pytest.mark.parametrize(
    "payload",
    [b"\xff", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80", KAPPA + b"\xce", b"a\x80b"],
    ids=["ff", "surrogate", "overlong", "above-10ffff", "truncated", "stray-continuation"],
)
def test_frames_invalid_utf8_text_closes_1007(payload: bytes) -> None:
    """validate_utf8: a text message that is not UTF-8 is a 1007 error (Autobahn 6.3-6.21)."""
    parser = FrameParser(validate_utf8=True)
    with pytest.raises(FrameError) as info:
        parser.feed(frame(Opcode.TEXT, payload))
    assert info.value.code == CloseCode.INVALID_DATA
    assert "not valid UTF-8" in str(info.value)
    # The same bytes in a binary message are fine.
    assert FrameParser(validate_utf8=True).feed(frame(Opcode.BINARY, payload)) == [payload]


def test_frames_invalid_utf8_fails_fast_across_fragments() -> None:
    """A fragmented text message fails on the fragment that breaks UTF-8, before its end
    (Autobahn 6.4.1): the incremental decoder keeps state across fragments."""
    parser = FrameParser(validate_utf8=True)
    assert parser.feed(frame(Opcode.TEXT, KAPPA, fin=False)) == []
    with pytest.raises(FrameError) as info:
        parser.feed(frame(Opcode.CONT, b"\xf4\x90\x80\x80", fin=False))
    assert info.value.code == CloseCode.INVALID_DATA
    assert "offset 11" in str(info.value)  # counted from the message's first byte


def test_frames_utf8_split_inside_a_character_is_valid() -> None:
    """A character split across fragments (and across reads) is valid (Autobahn 6.2.x)."""
    data = b"".join(
        frame(Opcode.CONT if i else Opcode.TEXT, KAPPA[i : i + 1], fin=i == len(KAPPA) - 1)
        for i in range(len(KAPPA))
    )
    parser = FrameParser(validate_utf8=True)
    assert feed_all(parser, [data[i : i + 1] for i in range(len(data))]) == [KAPPA]


def test_frames_utf8_left_to_the_json_decoder_by_default() -> None:
    """Without validate_utf8 the hot path does not look at the bytes (the JSON decoder
    validates them, and the connection closes with 1007)."""
    assert FrameParser().feed(frame(Opcode.TEXT, b"\xff")) == [b"\xff"]


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535])
def test_frames_invalid_close_code_is_1002(code: int) -> None:
    """A Close frame with a code no peer may send is a protocol error (Autobahn 7.9.x)."""
    parser = FrameParser()
    with pytest.raises(FrameError) as info:
        parser.feed(close_frame(code.to_bytes(2, "big")))
    assert info.value.code == CloseCode.PROTOCOL_ERROR
    assert str(code) in str(info.value)
    assert not is_valid_close_code(code)


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012,
                                  1013, 1014, 3000, 3999, 4000, 4999])
def test_frames_valid_close_codes_accepted(code: int) -> None:
    """Registered and application codes are read (Autobahn 7.7.x)."""
    parser = FrameParser()
    parser.feed(close_frame(code.to_bytes(2, "big") + b"ok"))
    assert (parser.close_code, parser.close_reason) == (code, "ok")


def test_frames_one_byte_close_payload_is_1002() -> None:
    """A Close payload of 1 byte cannot hold a code (Autobahn 7.3.2)."""
    with pytest.raises(FrameError) as info:
        FrameParser().feed(close_frame(b"\x03"))
    assert info.value.code == CloseCode.PROTOCOL_ERROR
    assert "1-byte" in str(info.value)


def test_frames_close_reason_not_utf8_is_1007() -> None:
    """A close reason that is not UTF-8 is invalid data (Autobahn 7.5.1)."""
    with pytest.raises(FrameError) as info:
        FrameParser().feed(close_frame(b"\x03\xe8" + KAPPA + b"\xf4\x90\x80\x80"))
    assert info.value.code == CloseCode.INVALID_DATA


def test_frames_empty_close_is_1005() -> None:
    parser = FrameParser()
    parser.feed(close_frame(b""))
    assert (parser.close_code, parser.closed) == (CloseCode.NO_STATUS, True)


@pytest.mark.parametrize("code", [1005, 1006, 1015, 999, 5000])
def test_frames_local_only_codes_never_sent(code: int) -> None:
    """1005, 1006 and 1015 only describe a close locally (RFC 6455 §7.4.1)."""
    assert sendable_close_code(code) == CloseCode.NORMAL
    assert sendable_close_code(1002) == 1002 and sendable_close_code(4000) == 4000


def test_frames_control_positions_keep_arrival_order() -> None:
    """Each control frame says how many returned messages came before it, so the caller
    answers a ping before it delivers the message after it (Autobahn 5.6, 5.19)."""
    data = (
        frame(Opcode.TEXT, b"a")
        + frame(Opcode.TEXT, b"b", fin=False)
        + frame(Opcode.PING, b"p1")
        + frame(Opcode.CONT, b"c")
        + frame(Opcode.PONG, b"p2")
        + frame(Opcode.BINARY, b"d")
    )
    parser = FrameParser()
    assert parser.feed(data) == [b"a", b"bc", b"d"]
    assert parser.controls == [(1, Opcode.PING, b"p1"), (2, Opcode.PONG, b"p2")]


def test_frames_messages_before_a_bad_frame_are_kept() -> None:
    """The messages a read completed before a bad frame travel on the error, and the
    control frames before it stay in ``controls``; the parser then ignores the rest."""
    good = [b'{"n":1}', b'{"n":2}', b'{"n":3}']
    data = b"".join(frame(Opcode.TEXT, m) for m in good) + frame(Opcode.PING, b"x") + bytes([0x83, 0x00])
    parser = FrameParser()
    with pytest.raises(FrameError) as info:
        parser.feed(data + frame(Opcode.TEXT, b"after"))
    assert info.value.messages == good
    assert parser.controls == [(3, Opcode.PING, b"x")]
    assert parser.closed and parser.feed(frame(Opcode.TEXT, b"more")) == []


def test_frames_length_with_top_bit_set_is_1002() -> None:
    """A 64-bit length with its most significant bit set is not a frame (RFC 6455 §5.2):
    code 1002, not "raise max_message_size"."""
    header = bytes([0x82, 127]) + (1 << 63 | 5).to_bytes(8, "big")
    with pytest.raises(FrameError) as info:
        FrameParser(max_message_size=None).feed(header)
    assert not isinstance(info.value, MessageTooBig)
    assert info.value.code == CloseCode.PROTOCOL_ERROR
    assert "most significant bit" in str(info.value)
    assert "max_message_size" not in str(info.value)


def test_frames_record_opcodes() -> None:
    """record_opcodes notes each message's opcode, fragmented or not (an echo peer's seam)."""
    data = (
        frame(Opcode.TEXT, b"t")
        + frame(Opcode.BINARY, b"b1", fin=False)
        + frame(Opcode.CONT, b"b2")
        + frame(Opcode.BINARY, b"b")
    )
    parser = FrameParser(record_opcodes=True)
    assert parser.feed(data) == [b"t", b"b1b2", b"b"]
    assert list(parser.opcodes or []) == [Opcode.TEXT, Opcode.BINARY, Opcode.BINARY]
    assert FrameParser().opcodes is None


def test_frames_invalid_utf8_fails_fast_inside_one_frame() -> None:
    """One text frame whose payload arrives in parts fails on the part that breaks UTF-8,
    before the frame is complete (Autobahn 6.4.3, 6.4.4)."""
    data = frame(Opcode.TEXT, KAPPA + b"\xf4\x90\x80\x80" + b"edited")
    cut = 2 + len(KAPPA)  # the header and the valid part
    parser = FrameParser(validate_utf8=True)
    assert parser.feed(data[:cut]) == []
    with pytest.raises(FrameError) as info:
        parser.feed(data[cut : cut + 1])  # 0xf4 alone could still start a character
        parser.feed(data[cut + 1 : cut + 2])  # 0xf4 0x90 cannot
    assert info.value.code == CloseCode.INVALID_DATA
    assert "offset 11" in str(info.value)


@pytest.mark.parametrize("step", [1, 3, 1000])
def test_frames_validated_text_any_chunking(step: int) -> None:
    """Checking text as it arrives accepts valid text split anywhere, in one large frame
    or in fragments, and counts each byte once."""
    text = ("κόσμε ✓ 𝄞 " * 3000).encode()
    data = (frame(Opcode.TEXT, text) + frame(Opcode.TEXT, text[:5000], fin=False)
            + frame(Opcode.PING, b"p") + frame(Opcode.CONT, text[5000:]))
    parser = FrameParser(validate_utf8=True)
    assert feed_all(parser, [data[i : i + step] for i in range(0, len(data), step)]) == [text, text]
