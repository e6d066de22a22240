"""The serving commands, without starting a server."""

from __future__ import annotations

import shlex

import pytest

from model_code.serve import serve, vllm_command


def test_vllm_command_serves_the_hf_directory_on_loopback(tmp_path):
    command = shlex.split(vllm_command(tmp_path / "model", port=9000, max_model_len=512))
    assert command[:3] == ["vllm", "serve", str(tmp_path / "model")]
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert command[command.index("--port") + 1] == "9000"
    assert command[command.index("--max-model-len") + 1] == "512"


def test_serve_refuses_a_missing_file_and_a_bad_port(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.gguf"):
        serve(tmp_path / "missing.gguf")
    (tmp_path / "model.gguf").write_bytes(b"GGUF")
    with pytest.raises(ValueError, match="port"):
        serve(tmp_path / "model.gguf", port=70000)
    with pytest.raises(ValueError, match="parallel"):
        serve(tmp_path / "model.gguf", parallel=0)
