"""k8s mode without a cluster: the exact command, and the pod dagster-k8s builds from the launcher's spec (real
dagster-k8s and kubernetes model classes); config errors name the field. The cluster itself cannot exist here."""

from pathlib import Path

import pytest
from dagster_k8s.pipes import build_pod_body
from kubernetes.client import V1Pod

from resources.launcher import TrainingLauncherResource

H200 = dict(
    mode="k8s",
    image="registry.internal/lmforge:1",
    namespace="training",
    gpus=8,
    num_processes=8,
    work_volume_claim="lmforge-home",
    node_selector={"nvidia.com/gpu.product": "NVIDIA-H200"},
    tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    service_account="trainer",
    working_dir="/app",
    cpu="64",
    memory="900Gi",
    tracking_uri="http://mlflow.mlflow.svc:5000",
    env={"LMFORGE_STORE_ROOT": "/srv/lmforge"},
)


def pod(launcher: TrainingLauncherResource, config_path: Path, result_path: Path) -> V1Pod:
    command = launcher.command(config_path, result_path)
    env = {"DAGSTER_PIPES_CONTEXT": "ctx", "DAGSTER_PIPES_MESSAGES": "msg", **launcher.pod_env()}
    return build_pod_body("pod-1", None, None, env, {"labels": {"team": "ml"}}, launcher.pod_spec(command))


def test_pod_runs_accelerate_on_every_gpu_with_home_on_the_claim(tmp_path, monkeypatch):
    monkeypatch.setenv("LMFORGE_HOME", str(tmp_path / "home"))
    work = tmp_path / "home" / "work" / "base_model" / "abc"
    built = pod(TrainingLauncherResource(**H200), work / "run.json", work / "result.json")
    [container] = built.spec.containers
    assert container.command == [
        "accelerate",
        "launch",
        "--dynamo_backend",
        "no",
        "--num_machines",
        "1",
        "--multi_gpu",
        "--num_processes",
        "8",
        "-m",
        "resources.pretrain_process",
        "--config",
        str(work / "run.json"),
        "--result",
        str(work / "result.json"),
    ]
    assert container.image == "registry.internal/lmforge:1" and container.working_dir == "/app"
    limits = {"nvidia.com/gpu": "8", "cpu": "64", "memory": "900Gi"}
    assert container.resources.limits == limits and container.resources.requests == limits
    mounts = {mount.name: mount.mount_path for mount in container.volume_mounts}
    assert mounts == {"lmforge-home": str(tmp_path / "home"), "dshm": "/dev/shm"}  # same path as on this side
    volumes = {volume.name: volume for volume in built.spec.volumes}
    assert volumes["lmforge-home"].persistent_volume_claim.claim_name == "lmforge-home"
    assert volumes["dshm"].empty_dir.medium == "Memory"
    env = {var.name: var.value for var in container.env}
    assert env == {
        "DAGSTER_PIPES_CONTEXT": "ctx",
        "DAGSTER_PIPES_MESSAGES": "msg",
        "LMFORGE_HOME": str(tmp_path / "home"),
        "MLFLOW_TRACKING_URI": "http://mlflow.mlflow.svc:5000",
        "LMFORGE_STORE_ROOT": "/srv/lmforge",
    }
    assert built.spec.restart_policy == "Never"  # a failed pod fails the step; Dagster's retry resumes it
    assert built.spec.node_selector == {"nvidia.com/gpu.product": "NVIDIA-H200"}
    [toleration] = built.spec.tolerations
    assert (toleration.key, toleration.operator, toleration.effect) == ("nvidia.com/gpu", "Exists", "NoSchedule")
    assert built.spec.service_account_name == "trainer"
    assert built.metadata.labels["team"] == "ml"


def test_cpu_pod_asks_for_no_gpu_and_multi_node_flags_pass_through(tmp_path):
    launcher = TrainingLauncherResource(
        mode="k8s",
        image="lmforge:dev",
        work_volume_claim="home",
        launch_args=["--num_machines", "2", "--machine_rank", "0"],
    )
    command = launcher.command(tmp_path / "run.json", tmp_path / "result.json")
    assert command[:8] == [
        "accelerate",
        "launch",
        "--dynamo_backend",
        "no",
        "--num_processes",
        "1",
        "--num_machines",
        "2",
    ]
    assert command.count("--num_machines") == 1
    [container] = pod(launcher, tmp_path / "run.json", tmp_path / "result.json").spec.containers
    assert container.resources.limits is None or "nvidia.com/gpu" not in container.resources.limits


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (dict(work_volume_claim="home"), "image: k8s mode needs the container image"),
        (dict(image="lmforge:1"), "work_volume_claim: k8s mode needs a PersistentVolumeClaim"),
        (dict(image="lmforge:1", work_volume_claim="home", gpus=8, num_processes=4), "num_processes: must equal gpus"),
        (dict(image="lmforge:1", work_volume_claim="home", gpus=-1), "gpus: must be >= 0"),
    ],
)
def test_k8s_config_errors_name_the_field(fields, message, tmp_path):
    launcher = TrainingLauncherResource(mode="k8s", **fields)
    with pytest.raises(ValueError, match=message):
        launcher.command(tmp_path / "run.json", tmp_path / "result.json")
    with pytest.raises(ValueError, match=message):
        launcher.pod_spec(["true"])


def test_live_metrics_only_where_training_can_reach_mlflow():
    sqlite, server = "sqlite:////srv/lmforge/mlflow/mlflow.db", "http://mlflow:5000"
    assert TrainingLauncherResource().live_tracking_uri(sqlite) == sqlite  # same machine, same file
    pod = TrainingLauncherResource(mode="k8s", image="lmforge:1", work_volume_claim="home")
    assert pod.live_tracking_uri(sqlite) is None  # the asset logs the history when training ends
    assert pod.live_tracking_uri(server) == server
    reachable = TrainingLauncherResource(
        mode="k8s", image="lmforge:1", work_volume_claim="home", tracking_uri="http://mlflow.svc:5000"
    )
    assert reachable.live_tracking_uri(sqlite) == "http://mlflow.svc:5000"
    assert TrainingLauncherResource(live_metrics=False).live_tracking_uri(server) is None
