"""The tokenizer half of a GGUF file: a byte-level BPE tokenizer.json as llama.cpp's `gpt2` tokenizer metadata.

llama.cpp's own converter (convert_hf_to_gguf.py) refuses a newly trained tokenizer because it recognizes
pre-tokenizers by hashing known vocabularies; here the pre-tokenizer family is read from the tokenizer's own
definition instead (data_code.tokenizer.fingerprint.pre_tokenizer_family), and anything but a known family is
refused: llama.cpp would split text differently from the trained tokenizer.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from gguf import GGUFWriter, TokenType

from data_code.tokenizer.fingerprint import CHAT_TEMPLATE_FILE, TOKENIZER_FILE, pre_tokenizer_family

# transformers' `{% generation %}` marks assistant tokens for training masks and renders nothing. It is a
# transformers extension that not every GGUF reader's Jinja knows, so it is dropped from the embedded copy.
GENERATION_TAG = re.compile(r"\{%-?\s*(?:end)?generation\s*-?%\}")


@dataclass(frozen=True)
class Vocabulary:
    """What llama.cpp needs to tokenize exactly like the HF tokenizer."""

    tokens: list[str]  # token text by id (byte-level BPE alphabet, as in tokenizer.json)
    token_types: list[int]  # gguf.TokenType per id: NORMAL, CONTROL (special), USER_DEFINED or UNUSED (padding)
    merges: list[str]  # BPE merges in rank order, "left right"
    pre: str  # tokenizer.ggml.pre: the pre-tokenizer regex family ("gpt-2")


def read_vocabulary(hf_dir: str | Path, vocab_size: int) -> Vocabulary:
    """The vocabulary of hf_dir/tokenizer.json padded with unused tokens up to the model's `vocab_size`.

    ValueError naming the file for a tokenizer that is not byte-level BPE, has an unknown pre-tokenizer, has
    holes in its ids, or more tokens than the model's embedding has rows.
    """
    path = Path(hf_dir) / TOKENIZER_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no {TOKENIZER_FILE} in model directory {hf_dir}")
    spec = json.loads(path.read_text(encoding="utf-8"))
    model = spec.get("model") or {}
    if model.get("type") != "BPE" or (spec.get("decoder") or {}).get("type") != "ByteLevel":
        raise ValueError(f"{path}: only byte-level BPE tokenizers can be exported to GGUF, got {model.get('type')}")
    pre = pre_tokenizer_family(spec.get("pre_tokenizer"))
    if pre == "unknown":
        raise ValueError(f"{path}: pre-tokenizer {spec.get('pre_tokenizer')} is not a family llama.cpp knows")
    by_id = {token_id: token for token, token_id in model["vocab"].items()}
    kinds = {token_id: TokenType.NORMAL for token_id in by_id}
    for added in spec.get("added_tokens", []):
        by_id[added["id"]] = added["content"]
        kinds[added["id"]] = TokenType.CONTROL if added.get("special") else TokenType.USER_DEFINED
    if sorted(by_id) != list(range(len(by_id))):
        raise ValueError(f"{path}: token ids are not 0..{len(by_id) - 1} without holes")
    if len(by_id) > vocab_size:
        raise ValueError(f"{path} has {len(by_id)} tokens but the model's vocab_size is {vocab_size}")
    # Embedding rows past the tokenizer (a vocabulary rounded up for speed) get placeholder tokens never produced.
    tokens = [by_id[i] for i in range(len(by_id))] + [f"[PAD{i}]" for i in range(len(by_id), vocab_size)]
    types = [int(kinds[i]) for i in range(len(by_id))] + [int(TokenType.UNUSED)] * (vocab_size - len(by_id))
    merges = [merge if isinstance(merge, str) else " ".join(merge) for merge in model.get("merges", [])]
    return Vocabulary(tokens=tokens, token_types=types, merges=merges, pre=pre)


def chat_template_of(hf_dir: str | Path) -> str | None:
    """The model's chat template (chat_template.jinja, else tokenizer_config.json), `{% generation %}` tags removed."""
    directory = Path(hf_dir)
    template = None
    if (directory / CHAT_TEMPLATE_FILE).is_file():
        template = (directory / CHAT_TEMPLATE_FILE).read_text(encoding="utf-8")
    elif (directory / "tokenizer_config.json").is_file():
        template = json.loads((directory / "tokenizer_config.json").read_text(encoding="utf-8")).get("chat_template")
    return GENERATION_TAG.sub("", template) if isinstance(template, str) else None


def add_tokenizer(writer: GGUFWriter, hf_dir: str | Path, vocabulary: Vocabulary, config: dict) -> None:
    """Write the tokenizer keys: model, pre, tokens, types, merges, special ids and the chat template.

    BOS is not added when tokenizing: lmforge models are trained on documents separated by EOS only.
    """
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(vocabulary.pre)
    writer.add_token_list(vocabulary.tokens)
    writer.add_token_types(vocabulary.token_types)
    writer.add_token_merges(vocabulary.merges)
    eos_id = _first_id(config.get("eos_token_id"))
    if eos_id is None:
        raise ValueError(f"{Path(hf_dir) / 'config.json'} has no eos_token_id")
    bos_id = _first_id(config.get("bos_token_id"))
    writer.add_bos_token_id(eos_id if bos_id is None else bos_id)
    writer.add_eos_token_id(eos_id)
    if config.get("pad_token_id") is not None:
        writer.add_pad_token_id(config["pad_token_id"])
    writer.add_add_bos_token(False)
    writer.add_add_eos_token(False)
    template = chat_template_of(hf_dir)
    if template:
        writer.add_chat_template(template)


def _first_id(value) -> int | None:
    """A token id from a config field that may hold one id or a list of them."""
    return value[0] if isinstance(value, list) and value else value if isinstance(value, int) else None
