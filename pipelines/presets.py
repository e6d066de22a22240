"""The demo's configuration, written once: `lmforge demo` runs it, and the web UI's Launchpad opens each job with it.

    lmforge demo                       # full_lifecycle with demo_run_config(seed)
    make ui → full_lifecycle → Materialize all → the Launchpad holds job_config(full_lifecycle)

So a run launched from the UI and `make demo` build the same artifact versions. What the Launchpad leaves out is the
seed: raw_crawl's default seeds come from LMFORGE_CRAWL_SEEDS, which `lmforge ui` sets to the demo site it serves
(the same URL `lmforge demo` crawls). Sized so that the demo ends in minutes on two cores, on the tiny preset.
"""

from __future__ import annotations

import copy
from typing import Any

DEMO_MAX_PAGES = 400
DEMO_OPS: dict[str, dict[str, Any]] = {
    # The demo site is our own process on loopback, so it can take a brisker pace than a stranger's site.
    "raw_crawl": {"max_pages": DEMO_MAX_PAGES, "max_depth": 3, "requests_per_second_per_host": 25},
    "base_model": {"preset": "tiny", "max_steps": 300},
    "instruction_data": {"max_examples": 400},
    "preference_data": {"max_examples": 400},
    # LoRA on a 0.4M-parameter model needs a larger step than the defaults (sized for real models) to move.
    "sft_model": {"max_steps": 60, "learning_rate": 3e-3, "max_length": 256},
    "dpo_model": {"max_steps": 60, "learning_rate": 2e-3, "max_length": 256},
    "model_evaluation": {"eval_tokens": 8192, "task_examples": 100, "task_limit": 50},
    # The drafter and its undistilled twin, sized for the tiny model: four launches, not minutes of them.
    "draft_model": {"max_steps": 100, "instruction_steps": 20},
}


def demo_run_config(seeds: list[str] | None = None, max_pages: int = DEMO_MAX_PAGES) -> dict[str, Any]:
    """The run config of `lmforge demo`: DEMO_OPS, with the seeds to crawl (default: LMFORGE_CRAWL_SEEDS)."""
    ops = copy.deepcopy(DEMO_OPS)
    ops["raw_crawl"]["max_pages"] = max_pages
    if seeds is not None:
        ops["raw_crawl"]["seeds"] = list(seeds)
    return {"ops": {name: {"config": config} for name, config in ops.items()}}


def job_config(asset_names: set[str]) -> dict[str, Any]:
    """The Launchpad default of a job whose selection is `asset_names`: the demo's config of those assets."""
    ops = demo_run_config()["ops"]
    return {"ops": {name: config for name, config in ops.items() if name in asset_names}}
