"""The Wan editors (``wan-vace``, ``wan-v2v``) on tiny random pipelines built here: the real diffusers
and transformers classes with tiny configs, saved as safetensors; nothing is downloaded."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from revise.bench import run_bench
from revise.cli.main import main
from revise.data import load_manifest
from revise.editors import EditContext, create_editor
from revise.editors.diffusers_wan import WanVACEEditor, normalise_num_frames, round_size
from revise.hub import config_files_sha256, resolve_local_model
from revise.errors import ConfigError
from revise.sim import generate_dataset
from revise.video import Video, read_video

COMMIT = "0123456789abcdef0123456789abcdef01234567"


pytestmark = pytest.mark.usefixtures("one_thread")


def _tiny_components(seed: int = 0):
    import torch
    from diffusers import AutoencoderKLWan
    from transformers import T5Tokenizer, UMT5Config, UMT5EncoderModel

    torch.manual_seed(seed)
    words = ["what", "if", "the", "ball", "a", "had", "been", "blocked", "by", "crate", "suppose"]
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    vocab += [(c, -3.0) for c in "abcdefghijklmnopqrstuvwxyz'.,"] + [("\u2581" + w, -1.0) for w in words]
    tokenizer = T5Tokenizer(vocab=vocab, extra_ids=0)
    text_encoder = UMT5EncoderModel(UMT5Config(vocab_size=len(vocab), d_model=32, d_kv=8, d_ff=37, num_layers=1,
                                               num_heads=4, relative_attention_num_buckets=8)).eval()
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])
    return tokenizer, text_encoder, vae


TRANSFORMER = dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16, out_channels=16,
                   text_dim=32, freq_dim=256, ffn_dim=32, num_layers=3, cross_attn_norm=True,
                   qk_norm="rms_norm_across_heads", rope_max_seq_len=32)


def build_tiny_vace(folder: Path) -> Path:
    from diffusers import FlowMatchEulerDiscreteScheduler, WanVACEPipeline, WanVACETransformer3DModel

    tokenizer, text_encoder, vae = _tiny_components(0)
    transformer = WanVACETransformer3DModel(**TRANSFORMER, vace_layers=[0, 2], vace_in_channels=96)
    pipe = WanVACEPipeline(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer,
                           scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0))
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def build_tiny_t2v(folder: Path) -> Path:
    """Saved as ``WanPipeline``, like the Wan-AI text-to-video repos that ``wan-v2v`` loads."""
    from diffusers import UniPCMultistepScheduler, WanPipeline, WanTransformer3DModel

    tokenizer, text_encoder, vae = _tiny_components(1)
    transformer = WanTransformer3DModel(**TRANSFORMER)
    scheduler = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0)
    pipe = WanPipeline(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer,
                       scheduler=scheduler)
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("wan-models")
    return {"vace": build_tiny_vace(root / "vace"), "t2v": build_tiny_t2v(root / "t2v")}


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("wan-bench")
    return generate_dataset(root / "sim", per_dimension=1, seed=0, split="test", size=32, frames=16,
                            dimensions=["rave/causal"])


def fake_hub_cache(root: Path, repo_id: str, folder: Path) -> Path:
    """A Hugging Face cache holding ``folder`` as ``repo_id`` at :data:`COMMIT` (refs/main -> snapshot)."""
    storage = root / ("models--" + repo_id.replace("/", "--"))
    (storage / "refs").mkdir(parents=True)
    (storage / "refs" / "main").write_text(COMMIT)
    shutil.copytree(folder, storage / "snapshots" / COMMIT)
    return root


def _sample_and_source(bench: Path):
    manifest = load_manifest(bench)
    sample = next(iter(manifest))
    return manifest, sample, read_video(sample.source)


@pytest.mark.parametrize("n, expected", [(1, 5), (3, 5), (5, 5), (8, 5), (9, 9), (16, 13), (17, 17), (20, 17),
                                         (81, 81), (100, 97)])
def test_num_frames_normalised_to_4k_plus_1(n, expected):
    assert normalise_num_frames(n) == expected
    assert (expected - 1) % 4 == 0 and expected >= 5


def test_size_rounding_and_plan(models, bench):
    assert [round_size(x) for x in (1, 8, 23, 24, 32, 130, 480)] == [16, 16, 16, 32, 32, 128, 480]
    _, _, source = _sample_and_source(bench)
    editor = create_editor("wan-vace", model=str(models["vace"]))
    assert editor.plan(source) == {"num_frames": 13, "height": 32, "width": 32}
    capped = create_editor("wan-vace", model=str(models["vace"]), max_frames=9, height=48, width=64)
    assert capped.plan(source) == {"num_frames": 9, "height": 48, "width": 64}
    assert create_editor("wan-vace", model=str(models["vace"]), num_frames=30).plan(source)["num_frames"] == 29


def test_wan_vace_through_run_bench(models, bench, tmp_path, monkeypatch):
    from diffusers import WanVACEPipeline

    calls = []
    original = WanVACEPipeline.__call__

    def spy(self, *args, **kwargs):
        calls.append({"frames": len(kwargs["video"]), "size": kwargs["video"][0].size,
                      "mask": sorted({int(np.asarray(m).max()) for m in kwargs["mask"]}),
                      "num_frames": kwargs["num_frames"], "steps": kwargs["num_inference_steps"]})
        return original(self, *args, **kwargs)

    monkeypatch.setattr(WanVACEPipeline, "__call__", spy)
    out = tmp_path / "run"
    result = run_bench(bench, out, editor="wan-vace", judges=["gt"], progress=False, report=False,
                       editor_options={"model": str(models["vace"]), "steps": 2, "guidance": 1.0})
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert result.n_failed == 0 and rows and all(r["status"] == "ok" for r in rows)
    assert calls == [{"frames": 13, "size": (32, 32), "mask": [0], "num_frames": 13, "steps": 2}] * len(rows)
    manifest = load_manifest(bench)
    for row in rows:
        source = read_video(manifest.by_id()[row["id"]].source)
        edited = read_video(out / row["prediction"])
        assert edited.frames.shape == source.frames.shape
        assert row["judges"]["gt"]["error"] is None
    info = json.loads((out / "run.json").read_text())["editor"]
    assert info["editor"] == "wan-vace" and info["pipeline"] == "WanVACEPipeline"
    assert info["config_sha256"] == config_files_sha256(models["vace"])
    assert info["options"]["steps"] == 2 and info["options"]["mask"] == "zero" and info["options"]["dtype"] == "float32"
    assert info["path"] == str(models["vace"].resolve())


def test_wan_v2v_through_run_bench(models, bench, tmp_path):
    out = tmp_path / "run"
    result = run_bench(bench, out, editor="wan-v2v", judges=["gt"], progress=False, report=False,
                       editor_options={"model": str(models["t2v"]), "steps": 4, "strength": 0.5, "guidance": 1.0})
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert result.n_failed == 0 and all(r["status"] == "ok" for r in rows)
    manifest = load_manifest(bench)
    for row in rows:
        assert read_video(out / row["prediction"]).frames.shape == read_video(manifest.by_id()[row["id"]].source).frames.shape
    info = json.loads((out / "run.json").read_text())["editor"]
    assert info["pipeline"] == "WanVideoToVideoPipeline" and info["options"]["strength"] == 0.5


def test_seeded_edits_are_reproducible_and_cfg_runs(models, bench):
    manifest, sample, source = _sample_and_source(bench)
    editor = create_editor("wan-vace", model=str(models["vace"]), steps=2, guidance=2.5, negative_prompt="blurry",
                           mask="one", reference=True)
    context = EditContext(sample=sample, manifest=manifest, seed=3)
    a = editor.edit(source, sample.instruction, context)
    b = editor.edit(source, sample.instruction, context)
    c = editor.edit(source, sample.instruction, EditContext(sample=sample, manifest=manifest, seed=4))
    assert a.frames.shape == source.frames.shape and a.frames.dtype == np.uint8 and a.fps == source.fps
    assert np.array_equal(a.frames, b.frames)
    assert not np.array_equal(a.frames, c.frames)
    # a source of another length and size comes back with its own shape
    odd = Video(np.random.default_rng(0).integers(0, 255, (7, 20, 36, 3), dtype=np.uint8), 8.0)
    assert editor.edit(odd, sample.instruction, context).frames.shape == odd.frames.shape


@pytest.mark.numerics
def test_prompt_encoding_matches_diffusers(models, monkeypatch):
    """The embeddings handed to the pipeline equal diffusers' own encode_prompt (ftfy stubbed in)."""
    import types

    import torch
    from diffusers.pipelines.wan import pipeline_wan_vace

    editor = create_editor("wan-vace", model=str(models["vace"]))
    pipe = editor.pipeline
    monkeypatch.setattr(pipeline_wan_vace, "ftfy", types.SimpleNamespace(fix_text=lambda t: t), raising=False)
    text = "  What if   the ball had been &amp; blocked?"
    ours = editor.encode_text(pipe, text)
    theirs, _ = pipe.encode_prompt(text, do_classifier_free_guidance=False, max_sequence_length=512)
    assert ours.shape == theirs.shape == (1, 512, 32)
    assert torch.allclose(ours, theirs.detach(), atol=1e-5)
    assert torch.equal((ours != 0).any(-1), (theirs != 0).any(-1))  # same tokens kept, padding zeroed


