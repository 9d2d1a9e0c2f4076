"""riptide_sync benchmarks: ``python -m benchmarks`` (see benchmarks/README.md)."""
