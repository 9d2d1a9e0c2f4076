"""The ``riptide-sync`` command line (console script ``riptide_sync.cli:main``).

One module per job, imported in this order by a run:

- ``app``: the top-level parser and :func:`main`, the dispatch;
- ``context``: the :class:`CliContext` a run is given (console streams, terminal and
  keyboard detection, the rich console factory, the default server) instead of globals;
- ``common``: options every command has, the help layout, log lines to the console;
- ``errors``: exit codes, and error kinds (by exception type) into one line with a hint;
- commands: ``crawl`` (options, checks, file plan) with ``inputs``, ``files``,
  ``servers``, ``crawl_stream`` (one stream on this machine) and ``crawl_dask``
  (``--dask``); ``info`` (ping, status, health); ``serve``; ``demo``;
- what a crawl writes and shows: ``sinks`` (JSON Lines, markdown files), ``tally``
  (counts, a result's line and failure reason), ``display`` (rich bar or plain lines),
  ``report`` (the steps crawl, --dask and demo share).
"""

from __future__ import annotations

from .app import build_parser, main
from .context import CliContext, Console

__all__ = ["CliContext", "Console", "build_parser", "main"]
