"""The training launcher: starts `accelerate launch` entry points where the accelerators are, through Pipes.

`local` (the default) runs on this machine — CPU, or its local GPUs. `slurm` runs the same command under `srun`
on a GPU node of a Slurm cluster; Pipes messages travel through a file on a directory the login node and the
compute nodes share (`shared_dir`), and the Pipes context through the environment (srun exports it). Either way
the run's log lines and metrics stream into the Dagster UI while it trains. Example (dagster resource config):

    training_launcher:
      config:
        mode: slurm
        num_processes: 8                  # GPUs on the node: accelerate starts one process per GPU
        slurm_args: ["--partition=gpu", "--nodes=1", "--gpus-per-node=8", "--time=24:00:00"]
        shared_dir: /shared/lmforge/pipes
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

from dagster import AssetExecutionContext, ConfigurableResource, PipesFileMessageReader, PipesSubprocessClient
from pydantic import Field

from lineage.settings import Settings

REPO = Path(__file__).resolve().parent.parent
MODES = ("local", "slurm")


class TrainingLauncherResource(ConfigurableResource):
    """How training processes are started."""

    mode: str = Field(default="local", description="local (this machine) | slurm (srun on a GPU node)")
    num_processes: int = Field(default=1, description="data-parallel processes (accelerate --num_processes)")
    entry_module: str = Field(default="pipelines.pretrain_pipes", description="module run by accelerate launch")
    slurm_args: list[str] = Field(default_factory=list, description="srun arguments (partition, gpus, time...)")
    srun: str = Field(default="srun", description="the srun executable")
    shared_dir: str | None = Field(
        default=None, description="slurm: directory shared with the compute nodes for Pipes messages"
    )

    def command(self, config_path: Path, result_path: Path) -> list[str]:
        accelerate = Path(sys.executable).parent / "accelerate"
        launch = [str(accelerate), "launch", "--num_machines", "1", "--dynamo_backend", "no"]
        if self.num_processes > 1:
            # On CPU-only machines accelerate 1.15 needs --multi_gpu to start N processes (they talk over gloo).
            launch += ["--multi_gpu", "--num_processes", str(self.num_processes)]
        else:
            launch += ["--num_processes", "1"]
        command = [*launch, "-m", self.entry_module, "--config", str(config_path), "--result", str(result_path)]
        if self.mode == "slurm":
            return [self.srun, *self.slurm_args, *command]
        return command

    def client(self) -> PipesSubprocessClient:
        if self.mode not in MODES:
            raise ValueError(f"mode: must be one of {MODES}, got {self.mode!r}")
        if self.mode == "local":
            return PipesSubprocessClient(cwd=str(REPO))
        shared = Path(self.shared_dir) if self.shared_dir else Settings.from_env().home / "work" / "pipes"
        shared.mkdir(parents=True, exist_ok=True)
        messages = PipesFileMessageReader(str(shared / f"messages-{uuid.uuid4().hex}.jsonl"))
        return PipesSubprocessClient(cwd=str(REPO), message_reader=messages)

    def launch(self, context: AssetExecutionContext, config_path: Path, result_path: Path) -> None:
        """Run training to completion (raises when it fails); its log lines stream into `context`."""
        command = self.command(config_path, result_path)
        context.log.info(f"launching ({self.mode}): {' '.join(command)}")
        self.client().run(command=command, context=context)
