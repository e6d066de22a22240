"""The training launcher: starts `accelerate launch` entry points where the accelerators are, through Pipes.

`local` (the default, and the tested path) runs on this machine — CPU, or its local GPUs — with
PipesSubprocessClient, so the run's log lines and metrics stream into the Dagster UI while it trains. GPU nodes
are a deployment choice: the same command under PipesK8sClient or a Slurm/SSH wrapper (see the README).
"""

from __future__ import annotations

import sys
from pathlib import Path

from dagster import AssetExecutionContext, ConfigurableResource, PipesSubprocessClient
from pydantic import Field

REPO = Path(__file__).resolve().parent.parent


class TrainingLauncherResource(ConfigurableResource):
    """How training processes are started."""

    mode: str = Field(default="local", description="local (this machine, through Pipes)")
    num_processes: int = Field(default=1, description="data-parallel processes (accelerate --num_processes)")
    entry_module: str = Field(default="pipelines.pretrain_pipes", description="module run by accelerate launch")

    def command(self, config_path: Path, result_path: Path) -> list[str]:
        accelerate = Path(sys.executable).parent / "accelerate"
        launch = [str(accelerate), "launch", "--num_machines", "1", "--dynamo_backend", "no"]
        if self.num_processes > 1:
            # On CPU-only machines accelerate 1.15 needs --multi_gpu to start N processes (they talk over gloo).
            launch += ["--multi_gpu", "--num_processes", str(self.num_processes)]
        else:
            launch += ["--num_processes", "1"]
        return [*launch, "-m", self.entry_module, "--config", str(config_path), "--result", str(result_path)]

    def launch(self, context: AssetExecutionContext, config_path: Path, result_path: Path) -> None:
        """Run training to completion (raises when it fails); its log lines stream into `context`."""
        if self.mode != "local":
            raise ValueError(f"mode: {self.mode!r} is not available in this deployment (local only)")
        PipesSubprocessClient(cwd=str(REPO)).run(command=self.command(config_path, result_path), context=context)
