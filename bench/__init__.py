"""magsit benchmarks (python -m bench)."""
