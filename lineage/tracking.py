"""MLflow recording conventions: one run per materialization, in one experiment.

params = the config fields that differ from their defaults (the whole config is the run's config.json);
metrics = the top-level numeric stats, at the run's last step and real time, plus per-step histories (the nested
stats, whose keys grow with the data — domains, reasons, filters — are the run's stats.json, not hundreds of
columns in the runs table); tags = asset, version, partition, Dagster run id and upstream versions; inputs =
upstream artifacts as MLflow datasets (uri + content digest, never the data itself); the manifest is attached to
the run as an artifact.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from data_code.files import read_jsonl
from lineage.manifest import Manifest, UpstreamRef, content_digest

TAG_PREFIX = "lmforge."
MAX_PARAM_LENGTH = 6000  # MLflow 3's limit on one param value
MAX_METRICS = 500
# The experiment opens in MLflow's model-training view (its runs and charts), not the GenAI traces dashboard.
EXPERIMENT_KIND, MODEL_TRAINING = "mlflow.experimentKind", "custom_model_development"
# The MLflow UI's sidebar mode is a browser setting (default: GenAI), which the experiment's kind does not change;
# links carry the mode, so that one opens on the runs and their charts, in a fresh browser too.
TRAINING_VIEW = "?workflowType=machine_learning"


def run_page(ui_url: str, experiment_id: str, run_id: str) -> str:
    """The MLflow UI page of one run, in the model-training view."""
    return f"{ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}{TRAINING_VIEW}"


def run_id_from_page(url: str) -> str:
    """The run id of a run_page() address."""
    return url.split("?", 1)[0].rsplit("/", 1)[-1]


def experiment_page(ui_url: str, experiment_id: str) -> str:
    """The MLflow UI page of an experiment's runs, in the model-training view."""
    return f"{ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs{TRAINING_VIEW}"


