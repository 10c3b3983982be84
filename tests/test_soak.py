"""A short soak in the default suite (`nox -s soak` runs the long one)."""

from __future__ import annotations

from soak import run_soak

SECONDS = 3.0


def test_short_soak_balances_its_books_and_stays_flat(redis_url: str, mode: str) -> None:
    """Logging flat out: every record landed or was counted; memory, threads and descriptors stay put."""
    report = run_soak(redis_url, SECONDS, mode)
    print(report)
    assert report.balanced, "emitted != landed + dropped by the exporter + dropped by the processor"
    # A healthy local server: the exporter drops nothing, so what the processor took all landed.
    assert report.exporter_dropped == 0
    assert report.landed == report.emitted - report.processor_dropped > 0
    assert report.rss_growth_mb < 32
    assert report.threads_after == report.threads_before
    assert report.fds_after <= report.fds_before
