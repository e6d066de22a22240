"""Partitions shared by the data stages (one per crawl day, UTC, today included), and the freshness expected of
what the nightly retrain refreshes."""

from datetime import timedelta

from dagster import DailyPartitionsDefinition, FreshnessPolicy

# end_offset=1 makes today's partition available, so the nightly run can crawl the day it runs on.
daily_partitions = DailyPartitionsDefinition(start_date="2026-01-01", end_offset=1)

# The nightly run refreshes the crawl and the served model: older than a day and a half, the UI shows them stale
# (warning after 26 h, failing after 36 h), which is how a missed night becomes visible.
DAILY_FRESHNESS = FreshnessPolicy.time_window(fail_window=timedelta(hours=36), warn_window=timedelta(hours=26))