def _cli(args, capsys):
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.err


def test_missing_model_is_one_line_through_the_cli(bench, tmp_path, monkeypatch, capsys, no_network):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    for editor, repo in (("wan-vace", "Wan-AI/Wan2.1-VACE-1.3B-diffusers"), ("wan-v2v", "tiny-org/absent-t2v")):
        args = ["bench", "run", "--bench", str(bench), "--out", str(tmp_path / editor), "--editor", editor,
                "--no-progress", "--no-report"]
        if editor == "wan-v2v":
            args += ["--editor-option", f"model={repo}"]
        code, err = _cli(args, capsys)
        assert code == 2
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), err
        assert repo in lines[0] and f"revise prefetch {repo}" in lines[0]
        assert not (tmp_path / editor / "results.jsonl").exists()
    assert no_network == []


def test_repo_id_resolved_from_the_local_cache_offline(models, bench, tmp_path, monkeypatch, no_network):
    cache = fake_hub_cache(tmp_path / "hub", "tiny-org/wan-vace", models["vace"])
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    local = resolve_local_model("tiny-org/wan-vace", what="test")
    assert local.commit == COMMIT and local.repo_id == "tiny-org/wan-vace"
    editor = create_editor("wan-vace", model="tiny-org/wan-vace", steps=1, guidance=1.0)
    info = editor.info()
    assert info["commit"] == COMMIT and info["repo_id"] == "tiny-org/wan-vace"
    assert info["config_sha256"] == config_files_sha256(models["vace"])
    manifest, sample, source = _sample_and_source(bench)
    edited = editor.edit(source, sample.instruction, EditContext(sample=sample, manifest=manifest, seed=0))
    assert edited.frames.shape == source.frames.shape
    with pytest.raises(ConfigError, match=r"revise prefetch tiny-org/wan-vace --revision v2"):
        resolve_local_model("tiny-org/wan-vace", what="test", revision="v2")
    assert no_network == []


