"""Recipe: a Celery task that crawls a list and stores the results (SQLite here).

One client per worker process, shared by the worker's threads (it is thread-safe). It
may as well be made at import time, before a prefork pool forks its children: each child
then gets its own connections on first use (here it is made on first use only because the
server's address is known late). The task streams the crawl and writes each result as
it arrives, so a long list never sits in memory.

This script runs the task in Celery's in-process test worker (memory broker, threads
pool) against the bundled local server; in production, point ``broker`` at your broker
and start ``celery -A celery_task worker``.
"""

import os
import sqlite3
import sys
import tempfile

from _recipes import riptide_server
from celery import Celery
from celery.contrib.testing.worker import start_worker

from riptide_sync import RipTideClient

app = Celery("recipes", broker="memory://", backend="cache+memory://")
app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"])

client = None  # one per process, made by the first task


def get_client():
    global client
    if client is None:
        client = RipTideClient(os.environ["RIPTIDE_BASE_URL"], timeout=30)
    return client


@app.task(bind=True, max_retries=3)
def crawl_and_store(self, urls, db_path):
    """Crawl ``urls`` and upsert one row per URL; returns how many succeeded."""
    ok = 0
    with sqlite3.connect(db_path) as db:
        db.execute("create table if not exists pages "
                   "(url text primary key, status int, title text, words int, error text)")
        with get_client().streaming.crawl_ndjson(urls) as stream:
            for event in stream:
                if event.event_type != "result":
                    continue
                page = event.result
                doc = page.document
                db.execute(
                    "insert or replace into pages values (?, ?, ?, ?, ?)",
                    (page.url, page.status, doc.title if doc else None,
                     doc.word_count if doc else None, page.error.message if page.error else None),
                )
                ok += page.ok
    return ok


if __name__ == "__main__":
    with riptide_server() as (base_url, urls), tempfile.TemporaryDirectory() as tmp:
        os.environ["RIPTIDE_BASE_URL"] = base_url
        db_path = os.path.join(tmp, "pages.db")
        with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False):
            jobs = [crawl_and_store.delay(urls[:4], db_path), crawl_and_store.delay(urls[4:], db_path)]
            succeeded = sum(job.get(timeout=60) for job in jobs)
        with sqlite3.connect(db_path) as db:
            rows = db.execute("select count(*), sum(words > 0) from pages").fetchone()
        print(f"celery: {succeeded} pages crawled, {rows[0]} rows stored, {rows[1]} with text")
        if client is not None:
            client.close()
        sys.exit(0 if rows[0] == len(urls) else 1)
