"""Partitions shared by the data stages: one partition per crawl day (UTC), today included."""

from dagster import DailyPartitionsDefinition

# end_offset=1 makes today's partition available, so the nightly run can crawl the day it runs on.
daily_partitions = DailyPartitionsDefinition(start_date="2026-01-01", end_offset=1)
