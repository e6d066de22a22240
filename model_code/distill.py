"""Distilling a drafter: a smaller student trained to match its teacher's next-token distribution.

    from model_code.distill import student_overrides, greedy_acceptance
    overrides = student_overrides(teacher_preset, fraction=0.25)        # model_overrides of the student
    PretrainConfig(..., model_overrides=overrides, teacher_dir=teacher)  # model_code.pretrain trains it
    greedy_acceptance(teacher_dir, student_dir, prompts, new_tokens=32)  # how often the student drafts right

The loss (Hinton et al. 2015; DistillSpec, Zhou et al. 2024, for drafters) is T^2 * KL(teacher || student) over
softmax(logits / T) at every position that has a target, plus `ce_weight` times the usual next-token cross-entropy.
The acceptance rate is what speculative decoding gains from: with greedy decoding the target keeps a drafted token
exactly when it is the target's own argmax, so the rate is the share of positions, along the teacher's greedy
continuation of held-out prompts, where the student's argmax is the teacher's token.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from model_code.presets import ModelPreset

IGNORE_INDEX = -100  # as model_code.steps


@dataclass(frozen=True)
class Teacher:
    """The teacher of a distillation run: its model (eval, frozen) and the loss's temperature and CE weight."""

    model: torch.nn.Module
    temperature: float = 1.0
    ce_weight: float = 0.0


def distill_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor, teacher: Teacher
) -> torch.Tensor:
    """T^2 KL(teacher || student) averaged over positions with a target, + ce_weight x cross-entropy (fp32)."""
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student logits {tuple(student_logits.shape)} and teacher logits {tuple(teacher_logits.shape)} differ: "
            "the two models do not share one vocabulary"
        )
    counted = (targets != IGNORE_INDEX).float()  # (B, T)
    temperature = teacher.temperature
    student_logp = F.log_softmax(student_logits.float() / temperature, dim=-1)
    teacher_logp = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    kl = (teacher_logp.exp() * (teacher_logp - student_logp)).sum(-1)  # (B, T)
    loss = (kl * counted).sum() / counted.sum().clamp(min=1) * temperature**2
    if teacher.ce_weight:
        cross_entropy = F.cross_entropy(
            student_logits.float().flatten(0, 1), targets.flatten(), ignore_index=IGNORE_INDEX
        )
        loss = loss + teacher.ce_weight * cross_entropy
    return loss


def load_teacher(teacher_dir: str | Path, device, *, temperature: float, ce_weight: float) -> Teacher:
    """The teacher model from its HF directory, frozen, on `device`."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(teacher_dir), dtype=torch.float32).to(device).eval()
    model.requires_grad_(False)
    return Teacher(model, temperature, ce_weight)


def preset_of(hf_config: dict, name: str = "teacher") -> ModelPreset:
    """The ModelPreset of a saved model's config.json (a Llama or Mixtral written by model_code.model)."""
    return ModelPreset(
        name=name,
        vocab_size=hf_config["vocab_size"],
        seq_len=hf_config["max_position_embeddings"],
        hidden_size=hf_config["hidden_size"],
        num_layers=hf_config["num_hidden_layers"],
        num_heads=hf_config["num_attention_heads"],
        num_kv_heads=hf_config["num_key_value_heads"],
        intermediate_size=hf_config["intermediate_size"],
        tie_word_embeddings=hf_config.get("tie_word_embeddings", True),
        num_experts=hf_config.get("num_local_experts", 0),
    )


@functools.lru_cache(maxsize=256)  # presets are frozen: a shape is counted once
def parameters_of(preset: ModelPreset) -> int:
    """Parameters of a model of this shape (built on the meta device: no memory, exact count)."""
    from model_code.model import build_model, count_parameters

    with torch.device("meta"):
        return count_parameters(build_model(preset, eos_id=0, pad_id=0))


