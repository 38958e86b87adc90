"""A smaller run of benchmarks/load.py: 2,000 messages, 8 threads, one hook, 429s on the way."""

from __future__ import annotations

from benchmarks.load import run_load


def test_load_without_loss() -> None:
    report = run_load(messages=2000, threads=8, rate_limit=300)
    assert report.errors == 0
    assert report.lost == 0
    assert report.doubled == 0
    assert report.rate_limited > 0, "the rate limit was meant to bite"
    assert report.retries == report.rate_limited  # only 429s were retried, each once per 429
