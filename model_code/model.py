"""Stock Hugging Face causal LMs from a preset: LlamaForCausalLM, or MixtralForCausalLM for an MoE preset.

Nothing here is a custom architecture: a saved model loads with `AutoModelForCausalLM.from_pretrained(dir)`.
"""

from __future__ import annotations

import torch
from transformers import LlamaConfig, LlamaForCausalLM, MixtralConfig, MixtralForCausalLM, PretrainedConfig

from model_code.presets import ModelPreset


def hf_config(preset: ModelPreset, *, eos_id: int, pad_id: int) -> PretrainedConfig:
    """The transformers config of `preset` (Mixtral when it has experts), with the tokenizer's eos/pad ids."""
    common = dict(
        vocab_size=preset.vocab_size,
        hidden_size=preset.hidden_size,
        intermediate_size=preset.ffn_size,
        num_hidden_layers=preset.num_layers,
        num_attention_heads=preset.num_heads,
        num_key_value_heads=preset.num_kv_heads,
        max_position_embeddings=preset.seq_len,
        rms_norm_eps=preset.rms_norm_eps,
        initializer_range=preset.initializer_range,
        tie_word_embeddings=preset.tie_word_embeddings,
        rope_parameters={"rope_type": "default", "rope_theta": preset.rope_theta},
        bos_token_id=eos_id,  # documents are separated by EOS only; there is no BOS token
        eos_token_id=eos_id,
        pad_token_id=pad_id,
        use_cache=False,  # training; generation turns it back on
    )
    if not preset.is_moe:
        return LlamaConfig(**common)
    return MixtralConfig(
        **common,
        num_local_experts=preset.num_experts,
        num_experts_per_tok=preset.experts_per_token,
        router_aux_loss_coef=preset.router_aux_loss_coef,
        output_router_logits=True,  # the forward pass adds the load-balancing loss when labels are given
    )


def build_model(preset: ModelPreset, *, eos_id: int, pad_id: int) -> torch.nn.Module:
    """A freshly initialized model (call torch.manual_seed first for reproducible weights)."""
    config = hf_config(preset, eos_id=eos_id, pad_id=pad_id)
    model_class = MixtralForCausalLM if preset.is_moe else LlamaForCausalLM
    model = model_class(config)
    model.generation_config.eos_token_id, model.generation_config.pad_token_id = eos_id, pad_id
    model.generation_config.bos_token_id = eos_id
    return model


def count_parameters(model: torch.nn.Module) -> int:
    """Distinct parameters (a tied embedding counted once)."""
    return sum(p.numel() for p in model.parameters())


def flops_per_token(preset: ModelPreset, seq_len: int) -> float:
    """Training FLOPs per token (forward + backward), PaLM appendix B: 6 N + 12 L H T.

    N counts the matmul parameters a token passes through (embedding lookup excluded, output head included; for
    an MoE only the experts_per_token experts a token is routed to).
    """
    hidden, ffn, layers = preset.hidden_size, preset.ffn_size, preset.num_layers
    head_dim = hidden // preset.num_heads
    attention = hidden * head_dim * (2 * preset.num_heads + 2 * preset.num_kv_heads)  # q, o and k, v projections
    experts = preset.experts_per_token if preset.is_moe else 1
    mlp = 3 * hidden * ffn * experts + (hidden * preset.num_experts if preset.is_moe else 0)  # SwiGLU + router
    matmul_params = layers * (attention + mlp) + hidden * preset.vocab_size
    return 6 * matmul_params + 12 * layers * hidden * seq_len
