"""The pure core: no sockets, no threads, no clock.

- ``envelope``: the WebSocket message codec (docs/protocol.md §1.2, §1.6).
- ``ndjson`` / ``sse``: incremental decoders for the HTTP streams (§2, §3) and the
  classification of their lines/events into the shared event vocabulary.
- ``session``: crawl bookkeeping: which of the caller's URLs are done, which request
  carries which of them, index remapping, the merged progress and summary.
- ``events``: the per-event rules of a logical stream: what each event means to the
  caller (dedupe, one welcome and metadata, the refusal rule), as an ``EventOutcome``.
- ``urls``: validation of caller input (URL lists, base URLs) before any I/O.

Everything here is fed bytes or dicts and returns values; the I/O layers (``_ws``,
``_http``) call it.
"""
