"""Checkpoints: accelerate `save_state` (model, optimizer, RNG states) plus a meta.json, written atomically.

    <output_dir>/checkpoints/step_000100/   model.safetensors, optimizer.bin, random_states_<rank>.pkl, meta.json

A checkpoint is written into `step_XXXXXX.partial/` and renamed once meta.json (step, tokens seen, data position,
config, and every file's size) is in it, so a run killed mid-write leaves no directory that looks complete.
Loading takes the newest checkpoint that passes the size check and loads; a bad one is logged by name and the
previous one is tried.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

CHECKPOINTS_DIR = "checkpoints"
META_FILE = "meta.json"
PARTIAL_SUFFIX = ".partial"

log = logging.getLogger(__name__)


def checkpoint_dir(output_dir: str | Path, step: int) -> Path:
    return Path(output_dir) / CHECKPOINTS_DIR / f"step_{step:06d}"


def save_checkpoint(accelerator, output_dir: str | Path, step: int, meta: dict, *, keep: int) -> Path:
    """Save the accelerator's state and `meta` as the checkpoint of `step`; keep the newest `keep`. All ranks call."""
    final = checkpoint_dir(output_dir, step)
    partial = final.with_name(final.name + PARTIAL_SUFFIX)
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial), safe_serialization=True)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        files = {p.name: p.stat().st_size for p in sorted(partial.iterdir()) if p.is_file()}
        (partial / META_FILE).write_text(json.dumps({**meta, "files": files}, indent=2) + "\n", encoding="utf-8")
        shutil.rmtree(final, ignore_errors=True)
        partial.rename(final)
        for old in list_checkpoints(output_dir)[:-keep]:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()
    return final


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete-looking checkpoint directories (renamed from .partial), oldest first."""
    root = Path(output_dir) / CHECKPOINTS_DIR
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob("step_*") if p.is_dir() and not p.name.endswith(PARTIAL_SUFFIX))


def read_meta(directory: Path) -> dict:
    """meta.json of a checkpoint after checking every listed file exists with its recorded size.

    Raises ValueError naming the directory and the problem.
    """
    meta_path = directory / META_FILE
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"checkpoint {directory} has no readable {META_FILE}: {error}") from error
    for name, size in meta.get("files", {}).items():
        path = directory / name
        if not path.is_file() or path.stat().st_size != size:
            actual = path.stat().st_size if path.is_file() else "no"
            raise ValueError(f"checkpoint {directory}: {name} has {actual} bytes, {META_FILE} says {size}")
    return meta


def load_latest_checkpoint(accelerator, output_dir: str | Path) -> tuple[dict | None, list[dict]]:
    """Load the newest valid checkpoint into the accelerator's objects.

    Returns (its meta or None when there is none, [{"checkpoint": dir, "error": why}] for each skipped one).
    """
    skipped = []
    for directory in reversed(list_checkpoints(output_dir)):
        try:
            meta = read_meta(directory)
            accelerator.load_state(str(directory))
        # A corrupt file surfaces as whatever its reader raises (safetensors, torch.load, pickle): all are the
        # same I/O failure here, logged by name, and the previous checkpoint is tried.
        except Exception as error:  # noqa: BLE001
            log.warning("checkpoint %s is unusable (%s); falling back to the previous one", directory, error)
            skipped.append({"checkpoint": str(directory), "error": str(error)})
            continue
        return meta, skipped
    return None, skipped


MODEL_FILE = "model.safetensors"  # what accelerate's save_state names the model's weights
OPTIMIZER_FILE = "optimizer.bin"


def warm_start(accelerator, model, optimizer, directory: str | Path) -> dict:
    """Load a parent checkpoint's weights into `model`, and its optimizer state into `optimizer` when it loads.

    `directory` is a checkpoint (it holds meta.json), or a run's output directory: its newest complete checkpoint (a
    run continued by the next run of the same launch, whose checkpoint is not there yet when the launch is planned).
    Not a resume: the data position, step count and RNG states of the parent are not taken. Raises ValueError
    naming the directory or file when there is no checkpoint or its weights do not load; a missing or unloadable
    optimizer state leaves a fresh optimizer, logged and returned as the reason.
    """
    import torch
    from safetensors.torch import load_model

    directory = Path(directory)
    if not (directory / META_FILE).is_file():
        checkpoints = list_checkpoints(directory)
        if not checkpoints:
            raise ValueError(f"parent run {directory} has no complete checkpoint to continue from")
        directory = checkpoints[-1]
    weights = directory / MODEL_FILE
    try:
        meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
        recorded = meta.get("files", {}).get(MODEL_FILE)
        if recorded is not None and weights.stat().st_size != recorded:
            raise ValueError(f"{weights.stat().st_size} bytes, {META_FILE} says {recorded}")
        load_model(accelerator.unwrap_model(model), str(weights), strict=True, device=str(accelerator.device))
    except Exception as error:  # noqa: BLE001 - safetensors, OSError, ValueError: the weights are unusable
        raise ValueError(f"parent checkpoint {directory}: its weights {weights.name} do not load ({error})") from error
    try:
        state = torch.load(directory / OPTIMIZER_FILE, map_location="cpu", weights_only=True)
        optimizer.load_state_dict(state)
        optimizer_state = "loaded"
    except Exception as error:  # noqa: BLE001 - missing, truncated or mismatched: a fresh optimizer will do
        optimizer_state = f"fresh ({OPTIMIZER_FILE}: {error})"
        log.warning("parent checkpoint %s: optimizer state unusable, continuing with a fresh optimizer: %s",
                    directory, error)  # fmt: skip
    return {
        "from": str(directory),
        "parent_step": meta.get("step"),
        "parent_tokens_seen": meta.get("tokens_seen"),
        "optimizer": optimizer_state,
    }
