"""Plots shown inline in the Dagster UI: a PNG embedded in Markdown metadata."""

import base64
from pathlib import Path

from dagster import MetadataValue


def png_markdown(path: Path, caption: str) -> MetadataValue:
    """Markdown that renders the PNG at `path` inline (Dagster's Markdown metadata accepts data URIs)."""
    encoded = base64.b64encode(path.read_bytes()).decode()
    return MetadataValue.md(f"![{caption}](data:image/png;base64,{encoded})")
