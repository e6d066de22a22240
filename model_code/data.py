"""Training batches from token shards: memory-mapped, deterministic for a seed, resumable from a position.

    reader = ShardReader(shards_dir, "train", expected_fingerprint=fp, seed=0, batch_size=8)
    for batch in reader:            # np.int64 array (B, T + 1): x = batch[:, :-1], y = batch[:, 1:]
        ...
        checkpoint["data_position"] = reader.position          # (shard, offset): resume with position=...

Order for a seed: the shards in a seeded permutation, and inside each shard its rows (packed sequences of
seq_len + 1 tokens) in a seeded permutation. A batch may take the last rows of one shard and the first of the
next. `position` is (shard file number, rows of that shard already handed out); a reader built with it continues
with exactly the batches the first would have produced next. One reader is one epoch; for the next epoch build
a reader with another seed (say seed + epoch). The last `rows % batch_size` rows of an epoch are dropped unless
drop_last=False. Rows whose tail is <|pad|> (the last of a split) should have those targets ignored (index.json
gives pad_id).

A shard set (data_code.shards.shard_set) reads like one directory whose shards lie in the day directories; the
rows it excludes (they hold a token of a superseded or opted-out document) are never handed out. A continued run
reads only the shards of its new `days`, plus a seeded `replay_fraction` share of rows from the earlier days; when
its budget (`fill_rows`) holds more rows than that, earlier days' rows fill the rest, so a night spends its budget
reading each of its new rows once and replaying, not re-reading its few new rows epoch after epoch.

On open, every shard file's size is checked against the manifest (a truncated file is named in the error), its
sha256 too when verify_sha256=True, and shards made with another tokenizer are refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from data_code.shards.layout import INDEX_FILE, MANIFEST_FILE, open_shard, read_json
from data_code.shards.shard_set import allowed_rows


class ShardReader:
    """Batches of packed rows of one split of a token-shard directory (see the module docstring)."""

    def __init__(
        self,
        shards_dir: str | Path,
        split: str,
        *,
        expected_fingerprint: str | None,
        seed: int = 0,
        batch_size: int = 8,
        position: tuple[int, int] | None = None,
        verify_sha256: bool = False,
        drop_last: bool = True,
        as_xy: bool = False,
        days: tuple[str, ...] = (),
        replay_fraction: float = 0.0,
        fill_rows: int = 0,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 <= replay_fraction < 1:
            raise ValueError(f"replay_fraction must be within [0, 1), got {replay_fraction!r}")
        self.shards_dir, self.split, self.seed, self.batch_size = Path(shards_dir), split, seed, batch_size
        self.drop_last, self.as_xy = drop_last, as_xy
        index, manifest = read_json(shards_dir, INDEX_FILE), read_json(shards_dir, MANIFEST_FILE)
        made_with = manifest["tokenizer_fingerprint"]
        if expected_fingerprint is not None and made_with != expected_fingerprint:
            raise ValueError(
                f"token shards in {self.shards_dir} were made with tokenizer {made_with}, but the model's tokenizer "
                f"is {expected_fingerprint}: rebuild the shards with the model's tokenizer, or train with theirs"
            )
        if split not in index["splits"]:
            raise ValueError(f"split {split!r} not in {self.shards_dir} (splits: {sorted(index['splits'])})")
        self.row_tokens, self.pad_id = index["row_tokens"], index["pad_id"]
        # Every shard is verified now, not when first reached: a bad file should fail the run before training.
        self._rows = [
            open_shard(shards_dir, entry, index, manifest, sha256=verify_sha256).reshape(-1, self.row_tokens)
            for entry in index["splits"][split]
        ]  # per shard: (rows, T + 1)
        # A shard set's entries name rows never to read (a superseded or opted-out document's); others read all.
        self._allowed = [allowed_rows(entry) for entry in index["splits"][split]]
        if days:
            self._allowed = _new_and_replayed(
                index["splits"][split], self._allowed, days, replay_fraction, seed, fill_rows
            )
            if not any(len(rows) for rows in self._allowed):
                raise ValueError(f"split {split!r} of {self.shards_dir} holds no row of the days {list(days)}")
        self.order = [int(n) for n in np.random.default_rng(seed).permutation(len(self._rows))]
        self._shard, self._offset = position if position is not None else (self.order[0] if self.order else 0, 0)
        if self.order and (self._shard not in self.order or not 0 <= self._offset <= len(self._allowed[self._shard])):
            raise ValueError(f"position {position} does not exist in split {split!r} of {self.shards_dir}")

    @property
    def position(self) -> tuple[int, int]:
        """(shard file number, rows of it already handed out): where the next batch starts."""
        return self._shard, self._offset

    def __len__(self) -> int:
        """Batches in a whole epoch (from the start, whatever the position)."""
        rows = sum(len(allowed) for allowed in self._allowed)
        return rows // self.batch_size if self.drop_last else -(-rows // self.batch_size)

    def __iter__(self) -> Iterator[np.ndarray | tuple[np.ndarray, np.ndarray]]:
        pending: list[np.ndarray] = []  # row blocks of the batch being gathered (it may span shards)
        pending_rows = 0
        for shard in self.order[self.order.index(self._shard) :] if self.order else []:
            self._shard = shard
            allowed = self._allowed[shard]
            permutation = allowed[np.random.default_rng([self.seed, shard]).permutation(len(allowed))]
            while self._offset < len(permutation):
                take = min(self.batch_size - pending_rows, len(permutation) - self._offset)
                pending.append(self._rows[shard][permutation[self._offset : self._offset + take]])
                pending_rows += take
                self._offset += take
                if pending_rows == self.batch_size:
                    yield self._batch(pending)
                    pending, pending_rows = [], 0
            if shard != self.order[-1]:
                self._offset = 0
        if pending and not self.drop_last:
            yield self._batch(pending)

    def handed_out(self, whole_epoch: bool = False) -> dict[int, np.ndarray]:
        """{shard file number: rows handed out}, from the epoch's start to the position (or the whole epoch). The
        last rows of an epoch that drop_last leaves out count as handed out: an audit may over-count, never miss."""
        stop = len(self.order) if whole_epoch else self.order.index(self._shard) + 1 if self.order else 0
        found = {}
        for shard in self.order[:stop]:
            allowed = self._allowed[shard]
            permutation = allowed[np.random.default_rng([self.seed, shard]).permutation(len(allowed))]
            count = len(permutation) if whole_epoch or shard != self._shard else self._offset
            if count:
                found[shard] = np.sort(permutation[:count])
        return found

    def _batch(self, blocks: list[np.ndarray]):
        batch = np.concatenate(blocks).astype(np.int64)  # (B, T + 1)
        return (batch[:, :-1], batch[:, 1:]) if self.as_xy else batch


def _new_and_replayed(
    entries: list[dict], allowed: list[np.ndarray], days, replay_fraction: float, seed: int, fill_rows: int = 0
):
    """The rows a continued run reads: every readable row of the shards of `days` (the new nights), plus a seeded
    sample of the other days' rows so that replayed rows make up `replay_fraction` of the whole (fewer when the
    earlier days hold fewer)."""
    new = [entry.get("day") in days for entry in entries]
    new_rows = sum(len(rows) for rows, is_new in zip(allowed, new, strict=True) if is_new)
    pool = [(i, row) for i, (rows, is_new) in enumerate(zip(allowed, new, strict=True)) if not is_new for row in rows]
    wanted = min(len(pool), max(round(new_rows * replay_fraction / (1 - replay_fraction)), fill_rows - new_rows))
    chosen = np.random.default_rng([seed, 1]).choice(len(pool), size=wanted, replace=False) if wanted else []
    replayed: dict[int, list[int]] = {}
    for pick in chosen:
        shard, row = pool[int(pick)]
        replayed.setdefault(shard, []).append(int(row))
    return [
        rows if is_new else np.array(sorted(replayed.get(i, [])), np.int64)
        for i, (rows, is_new) in enumerate(zip(allowed, new, strict=True))
    ]


def rows_read(
    shards_dir,
    *,
    expected_fingerprint,
    seed: int,
    end: tuple[int, int, int],
    days=(),
    replay_fraction: float = 0.0,
    fill_rows: int = 0,
) -> dict[int, np.ndarray]:
    """{train shard file number: rows} a TrainStream of `seed` handed out from its start to `end` (epoch, shard,
    offset), over every epoch: what a run (resumed or not) read, re-derived from its seeds."""
    last_epoch, shard, offset = end
    found: dict[int, np.ndarray] = {}
    for epoch in range(last_epoch + 1):
        reader = ShardReader(
            shards_dir,
            "train",
            expected_fingerprint=expected_fingerprint,
            seed=seed + epoch,
            position=(shard, offset) if epoch == last_epoch else None,
            days=tuple(days),
            replay_fraction=replay_fraction,
            fill_rows=fill_rows,
        )
        for number, rows in reader.handed_out(whole_epoch=epoch < last_epoch).items():
            found[number] = np.union1d(found[number], rows) if number in found else rows
    return found


class TrainStream:
    """Train rows across epochs: epoch e reads the split with seed + e; a position is (epoch, shard, offset).

    Each call of `next_rows()` returns the next `rows` rows (one reader batch, (rows, T + 1)); when an epoch runs
    out, the next starts. Data-parallel processes each build the same stream and take their own slice of every
    batch, so the global batch is the same rows whatever the number of processes.
    """

    def __init__(
        self,
        shards_dir,
        *,
        expected_fingerprint,
        seed: int,
        rows: int,
        position=None,
        verify_sha256=False,
        days: tuple[str, ...] = (),
        replay_fraction: float = 0.0,
        fill_rows: int = 0,
    ):
        self.shards_dir, self.fingerprint, self.seed, self.rows = shards_dir, expected_fingerprint, seed, rows
        self.verify_sha256, self.days, self.replay_fraction = verify_sha256, tuple(days), replay_fraction
        self.fill_rows = fill_rows
        epoch, shard, offset = position if position is not None else (0, None, None)
        self.orders: dict[int, list[int]] = {}  # epoch -> its reader's shard order
        self._open(epoch, (shard, offset) if shard is not None else None)

    def _open(self, epoch: int, position) -> None:
        self.epoch = epoch
        self.reader = ShardReader(
            self.shards_dir,
            "train",
            expected_fingerprint=self.fingerprint,
            seed=self.seed + epoch,
            batch_size=self.rows,
            position=position,
            verify_sha256=self.verify_sha256,
            days=self.days,
            replay_fraction=self.replay_fraction,  # each epoch replays another sample (its seed is seed + epoch)
            fill_rows=self.fill_rows,
        )
        if len(self.reader) == 0:
            raise ValueError(f"the train split of {self.shards_dir} has fewer rows than one batch ({self.rows} rows)")
        self.orders[epoch] = self.reader.order
        self._batches = iter(self.reader)

    @property
    def position(self) -> tuple[int, int, int]:
        """(epoch, shard file number, rows of it handed out): where the next batch starts."""
        return (self.epoch, *self.reader.position)

    def next_rows(self) -> np.ndarray:
        for _ in range(2):  # the current epoch, else one fresh epoch (which holds at least one batch)
            batch = next(self._batches, None)
            if batch is not None:
                return batch
            self._open(self.epoch + 1, None)
        raise AssertionError("a freshly opened epoch yielded no batch")
