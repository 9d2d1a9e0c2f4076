"""What a run of the command is given instead of reaching for globals: the console and the
default server.

:func:`riptide_sync.cli.main` builds a :class:`CliContext` over the process's standard
streams unless the caller passes one; tests pass their own (a forced terminal, no
keyboard, another default server) rather than patching module attributes.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, TextIO

from ..client import DEFAULT_BASE_URL

__all__ = ["CliContext", "Console", "isatty"]


def isatty(stream: Any) -> bool:
    """Whether ``stream`` is a terminal; False for a stream without ``isatty`` or closed."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed file
        return False


@dataclass
class Console:
    """Where the command reads and writes, and how it learns whether a person is there.

    The streams default to the process's ``sys.stdout``/``sys.stderr``/``sys.stdin`` as
    they are when the console is made.
    """

    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    stdin: Optional[TextIO] = field(default_factory=lambda: sys.stdin)
    """None when the process has no standard input (pythonw)."""
    interactive: Optional[Callable[[], bool]] = None
    """Whether a person can answer a question; None: both stdin and stderr are terminals."""
    rich_console: Optional[Callable[[], Any]] = None
    """Makes the rich ``Console`` of the progress bar (raises ImportError without rich);
    None: one writing to :attr:`stderr`."""

    def is_interactive(self) -> bool:
        """Whether a person is at the keyboard to answer a question."""
        if self.interactive is not None:
            return self.interactive()
        return self.stdin is not None and isatty(self.stdin) and isatty(self.stderr)

    def make_rich_console(self) -> Any:
        """The rich console of the progress bar.

        Raises:
            ImportError: rich is not installed (the ``cli`` extra).
        """
        if self.rich_console is not None:
            return self.rich_console()
        from rich.console import Console as RichConsole

        return RichConsole(file=self.stderr)

    def say(self, line: str) -> None:
        """Print ``line`` on standard output, flushed."""
        print(line, file=self.stdout, flush=True)

    def tell(self, line: str) -> None:
        """Print ``line`` on standard error, flushed."""
        print(line, file=self.stderr, flush=True)

    def complain(self, command: str, message: str) -> None:
        """Print ``riptide-sync COMMAND: message`` on standard error."""
        self.tell(f"riptide-sync {command}: {message}")

    def usage_error(self, parser: argparse.ArgumentParser, command: str, message: str) -> int:
        """Print the subcommand's usage and ``riptide-sync COMMAND: message``; return 2."""
        parser.print_usage(self.stderr)
        self.complain(command, message)
        return 2

    def confirm(self, question: str) -> bool:
        """Ask a yes/no question on standard error; Enter means yes, end of input no."""
        self.stderr.write(f"{question} [Y/n] ")
        self.stderr.flush()
        answer = self.stdin.readline() if self.stdin is not None else ""
        return bool(answer) and answer.strip().lower() in ("", "y", "yes")


@dataclass
class CliContext:
    """Everything a command needs from outside its arguments."""

    console: Console = field(default_factory=Console)
    default_base_url: str = DEFAULT_BASE_URL
    """The server used when neither ``--base-url`` nor ``$RIPTIDE_BASE_URL`` says one."""

    def base_url(self, given: str | None) -> str:
        """``--base-url`` when given (even empty: the client then rejects it), else
        ``$RIPTIDE_BASE_URL``, else the default: the order the client itself follows."""
        if given is not None:
            return given
        return os.environ.get("RIPTIDE_BASE_URL") or self.default_base_url

    @staticmethod
    def configured_base_url(given: str | None) -> str | None:
        """``--base-url`` or ``$RIPTIDE_BASE_URL`` (an empty one counts as unset); None when
        neither says one, and the command looks for a server at the default."""
        return given or os.environ.get("RIPTIDE_BASE_URL") or None