class Tracker:
    """Thin, explicit wrapper over MlflowClient (no global active-run state, safe in any process)."""

    def __init__(self, tracking_uri: str, experiment: str, artifact_root: str | None, ui_url: str):
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.artifact_root = artifact_root
        self.ui_url = ui_url.rstrip("/")
        self.client = MlflowClient(tracking_uri=tracking_uri)
        self._experiment_id: str | None = None
        self.open_run_id: str | None = None  # the run `run()` has open (a training process may log into it live)

    @classmethod
    def from_settings(cls, settings=None) -> Tracker:
        """The tracker the environment configures (lineage/settings.py)."""
        from lineage.settings import Settings

        settings = settings or Settings.from_env()
        return cls(settings.tracking_uri, settings.experiment, settings.mlflow_artifact_root, settings.mlflow_ui_url)

    def experiment_id(self) -> str:
        if self._experiment_id is None:
            found = self.client.get_experiment_by_name(self.experiment)
            if found is not None:
                self._experiment_id = found.experiment_id
            else:
                self._experiment_id = self.client.create_experiment(
                    self.experiment, artifact_location=self.artifact_root, tags={EXPERIMENT_KIND: MODEL_TRAINING}
                )
            if found is not None and EXPERIMENT_KIND not in found.tags:  # made before the kind was set
                self.client.set_experiment_tag(self._experiment_id, EXPERIMENT_KIND, MODEL_TRAINING)
        return self._experiment_id

    def run_url(self, run_id: str) -> str:
        return run_page(self.ui_url, self.experiment_id(), run_id)

    @contextmanager
    def run(self, *, asset: str, version: str, tags: Mapping[str, str]) -> Iterator[str]:
        """Open a run for one materialization; it ends FINISHED, or FAILED if the body raises."""
        all_tags = {f"{TAG_PREFIX}asset": asset, f"{TAG_PREFIX}version": version, **tags}
        run = self.client.create_run(
            self.experiment_id(), tags={key: str(value) for key, value in all_tags.items()}, run_name=asset
        )
        run_id = self.open_run_id = run.info.run_id
        try:
            yield run_id
        except BaseException:
            self.client.set_terminated(run_id, "FAILED")
            raise
        finally:
            self.open_run_id = None
        self.client.set_terminated(run_id, "FINISHED")

    def fail_runs_of(self, dagster_run_id: str, reason: str) -> list[str]:
        """End as FAILED every MLflow run still RUNNING for Dagster run `dagster_run_id` (its process died), with
        the reason as the tag lmforge.failure; the run ids. Such a run never has lmforge.complete, so nothing reads
        its asset/version tags as a finished artifact."""
        query = f"tags.`{TAG_PREFIX}dagster_run_id` = '{dagster_run_id}' and attributes.status = 'RUNNING'"
        runs = self.client.search_runs([self.experiment_id()], filter_string=query)
        for run in runs:
            self.client.set_tag(run.info.run_id, f"{TAG_PREFIX}failure", reason[:5000])
            self.client.set_terminated(run.info.run_id, "FAILED")
        return [run.info.run_id for run in runs]

    def record(
        self, run_id: str, manifest: Manifest, upstream_manifests: list[Manifest], changed: Mapping[str, Any]
    ) -> None:
        """Log params (`changed`: the config fields not at their default), metrics, input datasets, the config, the
        stats and the manifest of a completed artifact."""
        params = [Param(key, _param_value(value)) for key, value in sorted(changed.items())]
        # Summary numbers at the run's real time and at its last step (a trained model's `steps`): at step 0 the
        # final val_loss would sit before the history that leads to it, and at time 0 every run would date 1970.
        now, last = _now_ms(), manifest.stats.get("steps")
        step = last if isinstance(last, int) and not isinstance(last, bool) else 0
        metrics = [Metric(key, value, now, step) for key, value in summary_metrics(manifest.stats).items()]
        metrics = self._not_yet_logged(run_id, metrics)  # a live history may hold the final point already
        tags = [RunTag(f"{TAG_PREFIX}uri", manifest.uri), RunTag(f"{TAG_PREFIX}code_version", manifest.code_version)]
        tags.append(RunTag(f"{TAG_PREFIX}complete", "true"))  # the artifact was published: this run made it
        self.client.log_batch(run_id, metrics=metrics[:MAX_METRICS], params=params, tags=tags)
        inputs = [
            DatasetInput(
                Dataset(
                    name=f"{up.asset}@{up.version}" + (f"[{up.partition}]" if up.partition else ""),
                    digest=content_digest(up),
                    source_type="lmforge-artifact",
                    source=json.dumps(
                        {"uri": up.uri, "asset": up.asset, "version": up.version, "partition": up.partition}
                    ),
                ),
                tags=[InputTag("mlflow.data.context", "upstream")],
            )
            for up in upstream_manifests
        ]
        if inputs:
            self.client.log_inputs(run_id, datasets=inputs)
        self.client.log_dict(run_id, manifest.config, "config.json")
        self.client.log_dict(run_id, manifest.stats, "stats.json")
        self.client.log_text(run_id, manifest.to_json(), "manifest.json")

    def log_history(self, run_id: str, records: list[dict]) -> None:
        """Per-step metrics (records with a 'step' and numeric fields) as MLflow metric histories."""
        now = _now_ms()
        metrics = [
            Metric(_metric_key(key), float(value), now, int(record["step"]))
            for record in records
            for key, value in record.items()
            if key != "step"
            and isinstance(value, (int, float))
            and not isinstance(value, bool)
            and not (isinstance(value, float) and math.isnan(value))
        ]
        metrics = self._not_yet_logged(run_id, metrics)  # the summary logged the final point at the last step
        for start in range(0, len(metrics), 1000):  # MLflow accepts at most 1000 metrics per batch
            self.client.log_batch(run_id, metrics=metrics[start : start + 1000])

    def _not_yet_logged(self, run_id: str, metrics: list[Metric]) -> list[Metric]:
        """`metrics` without the points (key, step, value) the run holds already: none is charted twice."""
        logged = {(m.key, m.step, m.value) for m in self.client.get_run(run_id).data._metric_objs}
        return [m for m in metrics if (m.key, m.step, m.value) not in logged]

    def log_history_file(self, run_id: str, path: Path, after_step: int = 0) -> None:
        """log_history of a metrics.jsonl file's records with a step after `after_step` (a missing file: none)."""
        records = read_jsonl(path, missing_ok=True)
        self.log_history(run_id, [record for record in records if record["step"] > after_step])

    def log_files(self, run_id: str, directory: Path, relative_paths: list[str]) -> None:
        """Attach files of an artifact (plots, reports) to the run, keeping their relative paths."""
        for relative in relative_paths:
            self.client.log_artifact(run_id, str(directory / relative), artifact_path=_artifact_dir(relative))


def _now_ms() -> int:
    return int(time.time() * 1000)


def upstream_tag(ref: UpstreamRef) -> str:
    """Run tag naming one input: 'lmforge.upstream.<asset>' or 'lmforge.upstream.<asset>:<partition>'."""
    return f"{TAG_PREFIX}upstream.{ref.asset}" + (f":{ref.partition}" if ref.partition else "")


def _artifact_dir(relative: str) -> str | None:
    parent = relative.rsplit("/", 1)[0] if "/" in relative else ""
    return parent or None


def summary_metrics(stats: Mapping[str, Any]) -> dict[str, float]:
    """The top-level numbers of an artifact's stats (booleans count; strings, NaN and nested mappings do not)."""
    return {_metric_key(key): float(value) for key, value in stats.items() if _is_number(value)}


def _is_number(value: Any) -> bool:
    return isinstance(value, (bool, int, float)) and not (isinstance(value, float) and math.isnan(value))


def flatten_metrics(stats: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric leaves of nested stats as 'a.b' -> float; booleans count, strings and NaN do not."""
    flat: dict[str, float] = {}
    for key, value in stats.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_metrics(value, f"{name}."))
        elif _is_number(value):
            flat[_metric_key(name)] = float(value)
    return flat


def _metric_key(name: str) -> str:
    # MLflow keys allow alphanumerics, _ - . space / only.
    return "".join(ch if ch.isalnum() or ch in "_-. /:" else "_" for ch in name)[:250]


def _param_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:MAX_PARAM_LENGTH]
