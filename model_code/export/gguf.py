"""An HF Llama directory as one GGUF file (F32, F16, Q8_0 or Q4_0) that llama.cpp loads and serves.

    from model_code.export.gguf import write_gguf
    stats = write_gguf("lake/base_model/<v>/model", "out/model-Q8_0.gguf", "Q8_0")

Written with the `gguf` package's GGUFWriter, mirroring llama.cpp's convert_hf_to_gguf.py for the llama
architecture: q/k projections permuted from HF's rotary layout (two halves) to GGML's (interleaved pairs),
1-D tensors (norms) kept F32, and a tensor whose rows are not a whole number of quantization blocks kept F16.
Q8_0/Q4_0 are quantized in Python with gguf.quants. In a Q4_0 file the output head (the tied embedding when
there is no separate one) is Q8_0: llama-quantize keeps it above 4 bits too (as Q6_K, which Python cannot write).
A tied embedding is written once as token_embd; llama.cpp uses it as the output head when `output` is absent.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from gguf import GGML_QUANT_SIZES, GGML_QUANT_VERSION, GGMLQuantizationType, GGUFWriter, LlamaFileType
from gguf import quants as gguf_quants

from model_code.export.vocab import add_tokenizer, read_vocabulary

QTYPES = {  # qtype name -> (type of the 2-D weights, general.file_type)
    "F32": (GGMLQuantizationType.F32, LlamaFileType.ALL_F32),
    "F16": (GGMLQuantizationType.F16, LlamaFileType.MOSTLY_F16),
    "Q8_0": (GGMLQuantizationType.Q8_0, LlamaFileType.MOSTLY_Q8_0),
    "Q4_0": (GGMLQuantizationType.Q4_0, LlamaFileType.MOSTLY_Q4_0),
}
# HF Llama tensor names (after "model.layers.N.") -> GGUF names (after "blk.N.").
LAYER_TENSORS = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}
GLOBAL_TENSORS = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
}


def write_gguf(hf_dir: str | Path, out_path: str | Path, qtype: str) -> dict:
    """Write the model in `hf_dir` to `out_path` as GGUF with 2-D weights in `qtype`; returns stats.

    Stats: path, bytes (file size), tensors (count), qtype, tensor_types ({ggml type: count}), parameters,
    elapsed_s. On any failure the partial file is removed. ValueError for an unknown qtype, a model that is not
    a dense Llama (the MoE preset is refused for now), or a tokenizer llama.cpp would split differently.
    """
    if qtype not in QTYPES:
        raise ValueError(f"qtype must be one of {sorted(QTYPES)}, got {qtype!r}")
    started = time.perf_counter()
    hf_dir, out_path = Path(hf_dir), Path(out_path)
    config = read_llama_config(hf_dir)
    vocabulary = read_vocabulary(hf_dir, config["vocab_size"])
    writer = GGUFWriter(out_path, "llama")
    try:
        _add_hyperparameters(writer, config, hf_dir.name, QTYPES[qtype][1])
        add_tokenizer(writer, hf_dir, vocabulary, config)
        types: dict[str, int] = {}
        parameters = 0
        for name, weights in _gguf_tensors(hf_dir, config):
            data, ggml_type = quantize_tensor(name, weights, qtype, tied=config.get("tie_word_embeddings", False))
            writer.add_tensor(name, data, raw_dtype=ggml_type if data.dtype == np.uint8 else None)
            types[ggml_type.name] = types.get(ggml_type.name, 0) + 1
            parameters += weights.size
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    except BaseException:
        writer.close()
        out_path.unlink(missing_ok=True)
        raise
    return {
        "path": str(out_path),
        "bytes": out_path.stat().st_size,
        "tensors": sum(types.values()),
        "qtype": qtype,
        "tensor_types": types,
        "parameters": parameters,
        "elapsed_s": round(time.perf_counter() - started, 3),
    }


def read_llama_config(hf_dir: Path) -> dict:
    """config.json of a dense Llama; ValueError naming the file for any other architecture or rope scaling."""
    path = hf_dir / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"no config.json in model directory {hf_dir}")
    config = json.loads(path.read_text(encoding="utf-8"))
    if config.get("num_local_experts") or config.get("model_type") == "mixtral":
        raise ValueError(f"{path}: mixture-of-experts (Mixtral) models cannot be exported to GGUF yet")
    if config.get("model_type") != "llama":
        raise ValueError(f"{path}: model_type must be 'llama' for GGUF export, got {config.get('model_type')!r}")
    rope = config.get("rope_parameters") or config.get("rope_scaling") or {}
    if rope.get("rope_type", "default") != "default":
        raise ValueError(f"{path}: rope_type {rope.get('rope_type')!r} is not supported, only 'default'")
    return config


def quantize_tensor(
    name: str, weights: np.ndarray, qtype: str, *, tied: bool
) -> tuple[np.ndarray, GGMLQuantizationType]:
    """The tensor's data as written and its GGML type (see the module docstring for which tensors stay wider)."""
    target = QTYPES[qtype][0]
    if weights.ndim == 1 or target == GGMLQuantizationType.F32:
        return weights.astype(np.float32), GGMLQuantizationType.F32
    is_output_head = name == "output.weight" or (tied and name == "token_embd.weight")
    if target == GGMLQuantizationType.Q4_0 and is_output_head:
        target = GGMLQuantizationType.Q8_0
    if target != GGMLQuantizationType.F16 and weights.shape[-1] % GGML_QUANT_SIZES[target][0]:
        target = GGMLQuantizationType.F16  # rows are not whole blocks: llama.cpp's converter falls back the same way
    return gguf_quants.quantize(weights.astype(np.float32), target), target


