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

from cli.demo_site import demo_site
from cli.runner import execute_job, prepare_environment
from lineage.settings import Settings
from pipelines.presets import DEMO_MAX_PAGES, demo_run_config


def run_demo(max_pages: int = DEMO_MAX_PAGES, partition: str | None = None) -> int:
    settings = Settings.from_env()
    prepare_environment(settings)
    os.environ.setdefault("LMFORGE_ALLOW_PRIVATE_HOSTS", "127.0.0.1")  # the demo site is on loopback
    started = time.perf_counter()
    with demo_site() as (site, description):
        print(f"demo: crawling {site} ({description}), then the whole lifecycle; one line per asset as it completes")
        result, log_path = execute_job("full_lifecycle", demo_run_config([site], max_pages), partition)
    print(f"  full log: {log_path} (and the run in the Dagster UI: make ui)")
    if not result.success:
        gate = [e for e in result.get_asset_check_evaluations() if e.check_name == "promotion_gate" and not e.passed]
        if gate:  # the lifecycle worked; the new model is just not better than the one serving
            _print_summary(settings, time.perf_counter() - started)
            print(
                "\ndemo: the new model did not pass the promotion gate, so the champion keeps serving:\n  "
                f"{gate[0].description}"
            )
            return 0
        failed = [event.step_key for event in result.all_events if event.event_type_value == "STEP_FAILURE"]
        print(f"demo: the run failed at {', '.join(failed) or 'a step'}; see {log_path} or the Dagster UI (make ui)")
        return 1
    _print_summary(settings, time.perf_counter() - started)
    return 0


def _print_summary(settings: Settings, elapsed_s: float) -> None:
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
    if "lmforge.audit_report_link" in champion.tags:
        print(f"                {champion.tags['lmforge.audit_report_link']}  (over http while `make ui` runs)")
    print(f"  audit again:  lmforge audit models:/{champion.name}@champion")
