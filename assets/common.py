"""What every lmforge asset does around its one call into data_code/ or model_code/.

`produce_artifact` computes the version, reuses a complete artifact when one exists, otherwise stages the
output, writes the manifest, publishes atomically and records the MLflow run. `materialize_result` turns the
outcome into Dagster metadata with the DataVersion, the artifact uri and the MLflow run link.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import inspect
import math
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetRecordsFilter,
    Config,
    DataVersion,
    MaterializeResult,
    MetadataValue,
)
from pydantic import Field, create_model

from lineage.identity import VERSION_KEY, changed_fields, compute_version, config_fields, versioned_fields
from lineage.manifest import Manifest, UpstreamRef, git_commit, package_versions
from lineage.store import ArtifactStore
from lineage.tracking import Tracker, upstream_tag


@dataclass
class Produced:
    """The outcome of one materialization."""

    manifest: Manifest
    reused: bool  # True when an identical artifact already existed and no work was done
    run_url: str | None
    path: Path | None  # local directory of the artifact (None on a remote store)


@dataclass
class Stage:
    """One materialization's handles: its Dagster context, the artifact store, the tracker and its code version.

    What every asset body starts with, so that the body itself only reads its upstream, calls its one library
    function in `produce` and shapes what the UI shows:

        stage = Stage.of(context, artifact_store, mlflow_tracking, CODE_VERSION)
        corpus = stage.upstream("training_corpus")
        produced = stage.produce(config, [corpus], lambda directory: train(stage.file(corpus), ...))
    """

    context: AssetExecutionContext
    store: ArtifactStore
    tracker: Tracker
    code_version: str

    @classmethod
    def of(cls, context: AssetExecutionContext, artifact_store: Any, mlflow_tracking: Any, code_version: str) -> Stage:
        """From the asset's resources (ArtifactStoreResource, MlflowTrackingResource)."""
        return cls(context, artifact_store.store(), mlflow_tracking.tracker(), code_version)

    def upstream(self, asset: str, partition: str | None = None) -> Manifest:
        """Manifest of `asset`'s latest materialization (for `partition`)."""
        return upstream_manifest(self.context, self.store, asset, partition)

    def latest(self, asset: str) -> Manifest | None:
        """Manifest of `asset`'s latest materialization (any partition), or None when it has none yet."""
        try:
            return latest_manifest(self.context.instance, self.store, asset)
        except FileNotFoundError:
            return None

    def partitions(self, asset: str) -> dict[str, Manifest]:
        """{partition: manifest of its latest materialization} of every materialized partition of `asset`."""
        return partition_manifests(self.context.instance, self.store, asset)

    def file(self, manifest: Manifest, relative: str = "") -> str:
        """URI of a file inside an upstream artifact ("" for its directory)."""
        return self.store.file_uri(manifest.asset, manifest.version, relative)

    def version(self, config: Any, upstream: list[Manifest], extra_identity: Mapping[str, Any] | None = None) -> str:
        """The version `produce` will give this artifact, known before any work."""
        return artifact_version(self.context, self.code_version, config, upstream, extra_identity)

    def produce(
        self,
        config: Any,
        upstream: list[Manifest],
        build: Callable[[Path], Mapping[str, Any]],
        *,
        extra_identity: Mapping[str, Any] | None = None,
        log_files: tuple[str, ...] = (),
    ) -> Produced:
        """produce_artifact for this stage."""
        return produce_artifact(
            self.context,
            store=self.store,
            tracker=self.tracker,
            code_version=self.code_version,
            config=config,
            upstream=upstream,
            build=build,
            extra_identity=extra_identity,
            log_files=log_files,
        )


def produce_artifact(
    context: AssetExecutionContext,
    *,
    store: ArtifactStore,
    tracker: Tracker,
    code_version: str,
    config: Any,
    upstream: list[Manifest],
    build: Callable[[Path], Mapping[str, Any]],
    extra_identity: Mapping[str, Any] | None = None,
    log_files: tuple[str, ...] = (),
) -> Produced:
    """Make (or reuse) the artifact of the current asset; `build(directory)` writes it and returns its stats.

    `log_files` (paths inside the artifact: plots, reports) are also attached to the MLflow run.
    """
    asset = context.asset_key.to_user_string()
    partition = own_partition(context)
    refs = _refs(upstream)
    identity = version_identity(context, config, extra_identity)
    version = compute_version(asset, code_version, identity, {ref.key: ref.version for ref in refs})
    if store.exists(asset, version):
        manifest = store.read_manifest(asset, version)
        context.log.info(f"{asset}@{version} already exists at {manifest.uri}: reusing it, nothing recomputed")
        run_url = tracker.run_url(manifest.mlflow_run_id) if manifest.mlflow_run_id else None
        return Produced(manifest, True, run_url, _local(store, asset, version))

    tags = {"lmforge.dagster_run_id": context.run_id, "lmforge.partition": partition or ""}
    tags.update({upstream_tag(ref): ref.version for ref in refs})
    tags.update(back_links(asset, version, context.run_id))
    with tracker.run(asset=asset, version=version, tags=tags) as run_id:
        with store.stage(asset, version) as staging:
            stats = dict(build(staging.path))
            manifest = Manifest(
                asset=asset,
                version=version,
                config=config_fields(config),
                code_version=code_version,
                upstream=refs,
                files=[],
                stats=stats,
                git_commit=git_commit(),
                packages=package_versions(),
                partition=partition,
                dagster_run_id=context.run_id,
                mlflow_run_id=run_id,
                identity=identity,
            )
            tracker.log_files(run_id, staging.path, [name for name in log_files if (staging.path / name).exists()])
            manifest = store.commit(staging, manifest)
        tracker.record(run_id, manifest, upstream, changed_fields(config))
    context.log.info(f"{asset}@{version} written to {manifest.uri}")
    return Produced(manifest, False, tracker.run_url(run_id), _local(store, asset, version))


