"""Configuration of the quantization stage: which GGUF files to write and how much quality each may lose."""

from __future__ import annotations

from dataclasses import dataclass, field

from model_code.export.gguf import QTYPES

# Default bounds per quantization against the fp32 parent, on held-out tokens. Q4_0 on a tiny model loses more
# than on a large one (fewer redundant weights), so its bound is loose; tighten it for production-size models.
DEFAULT_MAX_PPL_DELTA_PCT = {"F32": 0.1, "F16": 0.5, "Q8_0": 2.0, "Q4_0": 25.0}
DEFAULT_MAX_KL = {"F32": 0.001, "F16": 0.005, "Q8_0": 0.02, "Q4_0": 0.25}


@dataclass(frozen=True)
class QuantizeConfig:
    """GGUF exports and their quality bounds. Invalid values raise ValueError naming the field."""

    qtypes: tuple[str, ...] = ("F16", "Q8_0", "Q4_0")  # GGUF files to write (F32, F16, Q8_0, Q4_0)
    eval_tokens: int = 4096  # held-out validation tokens each GGUF is compared on against its parent
    max_ppl_delta_pct: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MAX_PPL_DELTA_PCT))  # per qtype
    max_kl: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MAX_KL))  # mean KL per token, nats

    def __post_init__(self):
        object.__setattr__(self, "qtypes", tuple(self.qtypes))
        unknown = [q for q in self.qtypes if q not in QTYPES]
        if not self.qtypes or unknown:
            raise ValueError(f"qtypes must be a non-empty subset of {sorted(QTYPES)}, got {list(self.qtypes)}")
        if self.eval_tokens < 1:
            raise ValueError(f"eval_tokens must be >= 1, got {self.eval_tokens}")
        for name in ("max_ppl_delta_pct", "max_kl"):
            bounds = getattr(self, name)
            missing = [q for q in self.qtypes if q not in bounds]
            if missing:
                raise ValueError(f"{name} has no bound for {missing} (give one per qtype)")
            if any(not isinstance(v, (int, float)) or v < 0 for v in bounds.values()):
                raise ValueError(f"{name} bounds must be numbers >= 0, got {bounds}")


def within_bounds(qtype: str, quality: dict, config: QuantizeConfig) -> list[str]:
    """Plain-words violations of `quality` (quantization_quality's dict) for `qtype` ([] = within bounds)."""
    problems = []
    if quality["ppl_delta_pct"] > config.max_ppl_delta_pct[qtype]:
        problems.append(
            f"{qtype}: perplexity +{quality['ppl_delta_pct']:.2f}% over the parent "
            f"(allowed +{config.max_ppl_delta_pct[qtype]}%)"
        )
    if quality["mean_kl"] > config.max_kl[qtype]:
        problems.append(f"{qtype}: mean KL {quality['mean_kl']:.4f} nats (allowed {config.max_kl[qtype]})")
    return problems