def test_bad_options_fail_before_the_run(models):
    vace = str(models["vace"])
    cases = [
        (dict(model=vace, height=30), "multiple of 16"),
        (dict(model=vace, steps=0), "steps must be >= 1"),
        (dict(model=vace, dtype="int8"), "dtype must be one of"),
        (dict(model=vace, mask="half"), "mask must be one of"),
        (dict(model=vace, colour="red"), "unknown option"),
        (dict(model=vace, prompt="no placeholder"), "{instruction}"),
        (dict(model=str(models["t2v"])), "needs WanVACEPipeline"),
        (dict(model=str(models["vace"] / "vae")), "no model_index.json"),
        (dict(model="./no/such/folder"), "no such folder"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ConfigError, match=None) as info:
            create_editor("wan-vace", **kwargs)
        assert message in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="strength must be in"):
        create_editor("wan-v2v", model=str(models["t2v"]), strength=0)
    with pytest.raises(ConfigError, match="steps x strength"):
        create_editor("wan-v2v", model=str(models["t2v"]), steps=2, strength=0.3)


def test_cpu_offload_without_a_gpu_is_a_clear_error(models):
    import torch

    if torch.cuda.is_available():  # pragma: no cover - GPU machines
        pytest.skip("a GPU is visible")
    with pytest.raises(ConfigError, match="cpu_offload needs a CUDA GPU") as info:
        create_editor("wan-vace", model=str(models["vace"]), cpu_offload=True)
    assert "\n" not in str(info.value)


def test_broken_weights_fail_each_sample_with_one_line(models, bench, tmp_path, monkeypatch):
    broken = tmp_path / "broken"
    shutil.copytree(models["vace"], broken)
    (broken / "transformer" / "diffusion_pytorch_model.safetensors").write_bytes(b"not safetensors")
    loads = []
    original = WanVACEEditor._load

    def counting(self):
        loads.append(1)
        return original(self)

    monkeypatch.setattr(WanVACEEditor, "_load", counting)
    out = tmp_path / "run"
    run_bench(bench, out, editor="wan-vace", judges=["gt"], progress=False, report=False,
              editor_options={"model": str(broken), "steps": 1})
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert rows and all(r["status"] == "failed" for r in rows)
    assert all("cannot load the WanVACEPipeline pipeline" in r["error"] and str(broken) in r["error"] for r in rows)
    assert all("\n" not in r["error"] and r["error"].count("editor wan-vace") == 1 for r in rows)
    assert len(loads) == 1
    editor = create_editor("wan-vace", model=str(broken))
    manifest, sample, source = _sample_and_source(bench)
    for _ in range(2):  # the load failure is remembered: the second sample fails at once, same message
        with pytest.raises(ConfigError, match="cannot load the WanVACEPipeline pipeline"):
            editor.edit(source, sample.instruction, EditContext(sample=sample, manifest=manifest, seed=0))
    assert len(loads) == 2
