"""Demo-site crawling, cache, synthetic mode and the ``riptide-sync serve`` command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import requests
from server_helpers import ndjson_lines, ndjson, urls, ws_connect, ws_crawl


def test_demo_crawl_extracts_real_text_and_markdown(server):
    """A WS crawl of every demo page: one result per URL with real text and markdown, then summary."""
    targets = server.demo_urls()
    ws, _ = ws_connect(server)
    try:
        messages = ws_crawl(ws, targets, {"cache_mode": "bypass"})
    finally:
        ws.close()
    results = {m["data"]["index"]: m["data"]["result"] for m in messages if m["message_type"] == "result"}
    assert sorted(results) == list(range(len(targets))) and messages[-1]["message_type"] == "summary"
    article = results[1]
    doc = article["document"]
    assert doc["title"] == "Tide Pools" and doc["markdown"].startswith("# Tide Pools")
    assert "## " in doc["markdown"] and len(doc["text"].split()) > 150 and doc["word_count"] > 150
    assert doc["byline"] and doc["description"] == "Field notes about tide pools." and doc["language"] == "en"
    assert any(link.endswith(".html") for link in doc["links"])
    by_path = {targets[i].rsplit("/demo/", 1)[1]: r for i, r in results.items()}
    assert by_path["redirect"]["status"] == 200 and by_path["redirect"]["document"]["title"] == "Tide Pools"
    missing = by_path["missing"]  # §1.6: a non-2xx origin page is a failed result
    assert missing["status"] == 0 and missing["error"]["message"] == "Failed to process URL"
    assert messages[-1]["data"]["failed"] == 1 and messages[-1]["data"]["successful"] == len(targets) - 1
    assert by_path["notes.txt"]["document"]["text"].startswith("Tidewater Notes: field log")
    assert by_path["report.pdf"]["gate_decision"] == "pdf" and "lighthouse" in by_path["report.pdf"]["document"]["text"]
    assert {r["gate_decision"] for r in results.values()} >= {"raw", "probes_first"}


def test_cache_hit_on_second_crawl_and_bypass(make_server):
    """A second crawl is served from cache (gate 'cached', quality 1.0); 'bypass' neither reads nor writes."""
    srv = make_server()
    target = srv.article_urls()[:1]
    bypass = ndjson_lines(ndjson(srv, target, {"cache_mode": "bypass"}))[1]["result"]
    assert bypass["from_cache"] is False and srv.cache_size == 0
    first = ndjson_lines(ndjson(srv, target))[1]["result"]
    second_lines = ndjson_lines(ndjson(srv, target))
    second = second_lines[1]["result"]
    assert first["from_cache"] is False
    assert (second["from_cache"], second["status"], second["gate_decision"], second["quality_score"]) == \
        (True, 200, "cached", 1.0)
    assert second["cache_key"] == first["cache_key"] and second["document"] == first["document"]
    assert second_lines[-1]["from_cache"] == 1 and second_lines[-1]["cache_hit_rate"] == 1.0
    again = ndjson_lines(ndjson(srv, target, {"cache_mode": "bypass"}))[1]["result"]
    assert again["from_cache"] is False


def test_sqlite_cache_survives_restart(tmp_path):
    """With cache_path, a new server instance hits the entries of the previous one."""
    path = str(tmp_path / "cache.sqlite3")
    from riptide_sync.server import ServerConfig, serve_in_thread

    with serve_in_thread(ServerConfig(cache_path=path)) as first:
        target = first.article_urls()[:1]
        assert ndjson_lines(ndjson(first, target))[1]["result"]["from_cache"] is False
    # The old URL's port is closed now, so only the cache can answer it.
    with serve_in_thread(ServerConfig(cache_path=path)) as second:
        result = ndjson_lines(ndjson(second, target))[1]["result"]
    assert result["from_cache"] is True and result["document"]["title"] == "Tide Pools"


def test_synthetic_document_sizes(make_server):
    """synthetic_doc_size gives documents whose text is exactly that many bytes, on every surface."""
    srv = make_server(synthetic_doc_size=4096)
    lines = ndjson_lines(ndjson(srv, urls(3)))
    assert all(len(line["result"]["document"]["text"].encode()) == 4096 for line in lines[1:4])
    assert lines[1]["result"]["url"] == urls(3)[0] and lines[1]["result"]["document"]["url"] == urls(3)[0]
    ws, _ = ws_connect(srv)
    try:
        messages = ws_crawl(ws, urls(2))
    finally:
        ws.close()
    assert len(messages[1]["data"]["result"]["document"]["text"]) == 4096
    batch = requests.post(srv.base_url + "/crawl", json={"urls": urls(2)}, timeout=5).json()
    assert [len(r["document"]["text"]) for r in batch["results"]] == [4096, 4096]
    assert batch["results"][1]["url"] == urls(2)[1]


def test_cli_serve_ready_fast_and_stops_on_sigint(tmp_path):
    """``riptide-sync serve --port 0`` prints its URL within 2 s and exits 0 on SIGINT."""
    env = {k: v for k, v in os.environ.items() if not k.upper().endswith("_PROXY")}
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "riptide_sync", "serve", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        ready = time.monotonic() - started
        assert line.startswith("riptide-sync local server listening on http://127.0.0.1:"), line
        assert ready < 2.0
        base = line.rsplit(" ", 1)[1].strip()
        assert requests.get(base + "/healthz", timeout=5).status_code == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_cli_rejects_unknown_fault():
    """An unknown --fault name is a usage error (exit 2), before anything listens."""
    from riptide_sync.cli import main

    assert main(["serve", "--fault", "nonsense=1"]) == 2
