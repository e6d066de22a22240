"""A tokenizer's fingerprint: what makes two tokenizers encode and render alike, hashed.

fingerprint = sha256 over canonical JSON (sorted keys, no spaces) of the BPE model (vocabulary, merges and
options), pre-tokenizer, normalizer, post-processor, decoder, added (special) tokens and the chat template. It is
read from the saved files, so anyone can recompute it from a tokenizer directory; token shards record it and the
training data reader refuses shards made with another tokenizer.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

TOKENIZER_FILE = "tokenizer.json"
CHAT_TEMPLATE_FILE = "chat_template.jinja"
FINGERPRINT_FILE = "fingerprint.json"
# GPT-2's pre-tokenizer regex, which tokenizers' ByteLevel(use_regex=True) applies.
GPT2_PATTERN = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"


def fingerprint_of(tokenizer_json: dict, chat_template: str | None) -> str:
    """sha256 (hex) of the parts of a tokenizer.json (parsed) and chat template that change encoding or rendering."""
    parts = {
        "model": tokenizer_json.get("model"),
        "pre_tokenizer": tokenizer_json.get("pre_tokenizer"),
        "normalizer": tokenizer_json.get("normalizer"),
        "post_processor": tokenizer_json.get("post_processor"),
        "decoder": tokenizer_json.get("decoder"),
        "added_tokens": tokenizer_json.get("added_tokens"),
        "chat_template": chat_template,
    }
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def tokenizer_fingerprint(tokenizer_dir: str | Path) -> str:
    """The fingerprint of the tokenizer saved in `tokenizer_dir` (recomputed from its files, not read back)."""
    directory = Path(tokenizer_dir)
    path = directory / TOKENIZER_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no {TOKENIZER_FILE} in tokenizer directory {directory}")
    template_path = directory / CHAT_TEMPLATE_FILE
    template = template_path.read_text(encoding="utf-8") if template_path.is_file() else None
    return fingerprint_of(json.loads(path.read_text(encoding="utf-8")), template)


def pre_tokenizer_family(pre_tokenizer: dict | None) -> str:
    """The name llama.cpp gives the pre-tokenizer (GGUF `tokenizer.ggml.pre`), or 'unknown'.

    'gpt-2' for ByteLevel with the GPT-2 regex, alone or after a Split on that same regex. A GGUF export must
    refuse 'unknown' rather than guess: llama.cpp would split text differently from the trained tokenizer.
    """
    if not pre_tokenizer:
        return "unknown"
    if pre_tokenizer.get("type") == "ByteLevel" and pre_tokenizer.get("use_regex", True):
        return "gpt-2"
    if pre_tokenizer.get("type") == "Sequence":
        steps = pre_tokenizer.get("pretokenizers", [])
        if (
            len(steps) == 2
            and steps[0].get("type") == "Split"
            and steps[0].get("pattern", {}).get("Regex") == GPT2_PATTERN
            and steps[1].get("type") == "ByteLevel"
            and not steps[1].get("use_regex", True)
        ):
            return "gpt-2"
    return "unknown"
