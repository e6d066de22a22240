"""The serve tests reuse the export tests' tiny model and GGUF files."""

from tests.export.conftest import corpus_path, gguf_files, hf_dir, shards_dir, tokenizer_dir  # noqa: F401
