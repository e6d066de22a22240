"""The `lmforge` command line: set up the home, run the demo, start the UIs, inspect artifacts.

    lmforge --help
    lmforge init                     # prepare $LMFORGE_HOME (Dagster instance, MLflow store, lake)
    lmforge demo                     # crawl a real local site and extract documents, end to end
    lmforge ui                       # Dagster UI on :3000 and MLflow UI on :5000, bound to 127.0.0.1
    lmforge artifacts [ASSET]        # complete artifacts in the store
    lmforge show ASSET VERSION       # an artifact's manifest.json
    lmforge trace SPLIT SHARD OFFSET [--shards VERSION]
                                     # token OFFSET of shard SHARD of SPLIT -> document -> URL, licence, fetch time

Later stages add their commands here (audit, serve, rollback).
"""

from __future__ import annotations

import argparse
import sys

from lineage.settings import Settings, prepare_home


def _init(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    written = prepare_home(settings)
    print(f"LMFORGE_HOME  {settings.home}")
    print(f"DAGSTER_HOME  {settings.dagster_home}" + ("  (dagster.yaml written)" if written else ""))
    print(f"MLflow        {settings.tracking_uri}")
    print(f"artifacts     {settings.store_root}/lake")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from pipelines.demo import run_demo

    return run_demo(max_pages=args.max_pages, partition=args.partition)


def _ui(args: argparse.Namespace) -> int:
    from pipelines.ui import run_ui

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

    from data_code.shards import trace
    from lineage.store import ArtifactStore

    store = ArtifactStore(Settings.from_env().store_root)
    version = args.shards or _latest(store, "token_shards")
    shards = store.read_manifest("token_shards", version)
    corpus = next((ref for ref in shards.upstream if ref.asset == "training_corpus"), None)
    if corpus is None:
        raise ValueError(f"token_shards/{version} records no training_corpus upstream")
    found = trace(
        store.file_uri("token_shards", version, ""),
        args.split,
        args.shard,
        args.offset,
        store.file_uri("training_corpus", corpus.version, "documents.parquet"),
    )
    print(json.dumps({"token_shards": version, **found}, indent=2, default=str))
    return 0


def _latest(store, asset: str) -> str:
    """The most recently created complete version of `asset`."""
    versions = store.versions(asset)
    if not versions:
        raise FileNotFoundError(f"no complete {asset} artifact under {store.lake()}: materialize it first")
    return max(versions, key=lambda version: store.read_manifest(asset, version).created_at)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lmforge", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("init", help="prepare $LMFORGE_HOME").set_defaults(func=_init)
    demo = commands.add_parser("demo", help="run the lifecycle on embedded defaults against a local site")
    demo.add_argument("--max-pages", type=int, default=400)
    demo.add_argument("--partition", help="crawl date YYYY-MM-DD (default: today, UTC)")
    demo.set_defaults(func=_demo)
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
    trace.add_argument("split", choices=["train", "validation"])
    trace.add_argument("shard", type=int, help="shard number within the split")
    trace.add_argument("offset", type=int, help="token offset within the shard")
    trace.add_argument("--shards", help="token_shards version (default: the newest)")
    trace.set_defaults(func=_trace)
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
