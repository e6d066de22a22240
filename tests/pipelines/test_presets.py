"""One set of defaults: the Launchpad of full_lifecycle and data_refresh opens with the demo's config.

`lmforge demo` runs demo_run_config([site]); `lmforge ui` sets LMFORGE_CRAWL_SEEDS to that site, the default of
raw_crawl's seeds; so a run launched from the UI resolves to the very config the demo ran, and builds the same
versions. The preset must also be valid for its job, or the Launchpad would open on an error.
"""

import copy

import pytest
from dagster._config import process_config

from pipelines.definitions import defs
from pipelines.presets import DEMO_OPS, demo_run_config

DAY = "2026-11-30"


@pytest.mark.parametrize("job_name", ["full_lifecycle", "data_refresh"])
def test_the_launchpad_preset_is_the_demo_config_and_valid(job_name):
    job = defs.resolve_job_def(job_name)
    preset = job.get_run_config_for_partition_key(DAY)
    selected = {key.to_user_string() for key in job.asset_layer.selected_asset_keys}
    expected = {name: config for name, config in demo_run_config()["ops"].items() if name in selected}
    assert preset == {"ops": expected} and expected["raw_crawl"]["config"]["max_pages"] == 400
    assert process_config(job.run_config_schema.config_type, preset).success


def test_the_demo_adds_only_its_seed_to_the_preset():
    demo = demo_run_config(["http://127.0.0.1:8642/index.html"])
    without_seeds = copy.deepcopy(demo)
    del without_seeds["ops"]["raw_crawl"]["config"]["seeds"]
    assert without_seeds == defs.resolve_job_def("full_lifecycle").get_run_config_for_partition_key(DAY)
    assert set(demo["ops"]) == set(DEMO_OPS)


def test_a_run_that_brings_its_own_config_gets_none_of_the_preset():
    """Schedules and `lmforge run --config` replace the preset, they do not merge into it."""
    from dagster import RunRequest

    job = defs.resolve_job_def("full_lifecycle")
    own = {"ops": {"raw_crawl": {"config": {"seeds": ["https://example.org/"]}}}}
    resolved = RunRequest(run_config=own, partition_key=DAY).with_resolved_tags_and_config(
        target_definition=job, dynamic_partitions_requests=[], dynamic_partitions_store=None
    )
    assert resolved.run_config == own
