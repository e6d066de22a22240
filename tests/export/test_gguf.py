"""write_gguf: tensor types per qtype, metadata llama.cpp reads, weights that round-trip, refusals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from gguf import GGMLQuantizationType, GGUFReader
from gguf import quants as gguf_quants
from safetensors.numpy import load_file

from model_code.export.gguf import permute_rotary, quantize_tensor, write_gguf

pytestmark = pytest.mark.slow  # the session fixture trains a tiny model first (~40 s on 2 shared cores)


def tensors_of(path: Path) -> dict:
    """name -> (GGML type, float32 weights in HF orientation (rows, cols))."""
    reader = GGUFReader(path)
    return {
        t.name: (t.tensor_type, gguf_quants.dequantize(t.data, t.tensor_type).reshape(t.shape[::-1].tolist()))
        for t in reader.tensors
    }


def field(path: Path, key: str):
    return GGUFReader(path).fields[key].contents()


def test_each_qtype_quantizes_the_matrices_and_keeps_norms_f32(gguf_files, hf_dir):
    layers = json.loads((hf_dir / "config.json").read_text())["num_hidden_layers"]
    for qtype, matrix_type in (("F32", "F32"), ("Q8_0", "Q8_0"), ("Q4_0", "Q4_0")):
        types = {name: kind.name for name, (kind, _) in tensors_of(gguf_files[qtype]).items()}
        assert len(types) == 2 + 9 * layers  # token_embd, output_norm, 9 per block; no output: it is tied
        assert "output.weight" not in types
        assert all(kind == "F32" for name, kind in types.items() if name.endswith("norm.weight"))
        assert types["blk.0.ffn_down.weight"] == matrix_type
        # Q4_0 keeps the tied embedding (the output head) at 8 bits, as llama-quantize keeps the head above 4.
        assert types["token_embd.weight"] == ("Q8_0" if qtype == "Q4_0" else matrix_type)
    sizes = [gguf_files[q].stat().st_size for q in ("F32", "Q8_0", "Q4_0")]
    assert sizes == sorted(sizes, reverse=True)


def test_weights_round_trip_with_q_and_k_permuted(gguf_files, hf_dir):
    hf = load_file(hf_dir / "model.safetensors")
    config = json.loads((hf_dir / "config.json").read_text())
    f32 = tensors_of(gguf_files["F32"])
    np.testing.assert_array_equal(f32["token_embd.weight"][1], hf["model.embed_tokens.weight"])
    np.testing.assert_array_equal(f32["blk.1.attn_v.weight"][1], hf["model.layers.1.self_attn.v_proj.weight"])
    q = hf["model.layers.0.self_attn.q_proj.weight"]
    k = hf["model.layers.0.self_attn.k_proj.weight"]
    np.testing.assert_array_equal(f32["blk.0.attn_q.weight"][1], permute_rotary(q, config["num_attention_heads"]))
    np.testing.assert_array_equal(f32["blk.0.attn_k.weight"][1], permute_rotary(k, config["num_key_value_heads"]))
    assert not np.array_equal(permute_rotary(q, config["num_attention_heads"]), q)
    errors = {}
    for qtype in ("Q8_0", "Q4_0"):
        down = tensors_of(gguf_files[qtype])["blk.0.ffn_down.weight"][1]
        reference = hf["model.layers.0.mlp.down_proj.weight"]
        errors[qtype] = np.abs(down - reference).mean() / np.abs(reference).mean()
    assert errors["Q8_0"] < 0.01 < errors["Q4_0"] < 0.2


def test_tokenizer_and_chat_template_metadata(gguf_files, hf_dir):
    path = gguf_files["Q8_0"]
    spec = json.loads((hf_dir / "tokenizer.json").read_text())
    assert field(path, "tokenizer.ggml.model") == "gpt2"
    assert field(path, "tokenizer.ggml.pre") == "gpt-2"
    tokens = field(path, "tokenizer.ggml.tokens")
    assert tokens[:4] == ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>"]
    assert all(tokens[token_id] == token for token, token_id in spec["model"]["vocab"].items())
    assert field(path, "tokenizer.ggml.token_type")[:5] == [3, 3, 3, 3, 1]  # CONTROL specials, then NORMAL
    assert field(path, "tokenizer.ggml.merges")[0] == " ".join(spec["model"]["merges"][0])
    assert (field(path, "tokenizer.ggml.eos_token_id"), field(path, "tokenizer.ggml.padding_token_id")) == (0, 3)
    assert field(path, "tokenizer.ggml.add_bos_token") is False
    template = field(path, "tokenizer.chat_template")
    assert "<|im_start|>" in template and "{%- generation -%}" not in template
    assert "{%- generation -%}" in (hf_dir / "chat_template.jinja").read_text()  # the tag is there upstream


def test_quantize_tensor_keeps_partial_blocks_f16_and_vectors_f32():
    rows = np.random.default_rng(0).normal(size=(4, 48)).astype(np.float32)  # 48 is not a multiple of 32
    assert quantize_tensor("blk.0.ffn_up.weight", rows, "Q8_0", tied=True)[1] == GGMLQuantizationType.F16
    assert quantize_tensor("blk.0.ffn_up.weight", rows[:, :32], "Q4_0", tied=True)[1] == GGMLQuantizationType.Q4_0
    assert quantize_tensor("output_norm.weight", rows[0], "Q4_0", tied=True)[1] == GGMLQuantizationType.F32
    assert quantize_tensor("output.weight", rows[:, :32], "Q4_0", tied=False)[1] == GGMLQuantizationType.Q8_0


def copy_model(hf_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(hf_dir, tmp_path / "model"))


def test_refuses_an_unknown_qtype_a_mixture_of_experts_and_an_unknown_pre_tokenizer(hf_dir, tmp_path):
    out = tmp_path / "out.gguf"
    with pytest.raises(ValueError, match="qtype must be one of"):
        write_gguf(hf_dir, out, "Q4_K_M")
    moe = copy_model(hf_dir, tmp_path)
    config = json.loads((moe / "config.json").read_text())
    (moe / "config.json").write_text(json.dumps({**config, "model_type": "mixtral", "num_local_experts": 4}))
    with pytest.raises(ValueError, match="mixture-of-experts"):
        write_gguf(moe, out, "Q8_0")
    shutil.rmtree(moe)
    other = copy_model(hf_dir, tmp_path)
    spec = json.loads((other / "tokenizer.json").read_text())
    (other / "tokenizer.json").write_text(json.dumps({**spec, "pre_tokenizer": {"type": "Whitespace"}}))
    with pytest.raises(ValueError, match=r"tokenizer\.json.*not a family llama\.cpp knows"):
        write_gguf(other, out, "Q8_0")
    assert not out.exists()


def test_an_unmappable_tensor_fails_and_leaves_no_file(hf_dir, tmp_path):
    from safetensors.numpy import save_file

    broken = copy_model(hf_dir, tmp_path)
    weights = load_file(broken / "model.safetensors")
    save_file({**weights, "model.layers.0.mystery.weight": np.zeros((2, 2), np.float32)}, broken / "model.safetensors")
    out = tmp_path / "out.gguf"
    with pytest.raises(ValueError, match="mystery"):
        write_gguf(broken, out, "F32")
    assert not out.exists()
