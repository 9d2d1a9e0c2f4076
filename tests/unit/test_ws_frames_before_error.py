"""Messages that arrive in the same read as a protocol violation are delivered first.

Found by the Python 3.9 run of the suite: there the bridge test's peer sent the metadata
and a masked frame close enough to arrive in one ``recv()``, the parser raised before
returning the metadata, and the consumer got the error without the event before it.
"""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode

from riptide_sync._ws.frames import FrameError, FrameParser, MessageTooBig


def frame(data: bytes, mask: bool = False) -> bytes:
    return Frame(Opcode.TEXT, data).serialize(mask=mask)


def test_messages_before_a_masked_frame_in_one_read_come_with_the_error() -> None:
    parser = FrameParser()
    with pytest.raises(FrameError) as info:
        parser.feed(frame(b"one") + frame(b"two") + frame(b"masked!", mask=True))
    assert info.value.messages == [b"one", b"two"]


def test_messages_before_an_oversized_frame_in_one_read_come_with_the_error() -> None:
    parser = FrameParser(max_message_size=10)
    with pytest.raises(MessageTooBig) as info:
        parser.feed(frame(b"small") + frame(b"x" * 11))
    assert info.value.messages == [b"small"]


def test_a_violation_alone_carries_no_messages() -> None:
    with pytest.raises(FrameError) as info:
        FrameParser().feed(frame(b"masked!", mask=True))
    assert info.value.messages == []
