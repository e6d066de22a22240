"""The demo: the lifecycle on embedded defaults, against a real website served on 127.0.0.1.

    make demo            # or: lmforge demo [--max-pages N] [--partition YYYY-MM-DD]

Serves a real website locally (the Python manual, or Python's documentation server), trains the quality
classifier, materializes today's partition of every asset through the real Dagster
instance in $DAGSTER_HOME (so the web UI shows the runs), and prints where to look.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from dagster import DagsterInstance

from lineage.settings import Settings, prepare_home
from pipelines.demo_site import demo_site


def demo_run_config(seed_url: str, max_pages: int) -> dict:
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
    with demo_site() as (site, description), DagsterInstance.get() as instance:
        print(f"demo: crawling {site} ({description}) for partition {partition}")
        quiet = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
        classifier = defs.resolve_job_def("quality_classifier_job").execute_in_process(
            run_config=quiet, instance=instance, raise_on_error=False
        )
        if not classifier.success:
            print("demo: training the quality classifier failed; see the Dagster UI (make ui)")
            return 1
        result = defs.resolve_job_def("corpus_job").execute_in_process(
            run_config=demo_run_config(site, max_pages), instance=instance, partition_key=partition,
            raise_on_error=False,
        )  # fmt: skip
        if not result.success:
            print("demo: the run failed; see the Dagster UI (make ui) for the step that failed")
            return 1
        training = defs.resolve_job_def("training_data_job").execute_in_process(
            run_config=quiet, instance=instance, raise_on_error=False
        )
        if not training.success:
            print("demo: building the tokenizer or the shards failed; see the Dagster UI (make ui)")
            return 1
        pretrain_config = {"ops": {"base_model": {"config": {"preset": "tiny", "max_steps": 300}}}}
        pretraining = defs.resolve_job_def("pretrain_job").execute_in_process(
            run_config={**quiet, **pretrain_config}, instance=instance, raise_on_error=False
        )
    if not pretraining.success:
        print("demo: pretraining the base model failed; see the Dagster UI (make ui)")
        return 1
    _print_summary([classifier, result, training, pretraining], settings)
    return 0


def _print_summary(results, settings: Settings) -> None:
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
            )
            if key in metadata
        )
        print(f"  {materialization.asset_key.to_user_string():<12} {metadata.get('lmforge/version')}  {counts}")
        print(f"  {'':<12} artifact: {metadata.get('uri')}")
        if "mlflow_run" in metadata:
            print(f"  {'':<12} mlflow:   {metadata['mlflow_run']}")
    print(
        "\nwhere to look:\n"
        f"  make ui        Dagster UI http://127.0.0.1:3000 (Assets → raw_crawl, documents) and\n"
        f"                 MLflow UI  http://127.0.0.1:5000 (experiment '{settings.experiment}')\n"
        f"  lmforge artifacts   the artifacts under {settings.store_root}/lake\n"
        f"  Dagster instance    {settings.dagster_home}"
    )
