"""check_gguf_loads: a good file loads and runs; a truncated, corrupt or missing one fails naming the file."""

from __future__ import annotations

import pytest

from model_code.export.llama import check_gguf_loads

pytestmark = pytest.mark.slow  # the session fixture trains a tiny model first


def test_a_written_file_loads_with_its_own_chat_template(gguf_files, hf_dir):
    import json

    for qtype, path in gguf_files.items():
        stats = check_gguf_loads(path)
        assert stats["n_vocab"] == json.loads((hf_dir / "config.json").read_text())["vocab_size"], qtype
        assert stats["probe_tokens"] > 3
        assert stats["chat_template"] == "embedded"  # the file's own template, not a built-in guess


def test_truncated_or_corrupt_files_fail_naming_the_file(gguf_files, tmp_path):
    data = gguf_files["Q8_0"].read_bytes()
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated.gguf"):
        check_gguf_loads(truncated)
    corrupt = tmp_path / "corrupt.gguf"
    corrupt.write_bytes(b"GGUF" + bytes(range(256)) * 64)
    with pytest.raises(ValueError, match="corrupt.gguf"):
        check_gguf_loads(corrupt)
    with pytest.raises(FileNotFoundError, match="missing.gguf"):
        check_gguf_loads(tmp_path / "missing.gguf")
