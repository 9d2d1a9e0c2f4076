"""Recipe: a Flask view that streams crawl results to its own client as they arrive.

``GET /crawl?url=...&url=...`` answers with NDJSON, one line per result, written as soon
as the crawl yields it. One RipTide client is shared by every request thread. The stream
is closed in ``finally``: when the browser goes away, Werkzeug closes the response
generator and the crawl stops at once instead of running on for nobody.

This script serves the app on a loopback port in a thread, requests it with ``requests``
and prints what arrived; with ``flask run`` you would set RIPTIDE_BASE_URL and skip that.
"""

import json
import logging
import threading

import requests
from _recipes import riptide_server
from flask import Flask, Response, request, stream_with_context
from werkzeug.serving import make_server

from riptide_sync import RipTideClient, ValidationError

app = Flask(__name__)
app.config["RIPTIDE"] = None  # the shared client, set at start-up


@app.get("/crawl")
def crawl():
    urls = request.args.getlist("url")
    client: RipTideClient = app.config["RIPTIDE"]
    try:
        stream = client.streaming.crawl_ndjson(urls)  # bad URLs raise here, before any I/O
    except ValidationError as exc:
        return {"error": str(exc)}, 400

    def lines():
        with stream:  # closed on the way out, also when the client disconnects
            for event in stream:
                if event.event_type == "result":
                    page = event.result
                    yield json.dumps({"index": event.index, "url": page.url,
                                      "status": page.status, "ok": page.ok}) + "\n"
                elif event.event_type == "summary":
                    yield json.dumps({"done": event.data["successful"]}) + "\n"

    return Response(stream_with_context(lines()), mimetype="application/x-ndjson")


if __name__ == "__main__":
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log on stderr
    with riptide_server() as (base_url, urls), RipTideClient(base_url) as client:
        app.config["RIPTIDE"] = client
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            view = f"http://127.0.0.1:{server.server_port}/crawl"
            with requests.get(view, params={"url": urls}, stream=True, timeout=30) as reply:
                rows = [json.loads(line) for line in reply.iter_lines() if line]
            bad = requests.get(view, params={"url": "not a url"}, timeout=30)
            print(f"flask: {sum(1 for r in rows if r.get('ok'))} results streamed, "
                  f"summary {rows[-1]}, bad input -> HTTP {bad.status_code}")
        finally:
            server.shutdown()
            thread.join(5)
            server.server_close()
