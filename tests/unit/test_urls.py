"""Caller input validation (riptide_sync.protocol.urls): before any I/O, naming the value."""

import pytest

from riptide_sync.exceptions import ConfigError, ValidationError
from riptide_sync.protocol.urls import validate_base_url, validate_urls, websocket_url


def test_validate_urls_returns_list_unchanged():
    """A good tuple comes back as a list, in order, duplicates kept."""
    urls = ("https://a.example/", "http://b.example/x?y=1", "https://a.example/")
    assert validate_urls(urls) == list(urls)


def test_validate_urls_bare_string_says_pass_a_list():
    """A bare string is refused with a hint to wrap it in a list."""
    with pytest.raises(ValidationError, match="pass a list") as info:
        validate_urls("https://a.example/")
    assert info.value.field == "urls"


@pytest.mark.parametrize("value", [None, 5, {"https://a.example/"}, {"u": 1}])
def test_validate_urls_rejects_non_sequences(value):
    """Sets, dicts, numbers and None are not URL lists."""
    with pytest.raises(ValidationError, match="list or tuple"):
        validate_urls(value)


def test_validate_urls_rejects_empty():
    """An empty list is refused."""
    with pytest.raises(ValidationError, match="empty"):
        validate_urls([])


@pytest.mark.parametrize(
    "bad, reason",
    [
        ("ftp://a.example/", "scheme must be http or https, got ftp"),
        ("a.example/page", "got none"),
        ("http://", "no host"),
        ("https://a.example/" + "x" * 2100, "longer than 2048 bytes"),
        (" https://a.example/", "surrounding spaces"),
        ("https://a.example/a b", "whitespace"),
        ("http://a.example:99999/", "cannot be parsed"),
        (b"https://a.example/", "expected a string"),
        ("", "absolute http"),
    ],
)
def test_validate_urls_names_bad_url_and_position(bad, reason):
    """Each bad URL is named with its position and what was expected."""
    with pytest.raises(ValidationError) as info:
        validate_urls(["https://ok.example/", bad])
    assert info.value.field == "urls[1]"
    assert info.value.value == bad
    assert reason in str(info.value)
    assert "urls[1]" in str(info.value)


def test_validate_base_url_strips_trailing_slash():
    """The base URL is kept with its path prefix, minus a trailing slash."""
    assert validate_base_url("http://h:8080/") == "http://h:8080"
    assert validate_base_url("https://h/riptide/") == "https://h/riptide"


@pytest.mark.parametrize("bad", [None, 8080, "localhost:8080", "ws://h/", "http://h/?q=1", "http://h:x/"])
def test_validate_base_url_rejects(bad):
    """Non-http(s), hostless, query-carrying or unparsable base URLs are config errors."""
    with pytest.raises(ConfigError):
        validate_base_url(bad)


@pytest.mark.parametrize(
    "base, expected",
    [
        ("http://h:8080", "ws://h:8080/crawl/ws"),
        ("https://h", "wss://h/crawl/ws"),
        ("https://h/riptide/", "wss://h/riptide/crawl/ws"),
        ("http://[::1]:9000", "ws://[::1]:9000/crawl/ws"),
    ],
)
def test_websocket_url_derivation(base, expected):
    """http -> ws, https -> wss, a path prefix kept."""
    assert websocket_url(base) == expected


# --- long lists: the whole-list fast path (protocol.urls._all_plain) ------------------------

LONG = [f"https://example.org/page/{i}" for i in range(20_000)]


@pytest.mark.parametrize(
    "bad, reason",
    [
        ("https://a.example/x https://b.example/", "whitespace"),  # a separator inside a URL
        ("https://a.example/x\nhttps://b.example/", "whitespace"),
        ("https://a.example/\t", "surrounding spaces"),
        ("https://a.example/a\x00b", "control characters"),
        ("", "absolute http"),
        ("https://a.example:65536/", "cannot be parsed"),
        ("https://a.example:/x", None),  # an empty port: the full check decides
        ("ftp://a.example/", "scheme must be http or https"),
        ("https://a.example/" + "x" * 2100, "longer than 2048 bytes"),
        (None, "expected a string"),
        (b"https://a.example/", "expected a string"),
    ],
)
@pytest.mark.parametrize("position", [0, 9_999, 19_999])
def test_long_list_names_a_bad_url_wherever_it_is(bad, reason, position):
    """A bad URL anywhere in a 20,000-URL list is named by its position, with the same
    message as in a short list, before anything is sent."""
    urls = list(LONG)
    urls[position] = bad
    try:
        validate_urls(["https://ok.example/", bad])
    except ValidationError as short:
        expected = str(short).replace("urls[1]", f"urls[{position}]")
    else:  # the full check accepts it (":" with no port): so must the long list
        assert reason is None
        assert validate_urls(urls) == urls
        return
    with pytest.raises(ValidationError) as info:
        validate_urls(urls)
    assert str(info.value) == expected
    assert reason in expected
    assert info.value.field == f"urls[{position}]"
    assert info.value.value == bad


