"""``revise prefetch``: the offline refusal, the manifest writer on local folders, and the download flow
with huggingface_hub's ``snapshot_download`` replaced by a local stand-in (there is no network here)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

import revise.cli.main as cli
from revise.cli.scale import register_scale_commands
from revise.hub import (
    MANIFEST_FORMAT,
    file_manifest,
    model_manifest_entry,
    prefetch_models,
    write_prefetch_manifest,
)
from revise.errors import ConfigError

COMMIT = "89abcdef0123456789abcdef0123456789abcdef"


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module", autouse=True)
def _prefetch_command():
    """``revise prefetch`` on the real CLI app (registered here until main.py calls register_scale_commands)."""
    if "prefetch" not in [command.name for command in cli.app.registered_commands]:
        register_scale_commands(cli.app)


def _snapshot(root: Path, repo_id: str) -> Path:
    """A Hugging Face cache snapshot laid out as snapshot_download leaves it: files are symlinks to blobs."""
    storage = root / ("models--" + repo_id.replace("/", "--"))
    blobs, snapshot = storage / "blobs", storage / "snapshots" / COMMIT
    blobs.mkdir(parents=True)
    (snapshot / "transformer").mkdir(parents=True)
    contents = {"model_index.json": b'{"_class_name": "WanVACEPipeline"}\n',
                "transformer/config.json": b'{"num_layers": 30}\n',
                "transformer/diffusion_pytorch_model.safetensors": bytes(range(256)) * 40}
    for name, data in contents.items():
        blob = blobs / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        os.symlink(blob, snapshot / name)
    (storage / "refs").mkdir()
    (storage / "refs" / "main").write_text(COMMIT)
    return snapshot


def test_offline_prefetch_is_a_one_line_error(tmp_path, monkeypatch, capsys, no_network):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    manifest = tmp_path / "m.json"
    code = cli.main(["prefetch", "Wan-AI/Wan2.1-VACE-1.3B-diffusers", "Qwen/Qwen2.5-VL-7B-Instruct",
                     "--manifest", str(manifest), "--cache-dir", str(tmp_path / "hub")])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: revise prefetch: HF_HUB_OFFLINE is set")
    assert "Wan-AI/Wan2.1-VACE-1.3B-diffusers" in lines[0] and "Qwen/Qwen2.5-VL-7B-Instruct" in lines[0]
    assert not manifest.exists() and no_network == []


def test_bad_repo_id_is_refused(tmp_path, capsys):
    code = cli.main(["prefetch", "not a repo", "--manifest", str(tmp_path / "m.json")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "not a repo: not a Hugging Face repo id" in err[0]


def test_file_manifest_hashes_every_file(tmp_path):
    snapshot = _snapshot(tmp_path / "hub", "org/model")
    rows = file_manifest(snapshot)
    assert [r["path"] for r in rows] == ["model_index.json", "transformer/config.json",
                                         "transformer/diffusion_pytorch_model.safetensors"]
    for row in rows:
        data = (snapshot / row["path"]).read_bytes()  # through the symlink: the blob's bytes
        assert row["size"] == len(data) and row["sha256"] == hashlib.sha256(data).hexdigest()
    entry = model_manifest_entry(snapshot, repo_id="org/model", revision="main", commit=COMMIT)
    assert entry["n_files"] == 3 and entry["total_bytes"] == sum(r["size"] for r in rows)
    path = write_prefetch_manifest([entry], tmp_path / "out" / "manifest.json", hub_cache=str(tmp_path / "hub"))
    doc = json.loads(path.read_text())
    assert doc["format"] == MANIFEST_FORMAT and doc["models"][0]["files"] == rows and doc["created"]
    assert not list((tmp_path / "out").glob("*.tmp"))
    with pytest.raises(ConfigError, match="not a folder"):
        file_manifest(tmp_path / "missing")


def test_prefetch_flow_with_a_local_stand_in_for_the_hub(tmp_path, monkeypatch, capsys, no_network):
    import huggingface_hub
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    calls = []

    def fake_snapshot_download(repo_id, *, revision=None, cache_dir=None, **kwargs):
        calls.append({"repo_id": repo_id, "revision": revision, "cache_dir": cache_dir, **kwargs})
        return str(_snapshot(Path(cache_dir), repo_id))

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    manifest = tmp_path / "prefetch.json"
    code = cli.main(["prefetch", "org/a", "org/b", "--cache-dir", str(tmp_path / "hub"), "--revision", "v1",
                     "--manifest", str(manifest)])
    out = capsys.readouterr().out
    assert code == 0 and "2 model(s) in the cache" in out
    assert [c["repo_id"] for c in calls] == ["org/a", "org/b"]
    assert all(c["revision"] == "v1" and c["cache_dir"] == str(tmp_path / "hub") for c in calls)
    assert all(not c.get("local_files_only") for c in calls)
    doc = json.loads(manifest.read_text())
    assert [m["repo_id"] for m in doc["models"]] == ["org/a", "org/b"]
    assert all(m["commit"] == COMMIT and m["revision"] == "v1" and m["n_files"] == 3 for m in doc["models"])
    assert no_network == []

    def failing(repo_id, **kwargs):
        raise RuntimeError("401 Client Error\nGated repo: accept the licence first")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", failing)
    with pytest.raises(ConfigError) as info:
        prefetch_models(["org/gated"], hub_cache=tmp_path / "hub", manifest=tmp_path / "x.json")
    message = str(info.value)
    assert "\n" not in message and message.startswith("revise prefetch: cannot download org/gated: RuntimeError: 401")
    assert not (tmp_path / "x.json").exists()


def test_downloaded_models_are_then_found_offline(tmp_path, monkeypatch, no_network):
    """What prefetch leaves in the cache is what the editors and the judge resolve, offline."""
    from revise.hub import resolve_local_model

    _snapshot(tmp_path / "hub", "org/model")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    local = resolve_local_model("org/model", what="test", hub_cache=tmp_path / "hub")
    assert local.commit == COMMIT and (local.path / "model_index.json").is_file()
    assert no_network == []