def permute_rotary(weights: np.ndarray, heads: int) -> np.ndarray:
    """q/k projection rows (heads * head_dim, hidden) reordered from HF's rotate-half to GGML's adjacent pairs.

    The same permutation as convert_hf_to_gguf.py's LlamaModel.permute (with heads = KV heads for k).
    """
    rows = weights.shape[0]
    return weights.reshape(heads, 2, rows // heads // 2, *weights.shape[1:]).swapaxes(1, 2).reshape(weights.shape)


def _add_hyperparameters(writer: GGUFWriter, config: dict, name: str, file_type: LlamaFileType) -> None:
    heads, hidden = config["num_attention_heads"], config["hidden_size"]
    head_dim = config.get("head_dim") or hidden // heads
    rope = config.get("rope_parameters") or {}
    writer.add_name(name)
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(hidden)
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(heads)
    writer.add_head_count_kv(config.get("num_key_value_heads") or heads)
    writer.add_key_length(head_dim)
    writer.add_value_length(head_dim)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(float(rope.get("rope_theta", config.get("rope_theta", 10_000.0))))
    writer.add_layer_norm_rms_eps(float(config.get("rms_norm_eps", 1e-5)))
    writer.add_vocab_size(config["vocab_size"])
    writer.add_file_type(file_type)
    writer.add_quantization_version(GGML_QUANT_VERSION)


def _gguf_tensors(hf_dir: Path, config: dict) -> Iterator[tuple[str, np.ndarray]]:
    """(GGUF name, float32 array) of every weight, q/k permuted; a tied lm_head is not written twice."""
    heads = config["num_attention_heads"]
    kv_heads = config.get("num_key_value_heads") or heads
    for hf_name, weights in _read_safetensors(hf_dir):
        if hf_name.endswith("rotary_emb.inv_freq"):
            continue  # recomputed from rope_theta
        if hf_name == "lm_head.weight" and config.get("tie_word_embeddings", False):
            continue
        name = _gguf_name(hf_name, hf_dir)
        if name.endswith("attn_q.weight"):
            weights = permute_rotary(weights, heads)
        elif name.endswith("attn_k.weight"):
            weights = permute_rotary(weights, kv_heads)
        yield name, weights


def _gguf_name(hf_name: str, hf_dir: Path) -> str:
    if hf_name in GLOBAL_TENSORS:
        return GLOBAL_TENSORS[hf_name]
    parts = hf_name.split(".", 3)  # model, layers, N, rest
    if len(parts) == 4 and parts[:2] == ["model", "layers"] and parts[3] in LAYER_TENSORS:
        return f"blk.{int(parts[2])}.{LAYER_TENSORS[parts[3]]}"
    raise ValueError(f"{hf_dir}: tensor {hf_name!r} has no GGUF llama counterpart")


def _read_safetensors(hf_dir: Path) -> Iterator[tuple[str, np.ndarray]]:
    """Every tensor of the directory's *.safetensors files (one file or shards) as float32 numpy, in name order."""
    from safetensors import safe_open

    files = sorted(hf_dir.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"no *.safetensors weights in model directory {hf_dir}")
    for path in files:
        with safe_open(str(path), framework="pt") as handle:  # "pt": bf16 weights have no numpy dtype
            for key in sorted(handle.keys()):
                yield key, handle.get_tensor(key).float().numpy()
