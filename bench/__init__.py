"""By-hand benchmarks (not part of the test suite). See docs/benchmarks.md."""
