"""Model presets as functions returning a full config (torchtitan-style recipes).

Only the fields the tokenizer and token-shard stages read live here so far; the pretraining stage adds the
model's shape (layers, heads, width) to the same dataclass.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    """A named model size."""

    name: str
    vocab_size: int  # tokens in the trained tokenizer's vocabulary (special tokens and 256 bytes included)
    seq_len: int  # model context in tokens; token shards pack rows of seq_len + 1

    def __post_init__(self):
        for name in ("vocab_size", "seq_len"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


def tiny() -> Preset:
    """Runs on a 2-core CPU in seconds: a 4k vocabulary, 256-token context."""
    return Preset(name="tiny", vocab_size=4096, seq_len=256)


def small() -> Preset:
    """A small GPU model: a 32k vocabulary (uint16 shards), 1024-token context."""
    return Preset(name="small", vocab_size=32_000, seq_len=1024)


PRESETS = {"tiny": tiny, "small": small}
