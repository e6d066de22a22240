"""Model presets as functions returning a full, frozen config (torchtitan-style recipes).

    from model_code.presets import tiny
    preset = tiny().with_vocab(tokenizer_vocab_size)   # the vocabulary always comes from the trained tokenizer
    hf_config = model_code.model.hf_config(preset, eos_id=0, pad_id=3)

A preset describes a stock Hugging Face architecture: Llama (RoPE, RMSNorm, SwiGLU, grouped-query attention via
num_kv_heads) or, when num_experts > 0, Mixtral (the same blocks with a top-k routed mixture of SwiGLU experts).
`tiny()` trains on a 2-core CPU in seconds; `small()` is a CPU demo; the larger ones are GPU configs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class ModelPreset:
    """A named model shape. Invalid values raise ValueError naming the field."""

    name: str
    vocab_size: int  # tokens in the trained tokenizer's vocabulary (special tokens and 256 bytes included)
    seq_len: int  # model context in tokens (max position embeddings); token shards pack rows of seq_len + 1
    hidden_size: int = 64  # width of the residual stream (d_model)
    num_layers: int = 2  # transformer blocks
    num_heads: int = 4  # query heads; head_dim = hidden_size / num_heads
    num_kv_heads: int = 2  # key/value heads (grouped-query attention); divides num_heads
    intermediate_size: int = 0  # SwiGLU inner width per expert; 0: ~8/3 hidden rounded up to a multiple of 32
    rope_theta: float = 10_000.0  # RoPE base frequency
    tie_word_embeddings: bool = True  # output head shares the embedding matrix (saves vocab x hidden params)
    rms_norm_eps: float = 1e-5
    initializer_range: float = 0.02  # std of the normal init of linear and embedding weights
    num_experts: int = 0  # 0: dense Llama; > 0: Mixtral mixture of experts with this many experts per layer
    experts_per_token: int = 2  # top-k routing (MoE only)
    router_aux_loss_coef: float = 0.01  # load-balancing loss weight (MoE only)

    def __post_init__(self):
        positive = ("vocab_size", "seq_len", "hidden_size", "num_layers", "num_heads", "num_kv_heads")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        for name in ("intermediate_size", "num_experts"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {getattr(self, name)!r}")
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size ({self.hidden_size}) must be divisible by num_heads ({self.num_heads})")
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"num_kv_heads ({self.num_kv_heads}) must divide num_heads ({self.num_heads})")
        if (self.hidden_size // self.num_heads) % 2:
            raise ValueError(
                f"hidden_size / num_heads must be even for RoPE, got {self.hidden_size // self.num_heads}"
            )
        if self.num_experts and not 1 <= self.experts_per_token <= self.num_experts:
            raise ValueError(
                f"experts_per_token must be in [1, num_experts={self.num_experts}], got {self.experts_per_token}"
            )
        for name in ("rope_theta", "rms_norm_eps", "initializer_range"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")

    @property
    def ffn_size(self) -> int:
        """SwiGLU inner width: intermediate_size, or 8/3 of hidden rounded up to a multiple of 32."""
        return self.intermediate_size or -(-8 * self.hidden_size // 3 // 32) * 32

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0

    def with_vocab(self, vocab_size: int) -> ModelPreset:
        """The same preset sized for a tokenizer's vocabulary."""
        return replace(self, vocab_size=vocab_size)


Preset = ModelPreset  # the name the tokenizer and shard stages used before the model shape was added


def tiny() -> ModelPreset:
    """~0.3M parameters with a 4k vocabulary (most of it the tied embedding); a 2-core CPU trains it in seconds."""
    return ModelPreset(
        name="tiny", vocab_size=4096, seq_len=256, hidden_size=64, num_layers=2, num_heads=4, num_kv_heads=2
    )


def small() -> ModelPreset:
    """~6M parameters (8k vocabulary): a meaningful CPU demo in minutes, 512-token context."""
    return ModelPreset(
        name="small", vocab_size=8192, seq_len=512, hidden_size=256, num_layers=6, num_heads=8, num_kv_heads=4
    )


def m30() -> ModelPreset:
    """~29M parameters with an 8k vocabulary (8 x 512, GQA 8/4): ~31 MB in Q8_0, past the CPU's private caches, so
    one stream's decoding reads weights from memory, as a served model's does; a 2-core CPU trains it briefly."""
    return ModelPreset(
        name="m30",
        vocab_size=8192,
        seq_len=512,
        hidden_size=512,
        num_layers=8,
        num_heads=8,
        num_kv_heads=4,
        intermediate_size=1408,
    )


def gpt2_124m() -> ModelPreset:
    """GPT-2 small's shape (12 x 768, 12 heads, 1024 context) as a Llama: ~124M parameters with a 50k vocabulary."""
    return ModelPreset(
        name="gpt2_124m",
        vocab_size=50_304,
        seq_len=1024,
        hidden_size=768,
        num_layers=12,
        num_heads=12,
        num_kv_heads=12,
        intermediate_size=2048,
    )


def m350() -> ModelPreset:
    """~350M parameters (24 x 1024, GQA 16/4, 2048 context): a single-GPU run."""
    return ModelPreset(
        name="m350",
        vocab_size=50_304,
        seq_len=2048,
        hidden_size=1024,
        num_layers=24,
        num_heads=16,
        num_kv_heads=4,
        intermediate_size=2816,
        tie_word_embeddings=False,
    )


def b1() -> ModelPreset:
    """~1.1B parameters (TinyLlama's shape: 22 x 2048, GQA 32/4, 2048 context): a multi-GPU run."""
    return ModelPreset(
        name="b1",
        vocab_size=32_000,
        seq_len=2048,
        hidden_size=2048,
        num_layers=22,
        num_heads=32,
        num_kv_heads=4,
        intermediate_size=5632,
        tie_word_embeddings=False,
    )


def tiny_moe() -> ModelPreset:
    """tiny with 4 SwiGLU experts per layer and top-2 routing (Mixtral): the MoE path on a CPU in seconds."""
    return replace(tiny(), name="tiny_moe", intermediate_size=128, num_experts=4, experts_per_token=2)


PRESETS = {
    "tiny": tiny,
    "small": small,
    "m30": m30,
    "gpt2_124m": gpt2_124m,
    "m350": m350,
    "b1": b1,
    "tiny_moe": tiny_moe,
}


def preset_named(name: str) -> ModelPreset:
    """The preset of that name; ValueError listing the names otherwise."""
    if name not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {name!r}")
    return PRESETS[name]()
