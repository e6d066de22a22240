"""How much a GGUF file's quantization costs: the GGUF model against its unquantized HF parent on held-out tokens.

    from model_code.export.quality import quantization_quality
    quantization_quality(hf_dir, "model-Q8_0.gguf", shards_dir, max_tokens=4096, seq_len=256)

Both models read the same windows of the token shards' validation split (text the model was not trained on) and
are compared position by position: the GGUF model's logits as llama.cpp computes them (model_code.export.llama) against
transformers' fp32 logits.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from data_code.shards.layout import INDEX_FILE, MANIFEST_FILE, open_shard, read_json
from data_code.shards.shard_set import allowed_rows
from data_code.tokenizer.fingerprint import TOKENIZER_FILE, tokenizer_fingerprint
from model_code.export.llama import Llama

VALIDATION = "validation"


def validation_windows(shards_dir: str | Path, max_tokens: int, seq_len: int, expected_fingerprint: str) -> np.ndarray:
    """Consecutive windows (W, seq_len + 1) of validation tokens, at most max_tokens predicted tokens in all.

    Each shard's <|pad|> tail, and the rows a shard set excludes, are cut first. ValueError naming the directory
    when the shards were made with another tokenizer, have no validation split, or hold fewer than seq_len + 1
    validation tokens.
    """
    if max_tokens < 1 or seq_len < 1:
        raise ValueError(f"max_tokens and seq_len must be >= 1, got {max_tokens} and {seq_len}")
    index, manifest = read_json(shards_dir, INDEX_FILE), read_json(shards_dir, MANIFEST_FILE)
    if manifest["tokenizer_fingerprint"] != expected_fingerprint:
        raise ValueError(
            f"token shards in {shards_dir} were made with tokenizer {manifest['tokenizer_fingerprint']}, "
            f"the model's is {expected_fingerprint}"
        )
    entries = index["splits"].get(VALIDATION)
    if not entries:
        raise ValueError(f"token shards in {shards_dir} have no {VALIDATION} split")
    tokens = np.concatenate([_readable(shards_dir, entry, index, manifest) for entry in entries])
    windows = min((len(tokens) - 1) // seq_len, max(1, max_tokens // seq_len))
    if windows < 1:
        raise ValueError(f"the {VALIDATION} split of {shards_dir} holds {len(tokens)} tokens, fewer than seq_len + 1")
    # Window w predicts tokens w*T+1 .. (w+1)*T from w*T .. (w+1)*T-1; neighbours share one boundary token.
    return np.stack([tokens[w * seq_len : (w + 1) * seq_len + 1] for w in range(windows)]).astype(np.int64)


def held_out_prompts(
    shards_dir: str | Path, model_dir: str | Path, count: int, length: int, window: int | None = None
) -> list[list[int]]:
    """`count` prompts of the first `length` tokens of consecutive validation windows of `window` tokens (default
    `length`): real held-out text, checked against the tokenizer of the model in `model_dir`."""
    window = window or length
    windows = validation_windows(shards_dir, count * window, window, tokenizer_fingerprint(model_dir))
    return [tokens[:length].tolist() for tokens in windows[:count]]


def _readable(shards_dir, entry: dict, index: dict, manifest: dict) -> np.ndarray:
    """A shard's tokens without the rows a shard set excludes and without its <|pad|> tail."""
    rows = open_shard(shards_dir, entry, index, manifest, sha256=False).reshape(-1, index["row_tokens"])
    tokens = rows[allowed_rows(entry)].ravel()
    kept = np.flatnonzero(tokens != index["pad_id"])
    return tokens[: kept[-1] + 1] if len(kept) else tokens[:0]


def quantization_quality(
    hf_dir: str | Path, gguf_path: str | Path, shards_dir: str | Path, max_tokens: int = 4096, seq_len: int = 256
) -> dict:
    """Perplexity of the GGUF model and of its fp32 HF parent on the same validation tokens, and how they differ.

    Returns tokens (predicted positions compared), windows, seq_len, parent_ppl, quant_ppl, ppl_delta_pct
    (100 * (quant_ppl / parent_ppl - 1)), mean_kl (mean over tokens of KL(parent || quant), nats) and
    top1_agreement (fraction of positions where both models' most likely next token is the same).
    """
    import torch
    from transformers import AutoModelForCausalLM

    windows = validation_windows(shards_dir, max_tokens, seq_len, tokenizer_fingerprint(hf_dir))
    parent = AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32).eval()
    totals = {"parent_nll": 0.0, "quant_nll": 0.0, "kl": 0.0, "agree": 0, "tokens": 0}
    with Llama(gguf_path, n_ctx=seq_len) as llm:
        for window in windows:
            inputs, targets = window[:-1], window[1:]
            with torch.no_grad():
                parent_logits = parent(input_ids=torch.from_numpy(inputs)[None]).logits[0].float().numpy()  # (T, V)
            _accumulate(totals, parent_logits, llm.logits(inputs.tolist()), targets)
    count = totals["tokens"]
    parent_ppl, quant_ppl = float(np.exp(totals["parent_nll"] / count)), float(np.exp(totals["quant_nll"] / count))
    return {
        "tokens": count,
        "windows": len(windows),
        "seq_len": seq_len,
        "parent_ppl": parent_ppl,
        "quant_ppl": quant_ppl,
        "ppl_delta_pct": 100.0 * (quant_ppl / parent_ppl - 1.0),
        "mean_kl": float(totals["kl"] / count),
        "top1_agreement": totals["agree"] / count,
    }


def _accumulate(totals: dict, parent_logits: np.ndarray, quant_logits: np.ndarray, targets: np.ndarray) -> None:
    """Add one window's summed NLLs, KL and top-1 agreements to `totals` (logits (T, V), targets (T,))."""
    if parent_logits.shape != quant_logits.shape:
        raise ValueError(
            f"the GGUF model's logits {quant_logits.shape} differ in shape from its parent's "
            f"{parent_logits.shape}: vocabularies differ"
        )
    parent_logp, quant_logp = (
        _log_softmax(parent_logits.astype(np.float64)),
        _log_softmax(quant_logits.astype(np.float64)),
    )
    rows = np.arange(len(targets))
    totals["parent_nll"] -= parent_logp[rows, targets].sum()
    totals["quant_nll"] -= quant_logp[rows, targets].sum()
    totals["kl"] += (np.exp(parent_logp) * (parent_logp - quant_logp)).sum()
    totals["agree"] += int((parent_logits.argmax(-1) == quant_logits.argmax(-1)).sum())
    totals["tokens"] += len(targets)


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def tokenization_matches(hf_dir: str | Path, gguf_path: str | Path, texts: list[str]) -> bool:
    """True when llama.cpp tokenizes every text exactly as the HF tokenizer does (special tokens parsed, no BOS)."""
    return first_tokenization_mismatch(hf_dir, gguf_path, texts) is None


def first_tokenization_mismatch(hf_dir: str | Path, gguf_path: str | Path, texts: list[str]) -> dict | None:
    """The first text the two tokenizers split differently, as {text, hf, gguf} token ids; None when all agree."""
    from tokenizers import Tokenizer

    path = Path(hf_dir) / TOKENIZER_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no {TOKENIZER_FILE} in model directory {hf_dir}")
    reference = Tokenizer.from_file(str(path))
    with Llama(gguf_path, n_ctx=8) as llm:
        for text in texts:
            expected = reference.encode(text, add_special_tokens=False).ids
            got = llm.tokenize(text)
            if list(expected) != list(got):
                return {"text": text, "hf": list(expected), "gguf": list(got)}
    return None
