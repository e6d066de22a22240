"""The byte-level BPE tokenizer: training on the filtered corpus, Hugging Face files, fingerprint, chat template."""

from data_code.tokenizer.chat_template import CHAT_TEMPLATE
from data_code.tokenizer.config import EOS, IM_END, IM_START, PAD, TokenizerConfig
from data_code.tokenizer.fingerprint import pre_tokenizer_family, tokenizer_fingerprint
from data_code.tokenizer.train import train_tokenizer

__all__ = [
    "CHAT_TEMPLATE",
    "EOS",
    "IM_END",
    "IM_START",
    "PAD",
    "TokenizerConfig",
    "pre_tokenizer_family",
    "tokenizer_fingerprint",
    "train_tokenizer",
]
