"""The command line as a new user meets it (issue 16): resume, ok, causes, version,
verbosity, usage, hints, and the small edges. Most run the real command in a subprocess
against the local server; a few in-process ``main()`` runs look at the server's request log.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

pytest.importorskip("aiohttp")  # the local server (server extra)

from riptide_sync.cli import main  # noqa: E402
from riptide_sync.server import Faults  # noqa: E402
from riptide_sync.server.demo_site import page_url  # noqa: E402

from test_cli_subprocess import TIMEOUT, _default_sigint, cli_env, closed_port_url, run_cli  # noqa: E402


def jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(autouse=True)
def plain_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "NO_COLOR", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)


# --- 1. interrupted, resumed, each URL once --------------------------------------------------


def test_cli_process_sigint_then_resume_writes_each_url_once(make_server, tmp_path):
    """Ctrl-C mid-crawl, then the same command with --resume: the rerun crawls only the
    URLs without a result, appends, and the JSONL ends with every URL exactly once."""
    srv = make_server(faults=Faults(send_delay=0.15))
    urls = srv.article_urls()[:14]
    listing = tmp_path / "urls.txt"
    listing.write_text("\n".join(urls) + "\n", encoding="utf-8")
    target = tmp_path / "many.jsonl"
    command = [sys.executable, "-m", "riptide_sync", "crawl", "--base-url", srv.base_url,
               "-i", str(listing), "-o", str(target)]
    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=cli_env(), preexec_fn=_default_sigint if ignored else None)
    try:
        deadline = time.monotonic() + TIMEOUT
        while not (target.exists() and target.read_text(encoding="utf-8").count("\n") >= 3):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no result arrived"
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert "\n  the same command with --resume crawls only the rest" in err
    first = jsonl(target)
    assert 3 <= len(first) < len(urls)

    again = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, env=cli_env())
    assert again.returncode == 2  # a plain rerun refuses to truncate the interrupted output
    assert f"{target} already holds {len(first)} line(s): add --resume" in again.stderr
    assert jsonl(target) == first

    srv.clear_request_log()
    resumed = subprocess.run([*command, "--resume"], capture_output=True, text=True,
                             timeout=TIMEOUT, env=cli_env())
    assert resumed.returncode == 0, resumed.stderr
    entries = jsonl(target)
    assert entries[:len(first)] == first  # appended, nothing rewritten
    assert sorted(entry["url"] for entry in entries) == sorted(urls)  # each URL exactly once
    assert all(entry["url"] == urls[entry["index"]] for entry in entries)
    asked = [url for logged in srv.request_log for url in logged.urls]
    assert sorted(asked) == sorted(set(urls) - {entry["url"] for entry in first})
    assert f"resuming: {len(first)} of {len(urls)} URLs already have a result" in resumed.stderr
    assert (f"done: {len(urls)} of {len(urls)} URLs crawled over ws ({len(first)} from the "
            f"checkpoint), {len(urls)} ok, 0 failed") in resumed.stderr
    assert f"{len(urls) - len(first)} written to {target} (after the {len(first)} it held)" in resumed.stderr


def test_crawl_force_overwrites_and_resume_of_finished_crawl_sends_nothing(make_server, tmp_path, capsys):
    """--force truncates a non-empty output; --resume of a finished crawl crawls nothing."""
    srv = make_server()
    urls = srv.article_urls()[:3]
    target = tmp_path / "out.jsonl"
    target.write_text('{"old": 1}\n', encoding="utf-8")
    base = ["crawl", "--base-url", srv.base_url, "-o", str(target), *urls]
    assert main(base) == 2
    assert target.read_text(encoding="utf-8") == '{"old": 1}\n'
    assert main([*base, "--force"]) == 0
    assert sorted(entry["url"] for entry in jsonl(target)) == sorted(urls)
    srv.clear_request_log()
    capsys.readouterr()
    assert main([*base, "--resume"]) == 0
    assert srv.request_log == []
    assert len(jsonl(target)) == 3
    err = capsys.readouterr().err
    assert "all 3 URLs already have a result" in err and "nothing to crawl" in err
    assert "done: 3 of 3 URLs crawled over ws (3 from the checkpoint), 3 ok" in err


def test_crawl_resume_drops_a_torn_last_line(make_server, tmp_path, capsys):
    """A last line cut short (the process died mid-write) is dropped on --resume and its URL
    crawled again: the file stays valid JSON Lines with each URL once."""
    srv = make_server()
    urls = srv.article_urls()[:4]
    target = tmp_path / "out.jsonl"
    assert main(["crawl", "--base-url", srv.base_url, "-o", str(target), *urls]) == 0
    lines = target.read_text(encoding="utf-8").splitlines(keepends=True)
    torn = lines[2][: len(lines[2]) // 2]
    target.write_text("".join(lines[:2]) + torn, encoding="utf-8")
    capsys.readouterr()
    assert main(["crawl", "--base-url", srv.base_url, "-o", str(target), "--resume", *urls]) == 0
    assert f"dropped the last line of {target}" in capsys.readouterr().err
    assert sorted(entry["url"] for entry in jsonl(target)) == sorted(urls)  # every line parses
    with target.open("a", encoding="utf-8") as file:  # a line from another URL list
        file.write(json.dumps({"index": 0, "url": "http://127.0.0.1:9/other", "result": {}}) + "\n")
    assert main(["crawl", "--base-url", srv.base_url, "-o", str(target), "--resume", *urls]) == 0
    assert f"1 line(s) of {target} are not results for this URL list" in capsys.readouterr().err


def test_crawl_checkpoint_rerun_crawls_only_missing(make_server, tmp_path, capsys):
    """--checkpoint FILE: a rerun over the same list asks the server only for the URLs the
    file has no result for, and writes only those to the new output."""
    srv = make_server()
    urls = srv.article_urls()[:5]
    record = tmp_path / "crawl.ckpt"
    assert main(["crawl", "--base-url", srv.base_url, "--checkpoint", str(record), *urls]) == 0
    kept = [entry for entry in jsonl(record) if entry["index"] in (0, 3)]
    record.write_text("".join(json.dumps(entry) + "\n" for entry in kept), encoding="utf-8")
    srv.clear_request_log()
    out = tmp_path / "rest.jsonl"
    assert main(["crawl", "--base-url", srv.base_url, "--checkpoint", str(record), "-o", str(out),
                 *urls]) == 0
    asked = sorted(url for logged in srv.request_log for url in logged.urls)
    assert asked == sorted(urls[i] for i in (1, 2, 4))
    assert sorted(entry["index"] for entry in jsonl(out)) == [1, 2, 4]
    assert sorted(entry["index"] for entry in jsonl(record)) == [0, 1, 2, 3, 4]


def test_crawl_resume_with_checkpoint_fills_output_gaps(make_server, tmp_path, capsys):
    """--resume with both files: a result the checkpoint has and the output lacks (a stop
    between the two writes) is appended to the output first, so it holds each URL once."""
    srv = make_server()
    urls = srv.article_urls()[:4]
    record, out = tmp_path / "c.jsonl", tmp_path / "o.jsonl"
    assert main(["crawl", "--base-url", srv.base_url, "--checkpoint", str(record), "-o", str(out),
                 *urls]) == 0
    entries = jsonl(out)
    out.write_text("".join(json.dumps(e) + "\n" for e in entries if e["index"] != 2), encoding="utf-8")
    record.write_text("".join(json.dumps(e) + "\n" for e in entries if e["index"] in (1, 2)),
                      encoding="utf-8")
    srv.clear_request_log()
    assert main(["crawl", "--base-url", srv.base_url, "--checkpoint", str(record), "-o", str(out),
                 "--resume", *urls]) == 0
    assert srv.request_log == []  # between them the two files held every URL
    assert sorted(entry["index"] for entry in jsonl(out)) == [0, 1, 2, 3]
    assert sorted(entry["index"] for entry in jsonl(record)) == [0, 1, 2, 3]


@pytest.mark.parametrize("extra, said", [
    (["--resume"], "--resume needs the file of the interrupted run"),
    (["--resume", "--force", "-o", "x.jsonl"], "--resume keeps the output and --force overwrites it"),
    (["--retry", "0"], "--retry must be at least 1 attempt, got 0"),
    (["--bogus"], "unrecognized arguments: --bogus"),
])
def test_cli_process_crawl_usage_errors_print_crawl_usage(extra, said, tmp_path):
    """A usage error on crawl prints crawl's usage (not the top-level one) and exits 2."""
    done = subprocess.run([sys.executable, "-m", "riptide_sync", "crawl", "http://127.0.0.1:9/a",
                           *extra], capture_output=True, text=True, timeout=TIMEOUT, env=cli_env(),
                          cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("usage: riptide-sync crawl ")
    assert said in done.stderr
    assert not (tmp_path / "x.jsonl").exists()


def test_cli_process_info_unknown_option_prints_its_usage():
    """The same for another subcommand: ``health --bogus`` shows health's usage."""
    done = run_cli("health", "--bogus")
    assert done.returncode == 2 and done.stderr.startswith("usage: riptide-sync health ")


# --- 2, 3. ok means ok; failures carry their cause ------------------------------------------


def test_crawl_counts_success_by_result_ok(server, capsys):
    """The summary's ok/failed counts are CrawlResult.ok's, whatever the HTTP status."""
    from riptide_sync import CrawlResult

    urls = [*server.article_urls()[:2], page_url("missing")]  # the demo 404: a failed result
    code = main(["crawl", "--base-url", server.base_url, "--json", *urls])
    out, err = capsys.readouterr()
    results = [CrawlResult.model_validate(json.loads(line)["data"]["result"])
               for line in out.splitlines() if '"event_type": "result"' in line]
    ok = sum(result.ok for result in results)
    assert f"{ok} ok, {len(results) - ok} failed" in err
    assert code == (0 if ok == len(results) else 1)


@pytest.mark.parametrize("transport", ["ws", "ndjson"])
def test_cli_process_failure_carries_its_cause(make_server, transport):
    """A failed URL's line and summary carry the error's type and message: the cause over
    NDJSON (which sends it), and over WebSocket (which does not) a pointer to NDJSON."""
    server = make_server(allow_private=True)  # the dead origin is on loopback
    dead = closed_port_url() + "/page"
    done = run_cli("crawl", "--base-url", server.base_url, "--transport", transport, dead)
    assert done.returncode == 1
    failed = next(line for line in done.stderr.splitlines() if line.startswith("  failed: "))
    assert "processing_error: " in failed
    if transport == "ndjson":
        assert dead in failed.split("(", 1)[1]  # "Processing failed for URL: <cause>"
        assert "Failed to process URL" not in failed
    else:
        assert "this transport carries no cause; --transport ndjson shows it" in failed


# --- 5, 6. version, verbosity, reconnects -----------------------------------------------------


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_cli_process_version(flag):
    """--version and -V print the package version and exit 0."""
    import riptide_sync

    done = run_cli(flag)
    assert done.returncode == 0
    assert done.stdout.startswith(f"riptide-sync {riptide_sync.__version__} ")


def test_cli_process_reconnect_is_shown_and_counted(make_server):
    """A connection cut mid-crawl: one line for the retry and one for the resume (without
    -v), and the summary counts the reconnect."""
    srv = make_server(faults=Faults(drop_after=2))
    urls = srv.article_urls()[:6]
    done = run_cli("crawl", "--base-url", srv.base_url, *urls)
    assert done.returncode == 0, done.stderr
    retry = [line for line in done.stderr.splitlines() if line.startswith("[riptide_sync.stream] ! websocket stream:")]
    resume = [line for line in done.stderr.splitlines() if line.startswith("[riptide_sync.stream] > resumed")]
    assert len(retry) == 1 and "retrying " in retry[0] and "4 URL(s) without a result" in retry[0]
    assert len(resume) == 1 and "re-requested 4 URL(s)" in resume[0]
    assert "; 1 reconnect (4 URLs re-requested)" in done.stderr


def test_cli_process_verbose_and_debug_show_library_logs(server):
    """-v shows the library's INFO lines (not DEBUG frames); --debug shows the frames too."""
    url = server.article_urls()[0]
    quiet = run_cli("crawl", "--base-url", server.base_url, url)
    debug = run_cli("--debug", "crawl", "--base-url", server.base_url, url)
    after = run_cli("crawl", "--debug", "--base-url", server.base_url, url)
    assert quiet.returncode == debug.returncode == after.returncode == 0
    assert "[riptide_sync.ws]" not in quiet.stderr
    for run in (debug, after):
        assert "[riptide_sync.ws] > connect ws://" in run.stderr
        assert "[riptide_sync.ws] < welcome session" in run.stderr
    chatty = run_cli("crawl", "-v", "--base-url", server.base_url, url)
    assert chatty.returncode == 0 and "[riptide_sync.ws] >" not in chatty.stderr
    assert f"crawling 1 URL(s) through {server.base_url} over ws" in chatty.stderr
    assert "connected: session " in chatty.stderr and "the server accepted 1 URL(s)" in chatty.stderr
    assert "stream stats: messages " in chatty.stderr and "reconnects 0" in chatty.stderr
    assert "stream stats" not in quiet.stderr
    verbose = run_cli("health", "-v", "--base-url", server.base_url)
    assert verbose.returncode == 0 and "[riptide_sync.ws] >" not in verbose.stderr


# --- 8, 9. hints and edges ----------------------------------------------------------------


@pytest.mark.parametrize("transport", ["ws", "ndjson"])
def test_cli_process_crawl_connection_refused_keeps_hint(transport):
    """crawl --base-url with nothing listening says, like ping and health, to start a server."""
    base = closed_port_url()
    done = run_cli("crawl", "--base-url", base, "--retry", "1", "--transport", transport,
                   "http://127.0.0.1:9/page")
    assert done.returncode == 1
    assert (f"cannot connect to {base}: connection refused (is a server running? try "
            f"'riptide-sync serve')") in done.stderr
    assert "Traceback" not in done.stderr


def test_cli_process_stdin_with_bom_reads_first_url(server):
    """A byte order mark at the start of standard input does not spoil the first URL."""
    urls = server.article_urls()[:2]
    data = ("\ufeff" + "\n".join(urls) + "\n").encode("utf-8")
    done = subprocess.run([sys.executable, "-m", "riptide_sync", "crawl", "--base-url",
                           server.base_url, "-i", "-"], input=data, capture_output=True,
                          timeout=TIMEOUT, env=cli_env())
    err = done.stderr.decode()
    assert done.returncode == 0, err
    assert "not a valid URL" not in err and "done: 2 of 2 URLs" in err


def test_cli_process_serve_port_taken_is_one_clean_line():
    """serve on a taken port: exit 1 with one line, no aiohttp 'Unclosed client session'."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_cli("serve", "--port", str(port))
    assert done.returncode == 1
    assert "Unclosed" not in done.stderr and "client_session" not in done.stderr
    assert done.stderr.count("\n") == 1 and f"cannot listen on 127.0.0.1:{port}" in done.stderr


def test_cli_process_serve_banner_says_how_to_turn_things_on():
    """serve's banner shows what is off and the option that turns on keys, synthetic mode
    and faults; a key given is never printed."""
    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    proc = subprocess.Popen([sys.executable, "-m", "riptide_sync", "serve", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(),
                            preexec_fn=_default_sigint if ignored else None)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        while not lines or lines[-1] != "Ctrl-C stops it.":
            line = proc.stdout.readline()
            assert line, proc.communicate()
            lines.append(line.rstrip("\n"))
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    banner = "\n".join(lines)
    assert "--api-key KEY" in banner and "--synthetic-size BYTES" in banner
    assert "--fault NAME=VALUE" in banner and "drop_after" in banner
    assert proc.returncode == 0
    from riptide_sync.cli import build_parser
    from riptide_sync.cli.serve import serve_hints

    args = build_parser().parse_args(["serve", "--api-key", "s3cret-key", "--synthetic-size", "64",
                                      "--fault", "drop_after=3"])
    hints = "\n".join(serve_hints(args, Faults(drop_after=3)))
    assert "1 API key(s) required" in hints and "s3cret-key" not in hints
    assert "synthetic, 64-byte documents" in hints and "faults: drop_after=3" in hints


def test_license_file_is_mit_as_metadata_says():
    """LICENSE exists, is the MIT licence of the riptide_sync authors, as setup.cfg says."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "LICENSE"), encoding="utf-8") as file:
        text = file.read()
    assert text.startswith("MIT License") and "the riptide_sync authors" in text
    assert "WITHOUT WARRANTY OF ANY KIND" in text
    with open(os.path.join(root, "setup.cfg"), encoding="utf-8") as file:
        assert re.search(r"^license\s*=\s*MIT$", file.read(), re.M)


def test_bench_quick_exits_0_on_a_missed_target_and_check_exits_1(monkeypatch, tmp_path, capsys):
    """``python -m benchmarks --quick`` reports a missed target as FAIL and exits 0 (a smoke
    run must not fail the shell); ``--check`` makes the same run exit 1."""
    run = pytest.importorskip("benchmarks.run")
    missed = [{"target": "crawl_websocket >= 1.0x fastest WS peer (x)", "doc_size": 200,
               "count": 1000, "value": 0.5, "goal": 1.0, "pass": False}]
    monkeypatch.setattr(run, "targets", lambda *a, **k: missed)
    monkeypatch.setattr(run.core, "run_core", lambda **k: [])
    argv = ["--quick", "--parts", "core", "--out", str(tmp_path)]
    assert run.main(argv) == 0
    out, err = capsys.readouterr()
    assert "FAIL" in out and "--check makes that exit 1" in err
    assert run.main([*argv, "--check"]) == 1


def test_crawl_resumed_progress_bar_starts_at_the_checkpoint(make_server, tmp_path):
    """On a terminal, a resumed crawl's bar starts at the count the checkpoint holds."""
    from rich.console import Console as RichConsole

    from riptide_sync.cli import CliContext, Console

    srv = make_server()
    urls = srv.article_urls()[:3]
    target = tmp_path / "out.jsonl"
    assert main(["crawl", "--base-url", srv.base_url, "-o", str(target), *urls]) == 0
    screen = io.StringIO()
    terminal = CliContext(Console(rich_console=lambda: RichConsole(file=screen, force_terminal=True, width=120)))
    assert main(["crawl", "--base-url", srv.base_url, "-o", str(target), "--resume", *urls], terminal) == 0
    shown = screen.getvalue()
    assert "3/3" in shown and "0/3" not in shown