@pytest.mark.parametrize(
    "good",
    ["https://a.example", "http://10.0.0.1:65535", "https://a.example:0/x", "https://a.example?q",
     "https://a.example#f", "https://a.example/" + "x" * 2030, "https://a.example/\x7f"],
)
def test_long_list_accepts_the_edges_of_the_common_shape(good):
    """A URL at an edge of the common shape (no path, last port, longest) passes first,
    middle and last in a long list."""
    for position in (0, 10_000, 19_999):
        urls = list(LONG)
        urls[position] = good
        assert validate_urls(urls) == urls


def test_long_list_check_keeps_memory_flat():
    """Checking 100,000 URLs needs a few copies of their text, not a regex backtracking
    frame per URL. Failed before: the one match of the whole joined list peaked at ~75 MB
    (750 bytes per URL) for a 3 MB list, and took 13-60 ms of a fresh process's first
    request for 20,000 URLs."""
    import tracemalloc

    urls = [f"https://example.org/page/{i}" for i in range(100_000)]
    text = sum(map(len, urls))
    tracemalloc.start()
    try:
        assert validate_urls(urls) == urls
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * text + 8 * len(urls) + 1_000_000, (peak, text)


def test_check_each_url_takes_the_whole_list_path(monkeypatch):
    """check_each_url (partitions) checks a plain list without a step per URL, as
    validate_urls does. Failed before: it always ran url_problem() on every URL."""
    from riptide_sync.protocol import urls as urls_module

    def per_url(url):
        raise AssertionError(f"per-URL check of {url!r}")

    monkeypatch.setattr(urls_module, "url_problem", per_url)
    urls_module.check_each_url(LONG, range(3000, 3000 + len(LONG)))
    with pytest.raises(AssertionError, match="per-URL check"):  # the loop still names bad ones
        urls_module.check_each_url(LONG[:5] + ["ftp://x/"], range(6))


def test_every_stream_call_refuses_a_bad_last_url_before_any_io(monkeypatch):
    """The contract the fast path keeps: URL 19,999 of 20,000 is checked before a transport
    exists, on every transport (a guard, not a fix: it held before too)."""
    from riptide_sync import RipTideClient
    from riptide_sync.streaming import StreamingAPI

    def no_transport(self, stats):
        raise AssertionError("a transport was made before the URLs were checked")

    for name in ("_websocket_transport", "_ndjson_transport", "_sse_transport"):
        monkeypatch.setattr(StreamingAPI, name, no_transport)
    client = RipTideClient("http://127.0.0.1:9")  # the discard port: nothing listens
    urls = LONG[:-1] + ["https://a.example/x y"]
    for crawl in (client.streaming.crawl_websocket, client.streaming.crawl_ndjson,
                  client.streaming.crawl_sse):
        with pytest.raises(ValidationError) as info:
            crawl(urls)
        assert info.value.field == "urls[19999]"


def test_a_list_from_one_site_needs_no_match_per_url(monkeypatch):
    """A list whose URLs all start with one scheme://host[:port]/ is checked without a
    regex match of each URL's start (the costliest part of the list check). Failed before:
    the search over every URL's start always ran."""
    from riptide_sync.protocol import urls as urls_module

    class NoSearch:
        def search(self, text):
            raise AssertionError("searched every URL's start")

    site_list = [f"https://example.org:8443/page/{i}" for i in range(1000)]
    monkeypatch.setattr(urls_module, "_NEXT_NOT_PLAIN", NoSearch())
    assert urls_module.validate_urls(site_list) == site_list
    # another site in the middle: the per-URL search is needed again
    with pytest.raises(AssertionError, match="searched"):
        urls_module.validate_urls(site_list[:500] + ["https://other.example/"] + site_list[500:])


@pytest.mark.parametrize(
    "odd, reason",
    [("https://example.org:8443/page/ x", "whitespace"), ("https://example.org:8443", None),
     ("https://example.org:8443/" + "x" * 2040, "longer than 2048 bytes"),
     ("https://example.org:84430/", "cannot be parsed"), ("https://example.org/page", None)],
)
def test_a_list_from_one_site_with_an_odd_url_in_the_middle(odd, reason):
    """The one-site shortcut never accepts what the per-URL check refuses."""
    site_list = [f"https://example.org:8443/page/{i}" for i in range(1000)]
    urls = site_list[:500] + [odd] + site_list[500:]
    if reason is None:
        assert validate_urls(urls) == urls
        return
    with pytest.raises(ValidationError, match=reason) as info:
        validate_urls(urls)
    assert info.value.field == "urls[500]"
