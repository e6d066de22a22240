"""Speculative decoding on real server processes: greedy output identical with and without a drafter, drafters
that cannot draft refused by name, and a champion without a drafter served plainly, saying so."""

from __future__ import annotations

import json
import shutil

import httpx
import pytest

from cli.serving import Backends
from model_code.deploy import DRAFT_DIR, DRAFTER_GGUF, DRAFTER_RECORD
from model_code.export.gguf import write_gguf
from model_code.serve import serve, wait_until_ready
from tests.serve.test_server import free_port

pytestmark = pytest.mark.slow  # server processes, plus the session's tiny model
PROMPTS = ["The module provides", "Return a new list of", "Open the file and"]


def greedy(gguf, prompts, tmp_path, **drafting) -> list[dict]:
    port = free_port()
    process = serve(gguf, port=port, n_ctx=256, parallel=1, log_path=tmp_path / f"server-{port}.log", **drafting)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, timeout=120, process=process)
        answers = []
        for prompt in prompts:
            body = {"prompt": prompt, "n_predict": 32, "temperature": 0, "ignore_eos": True, "return_tokens": True}
            answers.append(httpx.post(f"{url}/completion", json=body, timeout=120).json())
            chat = {"messages": [{"role": "user", "content": prompt}], "max_tokens": 16, "temperature": 0}
            answers[-1]["chat"] = httpx.post(f"{url}/v1/chat/completions", json=chat, timeout=120).json()
        return answers
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_greedy_output_is_token_identical_with_a_drafter(gguf_files, tmp_path):
    plain = greedy(gguf_files["Q8_0"], PROMPTS, tmp_path)
    drafted = greedy(gguf_files["Q8_0"], PROMPTS, tmp_path, draft=gguf_files["Q4_0"], draft_max=4)
    for without, with_drafter in zip(plain, drafted, strict=True):
        assert with_drafter["tokens"] == without["tokens"] and len(without["tokens"]) == 32
        assert with_drafter["chat"]["choices"][0]["message"] == without["chat"]["choices"][0]["message"]
    assert sum(answer["timings"]["draft_n"] for answer in drafted) > 0  # the drafter really drafted
    assert sum(answer["timings"]["draft_n_accepted"] for answer in drafted) > 0  # and some drafts were kept
    assert all("draft_n" not in answer["timings"] for answer in plain)


def test_a_drafter_with_another_tokenizer_is_refused_by_name(gguf_files, hf_dir, tmp_path):
    other = shutil.copytree(hf_dir, tmp_path / "model")
    spec = json.loads((other / "tokenizer.json").read_text())
    spec["model"]["merges"] = spec["model"]["merges"][: len(spec["model"]["merges"]) // 2]
    (other / "tokenizer.json").write_text(json.dumps(spec))
    write_gguf(other, tmp_path / "stranger.gguf", "Q8_0")
    with pytest.raises(ValueError, match=r"drafter .*stranger\.gguf cannot draft .*tokenizer\.ggml\.merges differ"):
        serve(gguf_files["Q8_0"], port=free_port(), draft=tmp_path / "stranger.gguf")
    with pytest.raises(FileNotFoundError, match="missing.gguf"):
        serve(gguf_files["Q8_0"], port=free_port(), draft=tmp_path / "missing.gguf")


@pytest.mark.parametrize("draft_max", [0, -2, 10**6, 2.5])
def test_a_draft_length_out_of_range_names_the_field(gguf_files, draft_max):
    with pytest.raises(ValueError, match=r"draft_max must be an integer in \[1, \d+\]"):
        serve(gguf_files["Q8_0"], port=free_port(), n_ctx=256, draft=gguf_files["Q4_0"], draft_max=draft_max)


def test_a_champion_without_a_drafter_serves_plainly_and_says_so(gguf_files, tmp_path, capsys):
    bare, carried = tmp_path / "v3", tmp_path / "v4"
    bare.mkdir()
    (carried / DRAFT_DIR).mkdir(parents=True)
    shutil.copy2(gguf_files["Q4_0"], carried / DRAFT_DIR / DRAFTER_GGUF)
    (carried / DRAFT_DIR / DRAFTER_RECORD).write_text(json.dumps({"teacher": "dpo_model/abc", "acceptance": 0.7}))
    backends = Backends("Q8_0", 1, tmp_path / "logs", speculative=True, draft_max=3)
    assert backends._drafter(str(bare), "3") is None
    assert "v3 carries no drafter: serving it without speculative decoding" in capsys.readouterr().out
    assert backends._drafter(str(carried), "4") == carried / DRAFT_DIR / DRAFTER_GGUF
    said = capsys.readouterr().out
    assert "v4 decodes speculatively" in said and "dpo_model/abc" in said and "up to 3 tokens" in said
    assert Backends("Q8_0", 1, tmp_path / "logs")._drafter(str(carried), "4") is None  # speculation off: plain
