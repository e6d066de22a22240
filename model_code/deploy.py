"""The serving artifact: one directory that holds everything a server needs, and proves its own integrity.

    <dir>/hf/          config.json, generation_config.json, model.safetensors, tokenizer.json,
                       tokenizer_config.json, chat_template.jinja  (vLLM / transformers load this)
    <dir>/gguf/        model-<QTYPE>.gguf per quantization  (llama.cpp serves these)
    <dir>/draft/       drafter-Q8_0.gguf and drafter.json: the distilled drafter of this very model, when it has
                       one (speculative decoding; drafter.json names its teacher version and its acceptance rate)
    <dir>/README.md    the model card, generated from lineage
    <dir>/lineage.json the chain of artifacts behind the model (asset, version, uri per step)
    <dir>/SHA256SUMS   `sha256  relative/path` for every file above (sha256sum -c compatible)

A server refuses a directory whose files no longer match SHA256SUMS (`verify_sha256sums`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from data_code.files import file_sha256

HF_DIR = "hf"
GGUF_DIR = "gguf"
MODEL_CARD_FILE = "README.md"
LINEAGE_FILE = "lineage.json"
SUMS_FILE = "SHA256SUMS"
DRAFT_DIR = "draft"
DRAFTER_GGUF = "drafter-Q8_0.gguf"
DRAFTER_RECORD = "drafter.json"
HF_FILES = (
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
    "special_tokens_map.json",
)


def assemble_serving_artifact(
    hf_model_dir: Path,
    gguf_files: dict[str, Path],
    model_card: str,
    lineage: dict,
    out_dir: Path,
    drafter: tuple[Path, dict] | None = None,
) -> dict:
    """Copy the HF model and GGUF files into `out_dir`, write card, lineage and SHA256SUMS; returns file sizes.

    drafter: (its Q8_0 GGUF, its record: teacher version, acceptance...) when the model has a matching drafter.
    """
    hf_model_dir = Path(hf_model_dir)
    missing = [
        name for name in ("config.json", "model.safetensors", "tokenizer.json") if not (hf_model_dir / name).is_file()
    ]
    if missing:
        raise FileNotFoundError(f"HF model directory {hf_model_dir} lacks {', '.join(missing)}")
    if not gguf_files:
        raise ValueError("a serving artifact needs at least one GGUF file")
    (out_dir / HF_DIR).mkdir(parents=True, exist_ok=True)
    (out_dir / GGUF_DIR).mkdir(parents=True, exist_ok=True)
    for name in HF_FILES:
        if (hf_model_dir / name).is_file():
            shutil.copy2(hf_model_dir / name, out_dir / HF_DIR / name)
    for qtype, path in sorted(gguf_files.items()):
        shutil.copy2(path, out_dir / GGUF_DIR / gguf_name(qtype))
    if drafter is not None:
        (out_dir / DRAFT_DIR).mkdir(exist_ok=True)
        shutil.copy2(drafter[0], out_dir / DRAFT_DIR / DRAFTER_GGUF)
        (out_dir / DRAFT_DIR / DRAFTER_RECORD).write_text(json.dumps(drafter[1], indent=2) + "\n", encoding="utf-8")
    (out_dir / MODEL_CARD_FILE).write_text(model_card, encoding="utf-8")
    (out_dir / LINEAGE_FILE).write_text(json.dumps(lineage, indent=2, default=str) + "\n", encoding="utf-8")
    sums = write_sha256sums(out_dir)
    return {"files": len(sums), "bytes": sum(path.stat().st_size for path in _payload(out_dir))}


def gguf_name(qtype: str) -> str:
    return f"model-{qtype}.gguf"


def gguf_path(directory: Path, qtype: str) -> Path:
    """The GGUF file of `qtype` in a serving artifact; FileNotFoundError listing the ones it has."""
    path = Path(directory) / GGUF_DIR / gguf_name(qtype)
    if not path.is_file():
        have = sorted(p.stem.removeprefix("model-") for p in (Path(directory) / GGUF_DIR).glob("*.gguf"))
        raise FileNotFoundError(f"{directory} has no {qtype} GGUF (it has: {', '.join(have) or 'none'})")
    return path


def drafter_of(directory: Path) -> tuple[Path, dict] | None:
    """(drafter GGUF, its record) of a serving artifact, or None when it carries no drafter."""
    path = Path(directory) / DRAFT_DIR / DRAFTER_GGUF
    record = Path(directory) / DRAFT_DIR / DRAFTER_RECORD
    if not path.is_file() or not record.is_file():
        return None
    return path, json.loads(record.read_text(encoding="utf-8"))


def write_sha256sums(directory: Path) -> dict[str, str]:
    """SHA256SUMS over every file of the artifact except itself (and manifest.json, written later)."""
    sums = {path.relative_to(directory).as_posix(): file_sha256(path) for path in _payload(directory)}
    lines = [f"{digest}  {relative}" for relative, digest in sorted(sums.items())]
    (directory / SUMS_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return sums


def verify_sha256sums(directory: Path) -> list[str]:
    """Problems found checking `directory` against its SHA256SUMS: changed, missing or unlisted files ([] = ok)."""
    directory = Path(directory)
    sums_path = directory / SUMS_FILE
    if not sums_path.is_file():
        return [f"{sums_path} is missing"]
    expected = {}
    for number, line in enumerate(sums_path.read_text(encoding="utf-8").splitlines(), start=1):
        digest, _, relative = line.partition("  ")
        if len(digest) != 64 or not relative:
            return [f"{sums_path}:{number}: not a 'sha256  path' line"]
        expected[relative] = digest
    problems = []
    present = {path.relative_to(directory).as_posix(): path for path in _payload(directory)}
    for relative, digest in sorted(expected.items()):
        if relative not in present:
            problems.append(f"{relative}: listed in SHA256SUMS but missing")
        elif file_sha256(present[relative]) != digest:
            problems.append(f"{relative}: sha256 differs from SHA256SUMS (file changed after deployment)")
    problems += [f"{relative}: not listed in SHA256SUMS" for relative in sorted(set(present) - set(expected))]
    return problems


def _payload(directory: Path) -> list[Path]:
    """Files covered by SHA256SUMS: all but SHA256SUMS itself and the store's manifest.json."""
    return sorted(
        path
        for path in Path(directory).rglob("*")
        if path.is_file() and path.relative_to(directory).as_posix() not in (SUMS_FILE, "manifest.json")
    )
