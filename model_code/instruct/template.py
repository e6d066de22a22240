"""The chat template's identity: one sha256 that tokenizer, SFT, DPO and exported models must share."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

CHAT_TEMPLATE_FILE = "chat_template.jinja"


def chat_template_hash(directory_or_tokenizer) -> str:
    """sha256 (hex) of the chat template text of a model/tokenizer directory or a loaded tokenizer.

    A directory's template is chat_template.jinja, else tokenizer_config.json's "chat_template".
    Raises ValueError naming the directory (or tokenizer) when there is no template.
    """
    if isinstance(directory_or_tokenizer, str | Path):
        text, source = _template_of_directory(Path(directory_or_tokenizer)), str(directory_or_tokenizer)
    else:
        text, source = getattr(directory_or_tokenizer, "chat_template", None), type(directory_or_tokenizer).__name__
    if not isinstance(text, str) or not text:
        raise ValueError(f"{source} has no chat template")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _template_of_directory(directory: Path) -> str | None:
    if not directory.is_dir():
        raise FileNotFoundError(f"model or tokenizer directory not found: {directory}")
    if (directory / CHAT_TEMPLATE_FILE).is_file():
        return (directory / CHAT_TEMPLATE_FILE).read_text(encoding="utf-8")
    config = directory / "tokenizer_config.json"
    if config.is_file():
        return json.loads(config.read_text(encoding="utf-8")).get("chat_template")
    return None
