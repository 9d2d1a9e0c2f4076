"""Wire models: strict requests, tolerant responses, a cheap event type."""

import pytest

from riptide_sync import CacheMode, CrawlOptions, StreamingResult
from riptide_sync.exceptions import ValidationError
from riptide_sync.models import (
    ChunkingConfig,
    CrawlResponse,
    CrawlResult,
    HealthResponse,
    OutputFormat,
    RenderMode,
    coerce_options,
)


def test_crawl_options_guide_fields_accepted():
    """The guide's seed code runs: CacheMode.READ_WRITE, concurrency, timeout_secs."""
    options = CrawlOptions(cache_mode=CacheMode.READ_WRITE, concurrency=5, timeout_secs=30)
    assert options.to_wire() == {"cache_mode": "read_write", "concurrency": 5}


def test_crawl_options_only_set_fields_are_sent():
    """Unset fields stay server defaults: nothing is sent for them."""
    assert CrawlOptions().to_wire() == {}


def test_cache_mode_none_means_bypass_on_the_wire():
    """The guide's NONE really disables the cache (the server only knows "bypass")."""
    assert CacheMode.NONE is CacheMode.BYPASS
    assert CrawlOptions(cache_mode=CacheMode.NONE).to_wire() == {"cache_mode": "bypass"}


def test_crawl_options_cache_mode_is_one_of_the_enum():
    """Known modes in any case become the enum; anything else is refused, naming the
    field (issue 12: "bypas" was sent, and the server cached under riptide:v1:bypas:)."""
    assert CrawlOptions(cache_mode="bypass").cache_mode is CacheMode.BYPASS
    assert CrawlOptions(cache_mode="Read_Write").cache_mode is CacheMode.READ_WRITE
    for bad in ("bypas", "custom", 1, True):
        with pytest.raises(ValidationError) as info:
            CrawlOptions(cache_mode=bad)
        assert info.value.field == "options.cache_mode"
        assert repr(bad) in str(info.value)


@pytest.mark.parametrize("bad", ["30", True, float("nan"), float("inf"), -1, 0, b"30"])
def test_crawl_options_timeout_secs_is_a_strict_duration(bad):
    """timeout_secs="30" was accepted as 30.0 (issue 12); now every non-number, NaN,
    infinity, bool or non-positive value is refused, naming the field and the value."""
    with pytest.raises(ValidationError) as info:
        CrawlOptions(timeout_secs=bad)
    assert info.value.field == "options.timeout_secs"
    assert repr(bad) in str(info.value)
    assert CrawlOptions(timeout_secs=2).timeout_secs == 2.0


def test_crawl_options_pascal_case_enums_any_case():
    """render_mode/output_format accept any letter case and send PascalCase."""
    options = CrawlOptions(render_mode="static", output_format="ndjson")
    assert options.render_mode is RenderMode.STATIC
    assert options.to_wire() == {"render_mode": "Static", "output_format": "NdJson"}
    assert CrawlOptions(output_format=OutputFormat.MARKDOWN).to_wire() == {"output_format": "Markdown"}


@pytest.mark.parametrize(
    "fields, field, fragment",
    [
        ({"timeout": 5}, "options.timeout", "not a known crawl option"),
        ({"concurrency": "5"}, "options.concurrency", "valid integer"),
        ({"concurrency": -1}, "options.concurrency", "greater than or equal to 0"),
        ({"concurrency": True}, "options.concurrency", "valid integer"),
        ({"timeout_secs": 0}, "options.timeout_secs", "> 0"),
        ({"render_mode": "weird"}, "options.render_mode", "'Static'"),
        ({"use_spider": "yes"}, "options.use_spider", "valid boolean"),
        ({"chunking_config": {"chunking_mode": "fixed"}}, "options.chunking_config.chunk_size", "required"),
        ({"chunking_config": {"chunking_mode": "x", "chunk_size": 1, "overlap_size": 0,
                              "min_chunk_size": 0}}, "options.chunking_config.chunking_mode", "pattern"),
    ],
)
def test_crawl_options_bad_input_names_field_and_value(fields, field, fragment):
    """Unknown fields and bad types raise our ValidationError naming the field."""
    with pytest.raises(ValidationError) as info:
        CrawlOptions(**fields)
    assert info.value.field == field
    assert fragment in str(info.value)
    assert field in str(info.value)


def test_crawl_options_assignment_is_validated():
    """Changing a field later is checked too."""
    options = CrawlOptions()
    with pytest.raises(ValidationError):
        options.concurrency = "many"


def test_coerce_options_accepts_dict_model_none():
    """options may be a CrawlOptions, a dict of its fields, or None."""
    assert coerce_options(None) is None
    model = CrawlOptions(concurrency=2)
    assert coerce_options(model) is model
    assert coerce_options({"cache_mode": "bypass"}).to_wire() == {"cache_mode": "bypass"}


