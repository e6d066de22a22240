"""Configuration of the token-shard stage."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

_SPEED_ONLY = {"versioned": False}  # read by lineage.identity.versioned_fields


@dataclass(frozen=True)
class ShardConfig:
    """How documents become packed token shards. Invalid values raise ValueError naming the field."""

    seq_len: int = 256  # model context T in tokens; each packed row holds seq_len + 1 tokens (inputs + next)
    validation_fraction: float = 0.05  # share of documents (by hash of doc_id and seed) held out for validation
    seed: int = 0  # seeds the split, the mixture sampling and the shuffle
    shard_tokens: int = 50_000_000  # tokens per shard file at most, rounded down to whole rows
    mixture_field: str = "domain"  # Document column naming a document's source for the mixture
    # Target share per source (normalized over the sources present); a source not named gets 0 and is dropped
    # from train. None: each source keeps its natural share, n_i / N.
    mixture_weights: Mapping[str, float] | None = None
    temperature: float = 1.0  # shares become share_i^(1/T), renormalized; T > 1 flattens towards uniform
    shuffle_buffer: int = 8192  # documents held to shuffle the document order (bounded memory; changes output)
    text_field: str = "text"  # Document column holding the text
    # Speed-only: documents per encode_batch call; never changes the shards (a test proves it).
    batch_documents: int = field(default=1024, metadata=_SPEED_ONLY)
    # Where documents are tokenized: this process (local) or Spark's executors (mapInArrow); the same shards.
    engine: str = field(default="local", metadata=_SPEED_ONLY)

    def __post_init__(self):
        if self.engine not in ("local", "spark"):
            raise ValueError(f"engine must be 'local' or 'spark', got {self.engine!r}")
        for name in ("seq_len", "shard_tokens", "shuffle_buffer", "batch_documents"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if self.shard_tokens < self.seq_len + 1:
            raise ValueError(
                f"shard_tokens must hold one row (seq_len + 1 = {self.seq_len + 1}), got {self.shard_tokens}"
            )
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be within [0, 1), got {self.validation_fraction}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if self.mixture_weights is not None:
            weights = dict(self.mixture_weights)
            if any(not isinstance(w, (int, float)) or w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
                raise ValueError(f"mixture_weights must be >= 0 with a positive sum, got {weights}")
        for name in ("mixture_field", "text_field"):
            if not getattr(self, name):
                raise ValueError(f"{name} must not be empty")

    @property
    def row_tokens(self) -> int:
        """Tokens per packed row: seq_len inputs plus the one token that follows the last of them."""
        return self.seq_len + 1

    @property
    def reweights(self) -> bool:
        """Whether the mixture changes anything (otherwise every train document is kept once)."""
        return self.mixture_weights is not None or self.temperature != 1.0
