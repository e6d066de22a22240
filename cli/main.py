"""The `lmforge` command line: set up the home, run the demo, start the UIs, inspect artifacts.

lmforge --help
lmforge init                     # prepare $LMFORGE_HOME (Dagster instance, MLflow store, lake)
lmforge demo                     # the whole lifecycle on a real local site: crawl to a served, audited champion
lmforge run JOB [--config my.yaml] [--partition YYYY-MM-DD]
                                 # one job (full_lifecycle, data_refresh, retrain, ...) with your run config
lmforge ui                       # Dagster UI on :3000 and MLflow UI on :5000, bound to 127.0.0.1
lmforge artifacts [ASSET]        # complete artifacts in the store
lmforge show ASSET VERSION       # an artifact's manifest.json
lmforge trace SPLIT SHARD OFFSET [--shards VERSION]
                                 # token OFFSET of shard SHARD of SPLIT -> document -> URL, licence, fetch time

lmforge audit [models:/lmforge@champion | PATH | ASSET/VERSION] [--out DIR]
                                 # the compliance report: chain, verification, ML-BOM, model card, datasheet
lmforge audit which-models (--url URL | --domain DOMAIN)
                                 # every model (and registered version) trained on that URL / domain
lmforge serve [--alias champion] [--quant Q8_0] [--host 127.0.0.1] [--port 8080] [--parallel 4]
              [--canary challenger=10] [--shadow challenger] [--log-text] [--log-retention-days 30]
              [--speculative] [--draft-max 4]
                                 # OpenAI-compatible chat server (llama.cpp) on the alias's GGUF
lmforge serving-report [--dir DIR] [--days N]
lmforge rollback --reason "..." [--to VERSION]
                                 # move `champion` back to the previous champion, recording why
lmforge optout add ENTRY [--note TEXT] | list
                                 # owners' opt-outs (domain or URL prefix); flags affected models
lmforge history rebuild [--config my.yaml]
                                 # rebuild the dedupe history index (one part per day) from the day artifacts
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from data_code.document import SPLITS, TRAIN
from lineage.settings import Settings, prepare_home
from pipelines.presets import DEMO_MAX_PAGES


def _init(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    written = prepare_home(settings)
    print(f"LMFORGE_HOME  {settings.home}")
    print(f"DAGSTER_HOME  {settings.dagster_home}" + ("  (dagster.yaml written)" if written else ""))
    print(f"MLflow        {settings.tracking_uri}")
    print(f"artifacts     {settings.store_root}/lake")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from cli.demo import run_demo

    return run_demo(max_pages=args.max_pages, partition=args.partition)


def _run(args: argparse.Namespace) -> int:
    from cli.runner import execute_job, load_run_config, prepare_environment

    prepare_environment(Settings.from_env())
    run_config = load_run_config(args.config)  # before the job starts: a bad file fails here, naming itself
    print(f"lmforge run: {args.job}" + (f" for {args.partition}" if args.partition else ""))
    result, log_path = execute_job(args.job, run_config, args.partition)
    print(f"  full log: {log_path}")
    print(f"lmforge run: {args.job} {'succeeded' if result.success else 'FAILED'} (run {result.run_id})")
    return 0 if result.success else 1


def _ui(args: argparse.Namespace) -> int:
    from cli.ui import run_ui

    return run_ui(dagster_port=args.dagster_port, mlflow_port=args.mlflow_port)


def _artifacts(args: argparse.Namespace) -> int:
    from lineage.store import ArtifactStore

    store = ArtifactStore(Settings.from_env().store_root)
    lake = store.lake()
    assets = [args.asset] if args.asset else sorted(p.name for p in lake.iterdir()) if lake.exists() else []
    for asset in assets:
        for version in store.versions(asset):
            manifest = store.read_manifest(asset, version)
            size = sum(entry.size for entry in manifest.files)
            print(f"{asset:<20} {version}  {manifest.partition or '-':<10}  {manifest.created_at}  {size:>12,} B")
    return 0


def _show(args: argparse.Namespace) -> int:
    from lineage.store import ArtifactStore

    print(ArtifactStore(Settings.from_env().store_root).read_manifest(args.asset, args.version).to_json())
    return 0


def _trace(args: argparse.Namespace) -> int:
    import json

    from lineage.store import ArtifactStore
    from lineage.trace import trace_token

    if args.position:
        if len(args.position) != 3 or args.position[0] not in SPLITS:
            raise ValueError("trace takes SPLIT SHARD OFFSET, e.g. `lmforge trace train 0 1234`")
        args.split, args.shard, args.offset = args.position[0], int(args.position[1]), int(args.position[2])
    if args.shard is None or args.offset is None:
        raise ValueError("trace needs a shard and an offset: `lmforge trace --shard 0 --offset 1234`")
    store = ArtifactStore(Settings.from_env().store_root)
    found = trace_token(store, args.split or TRAIN, args.shard, args.offset, args.shards)
    print(json.dumps(found, indent=2, default=str))
    return 0


def _tracking():
    from lineage.tracking import Tracker

    return Tracker.from_settings()


def _audit(args: argparse.Namespace) -> int:
    import json
    import time
    from pathlib import Path

    from lineage.audit import build_audit, resolve_target, write_report
    from lineage.store import ArtifactStore

    started = time.perf_counter()
    settings = Settings.from_env()
    store, client = ArtifactStore(settings.store_root), _tracking().client
    if args.target == "which-models":
        return _which_models(args, store, client)
    asset, version, registry = resolve_target(args.target, store, client)
    audit = build_audit(store, asset, version, registry=registry, client=client)
    out = Path(args.out or settings.home / "audits" / f"{asset}-{version}")
    written = write_report(audit, out)
    mismatches = (audit.get("verification") or {}).get("mismatches", [])
    print(f"audit of {asset}/{version}" + (f" ({registry['name']} v{registry['version']})" if registry else ""))
    print(f"  artifacts in the chain: {len(audit['artifacts'])}")
    print(f"  verified: {audit['verified']}" + (f" ({len(mismatches)} mismatch(es))" if mismatches else ""))
    for mismatch in mismatches[:20]:
        print(f"    - {json.dumps(mismatch, default=str)}")
    lineage = audit["summary"].get("base_model_lineage") or []
    if lineage:
        print(f"  base models: {len(lineage)}, nights inherited: {', '.join(audit['summary']['nights_inherited'])}")
    proof = audit["summary"].get("opt_out_proof")
    if proof and proof["opted_out_documents"]:
        for rebuild in proof["rebuilds"]:
            print(f"  rebuilt base_model/{rebuild['base_model']} from base_model/{rebuild['started_from']} "
                  f"(replacing {rebuild['replaces']}, which an opt-out reached)")  # fmt: skip
        readers = [entry["base_model"] for entry in proof["base_models"] if entry["opted_out_read"]]
        verdict = f"read by {', '.join(readers)}" if readers else "absent from every base model's data order"
        print(f"  opted-out documents: {len(proof['opted_out_documents'])}, {verdict} "
              f"({len(proof['base_models'])} checked)")  # fmt: skip
    for name, path in written.items():
        print(f"  {name:<16} {path}")
    print(f"  took {time.perf_counter() - started:.1f} s")
    return 0 if audit["verified"] else 1


def _which_models(args, store, client) -> int:
    from lineage.audit import which_models

    if bool(args.url) == bool(args.domain):
        raise ValueError("which-models needs exactly one of --url URL or --domain DOMAIN")
    models = which_models(store, url=args.url, domain=args.domain, client=client)
    subject = args.url or args.domain
    if not models:
        print(f"no model was trained on data from {subject}")
        return 0
    for model in models:
        registered = ", ".join(
            f"{r['name']} v{r['version']}" + (f" ({', '.join(r['aliases'])})" if r.get("aliases") else "")
            for r in model.get("registered", [])
        )
        how = "trained on" if model.get("trained") else "validated on (not trained on)"
        print(
            f"{model['asset']}/{model['version']}  {how} {model.get('documents', '?')} document(s) of {subject}"
            + (f"  registered: {registered}" if registered else "")
        )
    return 0


def _serve(args: argparse.Namespace) -> int:
    import os
    import signal

    import uvicorn

    from cli.serving import Backends, RegistryRoutes
    from lineage.registry import Registry
    from model_code.gateway import Gateway, RequestLog
    from model_code.serve import API_KEY_ENV

    canary = _canary(args.canary) if args.canary else None
    extra = list(dict.fromkeys([*([canary[0]] if canary else []), *([args.shadow] if args.shadow else [])]))
    home = Settings.from_env().home / "serving"
    log = RequestLog(home / "log", args.log_retention_days, args.log_text)  # refuses a bad retention first
    if args.draft_max < 1:
        raise ValueError(f"--draft-max must be >= 1 (tokens the drafter proposes per step), got {args.draft_max}")
    backends = Backends(args.quant, args.parallel, home / "backends", args.speculative, args.draft_max)
    routes = None
    # SIGTERM (a supervisor's stop) must reach `finally`, which stops the llama-server backends, whenever it comes.
    # uvicorn drains the connections on SIGTERM, then raises the signal again with this handler restored: the
    # default one would end the process there, before `finally`.
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        routes = RegistryRoutes(Registry(_tracking().client), backends, args.alias, extra)
        gateway = Gateway(routes, api_key=os.environ.get(API_KEY_ENV), canary=canary, shadow=args.shadow, log=log)
        url = f"http://{args.host}:{args.port}"
        served = ", ".join(f"{name}: {route.version}" for name, route in routes().items())
        print(f"serving {served} ({args.quant}, {args.parallel} slots each) at {url}/v1 (OpenAI API)")
        if canary:
            print(f"  canary: {canary[1]} % of users to {canary[0]} (sticky per `user` or X-Session-Id)")
        if args.shadow:
            print(f"  shadow: every request mirrored to {args.shadow}, answers in {home / 'log'}/shadow-<day>.jsonl")
        print(f"  metrics: {url}/metrics   request log: {home / 'log'}   report: lmforge serving-report")
        uvicorn.run(gateway.app, host=args.host, port=args.port, log_level="warning")
        return 0
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the stopping short
        try:
            if routes is not None:
                routes.stop()
            backends.close()
        finally:
            signal.signal(signal.SIGTERM, previous)


def _canary(value: str) -> tuple[str, int]:
    alias, _, share = value.partition("=")
    if not alias or not share.isdigit() or not 0 <= int(share) <= 100:
        raise ValueError(f"--canary takes ALIAS=PERCENT, e.g. challenger=10, got {value!r}")
    return alias, int(share)


def _serving_report(args: argparse.Namespace) -> int:
    from model_code.gateway import serving_report

    directory = Path(args.dir) if args.dir else Settings.from_env().home / "serving" / "log"
    rows = serving_report(directory, args.days)
    if not rows:
        print(f"no requests logged in {directory}")
        return 0
    print(f"{'route':<12} {'model version':<16} {'requests':>8} {'errors':>6} {'error %':>7} {'p50 ms':>8} "
          f"{'p95 ms':>8} {'p99 ms':>8} {'TTFT p50':>8} {'TTFT p99':>8}")  # fmt: skip
    for row in rows:
        columns = ("latency_ms_p50", "latency_ms_p95", "latency_ms_p99", "ttft_ms_p50", "ttft_ms_p99")
        numbers = [row.get(column, "-") for column in columns]
        print(f"{str(row['route']):<12} {str(row['model_version']):<16} {row['requests']:>8} {row['errors']:>6} "
              f"{100 * row['error_rate']:>7.2f} " + " ".join(f"{value:>8}" for value in numbers))  # fmt: skip
    return 0


def _rollback(args: argparse.Namespace) -> int:
    from lineage.registry import Registry

    moved_from, moved_to = Registry(_tracking().client).rollback(args.reason, args.to)
    print(f"champion moved from v{moved_from} back to v{moved_to}: {args.reason}")
    return 0


def _optout(args: argparse.Namespace) -> int:
    from lineage.optout import add_optout, optout_path

    if args.action == "add":
        path = add_optout(args.entry, args.note)
        print(f"added {args.entry} to {path}; the next run excludes it, and audits flag models trained on it")
    else:
        path = optout_path()
        print(path.read_text(encoding="utf-8") if path.exists() else f"(no opt-outs: {path} does not exist)")
    return 0


def _history(args: argparse.Namespace) -> int:
    from dagster import DagsterInstance

    from assets.dedupe import rebuild_history
    from cli.runner import load_run_config, prepare_environment
    from data_code.dedupe.config import DedupeConfig
    from lineage.store import ArtifactStore

    settings = Settings.from_env()
    prepare_environment(settings)
    config = None
    if args.config:  # the LSH parameters the next runs will use: ops.deduplicated_documents.config
        values = load_run_config(args.config).get("ops", {}).get("deduplicated_documents", {}).get("config", {})
        config = DedupeConfig(**{key: tuple(v) if isinstance(v, list) else v for key, v in values.items()})
    with DagsterInstance.get() as instance:
        written = rebuild_history(instance, ArtifactStore(settings.store_root), config)
    for part in written:
        print(f"  {part['day']}  deduplicated_documents/{part['version']}  {part['rows']} documents")
    print(f"history index rebuilt: {len(written)} day part(s)" if written else "no deduplicated_documents day yet")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lmforge", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("init", help="prepare $LMFORGE_HOME").set_defaults(func=_init)
    demo = commands.add_parser("demo", help="run the lifecycle on embedded defaults against a local site")
    demo.add_argument(
        "--max-pages",
        type=int,
        default=DEMO_MAX_PAGES,
        help="pages to crawl (other than the "
        f"default {DEMO_MAX_PAGES}, the Launchpad's preset no longer builds the same versions)",
    )
    demo.add_argument("--partition", help="crawl date YYYY-MM-DD (default: today, UTC)")
    demo.set_defaults(func=_demo)
    run = commands.add_parser("run", help="run a job (full_lifecycle, data_refresh, retrain...) with a YAML config")
    run.add_argument("job", help="job name, e.g. full_lifecycle")
    run.add_argument("--config", help="Dagster run config as YAML (ops: {raw_crawl: {config: {seeds: [...]}}})")
    run.add_argument("--partition", help="crawl day YYYY-MM-DD for a partitioned job (default: today, UTC)")
    run.set_defaults(func=_run)
    ui = commands.add_parser("ui", help="start the Dagster and MLflow web UIs on 127.0.0.1")
    ui.add_argument("--dagster-port", type=int, default=3000)
    ui.add_argument("--mlflow-port", type=int, default=5000)
    ui.set_defaults(func=_ui)
    artifacts = commands.add_parser("artifacts", help="list complete artifacts in the store")
    artifacts.add_argument("asset", nargs="?")
    artifacts.set_defaults(func=_artifacts)
    show = commands.add_parser("show", help="print an artifact's manifest")
    show.add_argument("asset")
    show.add_argument("version")
    show.set_defaults(func=_show)
    trace = commands.add_parser("trace", help="which document (and URL) a token of a shard came from")
    trace.add_argument("position", nargs="*", help="SPLIT SHARD OFFSET (or use --split/--shard/--offset)")
    trace.add_argument("--split", choices=SPLITS, default=None, help="default: train")
    trace.add_argument("--shard", type=int, help="shard number within the split")
    trace.add_argument("--offset", type=int, help="token offset within the shard")
    trace.add_argument("--shards", help="shard_set version (default: the newest)")
    trace.set_defaults(func=_trace)
    audit = commands.add_parser("audit", help="compliance audit of a model back to every URL (or: which-models)")
    audit.add_argument(
        "target",
        nargs="?",
        default="models:/lmforge@champion",
        help="models:/NAME@ALIAS, models:/NAME/VERSION, an artifact directory, ASSET/VERSION, or 'which-models'",
    )
    audit.add_argument("--out", help="report directory (default: $LMFORGE_HOME/audits/<asset>-<version>)")
    audit.add_argument("--url", help="which-models: an exact URL")
    audit.add_argument("--domain", help="which-models: a domain (subdomains included)")
    audit.set_defaults(func=_audit)
    serve = commands.add_parser("serve", help="serve a registered model over the OpenAI chat API (llama.cpp)")
    serve.add_argument("--alias", default="champion")
    serve.add_argument("--quant", default="Q8_0", help="which GGUF of the serving artifact (Q8_0, Q4_0, F16)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--parallel", type=int, default=4, help="slots decoding at once (continuous batching)")
    serve.add_argument("--canary", help="ALIAS=PERCENT: that share of users to the alias, e.g. challenger=10")
    serve.add_argument("--shadow", help="ALIAS: mirror every request to it in the background, answers recorded")
    serve.add_argument("--log-text", action="store_true", help="log prompt and response text, PII-redacted")
    serve.add_argument("--log-retention-days", type=int, default=30, help="request log files kept this long")
    serve.add_argument("--speculative", action="store_true", help="decode with the model's distilled drafter")
    serve.add_argument("--draft-max", type=int, default=4, help="tokens the drafter proposes per step")
    serve.set_defaults(func=_serve)
    report = commands.add_parser("serving-report", help="requests, errors and latency per model version")
    report.add_argument("--dir", help="a request log directory (default: $LMFORGE_HOME/serving/log)")
    report.add_argument("--days", type=int, help="the last N days' files only")
    report.set_defaults(func=_serving_report)
    rollback = commands.add_parser("rollback", help="move `champion` back to the previous champion")
    rollback.add_argument("--reason", required=True, help="recorded on both model versions")
    rollback.add_argument("--to", help="model version to make champion (default: the previous champion)")
    rollback.set_defaults(func=_rollback)
    optout = commands.add_parser("optout", help="owners' opt-out list (domains, URL prefixes)")
    optout.add_argument("action", choices=["add", "list"])
    optout.add_argument("entry", nargs="?", help="add: example.com or https://example.com/path/")
    optout.add_argument("--note", help="add: why / who asked (kept as a comment)")
    optout.set_defaults(func=_optout)
    history = commands.add_parser("history", help="the dedupe history index (what earlier days kept)")
    history.add_argument("action", choices=["rebuild"])
    history.add_argument("--config", help="run config YAML whose deduplicated_documents LSH parameters to hash with")
    history.set_defaults(func=_history)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"lmforge {args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
