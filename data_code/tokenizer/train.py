"""Training the byte-level BPE tokenizer on the filtered corpus, saved in Hugging Face format.

The corpus is streamed from the Document Parquet as record batches into `Tokenizer.train_from_iterator`, so
memory holds one batch plus the trainer's word counts (which grow with distinct words, not with corpus size).
Byte-level BPE with no normalizer encodes any string and decodes back to it exactly. The directory written is
loadable offline by `transformers.AutoTokenizer.from_pretrained(dir)`:

    tokenizer.json           the tokenizers model (vocabulary, merges, GPT-2 byte-level pre-tokenizer)
    tokenizer_config.json    transformers settings: eos/pad tokens, the extra special tokens
    special_tokens_map.json  the same special tokens, for older readers (llama.cpp's converter, transformers 4)
    chat_template.jinja      ChatML with generation markers (data_code.tokenizer.chat_template)
    fingerprint.json         fingerprint, pre-tokenizer family (for GGUF), vocabulary size, special token ids
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from data_code.tokenizer.chat_template import CHAT_TEMPLATE
from data_code.tokenizer.config import EOS, PAD, TokenizerConfig
from data_code.tokenizer.corpus import count_rows, iter_texts
from data_code.tokenizer.fingerprint import (
    CHAT_TEMPLATE_FILE,
    FINGERPRINT_FILE,
    TOKENIZER_FILE,
    fingerprint_of,
    pre_tokenizer_family,
)


def new_byte_level_bpe() -> Tokenizer:
    """An untrained byte-level BPE with GPT-2's pre-tokenizer regex and no normalizer (so decoding is exact)."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    # trim_offsets=False keeps each token's character span exact, which the assistant-token mask relies on.
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    return tokenizer


def train_tokenizer(documents_path: str, out_dir: Path, config: TokenizerConfig) -> dict:
    """Train on the texts of `documents_path`, save to `out_dir`, and return stats.

    Stats: vocab_size, fingerprint, pre_tokenizer_family, documents, chars, elapsed_s (and special token ids).
    Raises FileNotFoundError for a missing file and ValueError naming it when it holds no text.
    """
    started = time.perf_counter()
    rows = count_rows(documents_path, [config.text_field])
    if rows == 0:
        raise ValueError(f"the corpus is empty: {documents_path} holds no documents")
    tokenizer = new_byte_level_bpe()
    trainer = trainers.BpeTrainer(
        vocab_size=config.vocab_size,
        min_frequency=config.min_frequency,
        special_tokens=list(config.special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes, seen in the corpus or not
        show_progress=False,
    )
    counts: dict = {}
    texts = iter_texts(documents_path, config.text_field, config.batch_size, counts)
    tokenizer.train_from_iterator(texts, trainer, length=rows)
    if counts.get("chars", 0) == 0:
        raise ValueError(f"the corpus is empty: {documents_path} holds {rows} documents but no text")
    fingerprint = save_hf_tokenizer(tokenizer, Path(out_dir), config)
    return {
        **fingerprint,
        "requested_vocab_size": config.vocab_size,
        "documents": counts["documents"],
        "chars": counts["chars"],
        "elapsed_s": round(time.perf_counter() - started, 3),
    }


def save_hf_tokenizer(tokenizer: Tokenizer, out_dir: Path, config: TokenizerConfig) -> dict:
    """Write the Hugging Face tokenizer files and fingerprint.json into `out_dir`; return fingerprint.json's dict."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(out_dir / TOKENIZER_FILE))
    (out_dir / CHAT_TEMPLATE_FILE).write_text(CHAT_TEMPLATE, encoding="utf-8")
    extra = [token for token in config.special_tokens if token not in (EOS, PAD)]
    special_map = {"eos_token": EOS, "pad_token": PAD, "additional_special_tokens": extra}
    _write_json(out_dir / "special_tokens_map.json", special_map)
    _write_json(out_dir / "tokenizer_config.json", _tokenizer_config(tokenizer, config, extra))
    saved = json.loads((out_dir / TOKENIZER_FILE).read_text(encoding="utf-8"))
    record = {
        "fingerprint": fingerprint_of(saved, CHAT_TEMPLATE),
        "pre_tokenizer_family": pre_tokenizer_family(saved["pre_tokenizer"]),
        "vocab_size": tokenizer.get_vocab_size(with_added_tokens=True),
        "special_tokens": {token: tokenizer.token_to_id(token) for token in config.special_tokens},
        "eos_id": tokenizer.token_to_id(EOS),
        "pad_id": tokenizer.token_to_id(PAD),
    }
    _write_json(out_dir / FINGERPRINT_FILE, record)
    return record


def _tokenizer_config(tokenizer: Tokenizer, config: TokenizerConfig, extra: list[str]) -> dict:
    """tokenizer_config.json for transformers 5 (extra_special_tokens) and 4 (added_tokens_decoder)."""
    added = {
        str(tokenizer.token_to_id(token)): {
            "content": token,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": True,
        }
        for token in config.special_tokens
    }
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "added_tokens_decoder": added,
        "bos_token": None,
        "eos_token": EOS,
        "pad_token": PAD,
        "unk_token": None,  # byte-level: every string has an encoding, nothing is unknown
        "extra_special_tokens": extra,
        "clean_up_tokenization_spaces": False,  # decoding must give back the exact text
        "model_max_length": 1_000_000_000,  # the model's context is the model's business, not the tokenizer's
    }


def _write_json(path: Path, payload: dict) -> None:
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