def student_overrides(
    teacher: ModelPreset, fraction: float = 0.25, *, num_layers: int = 0, hidden_size: int = 0
) -> dict:
    """ModelPreset fields of a student with about `fraction` of the teacher's parameters, the teacher's head size.

    num_layers / hidden_size, when given (> 0), are kept as given and the other is searched. ValueError naming the
    field when a value is out of range.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"draft_fraction must be within (0, 1), got {fraction!r}")
    for name, value, limit in (("draft_layers", num_layers, teacher.num_layers), ("draft_hidden", hidden_size, None)):
        if not isinstance(value, int) or value < 0 or (limit and value > limit):
            raise ValueError(f"{name} must be an integer in [0, {limit or 'any'}] (0: chosen), got {value!r}")
    head_dim = teacher.hidden_size // teacher.num_heads
    kv_ratio = teacher.num_heads // teacher.num_kv_heads
    target = fraction * parameters_of(teacher)
    step = head_dim * kv_ratio  # whole groups of query heads per key/value head, as the teacher has
    widths = [hidden_size] if hidden_size else list(range(step, teacher.hidden_size + 1, step))
    depths = [num_layers] if num_layers else list(range(1, teacher.num_layers + 1))
    candidates = [_shape(teacher, layers, width, head_dim, kv_ratio) for layers in depths for width in widths]
    size = {id(fields): _size(teacher, fields) for fields in candidates}
    # Within 15 % of the target size, the shape nearest half the teacher's depth: one wide layer drafts poorly,
    # and every layer is a sequential step per drafted token. Else the nearest size.
    near = [fields for fields in candidates if abs(size[id(fields)] - target) <= 0.15 * target]
    half = -(-teacher.num_layers // 2)
    if near:
        return min(near, key=lambda fields: (abs(fields["num_layers"] - half), abs(size[id(fields)] - target)))
    return min(candidates, key=lambda fields: abs(size[id(fields)] - target))


def _size(teacher: ModelPreset, fields: dict) -> int:
    """parameters_of the teacher with these fields: layers are alike, so a count is one-layer's + (n - 1) x a layer's
    (two models built per width, not one per candidate: a b1 teacher's search takes 0.16 s, not 4.3)."""
    one, two = (parameters_of(dataclasses.replace(teacher, **{**fields, "num_layers": n})) for n in (1, 2))
    return one + (fields["num_layers"] - 1) * (two - one)


def _shape(teacher: ModelPreset, layers: int, width: int, head_dim: int, kv_ratio: int) -> dict:
    heads = max(1, width // head_dim)
    kv_heads = max(1, heads // kv_ratio)
    while heads % kv_heads:  # a given hidden_size may not hold whole groups
        kv_heads -= 1
    ffn = 0
    if teacher.intermediate_size:  # keep the teacher's FFN ratio, a multiple of 32
        ffn = max(32, round(teacher.intermediate_size * width / teacher.hidden_size / 32) * 32)
    return {"num_layers": layers, "hidden_size": heads * head_dim, "num_heads": heads, "num_kv_heads": kv_heads,
            "intermediate_size": ffn}  # fmt: skip


@torch.no_grad()
def greedy_acceptance(teacher, student, prompts: list[list[int]], new_tokens: int = 32) -> dict:
    """How often the student's greedy next token is the teacher's, along the teacher's greedy continuations.

    teacher / student: HF models or their directories. Returns {"acceptance" (matching positions / positions),
    "positions", "prompts", "new_tokens"}. ValueError when the two vocabularies differ or no prompt is given.
    """
    teacher, student = _model(teacher), _model(student)
    if teacher.config.vocab_size != student.config.vocab_size:
        raise ValueError(
            f"the drafter's vocabulary ({student.config.vocab_size} tokens) is not its teacher's "
            f"({teacher.config.vocab_size})"
        )
    if not prompts or new_tokens < 1:
        raise ValueError("greedy_acceptance needs at least one prompt and new_tokens >= 1")
    matched = positions = 0
    for ids in prompts:
        sequence = list(ids)
        for _ in range(new_tokens):  # the teacher's greedy continuation, never stopping early
            sequence.append(int(teacher(input_ids=torch.tensor([sequence])).logits[0, -1].argmax()))
        guesses = student(input_ids=torch.tensor([sequence[:-1]])).logits[0, len(ids) - 1 :].argmax(-1)
        matched += int((guesses == torch.tensor(sequence[len(ids) :])).sum())
        positions += new_tokens
    return {"acceptance": matched / positions, "positions": positions, "prompts": len(prompts),
            "new_tokens": new_tokens}  # fmt: skip


def _model(model_or_dir):
    if isinstance(model_or_dir, torch.nn.Module):
        return model_or_dir.eval()
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(model_or_dir), dtype=torch.float32).eval()


@dataclass(frozen=True)
class DraftConfig:
    """How a drafter is distilled from the serving model. Invalid values raise ValueError naming the field."""

    enabled: bool = True  # False: no drafter is trained (hosts where speculation does not pay); serving plainly
    draft_fraction: float = 0.25  # the drafter's parameters / the teacher's
    draft_layers: int = 0  # the drafter's layers (0: chosen with draft_hidden to meet draft_fraction)
    draft_hidden: int = 0  # the drafter's width (0: chosen)
    max_steps: int = 200  # optimizer updates of each student
    learning_rate: float = 3e-3
    micro_batch_size: int = 8
    distill_temperature: float = 1.0  # softmax temperature of the KL term
    distill_ce_weight: float = 0.0  # weight of the next-token cross-entropy added to the KL (0: KL only)
    instruction_steps: int = 50  # then this many updates on the instruction data, rendered with the chat template
    measure_undistilled: bool = True  # also train a same-size student from scratch, to measure what distillation adds
    acceptance_prompts: int = 8  # held-out prompts (validation split) the acceptance rate is measured on
    acceptance_tokens: int = 32  # greedy tokens per prompt
    prompt_tokens: int = 32  # tokens of each held-out prompt
    seed: int = 1

    def __post_init__(self):
        for name in ("max_steps", "micro_batch_size", "acceptance_prompts", "acceptance_tokens", "prompt_tokens"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        if not isinstance(self.instruction_steps, int) or self.instruction_steps < 0:
            raise ValueError(f"instruction_steps must be an integer >= 0, got {self.instruction_steps!r}")

    def runs(self, teacher: ModelPreset, preset_name: str, directories: dict) -> dict:
        """{"distilled": PretrainConfig, "undistilled": PretrainConfig (when measured)} of the two students.

        directories: shards_dir, tokenizer_dir, teacher_dir, and work (each run gets work/<name>).
        """
        from model_code.config import PretrainConfig

        overrides = student_overrides(
            teacher, self.draft_fraction, num_layers=self.draft_layers, hidden_size=self.draft_hidden
        )
        common = dict(shards_dir=directories["shards_dir"], tokenizer_dir=directories["tokenizer_dir"],
                      preset=preset_name, model_overrides=overrides, max_steps=self.max_steps,
                      learning_rate=self.learning_rate, micro_batch_size=self.micro_batch_size, seed=self.seed,
                      warmup_steps=min(10, self.max_steps), eval_every=0, checkpoint_every=0)  # fmt: skip
        runs = {
            "distilled": PretrainConfig(
                **common,
                output_dir=str(Path(directories["work"]) / "distilled"),
                teacher_dir=str(directories["teacher_dir"]),
                distill_temperature=self.distill_temperature,
                distill_ce_weight=self.distill_ce_weight,
            ),  # fmt: skip
        }
        if self.measure_undistilled:
            runs["undistilled"] = PretrainConfig(**common, output_dir=str(Path(directories["work"]) / "undistilled"))
        return runs


def measure_drafters(teacher_dir, drafters: dict, shards_dir, config: DraftConfig) -> dict:
    """{name: greedy_acceptance(...)} of each drafter (name -> HF dir) on the same held-out prompts."""
    from model_code.export.quality import held_out_prompts

    prompts = held_out_prompts(shards_dir, teacher_dir, config.acceptance_prompts, config.prompt_tokens)
    teacher = _model(teacher_dir)
    return {
        name: greedy_acceptance(teacher, path, prompts, config.acceptance_tokens) for name, path in drafters.items()
    }


def instruction_run(first, shards_dir: str | Path, steps: int):
    """The second phase of a student: `first` continued from its final checkpoint for `steps` updates on the
    instruction shards (same teacher, same loss), in <first's output_dir>-instruct. Planned before `first` has
    trained: init_from names first's run directory, whose newest checkpoint the second phase starts from."""
    return dataclasses.replace(
        first,
        shards_dir=str(shards_dir),
        output_dir=f"{first.output_dir}-instruct",
        init_from=str(first.output_dir),
        max_steps=steps,
        warmup_steps=min(first.warmup_steps, steps),
    )


def write_instruction_shards(rows: list[dict], tokenizer_dir: str | Path, out_dir: Path, seq_len: int) -> Path:
    """Token shards of chat rows ({"id", "messages"}) rendered with the tokenizer's chat template, every row in the
    train split: what a drafter sees of the conversations it will draft for."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from transformers import AutoTokenizer

    from data_code.shards import ShardConfig, build_shards

    if not rows:
        raise ValueError("no instruction rows to write: set instruction_steps to 0 to distil on the corpus alone")
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    texts = [tokenizer.apply_chat_template(row["messages"], tokenize=False) for row in rows]
    out_dir.mkdir(parents=True, exist_ok=True)
    documents = out_dir.parent / f"{out_dir.name}.parquet"
    ids = [str(row.get("id") or f"instruction-{index}") for index, row in enumerate(rows)]
    pq.write_table(pa.table({"doc_id": ids, "domain": ["instruction_data"] * len(rows), "text": texts}), documents)
    build_shards(str(documents), str(tokenizer_dir), out_dir,
                 ShardConfig(seq_len=seq_len, validation_fraction=0.0, shard_tokens=1_000_000))  # fmt: skip
    return out_dir
