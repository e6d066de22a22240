"""The demo: the lifecycle on embedded defaults, against a real website served on 127.0.0.1.

    make demo            # or: lmforge demo [--max-pages N] [--partition YYYY-MM-DD]

Serves a real website locally (the Python manual, or Python's documentation server) and runs the
`full_lifecycle` job for today's partition through the real Dagster instance in $DAGSTER_HOME (so the web UI
shows the run): crawl → extract → dedupe → filter → tokenizer → shards → pretrain (tiny) → SFT → DPO →
quantize → evaluate → gate → register/promote → audit. Prints the champion, how to serve it and the audit report.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

from dagster import DagsterInstance

from lineage.settings import Settings, prepare_home
from pipelines.demo_site import demo_site


def demo_run_config(seed_url: str, max_pages: int) -> dict:
    """The whole lifecycle on the tiny preset: sized so that `make demo` ends in minutes on two cores."""
    return {
        "ops": {
            # The demo site is our own process on loopback, so it can take a brisker pace than a stranger's site.
            "raw_crawl": {
                "config": {
                    "seeds": [seed_url],
                    "max_pages": max_pages,
                    "max_depth": 3,
                    "requests_per_second_per_host": 25,
                }
            },
            "documents": {"config": {}},
            "base_model": {"config": {"preset": "tiny", "max_steps": 300}},
            "instruction_data": {"config": {"max_examples": 400}},
            "preference_data": {"config": {"max_examples": 400}},
            # LoRA on a 0.4M-parameter model needs a larger step than the defaults (sized for real models) to move.
            "sft_model": {"config": {"max_steps": 60, "learning_rate": 3e-3, "max_length": 256}},
            "dpo_model": {"config": {"max_steps": 60, "learning_rate": 2e-3, "max_length": 256}},
            "model_evaluation": {"config": {"eval_tokens": 8192, "task_examples": 100, "task_limit": 50}},
        },
        "loggers": {"console": {"config": {"log_level": "INFO"}}},
    }


def run_demo(max_pages: int = 400, partition: str | None = None) -> int:
    settings = Settings.from_env()
    prepare_home(settings)
    os.environ["DAGSTER_HOME"] = str(settings.dagster_home)
    os.environ.setdefault("LMFORGE_ALLOW_PRIVATE_HOSTS", "127.0.0.1")  # the demo site is on loopback
    from pipelines.definitions import defs  # after the environment is set

    partition = partition or datetime.now(UTC).strftime("%Y-%m-%d")
    started = time.perf_counter()
    with demo_site() as (site, description), DagsterInstance.get() as instance:
        print(f"demo: crawling {site} ({description}) for partition {partition}, then the whole lifecycle")
        result = defs.resolve_job_def("full_lifecycle").execute_in_process(
            run_config=demo_run_config(site, max_pages), instance=instance, partition_key=partition,
            raise_on_error=False,
        )  # fmt: skip
    if not result.success:
        gate = [e for e in result.get_asset_check_evaluations() if e.check_name == "promotion_gate" and not e.passed]
        if gate:  # the lifecycle worked; the new model is just not better than the one serving
            _print_summary([result], settings, time.perf_counter() - started)
            print(f"\ndemo: the new model did not pass the promotion gate, so the champion keeps serving:\n  "
                  f"{gate[0].description}")  # fmt: skip
            return 0
        failed = [event.step_key for event in result.all_events if event.event_type_value == "STEP_FAILURE"]
        print(f"demo: the run failed at {', '.join(failed) or 'a step'}; see the Dagster UI (make ui)")
        return 1
    _print_summary([result], settings, time.perf_counter() - started)
    return 0


def _print_summary(results, settings: Settings, elapsed_s: float) -> None:
    print("\nmaterialized:")
    events = [event for result in results for event in result.get_asset_materialization_events()]
    for event in events:
        materialization = event.event_specific_data.materialization
        metadata = {key: value.value for key, value in materialization.metadata.items()}
        counts = ", ".join(
            f"{key}={metadata[key]}"
            for key in (
                "pages_fetched",
                "pages_failed",
                "documents",
                "rejected",
                "documents_kept",
                "accuracy",
                "vocab_size",
                "tokens_train",
                "tokens_validation",
                "final_loss",
                "val_loss",
                "tokens_per_s",
                "rows",
                "train_loss_last",
                "reward_accuracy",
                "heldout_preference_accuracy",
                "perplexity",
                "promoted",
                "verified",
            )
            if key in metadata
        )
        print(f"  {materialization.asset_key.to_user_string():<12} {metadata.get('lmforge/version')}  {counts}")
        print(f"  {'':<12} artifact: {metadata.get('uri')}")
        if "mlflow_run" in metadata:
            print(f"  {'':<12} mlflow:   {metadata['mlflow_run']}")
    _print_champion(settings)
    print(f"\ndemo finished in {elapsed_s / 60:.1f} min (a second run reuses every artifact)")
    print(
        "\nwhere to look:\n"
        f"  make ui        Dagster UI http://127.0.0.1:3000 (Lineage: raw_crawl → … → audit_report; Automation) and\n"
        f"                 MLflow UI  http://127.0.0.1:5000 (experiment '{settings.experiment}')\n"
        f"  lmforge artifacts   the artifacts under {settings.store_root}/lake\n"
        f"  Dagster instance    {settings.dagster_home}"
    )


def _print_champion(settings: Settings) -> None:
    """The served model and its audit report."""
    from lineage.registry import Registry
    from lineage.tracking import Tracker

    champion = Registry(Tracker.from_settings(settings).client).champion()
    if champion is None:
        print("\nno champion yet (the gate did not pass)")
        return
    report = champion.tags.get("lmforge.audit_report", "(run audit_report)")
    print(f"\nchampion: {champion.name} v{champion.version} = serving_model/{champion.artifact_version}")
    print("  serve it:     lmforge serve            (OpenAI API on http://127.0.0.1:8080/v1)")
    print(f"  audit report: {report}")
    print(f"  audit again:  lmforge audit models:/{champion.name}@champion")
