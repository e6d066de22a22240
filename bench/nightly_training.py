"""The training half of bench.nightly: each night continues the previous night's model, as base_model does.

Night 1 trains from scratch for `first_night_tokens`; every later night starts from the previous night's final
checkpoint (weights and optimizer state), re-warms and re-decays its learning rate, and reads that night's new rows
plus a replay share of the earlier nights for `tokens_per_night` (PretrainConfig init_from / train_days /
replay_fraction: what the base_model asset sets from its continuation plan). After each night: the training wall
time, the tokens trained, and held-out perplexity on every night's validation rows so far. At the last night, a
model trained from scratch on the union of all nights with the same total token budget as the whole chain.

`forgetting_pct`: for each older night, the continued model's perplexity on that night's validation rows at the
last night against right after the night it was trained on, in percent (the worst night; negative: it improved).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

PRESET = "tiny"
MICRO_BATCH = 8
EVAL_TOKENS = 32768  # validation targets scored per night (the first rows of its split)


def shard_set_dirs() -> tuple[Path, Path]:
    """(latest shard_set directory, its tokenizer directory)."""
    from lineage.settings import Settings
    from lineage.store import ArtifactStore

    store = ArtifactStore(Settings.from_env().store_root)
    version = store.latest("shard_set")
    manifest = store.read_manifest("shard_set", version)
    tokenizer = next(ref for ref in manifest.upstream if ref.asset == "tokenizer")
    return store.local_path("shard_set", version), store.local_path("tokenizer", tokenizer.version)


class Chain:
    """The continued chain across nights, and the from-scratch reference at the end."""

    def __init__(self, work: Path, tokens_per_night: int, first_night_tokens: int):
        self.work, self.tokens_per_night, self.first_night_tokens = work, tokens_per_night, first_night_tokens
        self.previous: Path | None = None  # the last night's run directory
        self.steps_total = 0
        self.after_own_night: dict[str, float] = {}  # day -> perplexity on its validation right after its night
        self.last_by_night: dict[str, float] = {}

    def night(self, number: int, day: str) -> dict:
        from model_code.checkpoint import list_checkpoints
        from model_code.evaluate.perplexity import perplexity_by_night
        from model_code.pretrain import train

        shards, tokenizer = shard_set_dirs()
        budget = self.first_night_tokens if self.previous is None else self.tokens_per_night
        run = self.work / f"night-{number}"
        config = self._config(shards, tokenizer, run, budget)
        if self.previous is not None:
            checkpoint = list_checkpoints(self.previous)[-1]
            config = {**config, "init_from": str(checkpoint), "train_days": (day,)}
        started = time.perf_counter()
        try:
            stats = train(_pretrain_config(config))
        except ValueError as error:  # a night without train rows of its own: nothing to train, the model stays
            if "holds no row of the days" not in str(error):
                raise
            return {"night": number, "train_wall_s": 0.0, "tokens_trained": 0, "skipped": str(error)}
        wall = time.perf_counter() - started
        self.previous, self.steps_total = run, self.steps_total + stats["steps"]
        by_night = {n["day"]: n["perplexity"] for n in perplexity_by_night(run / "model", shards, EVAL_TOKENS)}
        self.after_own_night.setdefault(day, by_night.get(day, math.nan))
        self.last_by_night = by_night
        return {
            "night": number,
            "start": "scratch" if number == 1 else "continued",
            "train_wall_s": round(wall, 2),
            "tokens_trained": stats["tokens_seen"],
            "steps": stats["steps"],
            "heldout_ppl": round(_mean_ppl(by_night), 3),
            "ppl_by_night": {k: round(v, 3) for k, v in by_night.items()},
        }

    def scratch_reference(self) -> dict:
        """From scratch on the union (the last shard set), with the chain's whole token budget."""
        from model_code.evaluate.perplexity import perplexity_by_night
        from model_code.pretrain import train

        shards, tokenizer = shard_set_dirs()
        run = self.work / "scratch"
        config = self._config(shards, tokenizer, run, 0)
        config["max_steps"] = self.steps_total
        started = time.perf_counter()
        stats = train(_pretrain_config(config))
        wall = time.perf_counter() - started
        by_night = {n["day"]: n["perplexity"] for n in perplexity_by_night(run / "model", shards, EVAL_TOKENS)}
        return {"train_wall_s": round(wall, 2), "tokens_trained": stats["tokens_seen"],
                "heldout_ppl": round(_mean_ppl(by_night), 3), "ppl_by_night": by_night}  # fmt: skip

    def forgetting_pct(self) -> float:
        """The worst older night's perplexity change, last night against right after its own night (percent)."""
        days = sorted(self.after_own_night)[:-1]  # the newest night has nothing to forget yet
        changes = [
            100.0 * (self.last_by_night[d] / self.after_own_night[d] - 1.0)
            for d in days
            if d in self.last_by_night and math.isfinite(self.after_own_night[d])
        ]
        return round(max(changes), 2) if changes else 0.0

    def _config(self, shards: Path, tokenizer: Path, run: Path, budget: int) -> dict:
        from data_code.shards.layout import INDEX_FILE, read_json

        seq_len = read_json(shards, INDEX_FILE)["seq_len"]
        steps = max(1, -(-budget // (MICRO_BATCH * seq_len))) if budget else 1
        return {
            "shards_dir": str(shards),
            "tokenizer_dir": str(tokenizer),
            "output_dir": str(run),
            "preset": PRESET,
            "micro_batch_size": MICRO_BATCH,
            "max_steps": steps,
            "eval_every": 0,
            "checkpoint_every": 0,
            "log_every": 10,
        }


def _pretrain_config(fields: dict):
    from model_code.config import PretrainConfig

    return PretrainConfig(**fields)


def _mean_ppl(by_night: dict[str, float]) -> float:
    """Perplexity over every night's validation rows, each night weighted alike (exp of the mean loss)."""
    losses = [math.log(v) for v in by_night.values()]
    return math.exp(sum(losses) / len(losses)) if losses else math.nan
