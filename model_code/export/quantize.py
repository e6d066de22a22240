"""The quantization stage in one call: write each GGUF, load-check it with llama.cpp, measure it against its parent.

from model_code.export.quantize import quantize_and_measure
report = quantize_and_measure("lake/dpo_model/<v>/model", out_dir, "lake/token_shards/<v>", QuantizeConfig())
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from model_code.deploy import gguf_name
from model_code.export.config import QuantizeConfig, within_bounds
from model_code.export.gguf import write_gguf
from model_code.export.llama import check_gguf_loads
from model_code.export.quality import quantization_quality

QUALITY_FILE = "quality.json"


def quantize_and_measure(
    parent_dir: Path,
    out_dir: Path,
    shards_dir: Path,
    config: QuantizeConfig,
    *,
    seq_len: int = 256,
    on_line: Callable[[str], None] = print,
) -> dict:
    """GGUF files of `config.qtypes` in out_dir, with quality.json; the stats {qtypes: {qtype: row}, parameters}.

    Each row: bytes, tensor_types, load_s, the quality numbers (parent_ppl, quant_ppl, ppl_delta_pct, mean_kl,
    top1_agreement) on up to config.eval_tokens held-out tokens, and the plain-words bound violations ([] = ok).
    """
    report, written = {}, {}
    for qtype in config.qtypes:
        path = Path(out_dir) / gguf_name(qtype)
        written = write_gguf(parent_dir, path, qtype)
        loaded = check_gguf_loads(path)
        quality = quantization_quality(parent_dir, path, shards_dir, max_tokens=config.eval_tokens, seq_len=seq_len)
        report[qtype] = {
            "bytes": written["bytes"],
            "tensor_types": written["tensor_types"],
            "load_s": loaded["load_s"],
            **quality,
            "violations": within_bounds(qtype, quality, config),
        }
        on_line(
            f"{qtype}: {written['bytes']:,} B, perplexity {quality['ppl_delta_pct']:+.2f}%, "
            f"KL {quality['mean_kl']:.4f}, top-1 {quality['top1_agreement']:.3f}"
        )
    (Path(out_dir) / QUALITY_FILE).write_text(json.dumps(report, indent=2))
    return {"qtypes": report, "parent_parameters": written["parameters"]}
