"""``riptide-sync crawl --dask ADDRESS``: the same crawl, run on a Dask cluster.

``--dask tcp://scheduler:8786`` uses a running cluster; ``--dask local:N`` starts a
``LocalCluster`` of N worker processes on this machine (loopback only) for the run. The
URLs go through :func:`riptide_sync.dask.crawl_bag`; each partition's rows come back as
its task completes (``distributed.as_completed``) and feed the command's usual sink and
display. Dask is imported only when ``--dask`` is given.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import re
import shutil
import tempfile
import time
from typing import Any

from ..exceptions import ConfigError, IncompleteStreamError, RipTideError, ValidationError
from ..models import CrawlOptions, StreamingResult
from .context import CliContext
from .display import Display, make_display
from .errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, error_line
from .files import Files
from .report import finish, missing_lines, on_result, open_sink, say_note
from .tally import Tally

__all__ = ["add_dask_arguments", "run_dask_crawl"]

TRANSPORTS = {"ws": "websocket", "ndjson": "ndjson", "sse": "sse"}

_LOCAL = re.compile(r"local(?::(\d+))?")


def add_dask_arguments(parser: argparse.ArgumentParser) -> None:
    """Register ``--dask``, ``--checkpoint-dir`` and ``--partition-size`` on ``crawl``."""
    group = parser.add_argument_group("on a Dask cluster (extra [dask])")
    group.add_argument(
        "--dask", metavar="ADDRESS", default=None,
        help="crawl on a Dask cluster: a scheduler address (tcp://host:8786) or local:N for N "
             "worker processes on this machine; each URL exactly once, resumable")
    group.add_argument(
        "--checkpoint-dir", metavar="DIR", default=None,
        help="with --dask: the partitions' checkpoints, on a file system every worker can reach "
             "(default: a directory under the temporary directory, named by the URLs; a rerun "
             "of the same crawl resumes from it; removed after a complete local run)")
    group.add_argument(
        "--partition-size", type=int, metavar="N", default=1000,
        help="with --dask: URLs per partition, crawled by one client on one worker (default 1000)")


def parse_address(address: str) -> tuple[str, int | None]:
    """``("local", N)`` for ``local:N`` (N >= 1; ``local`` alone: one per CPU), else
    ``("remote", None)`` for a scheduler address.

    Raises:
        ValueError: ``local:`` with a count that is not an int >= 1, or an empty address.
    """
    text = address.strip()
    if not text:
        raise ValueError("--dask needs a scheduler address (tcp://host:8786) or local:N")
    if text.startswith("local"):
        match = _LOCAL.fullmatch(text)
        if match is None or (match.group(1) is not None and int(match.group(1)) < 1):
            raise ValueError(f"--dask {address!r}: expected local:N with N >= 1 worker processes")
        return "local", int(match.group(1)) if match.group(1) else None
    return "remote", None


def default_checkpoint_dir(base_url: str, urls: list[str]) -> str:
    """A directory named by the server and the URL list: rerunning the same crawl finds it."""
    digest = hashlib.sha256(base_url.encode())
    for url in urls:
        digest.update(url.encode() + b"\n")
    return os.path.join(tempfile.gettempdir(), f"riptide-sync-dask-{digest.hexdigest()[:16]}")


def run_dask_crawl(args: argparse.Namespace, context: CliContext, base_url: str, urls: list[str],
                   options: CrawlOptions | None, files: Files | None = None) -> int:
    """Run ``crawl --dask``; return the exit code (as ``crawl`` does).

    ``files`` (the crawl command's output plan) is accepted for the common signature: the
    bag holds every index, the checkpointed ones included, so the output is written whole
    (never appended to) and the partitions' checkpoints under ``--checkpoint-dir`` are what
    a rerun resumes from.
    """
    console = context.console
    try:
        kind, workers = parse_address(args.dask)
    except ValueError as exc:
        console.complain("crawl", str(exc))
        return EXIT_USAGE
    if args.json:
        console.complain("crawl", "--json prints stream events, which a Dask crawl does not have: "
                                  "use --output FILE (JSON lines) instead")
        return EXIT_USAGE
    try:
        from distributed import Client, LocalCluster, as_completed

        from ..dask import crawl_bag
    except ImportError as exc:
        console.complain("crawl", f"--dask needs the dask extra: pip install 'riptide-sync[dask]' ({exc})")
        return EXIT_FAILED
    explicit_dir = args.checkpoint_dir is not None
    checkpoint_dir = args.checkpoint_dir if explicit_dir else default_checkpoint_dir(base_url, urls)
    # Without --api-key, crawl_bag reads $RIPTIDE_API_KEY here (remote workers lack it).
    client_options: dict[str, Any] = {"api_key": args.api_key}
    if args.retry is not None:
        client_options["retry"] = args.retry
    try:
        bag = crawl_bag(urls, base_url=base_url, checkpoint_dir=checkpoint_dir,
                        partition_size=args.partition_size, transport=TRANSPORTS[args.transport],
                        client_options=client_options, options=options)
    except (ConfigError, ValidationError) as exc:
        console.complain("crawl", str(exc))
        return EXIT_USAGE
    try:
        sink = open_sink(args, context, urls)
    except OSError as exc:
        console.complain("crawl", f"cannot write the output: {exc}")
        return EXIT_USAGE

    cluster: Any = None
    dask_client: Any = None
    display: Display | None = None
    tally = Tally(total=len(urls))
    width = len(str(len(urls) - 1))
    failures: list[BaseException] = []
    outcome = EXIT_OK
    note: str | None = None
    try:
        try:
            if kind == "local":
                cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address="127.0.0.1:0")
                dask_client = Client(cluster)
            else:
                dask_client = Client(args.dask, timeout=30)
        except (OSError, TimeoutError, ValueError) as exc:
            console.complain("crawl", f"cannot reach the Dask scheduler at {args.dask}: {exc}")
            return EXIT_FAILED
        if kind == "remote" and not explicit_dir:
            console.complain("crawl", f"checkpoints go to {checkpoint_dir} on each worker; pass "
                                      "--checkpoint-dir on a shared file system to resume across machines")
        display = make_display(tally, console.stdout if sink is None else None, console)
        tally.started = time.monotonic()  # the rate is the crawl's, not the cluster's start
        futures = dask_client.compute(bag.to_delayed())
        with display:
            try:
                for future in as_completed(futures):
                    if future.status == "error":
                        failures.append(future.exception())
                        continue
                    for row in future.result():
                        event = StreamingResult("result", {"index": row["index"], "result": row["result"]})
                        on_result(event, urls, tally, sink, display, width)
            except KeyboardInterrupt:
                dask_client.cancel(futures)
                if cluster is not None:
                    # A task cannot be interrupted, and the cluster's shutdown would wait
                    # for the partitions running: end our own workers now. Their
                    # checkpoints hold every result delivered so far. Killing them makes
                    # distributed log its closed comms with tracebacks: that is the
                    # expected end of our own cluster, not news for the user.
                    logging.getLogger("distributed").setLevel(logging.CRITICAL)
                    _kill_local_workers(dask_client)
                outcome = EXIT_INTERRUPTED
                # A rerun over a non-empty -o file is refused without --resume (the output
                # is then written whole again from the bag, checkpointed rows included).
                again = ("the same command with --resume"
                         if args.output not in (None, "-") and not (args.resume or args.force)
                         else "the same command again")
                note = (f"interrupted after {tally.completed} of {tally.total} results; run "
                        f"{again} to resume from {checkpoint_dir}")
    except OSError as exc:
        outcome = EXIT_FAILED
        note = f"cannot write the output: {exc} (after {tally.completed} of {tally.total} results)"
    finally:
        if sink is not None:
            sink.close()
        if dask_client is not None:
            dask_client.close()
        if cluster is not None:
            cluster.close()
    if note is None and failures:
        outcome = EXIT_FAILED
        missing: list[str] = []
        reasons = []
        for failure in failures:
            if isinstance(failure, IncompleteStreamError):
                missing.extend(failure.missing)
            reasons.append(error_line(failure, base_url) if isinstance(failure, RipTideError)
                           else f"{type(failure).__name__}: {failure}")
        shown = missing_lines(missing)
        note = (f"{len(failures)} partition(s) failed, {tally.total - tally.completed} of "
                f"{tally.total} URLs have no result ({reasons[0]}); what was delivered is "
                f"checkpointed in {checkpoint_dir}: run again to crawl only the rest"
                + (f"\n{shown}" if shown else ""))
    if note is not None:
        say_note(context, note, f"; {sink.describe()}" if sink is not None else "")
        return outcome
    if display is not None:
        finish(display, tally, sink, f"{args.transport} on Dask ({args.dask})")
    if kind == "local" and not explicit_dir:
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
    return EXIT_FAILED if tally.failures else EXIT_OK


def _kill_local_workers(dask_client: Any) -> None:
    """SIGKILL the worker processes of the LocalCluster this command started."""
    import signal

    try:
        pids = dask_client.run(os.getpid, wait=True)
    except Exception:  # noqa: BLE001 - best effort: the normal shutdown follows anyway
        return
    for pid in pids.values():
        if pid != os.getpid():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
