import json
import os
import subprocess
import sys
import textwrap

import pytest

from lineage.manifest import Manifest, content_digest
from lineage.store import ArtifactStore


def new_manifest(asset="stage", version="v1"):
    return Manifest(asset=asset, version=version, config={"a": 1}, code_version="1", upstream=[], files=[], stats={})


def test_commit_publishes_with_manifest_and_hashes(tmp_path):
    store = ArtifactStore(tmp_path)
    with store.stage("stage", "v1") as staging:
        (staging.path / "data.txt").write_text("hello")
        (staging.path / "sub").mkdir()
        (staging.path / "sub" / "more.bin").write_bytes(b"\x00" * 10)
        manifest = store.commit(staging, new_manifest())
    assert store.exists("stage", "v1")
    on_disk = json.loads((tmp_path / "lake" / "stage" / "v1" / "manifest.json").read_text())
    assert on_disk["uri"] == (tmp_path / "lake" / "stage" / "v1").as_uri()
    files = {entry["path"]: entry for entry in on_disk["files"]}
    assert files["data.txt"]["sha256"] == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    assert files["sub/more.bin"]["size"] == 10
    assert store.versions("stage") == ["v1"]
    assert content_digest(manifest) == content_digest(store.read_manifest("stage", "v1"))


def test_failure_inside_stage_publishes_nothing(tmp_path):
    store = ArtifactStore(tmp_path)
    with pytest.raises(RuntimeError, match="boom"):
        with store.stage("stage", "v1") as staging:
            (staging.path / "half.txt").write_text("half")
            raise RuntimeError("boom")
    assert not store.exists("stage", "v1")
    assert list((tmp_path / "lake" / "stage").iterdir()) == []


def test_killed_writer_leaves_nothing_complete_and_next_run_succeeds(tmp_path):
    # A separate process stages an artifact and is killed (SIGKILL) before it commits.
    script = textwrap.dedent(
        f"""
        import os, signal
        from lineage.store import ArtifactStore
        store = ArtifactStore({str(tmp_path)!r})
        with store.stage("stage", "v1") as staging:
            (staging.path / "part.txt").write_text("partial")
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    completed = subprocess.run([sys.executable, "-c", script], cwd=os.getcwd())
    assert completed.returncode == -9
    store = ArtifactStore(tmp_path)
    assert not store.exists("stage", "v1")
    assert store.versions("stage") == []
    debris = list((tmp_path / "lake" / "stage").iterdir())
    assert len(debris) == 1 and debris[0].name.startswith(".tmp-v1-")
    with store.stage("stage", "v1") as staging:
        (staging.path / "full.txt").write_text("complete")
        store.commit(staging, new_manifest())
    assert store.exists("stage", "v1")
    assert [p.name for p in (tmp_path / "lake" / "stage").iterdir()] == ["v1"]  # the debris was cleared


def test_remote_store_uploads_files_then_manifest(tmp_path):
    store = ArtifactStore("memory://lmforge-test-root")
    assert not store.is_local
    with store.stage("stage", "v1") as staging:
        (staging.path / "data.txt").write_text("hello")
        store.commit(staging, new_manifest())
    assert store.exists("stage", "v1")
    assert store.read_manifest("stage", "v1").uri == "memory://lmforge-test-root/lake/stage/v1"
    assert (store.artifact_path("stage", "v1") / "data.txt").read_text() == "hello"


def test_missing_manifest_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no complete artifact stage/nope"):
        ArtifactStore(tmp_path).read_manifest("stage", "nope")
