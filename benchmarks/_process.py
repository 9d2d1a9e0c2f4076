"""A server process for a benchmark: start it, wait until it answers, always stop it."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from typing import Callable, Iterator, Sequence


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def background(
    cmd: Sequence[str], ready: Callable[[], object], *, cwd: str | None = None,
    timeout: float = 60.0, poll: float = 0.05,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``cmd``; yield once ``ready()`` stops raising OSError; terminate it on exit.

    Raises:
        RuntimeError: the process exited before it was ready (its stderr tail attached).
        OSError: it was not ready within ``timeout`` seconds.
    """
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise RuntimeError(f"{cmd[1:3]} exited with {proc.returncode}: {err[-500:]}")
            try:
                ready()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(poll)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
