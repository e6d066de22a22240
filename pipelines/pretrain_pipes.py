"""model_code.pretrain under Dagster Pipes: what the training launcher runs, on this machine or on GPU nodes.

    accelerate launch -m pipelines.pretrain_pipes --config run.json [--result result.json]

The main process streams every metrics record to Dagster as a Pipes log line while it trains (other ranks train
silently) and writes the run's stats to --result. Outside a Pipes launch it behaves like model_code.pretrain.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from model_code.config import PretrainConfig
from model_code.pretrain import train


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="JSON file of PretrainConfig fields")
    parser.add_argument("--result", help="where the main process writes the run's stats (JSON)")
    args = parser.parse_args(argv)
    config = PretrainConfig.from_json(args.config)
    if not (_is_main_process() and os.environ.get("DAGSTER_PIPES_CONTEXT")):
        stats = train(config)
    else:
        from dagster_pipes import open_dagster_pipes

        with open_dagster_pipes() as pipes:
            pipes.log.info(f"pretraining {config.preset} for {config.max_steps} steps into {config.output_dir}")
            stats = train(config, on_metrics=lambda record: pipes.log.info(json.dumps(record, default=str)))
            pipes.log.info(f"done: {json.dumps(stats, default=str)}")
    if args.result and _is_main_process():
        Path(args.result).write_text(json.dumps(stats, indent=2, default=str))
    return stats


if __name__ == "__main__":
    main()
