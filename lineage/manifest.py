"""manifest.json: the provenance record written beside every complete artifact."""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from data_code.files import file_sha256

MANIFEST_NAME = "manifest.json"
# Versions of the packages that shape artifacts, recorded in every manifest for reproduction.
TRACKED_PACKAGES = (
    "lmforge",
    "dagster",
    "mlflow",
    "pyarrow",
    "httpx",
    "warcio",
    "trafilatura",
    "resiliparse",
    "pyspark",
    "datasketch",
    "fasttext",
    "tokenizers",
    "transformers",
    "torch",
    "accelerate",
    "peft",
    "trl",
    "gguf",
)


@dataclass(frozen=True)
class UpstreamRef:
    """One input artifact: which asset, which version, where it lives."""

    asset: str
    version: str
    uri: str
    partition: str | None = None

    @property
    def key(self) -> str:
        """'asset' or 'asset[partition]': unique among one artifact's inputs."""
        return f"{self.asset}[{self.partition}]" if self.partition else self.asset


@dataclass(frozen=True)
class FileEntry:
    path: str  # relative to the artifact directory, '/'-separated
    sha256: str
    size: int  # bytes


@dataclass
class Manifest:
    asset: str
    version: str
    config: dict[str, Any]
    code_version: str
    upstream: list[UpstreamRef]
    files: list[FileEntry]
    stats: dict[str, Any]
    git_commit: str | None = None
    packages: dict[str, str] = field(default_factory=dict)
    partition: str | None = None
    dagster_run_id: str | None = None
    mlflow_run_id: str | None = None
    created_at: str = ""
    uri: str = ""
    # Exactly what the version was computed from besides asset, code_version and upstream: the versioned config
    # fields, extra identity (file digests ...) and the partition. An audit re-derives the version from it.
    identity: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True, default=str)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        raw = json.loads(text)
        raw["upstream"] = [UpstreamRef(**item) for item in raw.get("upstream", [])]
        raw["files"] = [FileEntry(**item) for item in raw.get("files", [])]
        known = {name for name in cls.__dataclass_fields__}
        return cls(**{key: value for key, value in raw.items() if key in known})


def hash_files(directory: Path) -> list[FileEntry]:
    """sha256 and size of every file under `directory` (sorted, manifest excluded)."""
    entries = []
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and p.name != MANIFEST_NAME):
        relative = path.relative_to(directory).as_posix()
        entries.append(FileEntry(path=relative, sha256=file_sha256(path), size=path.stat().st_size))
    return entries


def package_versions() -> dict[str, str]:
    versions = {}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def git_commit(directory: Path | None = None) -> str | None:
    """Commit of the code that made the artifact (with '-dirty' when the tree has changes), None outside git."""
    cwd = directory or Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}-dirty" if dirty else commit


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def content_digest(manifest: Manifest) -> str:
    """Digest of an artifact's content: sha256 over its files' paths and hashes (what MLflow records as input)."""
    digest = hashlib.sha256()
    for entry in sorted(manifest.files, key=lambda item: item.path):
        digest.update(f"{entry.path}\0{entry.sha256}\n".encode())
    return digest.hexdigest()[:16]
