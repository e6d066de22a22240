"""Opening a GGUF file with llama.cpp, in this process, and the load check run before a GGUF is registered.

    from model_code.export.llama import Llama
    with Llama("model-Q8_0.gguf", n_ctx=256) as llm:
        ids = llm.tokenize("The quick brown fox")
        logits = llm.logits(ids)          # (len(ids), n_vocab) float32, every position
        continuation = llm.greedy(ids, 16)

The engine is llama.cpp's own server, embedded by the `xllamacpp` wheel (no compiler), started in this process on a
private port of 127.0.0.1 with one slot, in embedding mode without pooling: llama.cpp runs every layer of the
quantized model over the prompt and returns the final (normed) hidden state of every position. The projection to
the vocabulary is then the file's own output matrix, dequantized by `gguf`, applied in float32: llama-server
returns logits only for sampled positions, and a quantization check needs all of them. The one difference from
llama.cpp's own last matmul is that it would round the hidden state to 8 bits first (Q8_0/Q4_0 kernels).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

PROBE_TEXT = "The quick brown fox jumps over the lazy dog."  # tokenized and run once by the load check


def default_threads() -> int:
    """Every core this process may use (llama.cpp's own default is fewer)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def read_gguf(gguf_path: str | Path):
    """A gguf.GGUFReader on the file; FileNotFoundError, or ValueError naming the file and what is wrong with it."""
    from gguf import GGUFReader

    path = Path(gguf_path)
    if not path.is_file():
        raise FileNotFoundError(f"GGUF file {path} does not exist")
    try:
        return GGUFReader(str(path))
    except Exception as error:  # gguf raises ValueError, IndexError, struct errors... for damaged files
        raise ValueError(f"GGUF file {path} is not a readable GGUF file: {type(error).__name__}: {error}") from error


class Llama:
    """llama.cpp on one GGUF file: tokenize, every position's logits, greedy continuation. Close it (or use `with`).

    n_ctx: the longest token sequence one call may take; embeddings False serves greedy() and streamed() only
    (logits() needs it), as plain decoding is served. ValueError naming the file when it cannot be loaded.
    """

    def __init__(
        self, gguf_path: str | Path, *, n_ctx: int = 512, n_threads: int | None = None, embeddings: bool = True
    ):
        import httpx
        import xllamacpp

        self.path = Path(gguf_path)
        reader = read_gguf(self.path)
        self.n_vocab = len(reader.fields["tokenizer.ggml.tokens"].data)
        self._output = _output_matrix(reader, self.path)  # (n_vocab, n_embd) float32
        del reader
        params = xllamacpp.CommonParams()
        params.model.path = str(self.path)
        params.hostnames, params.port = ["127.0.0.1"], 0  # a free private port
        params.n_ctx = params.n_batch = params.n_ubatch = max(n_ctx, 8)
        params.n_parallel, params.warmup, params.verbosity = 1, False, -1
        if embeddings:  # hidden states of every position (pooling none); completions still work
            params.embedding = True
            params.pooling_type = xllamacpp.llama_pooling_type.LLAMA_POOLING_TYPE_NONE
        params.cpuparams.n_threads = params.cpuparams_batch.n_threads = n_threads or default_threads()
        try:
            self._server = xllamacpp.Server(params)
        except RuntimeError as error:
            raise ValueError(f"GGUF file {self.path} could not be loaded by llama.cpp: {error}") from error
        self.n_ctx = n_ctx
        self._client = httpx.Client(base_url=self._server.listening_address, timeout=300)

    def tokenize(self, text: str) -> list[int]:
        """Token ids of `text` as llama.cpp splits it: special tokens parsed, no BOS added."""
        body = {"content": text, "add_special": False, "parse_special": True}
        return self._post("/tokenize", body)["tokens"]

    def hidden_states(self, ids: list[int]) -> np.ndarray:
        """(len(ids), n_embd) float32: the model's final normed hidden state at every position."""
        self._check_length(ids)
        answer = self._post("/embeddings", {"content": [int(i) for i in ids]})
        return np.asarray(answer[0]["embedding"], dtype=np.float32)

    def logits(self, ids: list[int]) -> np.ndarray:
        """(len(ids), n_vocab) float32: next-token logits at every position."""
        return self.hidden_states(ids) @ self._output.T

    def greedy(self, ids: list[int], new_tokens: int) -> list[int]:
        """The next `new_tokens` tokens by greedy decoding, never stopping at end of text."""
        self._check_length(ids, new_tokens)
        body = {"prompt": [int(i) for i in ids], "n_predict": new_tokens, "temperature": 0, "ignore_eos": True,
                "return_tokens": True, "cache_prompt": False}  # fmt: skip
        return self._post("/completion", body)["tokens"]

    def streamed(self, ids: list[int], new_tokens: int) -> list[float]:
        """Greedy decoding as served, streamed: the perf_counter() time at which each new token arrived."""
        self._check_length(ids, new_tokens)
        body = {"prompt": [int(i) for i in ids], "n_predict": new_tokens, "temperature": 0, "ignore_eos": True,
                "cache_prompt": False, "stream": True, "return_tokens": True}  # fmt: skip
        times = []
        with self._client.stream("POST", "/completion", json=body) as response:
            for line in response.iter_lines():
                if line.startswith("data: "):  # a chunk may carry several tokens (held back while UTF-8 is partial)
                    predicted = json.loads(line[len("data: ") :])["tokens_predicted"]
                    times += [time.perf_counter()] * (predicted - len(times))
        return times

    def close(self) -> None:
        if getattr(self, "_server", None) is not None:
            self._client.close()
            del self._server  # stops its threads and frees the model
            self._server = None

    def __enter__(self) -> Llama:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _check_length(self, ids: list[int], new_tokens: int = 0) -> None:
        if not ids or len(ids) + new_tokens > self.n_ctx:
            raise ValueError(f"{len(ids)} tokens + {new_tokens} new do not fit n_ctx {self.n_ctx} (or are none)")

    def _post(self, route: str, body: dict):
        response = self._client.post(route, json=body)
        if response.status_code != 200:
            raise ValueError(f"llama.cpp on {self.path} refused {route}: {response.status_code} {response.text[:300]}")
        return response.json()


def trained_context(gguf_path: str | Path) -> int:
    """The context length the GGUF's model was trained with (its `<architecture>.context_length`)."""
    reader = read_gguf(gguf_path)
    architecture = bytes(reader.fields["general.architecture"].parts[-1]).decode()
    return int(reader.fields[f"{architecture}.context_length"].parts[-1][0])


def vocabulary_mismatch(gguf_path: str | Path, other_path: str | Path) -> str | None:
    """How the two files' tokenizers differ (token list, merges, special ids), in words; None when they agree."""
    mine, theirs = read_gguf(gguf_path), read_gguf(other_path)
    for key in ("tokenizer.ggml.tokens", "tokenizer.ggml.merges"):
        a, b = _field_values(mine, key), _field_values(theirs, key)
        if a != b:
            where = f"{len(a)} against {len(b)} entries" if len(a) != len(b) else "the same count, different entries"
            return f"{key} differ ({where}): another tokenizer"
    for key in ("tokenizer.ggml.eos_token_id", "tokenizer.ggml.padding_token_id"):
        if _field_values(mine, key) != _field_values(theirs, key):
            return f"{key} differs"
    return None


def _field_values(reader, key: str) -> list:
    field = reader.fields.get(key)
    if field is None:
        return []
    return [bytes(field.parts[index]).hex() for index in field.data]


def _output_matrix(reader, path: Path) -> np.ndarray:
    """The (n_vocab, n_embd) output projection in float32: output.weight, or token_embd.weight when tied."""
    from gguf.quants import dequantize

    tensors = {tensor.name: tensor for tensor in reader.tensors}
    tensor = tensors.get("output.weight") or tensors.get("token_embd.weight")
    if tensor is None:
        raise ValueError(f"GGUF file {path} has neither output.weight nor token_embd.weight")
    return np.ascontiguousarray(dequantize(tensor.data, tensor.tensor_type), dtype=np.float32)


def check_gguf_loads(gguf_path: str | Path, n_ctx: int = 64) -> dict:
    """Load the file with llama.cpp, tokenize a probe sentence and run one forward pass over it.

    Returns path, bytes, n_vocab, n_ctx_train, probe_tokens, load_s, and chat_template: "embedded" when the file
    carries its own template (the one the server renders), else "none". ValueError naming the file when it does not
    load, tokenizes the probe to nothing, or produces non-finite logits.
    """
    path = Path(gguf_path)
    started = time.perf_counter()
    with Llama(path, n_ctx=n_ctx) as llm:
        tokens = llm.tokenize(PROBE_TEXT)[: n_ctx - 1]
        if not tokens:
            raise ValueError(f"GGUF file {path}: the probe sentence tokenized to no tokens")
        logits = llm.logits(tokens)[-1]  # (n_vocab,) logits after the last probe token
        if logits.shape != (llm.n_vocab,) or not np.isfinite(logits).all():
            raise ValueError(f"GGUF file {path}: the forward pass produced non-finite or misshapen logits")
        n_vocab = llm.n_vocab
    embedded = "tokenizer.chat_template" in read_gguf(path).fields
    return {
        "path": str(path),
        "bytes": path.stat().st_size,
        "n_vocab": n_vocab,
        "n_ctx_train": trained_context(path),
        "probe_tokens": len(tokens),
        "chat_template": "embedded" if embedded else "none",
        "load_s": round(time.perf_counter() - started, 3),
    }
