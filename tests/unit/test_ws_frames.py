"""The sans-I/O frame parser of the WebSocket bridge, checked against websockets' encoder."""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode

from riptide_sync._ws.frames import (
    CloseCode,
    FrameError,
    FrameParser,
    MessageTooBig,
    explain_close,
    parse_close,
)


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
    assert parser.controls == [(Opcode.PING, b"123")]


def test_frames_close_stops_parsing() -> None:
    """After a Close frame, later bytes are ignored and ``closed`` is set."""
    parser = FrameParser()
    data = frame(Opcode.TEXT, b"a") + frame(Opcode.CLOSE, b"\x03\xe8bye") + frame(Opcode.TEXT, b"b")
    assert parser.feed(data) == [b"a"]
    assert parser.closed
    assert parse_close(parser.controls[0][1]) == (1000, "bye")
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
