"""The ``riptide-sync`` command line, driven in-process against the local server.

``cli.main([...])`` runs as the console script would; ``capsys`` captures what it prints.
Subprocess runs (signals, a real stdin pipe, a forced terminal) are in test_cli_subprocess.py.
"""

from __future__ import annotations

import io
import json
import os
import re
import socket
import sys

import pytest

pytest.importorskip("aiohttp")  # the local server (server extra)

from riptide_sync import CrawlResult  # noqa: E402
from riptide_sync.cli import CliContext, Console, main  # noqa: E402
from riptide_sync.cli.sinks import markdown_file_name  # noqa: E402
from riptide_sync.server.demo_site import page_url  # noqa: E402
from riptide_sync.server import Faults  # noqa: E402


@pytest.fixture(autouse=True)
def plain_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep rich from treating captured output as a terminal because of the environment."""
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "NO_COLOR", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)


def closed_port_url() -> str:
    """A loopback URL on which nothing listens (the port was just released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def fast_demo_urls(server, count: int = 6) -> list[str]:
    """Demo articles (not the deliberately slow page)."""
    return server.article_urls()[:count]


def stdout_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


# --- crawl: output ----------------------------------------------------------------------


def test_crawl_prints_one_line_per_result_when_piped(server, capsys):
    """Without --output, each result is one plain line on stdout; the summary goes to stderr."""
    urls = fast_demo_urls(server, 5)
    assert main(["crawl", "--base-url", server.base_url, *urls]) == 0
    out, err = capsys.readouterr()
    lines = stdout_lines(out)
    assert len(lines) == 5
    for url in urls:
        assert sum(line.endswith("  " + url) for line in lines) == 1
    assert all("200" in line for line in lines)
    assert "\x1b[" not in out + err  # no escape codes when not on a terminal
    assert "done: 5 of 5 URLs crawled over ws, 5 ok, 0 failed" in err


def test_crawl_output_writes_jsonl_line_per_url(server, tmp_path, capsys):
    """--output writes one JSON line per URL of the whole demo site, with every index; the
    exit code is 0 exactly when every result is ok (the demo's 404 page may not be)."""
    urls = server.demo_urls()
    target = tmp_path / "results.jsonl"
    code = main(["crawl", "--base-url", server.base_url, "--output", str(target), *urls])
    out, err = capsys.readouterr()
    assert out == ""  # results go to the file only
    entries = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert code == (0 if all(CrawlResult.model_validate(e["result"]).ok for e in entries) else 1)
    assert sorted(entry["index"] for entry in entries) == list(range(len(urls)))
    for entry in entries:
        assert entry["url"] == urls[entry["index"]]
        assert entry["result"]["url"] == urls[entry["index"]]
    assert f"{len(urls)} written to {target}" in err


def _json_results(out: str) -> dict[str, CrawlResult]:
    """The typed results among the ``--json`` event lines, by URL."""
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return {event["data"]["result"]["url"]: CrawlResult.model_validate(event["data"]["result"])
            for event in events if event["event_type"] == "result"}


def test_crawl_markdown_dir_writes_file_per_successful_page(server, tmp_path, capsys):
    """--markdown-dir writes one titled .md file per ok page, named by URL; the count of ok
    agrees with CrawlResult.ok, and every page without a file is said with its reason."""
    articles = fast_demo_urls(server, 3)
    missing = page_url("missing")  # a failed result: exit code 1, no file
    pages = tmp_path / "pages"
    code = main(["crawl", "--base-url", server.base_url, "--transport", "ndjson", "--json",
                 "--markdown-dir", str(pages), *articles, missing])
    out, err = capsys.readouterr()
    results = _json_results(out)
    good = [url for url, result in results.items() if result.ok and result.document]
    bad = [url for url, result in results.items() if not result.ok]
    assert code == (1 if bad else 0)
    assert f"{len(good)} ok, {len(bad)} failed" in err
    assert set(articles) <= set(good)
    files = sorted(os.listdir(pages))
    assert files == sorted(markdown_file_name(url) for url in good)
    for url in results.keys() - set(good):
        assert f"no markdown for {url}: " in err
    if not results[missing].ok:  # the strict server: a 404 origin page is a failed result
        assert f"no markdown for {missing}: failed (" in err
    first = (pages / markdown_file_name(articles[0])).read_text(encoding="utf-8")
    heading, blank, source = first.splitlines()[:3]
    assert heading.startswith("# ") and len(heading) > 2
    assert source == f"Source: <{articles[0]}>"
    assert first.count(heading + "\n") == 1  # the page's own title line is not repeated
    assert f"{len(good)} markdown file(s) written" in err


def test_crawl_markdown_dir_rerun_rewrites_same_files_and_says_so(server, tmp_path, capsys):
    """Files are named by URL: a rerun (and a URL listed twice) rewrites the same file, and
    each overwrite is said; nothing piles up."""
    articles = fast_demo_urls(server, 2)
    pages = tmp_path / "pages"
    args = ["crawl", "--base-url", server.base_url, "--markdown-dir", str(pages)]
    assert main([*args, *articles, articles[0]]) == 0
    err = capsys.readouterr().err
    assert f"is listed more than once" in err and "(1 overwritten)" in err
    assert len(os.listdir(pages)) == 2
    assert main([*args, *articles]) == 0
    err = capsys.readouterr().err
    assert sorted(os.listdir(pages)) == sorted(markdown_file_name(u) for u in articles)
    for url in articles:
        assert f"overwrote {pages / markdown_file_name(url)} (from an earlier run)" in err


def test_markdown_file_name_is_safe_stable_and_unique():
    """File names keep host, port and path as a slug, drop unsafe characters and end in a
    hash of the URL: the same URL gets the same name on every run, two URLs differ."""
    url = "http://127.0.0.1:8080/demo/a b/../x.html?q=<1>"
    name = markdown_file_name(url)
    assert re.fullmatch(r"127-0-0-1-8080-demo-a-b-x-html-q-1-[0-9a-f]{8}\.md", name), name
    assert name == markdown_file_name(url)
    assert markdown_file_name("https://example.com/a?b") != markdown_file_name(
        "https://example.com/a-b")  # same slug, different URLs
    long = markdown_file_name("https://example.com/" + "x" * 500)
    assert len(long) < 120 and long.endswith(".md")


def test_crawl_json_prints_every_event(server, capsys):
    """--json prints each event as a JSON line: metadata, one result per URL, the summary."""
    urls = fast_demo_urls(server, 3)
    assert main(["crawl", "--base-url", server.base_url, "--transport", "sse", "--json", *urls]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    kinds = [event["event_type"] for event in events]
    assert kinds[0] == "metadata" and kinds[-1] == "summary"
    assert sorted(event["data"]["index"] for event in events if event["event_type"] == "result") == [0, 1, 2]
    assert events[-1]["data"]["successful"] == 3


def test_crawl_output_dash_writes_jsonl_to_stdout(server, capsys):
    """--output - writes the JSON lines to stdout instead of the human lines."""
    urls = fast_demo_urls(server, 2)
    assert main(["crawl", "--base-url", server.base_url, "-o", "-", *urls]) == 0
    entries = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(entry["index"] for entry in entries) == [0, 1]


def test_crawl_options_reach_server(make_server, capsys):
    """--cache-mode and --concurrency are sent as crawl options."""
    srv = make_server()
    urls = srv.article_urls()[:2]
    assert main(["crawl", "--base-url", srv.base_url, "--cache-mode", "bypass", "--concurrency", "2",
                 "--timeout-secs", "20", *urls]) == 0
    assert srv.request_log[-1].options == {"cache_mode": "bypass", "concurrency": 2}


# --- crawl: input -----------------------------------------------------------------------


def test_crawl_reads_urls_from_stdin(server, capsys):
    """-i - reads one URL per line from standard input, skipping blanks and comments."""
    urls = fast_demo_urls(server, 3)
    piped = Console(stdin=io.StringIO("# my list\n\n" + "\n".join(urls) + "\n"))
    assert main(["crawl", "--base-url", server.base_url, "-i", "-"], CliContext(piped)) == 0
    assert len(stdout_lines(capsys.readouterr().out)) == 3


def test_crawl_input_file_bad_url_names_line_and_crawls_rest(server, tmp_path, capsys):
    """A bad URL on line 3 of the input file is reported with file and line; the others are crawled (exit 2)."""
    good = fast_demo_urls(server, 3)
    listing = tmp_path / "urls.txt"
    listing.write_text(f"{good[0]}\n# a comment\nhtp:/nope\n\n{good[1]}\n{good[2]}\n", encoding="utf-8")
    extra = server.article_urls()[5]
    assert main(["crawl", "--base-url", server.base_url, "-i", str(listing), extra]) == 2
    out, err = capsys.readouterr()
    assert f"{listing} line 3: 'htp:/nope' is not a valid URL" in err
    assert len(stdout_lines(out)) == 4
    assert "done: 4 of 4 URLs crawled" in err and "1 bad URL(s) in the input were skipped" in err


def test_crawl_without_urls_is_usage_error(capsys):
    """No URL arguments and no -i: usage on stderr, exit 2, nothing contacted."""
    assert main(["crawl"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: riptide-sync crawl") and "no URLs" in err


def test_crawl_only_bad_urls_is_usage_error(tmp_path, capsys):
    """When every URL is bad, nothing is crawled and the exit code is 2."""
    assert main(["crawl", "--base-url", closed_port_url(), "ftp://x", "not a url"]) == 2
    err = capsys.readouterr().err
    assert "argument 1: 'ftp://x'" in err and "argument 2: 'not a url'" in err
    assert "no valid URLs to crawl" in err


def test_crawl_missing_input_file_is_usage_error(tmp_path, capsys):
    """An input file that cannot be read: one line naming it, exit 2."""
    missing = tmp_path / "nope.txt"
    assert main(["crawl", "-i", str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err


def test_crawl_bad_option_is_usage_error(server, capsys):
    """An option the client rejects (negative concurrency) is a usage error, before any I/O."""
    assert main(["crawl", "--base-url", server.base_url, "--concurrency", "-1",
                 server.article_urls()[0]]) == 2
    assert "bad crawl option" in capsys.readouterr().err


# --- crawl: failures --------------------------------------------------------------------


def test_crawl_failed_url_exits_1_and_lists_it(server, capsys):
    """A URL whose fetch fails gets an ERR line, is listed at the end, and the exit code is 1."""
    dead = page_url("missing")  # a 404 origin: a failed fetch (a loopback URL is refused outright)
    urls = [*fast_demo_urls(server, 2), dead]
    assert main(["crawl", "--base-url", server.base_url, *urls]) == 1
    out, err = capsys.readouterr()
    assert any(" ERR " in line and line.endswith(dead) for line in out.splitlines())
    assert "2 ok, 1 failed" in err and f"failed: {dead}" in err


def test_crawl_incomplete_stream_names_missing_urls(make_server, tmp_path, capsys):
    """A stream cut after every result, without resume: exit 1, the missing URLs named, the rest written."""
    srv = make_server(faults=Faults(drop_every=1))
    urls = srv.article_urls()[:4]
    target = tmp_path / "out.jsonl"
    assert main(["crawl", "--base-url", srv.base_url, "--retry", "1", "-o", str(target), *urls]) == 1
    err = capsys.readouterr().err
    written = [json.loads(line)["url"] for line in target.read_text(encoding="utf-8").splitlines()]
    assert len(written) == 1
    assert "stream incomplete: 3 of 4 URLs have no result" in err and "; 1 written to" in err
    assert "\n  the same command with --resume crawls only the rest\n" in err
    for url in urls:
        assert (f"missing: {url}" in err) == (url not in written)


def test_crawl_stream_ended_by_error_event_exits_1(make_server, capsys):
    """A crawl the server refuses with an error event (too many URLs): exit 1, reason and URLs named."""
    srv = make_server(max_urls_per_request=2)
    urls = srv.article_urls()[:3]
    assert main(["crawl", "--base-url", srv.base_url, *urls]) == 1
    err = capsys.readouterr().err
    assert ("stream incomplete: 3 of 3 URLs have no result (the server refused a crawl request: "
            "Validation error: Too many URLs: 3 (maximum: 2))") in err
    assert all(f"missing: {url}" in err for url in urls)


def test_crawl_connection_refused_exits_1(capsys):
    """An explicit base URL where nothing listens: exit 1, the URLs reported missing, no traceback."""
    base = closed_port_url()
    assert main(["crawl", "--base-url", base, "--retry", "1", "--transport", "ndjson",
                 "https://example.com/"]) == 1
    err = capsys.readouterr().err
    assert "stream incomplete: 1 of 1 URLs have no result" in err
    assert "missing: https://example.com/" in err and "Traceback" not in err


def test_crawl_unauthorized_hints_at_api_key(make_server, capsys):
    """A server requiring a key answers 401: one line with a hint (exit 1); with --api-key it works."""
    srv = make_server(api_keys=("sekrit",))
    url = srv.article_urls()[0]
    assert main(["crawl", "--base-url", srv.base_url, url]) == 1
    err = capsys.readouterr().err
    assert "401" in err and "--api-key" in err and len(err.strip().splitlines()) == 1
    assert main(["crawl", "--base-url", srv.base_url, "--api-key", "sekrit", url]) == 0


# --- crawl: display ---------------------------------------------------------------------


def test_crawl_terminal_renders_rich_progress(server, capsys):
    """On a terminal, a rich progress bar (completed/total, success rate, rate, ETA) ends with the summary."""
    from rich.console import Console as RichConsole

    screen = io.StringIO()
    terminal = CliContext(Console(rich_console=lambda: RichConsole(file=screen, force_terminal=True, width=120)))
    urls = fast_demo_urls(server, 4)
    assert main(["crawl", "--base-url", server.base_url, *urls], terminal) == 0
    shown = screen.getvalue()
    assert "\x1b[" in shown and "crawling" in shown
    assert "4/4" in shown and "100% ok" in shown and "/s" in shown and "ETA" in shown
    assert shown.rstrip().splitlines()[-1].find("done: 4 of 4 URLs crawled") >= 0
    assert len(stdout_lines(capsys.readouterr().out)) == 4  # stdout is not the terminal: plain lines


def test_crawl_without_rich_prints_plain_lines(server, monkeypatch, capsys):
    """Without rich installed the crawl still works, with plain lines only."""
    monkeypatch.setitem(sys.modules, "rich.console", None)
    monkeypatch.setitem(sys.modules, "rich.progress", None)
    urls = fast_demo_urls(server, 2)
    assert main(["crawl", "--base-url", server.base_url, *urls]) == 0
    out, err = capsys.readouterr()
    assert len(stdout_lines(out)) == 2 and "done: 2 of 2" in err


def test_crawl_and_info_write_only_to_the_console_they_are_given(server, capsys):
    """A command prints through the console of its context: given two buffers, the result
    lines, the summary and the info commands' reports land there, and nothing on the
    process's own stdout/stderr."""
    out, err = io.StringIO(), io.StringIO()
    context = CliContext(Console(stdout=out, stderr=err, stdin=None))
    urls = fast_demo_urls(server, 2)
    assert main(["crawl", "--base-url", server.base_url, "-v", *urls], context) == 0
    assert main(["health", "--base-url", server.base_url], context) == 0
    assert main(["ping", "--base-url", closed_port_url()], context) == 1
    assert capsys.readouterr() == ("", "")
    lines = stdout_lines(out.getvalue())
    assert {line.split()[-1] for line in lines[:2]} == set(urls)  # in arrival order
    assert lines[2].startswith(f"{server.base_url}: healthy")
    said = err.getvalue()
    assert "done: 2 of 2 URLs crawled over ws" in said and "stream stats: " in said
    assert "riptide-sync ping: cannot connect to" in said


# --- crawl: choosing the server ---------------------------------------------------------


def test_crawl_uses_env_base_url(server, monkeypatch, capsys):
    """RIPTIDE_BASE_URL is used when --base-url is not given."""
    monkeypatch.setenv("RIPTIDE_BASE_URL", server.base_url)
    assert main(["crawl", fast_demo_urls(server, 1)[0]]) == 0
    assert "1 ok" in capsys.readouterr().err


def test_crawl_uses_default_server_when_it_answers(server, capsys):
    """No server configured: the default is used when it answers /healthz, nothing embedded."""
    context = CliContext(default_base_url=server.base_url)
    assert main(["crawl", "--embedded", fast_demo_urls(server, 1)[0]], context) == 0
    err = capsys.readouterr().err
    assert "embedded" not in err and "1 ok" in err


def test_crawl_embedded_starts_local_server_when_none_answers(server, capsys):
    """No server configured and none on the default: --embedded starts one and crawls through it."""
    context = CliContext(default_base_url=closed_port_url())
    urls = fast_demo_urls(server, 2)  # pages of another loopback server: allowed on loopback
    assert main(["crawl", "--embedded", *urls], context) == 0
    err = capsys.readouterr().err
    assert "no RipTide server answers at" in err
    assert "started the embedded local server at http://127.0.0.1:" in err
    assert "2 ok, 0 failed" in err


def test_crawl_no_server_without_terminal_explains(capsys):
    """No server anywhere, not interactive and no --embedded: say what to do, exit 1."""
    context = CliContext(Console(interactive=lambda: False), default_base_url=closed_port_url())
    assert main(["crawl", "https://example.com/"], context) == 1
    err = capsys.readouterr().err
    assert "--embedded" in err and "riptide-sync serve" in err


@pytest.mark.parametrize(("answer", "expected"), [("\n", 0), ("n\n", 1)])
def test_crawl_prompt_offers_embedded_server(server, capsys, answer, expected):
    """At a terminal the user is asked; Enter starts the embedded server, 'n' gives up."""
    keyboard = Console(stdin=io.StringIO(answer), interactive=lambda: True)
    context = CliContext(keyboard, default_base_url=closed_port_url())
    assert main(["crawl", fast_demo_urls(server, 1)[0]], context) == expected
    err = capsys.readouterr().err
    assert "Start the embedded local server" in err
    assert ("started the embedded local server" in err) == (expected == 0)


# --- ping, status, health ---------------------------------------------------------------


def test_ping_prints_latency_and_session(server, capsys):
    """ping: 'pong from ws://... in N ms (session ...)', exit 0."""
    assert main(["ping", "--base-url", server.base_url]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"pong from {server.ws_url} in ") and " ms (session " in line


def test_ping_json_prints_reply(server, capsys):
    """ping --json prints the reply dict."""
    assert main(["ping", "--base-url", server.base_url, "--json"]) == 0
    reply = json.loads(capsys.readouterr().out)
    assert reply["success"] is True and reply["latency_ms"] > 0 and reply["session_id"]


def test_status_prints_connection_state(server, capsys):
    """status: the server's view of one WebSocket connection, human and --json."""
    assert main(["status", "--base-url", server.base_url]) == 0
    assert ": healthy, " in capsys.readouterr().out
    assert main(["status", "--base-url", server.base_url, "--json"]) == 0
    reply = json.loads(capsys.readouterr().out)
    assert reply["is_healthy"] is True and "message_count" in reply


def test_health_prints_status_and_dependencies(server, capsys):
    """health: status, version and dependencies; --json prints the report; exit 0 when healthy."""
    assert main(["health", "--base-url", server.base_url]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{server.base_url}: healthy (RipTide ") and "extractor" in out
    assert main(["health", "--base-url", server.base_url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "healthy"


@pytest.mark.parametrize("command", ["ping", "status", "health"])
def test_info_connection_refused_is_one_line(command, capsys):
    """Nothing listening: one line on stderr naming the server, exit 1, no traceback."""
    base = closed_port_url()
    assert main([command, "--base-url", base]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.strip() == (f"riptide-sync {command}: cannot connect to {base}: connection refused "
                           "(is a server running? try 'riptide-sync serve')")


@pytest.fixture
def gateway_down():
    """A reverse proxy whose upstream is down: every request gets its 502, whose body says
    "connection refused" (the proxy's own connection), on a port where it does listen."""
    import http.server
    import threading

    class BadGateway(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b'{"error": "bad_gateway", "message": "dial tcp 10.0.0.7:8080: connect: connection refused"}'
            self.send_response(502)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), BadGateway)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{proxy.server_address[1]}"
    finally:
        proxy.shutdown()
        proxy.server_close()
        thread.join()


def test_info_gateway_error_saying_refused_is_not_a_refused_connection(gateway_down, capsys):
    """A 502 whose body says "connection refused" is the proxy answering: the line keeps the
    status and the proxy's words, not "cannot connect ... is a server running?" (the error
    kind is told by exception type, not read from its message)."""
    assert main(["health", "--base-url", gateway_down]) == 1
    err = capsys.readouterr().err
    assert err.startswith("riptide-sync health: HTTP 502") and "connect: connection refused" in err
    assert "cannot connect to" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("command", ["ping", "status"])
def test_info_unauthorized_is_one_line(make_server, command, capsys):
    """A 401 on the WebSocket handshake: one line with the --api-key hint, exit 1; the key fixes it."""
    srv = make_server(api_keys=("sekrit",))
    assert main([command, "--base-url", srv.base_url]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "401" in err and "--api-key" in err
    assert main([command, "--base-url", srv.base_url, "--api-key", "sekrit"]) == 0


def test_info_api_key_from_environment(make_server, monkeypatch, capsys):
    """RIPTIDE_API_KEY is the default of --api-key."""
    srv = make_server(api_keys=("sekrit",))
    monkeypatch.setenv("RIPTIDE_API_KEY", "sekrit")
    assert main(["ping", "--base-url", srv.base_url]) == 0


def test_info_bad_base_url_is_usage_error(capsys):
    """A malformed --base-url is a usage error (exit 2) with one line."""
    assert main(["health", "--base-url", "localhost:8080"]) == 2
    assert "base_url must be an absolute http(s) URL" in capsys.readouterr().err


# --- help -------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["crawl", "ping", "status", "health", "serve", "demo"])
def test_help_has_description_and_examples(command, capsys):
    """Every subcommand's --help has a description and an examples section."""
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: riptide-sync {command}")
    assert "\nexamples:\n" in text and f"riptide-sync {command}" in text.split("examples:")[1]


def test_help_lists_every_command(capsys):
    """The top-level help lists every subcommand."""
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for command in ("crawl", "ping", "status", "health", "serve", "demo"):
        assert f"    {command} " in text