def artifact_version(
    context: AssetExecutionContext,
    code_version: str,
    config: Any,
    upstream: list[Manifest],
    extra_identity: Mapping[str, Any] | None = None,
) -> str:
    """The version produce_artifact will give the current asset's artifact (known before any work)."""
    identity = version_identity(context, config, extra_identity)
    refs = _refs(upstream)
    return compute_version(
        context.asset_key.to_user_string(), code_version, identity, {ref.key: ref.version for ref in refs}
    )


def version_identity(context: AssetExecutionContext, config: Any, extra_identity: Mapping[str, Any] | None) -> dict:
    """What the version hashes besides asset, code version and upstream: versioned config, extras, partition."""
    identity = {**versioned_fields(config), **(extra_identity or {})}
    if own_partition(context) is not None:
        identity["partition"] = context.partition_key
    return identity


def own_partition(context: AssetExecutionContext) -> str | None:
    """The partition this asset materializes, or None for an unpartitioned asset, also when it runs inside a
    partitioned run (the nightly job's corpus, tokenizer and shard set: their version must not change by night)."""
    if not context.has_partition_key or context.assets_def.partitions_def is None:
        return None
    return context.partition_key


def _refs(upstream: list[Manifest]) -> list[UpstreamRef]:
    return [UpstreamRef(up.asset, up.version, up.uri, up.partition) for up in upstream]


def _local(store: ArtifactStore, asset: str, version: str) -> Path | None:
    return store.local_path(asset, version) if store.is_local else None


def materialize_result(
    produced: Produced, metadata: Mapping[str, Any] | None = None, check_results: list | None = None
) -> MaterializeResult:
    """MaterializeResult with the DataVersion, lineage metadata, the stage's own metadata and its check results."""
    manifest = produced.manifest
    lineage = {
        VERSION_KEY: manifest.version,
        "uri": manifest.uri,  # text, not a link: a browser opens no file:// link from an http page ("browse" does)
        "reused": produced.reused,
        "code_version": manifest.code_version,
        "upstream": MetadataValue.json([dataclasses.asdict(ref) for ref in manifest.upstream]),
        "files": len(manifest.files),
        "bytes": sum(entry.size for entry in manifest.files),
    }
    if produced.run_url:
        lineage["mlflow_run"] = MetadataValue.url(produced.run_url)
    if manifest.uri.startswith("file:"):  # browsers open no file:// link from an http page: `lmforge ui` serves it
        lineage["browse"] = MetadataValue.url(lake_link(manifest.asset, manifest.version))
    return MaterializeResult(
        data_version=DataVersion(manifest.version),
        metadata={**lineage, **{key: _for_people(value) for key, value in (metadata or {}).items()}},
        check_results=check_results,
    )


def _for_people(value: Any) -> Any:
    """Plain floats rounded to 4 significant digits for the UI (the manifest and MLflow keep every digit)."""
    if isinstance(value, float) and math.isfinite(value):
        return float(f"{value:.4g}")
    return value


def back_links(asset: str, version: str, dagster_run_id: str) -> dict[str, str]:
    """MLflow run tags that lead back: the Dagster run, the asset's page, the artifact (the run's description, which
    MLflow renders as Markdown, holds them as links)."""
    from lineage.settings import Settings

    dagster = Settings.from_env().dagster_ui_url
    run_url, asset_url = f"{dagster}/runs/{dagster_run_id}", f"{dagster}/assets/{asset}"
    note = f"[Dagster run]({run_url}) · [{asset} in Dagster]({asset_url}) · [artifact]({lake_link(asset, version)})"
    return {"lmforge.dagster_run_url": run_url, "mlflow.note.content": note}


