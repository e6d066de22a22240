"""The serving artifact's layout and its SHA256SUMS integrity check (tampering is named, not ignored)."""

from __future__ import annotations

import json

import pytest

from model_code.deploy import assemble_serving_artifact, gguf_path, verify_sha256sums


@pytest.fixture()
def hf_dir(tmp_path):
    directory = tmp_path / "hf_model"
    directory.mkdir()
    for name, content in {
        "config.json": "{}",
        "model.safetensors": "weights",
        "tokenizer.json": "{}",
        "chat_template.jinja": "{{ messages }}",
        "manifest.json": "not copied",
    }.items():
        (directory / name).write_text(content)
    return directory


def _assemble(tmp_path, hf_dir):
    gguf = tmp_path / "q8.gguf"
    gguf.write_bytes(b"GGUF" + bytes(100))
    out = tmp_path / "serving"
    stats = assemble_serving_artifact(hf_dir, {"Q8_0": gguf}, "# card\n", {"chain": []}, out)
    return out, stats


def test_layout_and_clean_verification(tmp_path, hf_dir):
    out, stats = _assemble(tmp_path, hf_dir)
    assert (out / "hf" / "model.safetensors").read_text() == "weights"
    assert not (out / "hf" / "manifest.json").exists()
    assert gguf_path(out, "Q8_0").read_bytes().startswith(b"GGUF")
    assert json.loads((out / "lineage.json").read_text()) == {"chain": []}
    assert stats["files"] == 7  # 4 HF files, 1 GGUF, card, lineage
    assert verify_sha256sums(out) == []
    (out / "manifest.json").write_text("{}")  # the store's manifest is written after the sums
    assert verify_sha256sums(out) == []


def test_tampered_missing_and_extra_files_are_named(tmp_path, hf_dir):
    out, _ = _assemble(tmp_path, hf_dir)
    with open(out / "gguf" / "model-Q8_0.gguf", "r+b") as handle:
        handle.seek(10)
        handle.write(b"\x01")
    (out / "README.md").unlink()
    (out / "hf" / "extra.bin").write_bytes(b"x")
    problems = verify_sha256sums(out)
    assert any(p.startswith("gguf/model-Q8_0.gguf: sha256 differs") for p in problems)
    assert "README.md: listed in SHA256SUMS but missing" in problems
    assert "hf/extra.bin: not listed in SHA256SUMS" in problems


def test_bad_inputs(tmp_path, hf_dir):
    (hf_dir / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="lacks model.safetensors"):
        assemble_serving_artifact(hf_dir, {"Q8_0": tmp_path}, "", {}, tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="has no Q4_0 GGUF"):
        gguf_path(tmp_path, "Q4_0")