@pytest.mark.parametrize("bad", ["bypass", 5, ["cache_mode"], {1: "x"}])
def test_coerce_options_rejects_other_types(bad):
    """Anything else is a ValidationError naming options."""
    with pytest.raises(ValidationError, match="options"):
        coerce_options(bad)


def test_chunking_config_wire_shape():
    """ChunkingConfig carries the server's field names (§5.2), not the async SDK's."""
    config = ChunkingConfig(chunking_mode="sliding", chunk_size=500, overlap_size=50, min_chunk_size=10)
    assert CrawlOptions(chunking_config=config).to_wire()["chunking_config"] == {
        "chunking_mode": "sliding", "chunk_size": 500, "overlap_size": 50,
        "min_chunk_size": 10, "preserve_sentences": True,
    }


FAILED_WS_RESULT = {
    "cache_key": "", "document": None,
    "error": {"error_type": "processing_error", "message": "Failed to process URL", "retryable": True},
    "from_cache": False, "gate_decision": "failed", "processing_time_ms": 0,
    "quality_score": 0.0, "status": 0, "url": "https://example.org/a",
}


def test_crawl_result_failed_shape_parses():
    """The exact §1.6 failed result parses; ok is False."""
    result = CrawlResult.model_validate(FAILED_WS_RESULT)
    assert not result.ok and result.error.error_type == "processing_error"


def test_crawl_result_ok_is_false_for_any_failed_fetch():
    """One definition of success: no error and an HTTP status in 1..399. An origin error
    page passed through without ``error`` (a lenient server: status 404) is a failure,
    as the real server's failed result (status 0, docs/protocol.md §5.3) is."""
    ok = {**FAILED_WS_RESULT, "error": None, "status": 200, "gate_decision": "raw", "document": None}
    assert CrawlResult.model_validate(ok).ok
    assert CrawlResult.model_validate({**ok, "status": 301}).ok
    assert not CrawlResult.model_validate({**ok, "status": 404}).ok
    assert not CrawlResult.model_validate({**ok, "status": 503}).ok
    assert not CrawlResult.model_validate({**ok, "status": 0}).ok


def test_response_models_keep_unknown_fields():
    """Fields the server adds later are kept, not rejected."""
    result = CrawlResult.model_validate({**FAILED_WS_RESULT, "new_field": 1})
    assert result.model_extra == {"new_field": 1}


def test_crawl_response_batch_example_parses():
    """The §4 batch example parses with documents and statistics."""
    body = {
        "total_urls": 1, "successful": 1, "failed": 0, "from_cache": 0,
        "results": [{"url": "https://example.org/a", "status": 200, "from_cache": False,
                     "gate_decision": "raw", "quality_score": 0.8, "processing_time_ms": 412,
                     "document": {"url": "https://example.org/a", "title": "T", "text": "x",
                                  "quality_score": None, "links": [], "byline": None,
                                  "published_iso": None, "markdown": "x", "media": [],
                                  "language": "en", "reading_time": 5, "word_count": 1532,
                                  "categories": [], "site_name": None, "description": None,
                                  "html": None, "parser_metadata": None},
                     "error": None, "cache_key": "riptide:v1:enhanced:https://example.org/a"}],
        "statistics": {"total_processing_time_ms": 433, "avg_processing_time_ms": 206.0,
                       "gate_decisions": {"raw": 1, "probes_first": 0, "headless": 0, "cached": 0},
                       "cache_hit_rate": 0.0},
    }
    response = CrawlResponse.model_validate(body)
    assert response.results[0].document.word_count == 1532
    assert response.statistics.gate_decisions.raw == 1


def test_health_response_healthy_flag():
    """healthy and degraded count as healthy; unhealthy does not."""
    assert HealthResponse(status="degraded").healthy
    assert not HealthResponse(status="unhealthy").healthy


def test_streaming_result_accessors():
    """event.result is a typed CrawlResult, built once; other events give None."""
    event = StreamingResult("result", {"index": 3, "result": FAILED_WS_RESULT,
                                       "progress": {"completed": 1}})
    assert event.index == 3
    assert event.result is event.result
    assert event.result.url == "https://example.org/a"
    assert event.progress == {"completed": 1}
    assert event.data["result"]["url"] == "https://example.org/a"
    summary = StreamingResult("summary", {"successful": 1})
    assert summary.result is None and summary.index is None and summary.progress is None
    assert summary.data["successful"] == 1


def test_streaming_result_equality_and_repr():
    """Events compare by content and print usefully."""
    a = StreamingResult("summary", {"x": 1}, "t")
    assert a == StreamingResult("summary", {"x": 1}, "t")
    assert a != StreamingResult("summary", {"x": 2}, "t")
    assert "summary" in repr(a)
    assert a.to_dict() == {"event_type": "summary", "data": {"x": 1}, "timestamp": "t"}