def lake_link(asset: str, version: str, relative: str = "") -> str:
    """The http address of an artifact (or a file in it) on the read-only lake server `lmforge ui` starts."""
    from lineage.settings import Settings

    return f"{Settings.from_env().lake_url}/{asset}/{version}/{relative}"


def upstream_manifest(
    context: AssetExecutionContext, store: ArtifactStore, asset: str, partition: str | None = None
) -> Manifest:
    """Manifest of the latest materialization of `asset` (for `partition`) recorded in the Dagster instance."""
    return latest_manifest(context.instance, store, asset, partition)


def partition_manifests(instance: Any, store: ArtifactStore, asset: str) -> dict[str, Manifest]:
    """{partition: manifest of its latest materialization} of every materialized partition of `asset`, sorted."""
    partitions = sorted(instance.get_materialized_partitions(AssetKey(asset)))
    return {partition: latest_manifest(instance, store, asset, partition) for partition in partitions}


def recent_metadata(instance: Any, asset: str, limit: int = 1000) -> list[dict[str, Any]]:
    """The plain metadata values of `asset`'s latest materializations, newest first."""
    records = instance.fetch_materializations(AssetRecordsFilter(asset_key=AssetKey(asset)), limit=limit).records
    found = [record.asset_materialization for record in records]
    return [{key: entry.value for key, entry in m.metadata.items()} for m in found if m is not None]


def latest_manifest(instance: Any, store: ArtifactStore, asset: str, partition: str | None = None) -> Manifest:
    """Manifest of the latest materialization of `asset` (for `partition`) recorded in the Dagster instance."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(asset), asset_partitions=[partition] if partition else None), limit=1
    ).records
    where = f"{asset}" + (f" partition {partition}" if partition else "")
    if not records:
        raise FileNotFoundError(f"{where} has not been materialized yet: materialize it first")
    materialization = records[0].asset_materialization
    version_entry = materialization.metadata.get(VERSION_KEY) if materialization else None
    if version_entry is None:
        raise FileNotFoundError(f"{where}: its latest materialization records no artifact version")
    return store.read_manifest(asset, version_entry.value)


def dagster_config(
    dataclass_type: type, name: str, *, exclude: tuple[str, ...] = (), **extra_fields: tuple[Any, Any]
) -> type[Config]:
    """A Dagster Config class mirroring a stage's frozen config dataclass (same names, defaults, docs).

    The dataclass stays the single source of truth and does the validation; Dagster only carries the values.
    Field docs come from `field(metadata={"help": ...})` or the field's trailing `# comment`.
    """
    hints = typing.get_type_hints(dataclass_type)
    docs = field_comments(dataclass_type)
    fields: dict[str, Any] = {}
    for field in dataclasses.fields(dataclass_type):
        if not field.init or field.name in exclude:
            continue
        default = field.default
        if default is dataclasses.MISSING and field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        annotation = _pydantic_type(hints[field.name])
        if isinstance(default, tuple):
            default = list(default)
        description = field.metadata.get("help") or docs.get(field.name)
        fields[field.name] = (annotation, Field(default=default, description=description))
    fields.update(extra_fields)
    return create_model(name, __base__=Config, **fields)


def field_comments(dataclass_type: type) -> dict[str, str]:
    """Trailing '# comments' of a dataclass's field lines: the one-line docs STYLE.md asks for."""
    try:
        source = inspect.getsource(dataclass_type)
    except (OSError, TypeError):
        return {}
    pattern = re.compile(r"^\s+(\w+)\s*:[^#]*#\s*(.+?)\s*$")
    return {match.group(1): match.group(2) for match in map(pattern.match, source.splitlines()) if match}


def _pydantic_type(annotation: Any) -> Any:
    """tuple[str, ...] becomes list[str] (Dagster config has lists, not tuples)."""
    origin = typing.get_origin(annotation)
    if origin in (dict, collections.abc.Mapping):
        return dict[tuple(typing.get_args(annotation))]  # type: ignore[misc]
    if origin is tuple:
        return list[typing.get_args(annotation)[0]]
    if origin in (typing.Union, types.UnionType):
        members = [_pydantic_type(arg) for arg in typing.get_args(annotation) if arg is not type(None)]
        assert len(members) == 1, f"config fields may be X or X | None, not {annotation}"
        return members[0] | None
    return annotation


def dataclass_from_config(dataclass_type: type, config: Config, **overrides: Any) -> Any:
    """Build the stage's frozen dataclass (which validates) from Dagster config values."""
    names = {field.name for field in dataclasses.fields(dataclass_type) if field.init}
    values = {name: getattr(config, name) for name in names if hasattr(config, name)}
    values = {key: tuple(value) if isinstance(value, list) else value for key, value in values.items()}
    return dataclass_type(**{**values, **overrides})
