"""Configuration of the tokenizer stage, and the special tokens every lmforge tokenizer carries."""

from __future__ import annotations

from dataclasses import dataclass, field

_SPEED_ONLY = {"versioned": False}  # read by lineage.identity.versioned_fields

EOS = "<|endoftext|>"  # ends every document in the token shards; the tokenizer's eos_token
IM_START = "<|im_start|>"  # opens a chat turn (ChatML): <|im_start|>role\ncontent<|im_end|>\n
IM_END = "<|im_end|>"  # closes a chat turn; where an assistant's generation stops
PAD = "<|pad|>"  # dedicated padding: pad == eos would teach a model never to stop (see shared FACTS)
REQUIRED_SPECIAL_TOKENS = (EOS, IM_START, IM_END, PAD)
BYTE_ALPHABET = 256  # byte-level BPE starts from one token per byte value


@dataclass(frozen=True)
class TokenizerConfig:
    """How the byte-level BPE tokenizer is trained. Invalid values raise ValueError naming the field."""

    vocab_size: int = 4096  # tokens in the vocabulary: special tokens + 256 bytes + merges (may end smaller)
    min_frequency: int = 2  # a pair must occur at least this often in the corpus to be merged
    special_tokens: tuple[str, ...] = REQUIRED_SPECIAL_TOKENS  # ids 0, 1, 2, ... in this order
    text_field: str = "text"  # column of the Document Parquet the tokenizer is trained on
    # Speed-only: documents per Arrow record batch handed to the trainer; never changes the vocabulary.
    batch_size: int = field(default=1024, metadata=_SPEED_ONLY)
    # The tokenizer is trained once, on the first corpus, and every later night reuses it (same fingerprint, so
    # models can continue from one another). True trains a new one on tonight's corpus: an explicit event that
    # makes the next base_model train from scratch. A changed vocabulary setting also trains a new one.
    retrain: bool = field(default=False, metadata=_SPEED_ONLY)

    def __post_init__(self):
        for name in ("vocab_size", "min_frequency", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        missing = [token for token in REQUIRED_SPECIAL_TOKENS if token not in self.special_tokens]
        if missing:
            raise ValueError(f"special_tokens must include {missing} (the shards and chat template use them)")
        if len(set(self.special_tokens)) != len(self.special_tokens):
            raise ValueError(f"special_tokens must be distinct, got {self.special_tokens}")
        smallest = len(self.special_tokens) + BYTE_ALPHABET
        if self.vocab_size < smallest:
            raise ValueError(
                f"vocab_size must be at least {smallest} ({len(self.special_tokens)} special tokens + "
                f"{BYTE_ALPHABET} bytes), got {self.vocab_size}"
            )
        if not isinstance(self.retrain, bool):
            raise ValueError(f"retrain must be true or false, got {self.retrain!r}")
        if not self.text_field:
            raise ValueError("text_field must not be empty")
