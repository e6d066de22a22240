"""What a finished run leaves besides checkpoints: the HF model directory, the loss curve, the data order.

<output_dir>/model/            model.safetensors, config.json, generation_config.json (eos/pad ids) and the
                               tokenizer's files: loads with AutoModelForCausalLM / AutoTokenizer.from_pretrained
<output_dir>/loss_curve.png    train loss per logged step, validation loss per pass
<output_dir>/data_order.json   per epoch: its reader seed and the shard files read in order; start and end
                               reader positions; tokens seen; per night (day of a shard set): new or replayed, its
                               token_shards artifact, and the rows and tokens read of each of its shard files
<output_dir>/rows_read.parquet       file, day, role, row: every packed row handed out (all epochs)
<output_dir>/documents_read.parquet  doc_id, day, role: every document with a token in a row read (an auditor's
                                     proof that an opted-out document is, or is not, in what this run read)
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

MODEL_DIR = "model"
METRICS_FILE = "metrics.jsonl"  # one JSON record per logged step (and per validation pass)
LOSS_CURVE_FILE = "loss_curve.png"
DATA_ORDER_FILE = "data_order.json"
ROWS_READ_FILE = "rows_read.parquet"
DOCUMENTS_READ_FILE = "documents_read.parquet"
# What a run leaves beside model/ for its artifact:
RUN_OUTPUTS = (METRICS_FILE, LOSS_CURVE_FILE, DATA_ORDER_FILE, ROWS_READ_FILE, DOCUMENTS_READ_FILE)


CHECKPOINT_DIR = "checkpoint"  # inside a base_model artifact: its final weights and optimizer state


def collect_run_outputs(
    run_dir: Path, artifact_dir: Path, extra_files: tuple[str, ...] = (), *, checkpoint: bool = False
) -> dict:
    """Copy a finished run's model/ and outputs (plus `extra_files` present) from its run directory into the
    artifact directory; with `checkpoint`, its final checkpoint too (weights, optimizer state, meta.json: what a
    continued run starts from). Returns the data order record, which the artifact's stats carry."""
    from model_code.checkpoint import list_checkpoints

    shutil.copytree(run_dir / MODEL_DIR, artifact_dir / MODEL_DIR)
    if checkpoint:
        final = list_checkpoints(run_dir)
        if not final:
            raise FileNotFoundError(f"the run in {run_dir} left no checkpoint to keep")
        shutil.copytree(final[-1], artifact_dir / CHECKPOINT_DIR)
    for name in (*RUN_OUTPUTS, *extra_files):
        if (run_dir / name).exists():
            shutil.copy2(run_dir / name, artifact_dir / name)
    return json.loads((run_dir / DATA_ORDER_FILE).read_text(encoding="utf-8"))


def save_hf_model(model, tokenizer_dir: str | Path, out_dir: Path) -> Path:
    """The unwrapped model in HF format plus the tokenizer's files (not the tokenizer artifact's manifest)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model.config.use_cache = True  # generation wants the KV cache; training turned it off
    model.save_pretrained(out_dir)
    for path in Path(tokenizer_dir).iterdir():
        if path.is_file() and path.name != "manifest.json":
            shutil.copy2(path, out_dir / path.name)
    return out_dir


def plot_loss_curve(records: list[dict], path: Path, title: str, ylabel: str = "loss (nats / token)") -> Path:
    """A PNG of train loss (and validation loss where recorded) against tokens seen."""
    import matplotlib

    matplotlib.use("Agg")  # no display: render to a file
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4))
    train = [(r["tokens_seen"], r["loss"]) for r in records if r.get("loss") is not None]
    validation = [(r["tokens_seen"], r["val_loss"]) for r in records if r.get("val_loss") is not None]
    for points, label, style in ((train, "train", "-"), (validation, "validation", "o--")):
        if points:
            axes.plot(*zip(*points, strict=True), style, label=label)
    axes.set_xlabel("tokens seen")
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.legend()
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def data_order(shard_files: list[str], orders: dict[int, list[int]], start: dict, end: dict, tokens_seen: int) -> dict:
    """The data_order.json record: `orders` maps each epoch read to its reader's shard order (file numbers)."""
    epochs = []
    for epoch, order in sorted(orders.items()):
        last = end["shard"] if epoch == end["epoch"] else order[-1]
        read = order[: order.index(last) + 1] if order else []
        epochs.append({"epoch": epoch, "seed": start["seed"] + epoch, "shards": [shard_files[n] for n in read]})
    return {"epochs": epochs, "start": start, "end": end, "tokens_seen": tokens_seen}


def write_reading_record(shards_dir: str | Path, rows_by_shard: dict, days, output_dir: Path) -> list[dict]:
    """Write rows_read.parquet and documents_read.parquet for the train rows a run read ({shard file number: rows},
    model_code.data.rows_read); return the per-night summary data_order.json carries. A night is a day of a shard
    set; `days` are the new ones of a continued run (empty: every day is new); a plain shard directory is one night
    with day None."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from data_code.shards.layout import INDEX_FILE, read_json
    from data_code.shards.shard_set import documents_in_rows

    index = read_json(shards_dir, INDEX_FILE)
    nights: dict[str | None, dict] = {}
    rows_columns = {"file": [], "day": [], "role": [], "row": []}
    documents: dict[str, tuple[str | None, str]] = {}
    for number, entry in enumerate(index["splits"]["train"]):
        rows = rows_by_shard.get(number)
        if rows is None or len(rows) == 0:
            continue
        day = entry.get("day")
        role = "new" if not days or day in days else "replayed"
        night = nights.setdefault(day, {"day": day, "role": role, "token_shards": _artifact_of(entry["file"]),
                                        "rows": 0, "tokens": 0, "shards": []})  # fmt: skip
        night["rows"] += len(rows)
        night["tokens"] += len(rows) * index["seq_len"]
        night["shards"].append({"file": entry["file"], "rows_read": len(rows), "rows": entry["rows"]})
        for name, values in (("file", [entry["file"]] * len(rows)), ("day", [day] * len(rows))):
            rows_columns[name].extend(values)
        rows_columns["role"].extend([role] * len(rows))
        rows_columns["row"].extend(np.asarray(rows, np.int64).tolist())
        for doc_id in documents_in_rows(shards_dir, entry, index["row_tokens"], rows):
            documents.setdefault(doc_id, (day, role))
    text = pa.string()
    rows_schema = pa.schema([("file", text), ("day", text), ("role", text), ("row", pa.int64())])
    pq.write_table(pa.table(rows_columns, schema=rows_schema), output_dir / ROWS_READ_FILE)
    ids = sorted(documents)
    table = {"doc_id": ids, "day": [documents[i][0] for i in ids], "role": [documents[i][1] for i in ids]}
    documents_schema = pa.schema([("doc_id", text), ("day", text), ("role", text)])
    pq.write_table(pa.table(table, schema=documents_schema), output_dir / DOCUMENTS_READ_FILE)
    per_day = Counter(day for day, _ in documents.values())
    for night in nights.values():
        night["documents"] = per_day[night["day"]]
    return sorted(nights.values(), key=lambda night: night["day"] or "")


def _artifact_of(file: str) -> str | None:
    """'token_shards/<version>' of a shard-set entry's file (../../token_shards/<version>/train/00000.bin)."""
    parts = Path(file).parts
    return f"{parts[-4]}/{parts[-3]}" if len(parts) >= 4 and parts[-4] == "token_shards" else None


def write_json(path: Path, payload: dict) -> Path:
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return path
