"""The training launcher: starts `accelerate launch` entry points where the accelerators are, through Pipes.

One local process with no launch flags is started directly (`python -m resources.pretrain_process`): accelerate
would only set its environment, at a cost of seconds per run.

`local` (the default) runs on this machine — CPU, or its local GPUs. `slurm` runs the same command under `srun`
on a GPU node of a Slurm cluster; Pipes messages travel through a file on a directory the login node and the
compute nodes share (`shared_dir`), and the Pipes context through the environment (srun exports it). `k8s` runs
it in a pod (dagster-k8s `PipesK8sClient`): the image holds lmforge, a PersistentVolumeClaim holding LMFORGE_HOME
is mounted at the same path as on the Dagster side (so the work directory, its checkpoints and the lake survive a
pod that dies), and Pipes messages come back through the pod's logs. Either way the run's log lines and metrics
stream into the Dagster UI while it trains. Examples (dagster resource config; more in docs/launchers.md):

    training_launcher:
      config:
        mode: slurm
        num_processes: 8                  # GPUs on the node: accelerate starts one process per GPU
        slurm_args: ["--partition=gpu", "--nodes=1", "--gpus-per-node=8", "--time=24:00:00"]
        shared_dir: /shared/lmforge/pipes

    training_launcher:
      config:
        mode: k8s
        image: registry.internal/lmforge:2026.11
        namespace: training
        gpus: 8
        num_processes: 8
        work_volume_claim: lmforge-home   # mounted at LMFORGE_HOME in the pod
        node_selector: {nvidia.com/gpu.product: NVIDIA-H200}
        tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
        tracking_uri: http://mlflow.mlflow.svc:5000
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from dagster import AssetExecutionContext, ConfigurableResource, PipesFileMessageReader, PipesSubprocessClient
from pydantic import Field

from lineage.settings import Settings
from resources.pretrain_process import LIVE_KEY, LIVE_RUN_FILE, RESULT_FILE, RUN_CONFIG_FILE, watch_env

REPO = Path(__file__).resolve().parent.parent
MODES = ("local", "slurm", "k8s")
FILE_SCHEMES = ("", "file", "sqlite")  # tracking URIs that name a file on the Dagster side's disk
WORK_VOLUME, SHM_VOLUME = "lmforge-home", "dshm"
POD_LABELS = {"app.kubernetes.io/part-of": "lmforge", "app.kubernetes.io/component": "training"}


class TrainingLauncherResource(ConfigurableResource):
    """How training processes are started."""

    mode: str = Field(default="local", description="local (this machine) | slurm (srun on a GPU node) | k8s (a pod)")
    num_processes: int = Field(default=1, description="data-parallel processes (accelerate --num_processes)")
    entry_module: str = Field(default="resources.pretrain_process", description="module run by accelerate launch")
    launch_args: list[str] = Field(
        default_factory=list, description="extra `accelerate launch` flags (multi-node: see docs/launchers.md)"
    )
    env: dict[str, str] = Field(default_factory=dict, description="extra environment for the training processes")
    cpu_threads_per_process: int = Field(
        default=0,
        description="CPU threads of each training process (accelerate --num_cpu_threads_per_process, OMP_NUM_THREADS);"
        " 0: this machine's cores / num_processes in local mode, accelerate's default (1) on slurm and k8s",
    )
    live_metrics: bool = Field(default=True, description="training logs each metrics record to MLflow as it runs")
    tracking_uri: str | None = Field(
        default=None,
        description="MLflow URI the training processes log to (default: the Dagster side's, when they can reach it)",
    )
    # slurm
    slurm_args: list[str] = Field(default_factory=list, description="srun arguments (partition, gpus, time...)")
    srun: str = Field(default="srun", description="the srun executable")
    shared_dir: str | None = Field(
        default=None, description="slurm: directory shared with the compute nodes for Pipes messages"
    )
    # k8s
    image: str | None = Field(default=None, description="k8s: container image with lmforge and its .venv")
    namespace: str | None = Field(default=None, description="k8s: namespace (default: the current one)")
    gpus: int = Field(default=0, description="k8s: GPUs for the pod (resources.limits nvidia.com/gpu)")
    cpu: str | None = Field(default=None, description="k8s: CPU request and limit, e.g. '32'")
    memory: str | None = Field(default=None, description="k8s: memory request and limit, e.g. '512Gi'")
    shm_size: str = Field(default="64Gi", description="k8s: size of /dev/shm (NCCL and data loaders need room)")
    work_volume_claim: str | None = Field(
        default=None, description="k8s: PersistentVolumeClaim holding LMFORGE_HOME, mounted at the same path"
    )
    node_selector: dict[str, str] = Field(default_factory=dict, description="k8s: node labels the pod needs")
    tolerations: list[dict[str, Any]] = Field(
        default_factory=list, description="k8s: tolerations (key, operator, value, effect) for GPU node taints"
    )
    service_account: str | None = Field(default=None, description="k8s: service account of the pod")
    working_dir: str | None = Field(default=None, description="k8s: lmforge's directory in the image")
    accelerate: str = Field(default="accelerate", description="k8s: the accelerate executable in the image")
    kubeconfig_file: str | None = Field(
        default=None, description="k8s: kubeconfig (default: in-cluster config inside a cluster, else ~/.kube)"
    )
    kube_context: str | None = Field(default=None, description="k8s: kubeconfig context")
    pod_timeout_s: float = Field(default=0.0, description="k8s: seconds to wait for the pod to finish (0: no limit)")

    def check(self) -> None:
        """ValueError naming the field when the configuration cannot launch anything."""
        if self.mode not in MODES:
            raise ValueError(f"mode: must be one of {MODES}, got {self.mode!r}")
        if self.num_processes < 1:
            raise ValueError(f"num_processes: must be >= 1, got {self.num_processes}")
        if self.cpu_threads_per_process < 0:
            raise ValueError(f"cpu_threads_per_process: must be >= 0 (0: chosen), got {self.cpu_threads_per_process}")
        if self.mode != "k8s":
            return
        if not self.image:
            raise ValueError("image: k8s mode needs the container image to run training in")
        if not self.work_volume_claim:
            raise ValueError(
                "work_volume_claim: k8s mode needs a PersistentVolumeClaim for LMFORGE_HOME, so that "
                "checkpoints survive the pod and a retried run resumes"
            )
        if self.gpus < 0:
            raise ValueError(f"gpus: must be >= 0, got {self.gpus}")
        if self.gpus and self.num_processes != self.gpus:
            raise ValueError(
                f"num_processes: must equal gpus ({self.gpus}) in k8s mode, one process per GPU; "
                f"got {self.num_processes}"
            )

    def direct(self) -> bool:
        """Whether training starts without `accelerate launch`: one local process with no launch flags, for which
        accelerate would only set the environment (~5 s of start-up on two cores, each time)."""
        return self.mode == "local" and self.num_processes == 1 and not self.launch_args

    def command(self, config_path: Path, result_path: Path) -> list[str]:
        """The command line that runs training (under srun in slurm mode; the pod's command in k8s mode)."""
        self.check()
        entry = ["-m", self.entry_module, "--config", str(config_path), "--result", str(result_path)]
        if self.direct():
            return [sys.executable, *entry]  # its threads: OMP_NUM_THREADS, in client()
        accelerate = self.accelerate if self.mode == "k8s" else str(Path(sys.executable).parent / "accelerate")
        launch = [accelerate, "launch", "--dynamo_backend", "no"]
        if "--num_machines" not in self.launch_args:
            launch += ["--num_machines", "1"]
        if self.num_processes > 1:
            # On CPU-only machines accelerate 1.15 needs --multi_gpu to start N processes (they talk over gloo).
            launch += ["--multi_gpu", "--num_processes", str(self.num_processes)]
        else:
            launch += ["--num_processes", "1"]
        threads = self.threads_per_process()
        if threads and "--num_cpu_threads_per_process" not in self.launch_args:
            launch += ["--num_cpu_threads_per_process", str(threads)]
        command = [*launch, *self.launch_args, *entry]
        if self.mode == "slurm":
            return [self.srun, *self.slurm_args, *command]
        return command

    def threads_per_process(self) -> int:
        """CPU threads each training process gets, or 0 to leave accelerate's default.

        accelerate launch sets OMP_NUM_THREADS=1 unless told otherwise (as torchrun does), so a lone CPU process
        would train on one core of many: 1.55x slower on two cores (`bench.pretrain`, tiny). Locally this machine's
        cores are shared out among the processes; a node elsewhere has cores this machine cannot count.
        """
        if self.cpu_threads_per_process:
            return self.cpu_threads_per_process
        if self.mode != "local":
            return 0
        return max(1, len(os.sched_getaffinity(0)) // self.num_processes)

    def live_tracking_uri(self, dagster_tracking_uri: str) -> str | None:
        """The MLflow URI training processes log live metrics to, or None when they log none (the asset then
        logs the whole history at the end). Off the Dagster machine a file or SQLite URI is not reachable."""
        if not self.live_metrics:
            return None
        if self.tracking_uri:
            return self.tracking_uri
        if self.mode != "local" and urlparse(dagster_tracking_uri).scheme in FILE_SCHEMES:
            return None
        return dagster_tracking_uri

    def pod_env(self) -> dict[str, str]:
        """Environment of the training container (Pipes adds its bootstrap variables on top)."""
        env = {"LMFORGE_HOME": str(Settings.from_env().home)}
        if self.tracking_uri:
            env["MLFLOW_TRACKING_URI"] = self.tracking_uri
        return {**env, **self.env}

    def pod_spec(self, command: list[str]) -> dict[str, Any]:
        """The pod spec (Kubernetes camelCase keys) PipesK8sClient starts: one training container, LMFORGE_HOME
        from the claim at the same path as here, shared memory, GPUs, placement. Never restarted in place: a
        failed pod fails the step, and Dagster's retry starts a new pod that resumes from the checkpoints."""
        self.check()
        home = str(Settings.from_env().home)
        limits = {"nvidia.com/gpu": str(self.gpus)} if self.gpus else {}
        limits |= {name: value for name, value in (("cpu", self.cpu), ("memory", self.memory)) if value}
        container: dict[str, Any] = {
            "name": "training",
            "image": self.image,
            "command": command,
            "resources": {"limits": limits, "requests": dict(limits)},
            "volumeMounts": [{"name": WORK_VOLUME, "mountPath": home}, {"name": SHM_VOLUME, "mountPath": "/dev/shm"}],
        }
        if self.working_dir:
            container["workingDir"] = self.working_dir
        spec: dict[str, Any] = {
            "containers": [container],
            "restartPolicy": "Never",
            "volumes": [
                {"name": WORK_VOLUME, "persistentVolumeClaim": {"claimName": self.work_volume_claim}},
                {"name": SHM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": self.shm_size}},
            ],
        }
        if self.node_selector:
            spec["nodeSelector"] = dict(self.node_selector)
        if self.tolerations:
            spec["tolerations"] = [dict(toleration) for toleration in self.tolerations]
        if self.service_account:
            spec["serviceAccountName"] = self.service_account
        return spec

    def client(self) -> PipesSubprocessClient:
        """The Pipes client of a local or slurm launch."""
        self.check()
        if self.mode == "local":  # the training processes end when this one dies (see pretrain_process.py)
            threads = {"OMP_NUM_THREADS": str(self.threads_per_process())} if self.direct() else {}
            return PipesSubprocessClient(cwd=str(REPO), env={**threads, **self.env, **watch_env()})
        assert self.mode == "slurm", f"client() is for local and slurm launches, not {self.mode}"
        shared = Path(self.shared_dir) if self.shared_dir else Settings.from_env().home / "work" / "pipes"
        shared.mkdir(parents=True, exist_ok=True)
        messages = PipesFileMessageReader(str(shared / f"messages-{uuid.uuid4().hex}.jsonl"))
        return PipesSubprocessClient(cwd=str(REPO), env=dict(self.env), message_reader=messages)

    def run_training(
        self,
        context: AssetExecutionContext,
        work_dir: Path,
        config: dict[str, Any],
        *,
        tracking_uri: str,
        run_id: str | None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Train `config` in `work_dir` to completion: (the run's stats, what it logged live to MLflow run `run_id`).

        Writes the hand-off files (run.json, and mlflow_run.json when the training processes can log live), launches,
        and reads result.json. The live-run file is removed afterwards, so that a later launch by hand never logs
        into this run. The live summary is {"run_id", "through_step", "error"}, or {} when nothing was logged live.
        """
        work_dir.mkdir(parents=True, exist_ok=True)
        config_path, live_path = work_dir / RUN_CONFIG_FILE, work_dir / LIVE_RUN_FILE
        config_path.write_text(json.dumps(config, indent=2))
        live_uri = self.live_tracking_uri(tracking_uri)
        if live_uri and run_id:
            live_path.write_text(json.dumps({"tracking_uri": live_uri, "run_id": run_id}))
        try:
            self.launch(context, config_path, work_dir / RESULT_FILE)
        finally:
            live_path.unlink(missing_ok=True)
        stats = json.loads((work_dir / RESULT_FILE).read_text())
        return stats, stats.pop(LIVE_KEY, None) or {}

    def launch(self, context: AssetExecutionContext, config_path: Path, result_path: Path) -> None:
        """Run training to completion (raises when it fails); its log lines stream into `context`."""
        command = self.command(config_path, result_path)
        context.log.info(f"launching ({self.mode}): {' '.join(command)}")
        if self.mode == "k8s":
            self._launch_pod(context, command)
        else:
            self.client().run(command=command, context=context)

    def _launch_pod(self, context: AssetExecutionContext, command: list[str]) -> None:
        from dagster_k8s import PipesK8sClient  # only k8s launches need the Kubernetes client

        client = PipesK8sClient(kubeconfig_file=self.kubeconfig_file, kube_context=self.kube_context)
        client.run(
            context=context,
            namespace=self.namespace,
            env=self.pod_env(),
            base_pod_spec=self.pod_spec(command),
            base_pod_meta={"labels": POD_LABELS},
            pod_wait_timeout=self.pod_timeout_s,
        )
