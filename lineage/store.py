"""The artifact store: `<root>/lake/<asset>/<version>/`, on a local disk or any fsspec URL (s3://, gs://).

An artifact is complete when, and only when, its directory holds manifest.json. Writers build the artifact in a
temporary sibling (`.tmp-<version>-<pid>-<random>`) and rename it into place once complete; on object stores,
where rename is not atomic, files are uploaded first and the manifest last. A crash therefore never leaves
anything that looks finished, and the next writer clears the debris.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from upath import UPath

from lineage.manifest import MANIFEST_NAME, Manifest, hash_files, now_iso

TMP_PREFIX = ".tmp-"


@dataclass
class Staging:
    """A directory being filled with one artifact; `path` is always local, so stage code can use plain I/O."""

    path: Path
    asset: str
    version: str
    uri: str  # where the artifact will live once committed


class ArtifactStore:
    """Content-addressed store of artifacts under `root` (a path or fsspec URL)."""

    def __init__(self, root: str | os.PathLike):
        self.root = UPath(str(root))
        self.is_local = self.root.protocol in ("", "file", "local")

    def lake(self) -> UPath:
        return self.root / "lake"

    def artifact_path(self, asset: str, version: str) -> UPath:
        return self.lake() / asset / version

    def uri(self, asset: str, version: str) -> str:
        path = self.artifact_path(asset, version)
        return path.as_uri() if self.is_local else str(path)

    def exists(self, asset: str, version: str) -> bool:
        """True when the artifact is complete (its manifest exists)."""
        return (self.artifact_path(asset, version) / MANIFEST_NAME).exists()

    def read_manifest(self, asset: str, version: str) -> Manifest:
        path = self.artifact_path(asset, version) / MANIFEST_NAME
        if not path.exists():
            raise FileNotFoundError(f"no complete artifact {asset}/{version}: {path} does not exist")
        return Manifest.from_json(path.read_text())

    def local_path(self, asset: str, version: str) -> Path:
        """Local directory of a complete artifact (only for a local store; remote readers use fsspec uris)."""
        assert self.is_local, "local_path() needs a local store; read remote artifacts through their uri"
        return Path(self.artifact_path(asset, version).path)

    def file_uri(self, asset: str, version: str, relative: str) -> str:
        """Uri of one file inside an artifact, readable with fsspec/pyarrow."""
        path = self.artifact_path(asset, version) / relative
        return path.path if self.is_local else str(path)

    def index_path(self, name: str) -> Path:
        """Local directory of a derived index (say the dedupe history), rebuilt from artifacts when lost."""
        if not self.is_local:
            raise NotImplementedError(f"the {name} index needs a local (or mounted) store; {self.root} is remote")
        return Path((self.root / "index" / name).path)

    def latest(self, asset: str) -> str:
        """The most recently created complete version of `asset`; FileNotFoundError when there is none."""
        versions = self.versions(asset)
        if not versions:
            raise FileNotFoundError(f"no complete {asset} artifact under {self.lake()}: materialize it first")
        return max(versions, key=lambda version: self.read_manifest(asset, version).created_at)

    def versions(self, asset: str) -> list[str]:
        """Versions of `asset` that are complete."""
        directory = self.lake() / asset
        if not directory.exists():
            return []
        return sorted(p.name for p in directory.iterdir() if not p.name.startswith(".") and self.exists(asset, p.name))

    @contextmanager
    def stage(self, asset: str, version: str) -> Iterator[Staging]:
        """Yield a local staging directory; `commit()` must be called on success to publish it.

        On any exception the staging directory is removed and nothing is published.
        """
        if self.is_local:
            parent = Path(self.lake().path) / asset
            parent.mkdir(parents=True, exist_ok=True)
            self._clear_debris(parent)
            staging_dir = parent / f"{TMP_PREFIX}{version}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            staging_dir.mkdir()
        else:
            staging_dir = Path(tempfile.mkdtemp(prefix=f"lmforge-{asset}-{version}-"))
        try:
            yield Staging(path=staging_dir, asset=asset, version=version, uri=self.uri(asset, version))
        finally:
            if staging_dir.exists():
                shutil.rmtree(staging_dir, ignore_errors=True)

    def commit(self, staging: Staging, manifest: Manifest) -> Manifest:
        """Hash the staged files, write manifest.json and publish the artifact. Returns the final manifest."""
        manifest.files = hash_files(staging.path)
        manifest.uri = staging.uri
        manifest.created_at = manifest.created_at or now_iso()
        (staging.path / MANIFEST_NAME).write_text(manifest.to_json())
        if self.is_local:
            self._publish_local(staging)
        else:
            self._publish_remote(staging)
        return manifest

    def _publish_local(self, staging: Staging) -> None:
        final = Path(self.artifact_path(staging.asset, staging.version).path)
        if (final / MANIFEST_NAME).exists():
            return  # a concurrent writer published the same version first; identical by construction
        if final.exists():
            shutil.rmtree(final)  # an incomplete leftover without a manifest
        os.rename(staging.path, final)  # atomic on one filesystem

    def _publish_remote(self, staging: Staging) -> None:
        final = self.artifact_path(staging.asset, staging.version)
        files = sorted(p for p in staging.path.rglob("*") if p.is_file() and p.name != MANIFEST_NAME)
        for path in files:
            target = final / path.relative_to(staging.path).as_posix()
            target.parent.mkdir(parents=True, exist_ok=True)
            with path.open("rb") as source, target.open("wb") as sink:
                shutil.copyfileobj(source, sink, 1 << 20)
        (final / MANIFEST_NAME).write_bytes((staging.path / MANIFEST_NAME).read_bytes())  # last: marks complete

    @staticmethod
    def _clear_debris(parent: Path) -> None:
        """Remove staging directories of this asset left by writers that died (their pid is gone)."""
        for leftover in parent.glob(f"{TMP_PREFIX}*"):
            parts = leftover.name.removeprefix(TMP_PREFIX).split("-")  # <version>-<pid>-<random>
            if len(parts) == 3 and parts[1].isdigit() and not _pid_alive(int(parts[1])):
                shutil.rmtree(leftover, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True  # another thread of this process may be writing it right now
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
