"""The ``hf-vlm`` judge on a tiny random Qwen2.5-VL built here (real transformers classes, tiny configs, a
byte-level BPE tokenizer made from scratch with the Qwen special tokens); nothing is downloaded."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from revise.bench import run_bench
from revise.cli.main import main
from revise.data import load_manifest
from revise.errors import ConfigError, JudgeError
from revise.judges import JudgeInput, create_judge
from revise.judges.cache import JudgeCache
from revise.judges.hf_vlm import HFVLMJudge, patchify_video, smart_resize
from revise.sim import generate_dataset
from revise.video import Video, read_video

COMMIT = "fedcba9876543210fedcba9876543210fedcba98"
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>",
            "<|video_pad|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for c in message['content'] %}"
    "{% if c['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


pytestmark = pytest.mark.usefixtures("one_thread")


def build_tiny_qwen25vl(folder: Path) -> Path:
    """A random Qwen2.5-VL (2 text layers, 2 vision blocks, width 32) with a byte-level tokenizer."""
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2Tokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    vocab = {c: i for i, c in enumerate(bytes_to_unicode().values())}
    for token in SPECIALS:
        vocab[token] = len(vocab)
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=[], unk_token=None, eos_token="<|im_end|>",
                               pad_token="<|endoftext|>")
    tokenizer.add_special_tokens({"additional_special_tokens": SPECIALS[1:]})
    tokenizer.chat_template = CHAT_TEMPLATE
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIALS}
    config = Qwen2_5_VLConfig(
        text_config=dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=8192,
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [1, 1, 2]},
                         bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"],
                         pad_token_id=ids["<|endoftext|>"]),
        vision_config=dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=4, out_hidden_size=32,
                           patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=56,
                           fullatt_block_indexes=[1], tokens_per_second=2),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
    torch.manual_seed(0)
    Qwen2_5_VLForConditionalGeneration(config).save_pretrained(folder)  # safetensors
    tokenizer.save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": "Qwen2VLImageProcessor", "processor_class": "Qwen2_5_VLProcessor",
        "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2, "min_pixels": 3136, "max_pixels": 12845056,
        "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711]}))
    return folder


@pytest.fixture(scope="module")
def qwen(tmp_path_factory) -> Path:
    return build_tiny_qwen25vl(tmp_path_factory.mktemp("qwen") / "tiny-qwen2.5-vl")


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("vlm-bench")
    return generate_dataset(root / "sim", per_dimension=2, seed=0, split="test", size=32, frames=16,
                            dimensions=["rave/causal"])


@pytest.fixture(scope="module")
def judge(qwen) -> HFVLMJudge:
    return create_judge("hf-vlm", model=str(qwen), max_new_tokens=8)


def _item(bench: Path, index: int = 0, edited: Video | None = None) -> JudgeInput:
    sample = list(load_manifest(bench))[index]
    source = read_video(sample.source)
    target = read_video(sample.target)
    return JudgeInput(sample=sample, source=source, edited=edited if edited is not None else target, target=target,
                      edited_sha256=f"sha-{sample.id}")


@pytest.mark.numerics
def test_resize_and_patches_follow_transformers():
    """smart_resize and the video patch layout agree with transformers' own (torchvision-free) code."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize as reference

    for h, w in [(32, 32), (128, 128), (480, 832), (57, 300), (1080, 1920)]:
        for lo, hi in [(16 * 784, 256 * 784), (3136, 12845056)]:
            assert smart_resize(h, w, 28, lo, hi) == reference(h, w, factor=28, min_pixels=lo, max_pixels=hi)
    # a clip whose frames come in equal pairs: each temporal patch is one still image, which the image
    # processor patches by repeating the image temporal_patch_size times
    rng = np.random.default_rng(0)
    stills = rng.standard_normal((3, 56, 84, 3)).astype(np.float32)
    patches, grid = patchify_video(np.repeat(stills, 2, axis=0), 14, 2, 2)
    assert grid == (3, 4, 6)
    image_processor = Qwen2VLImageProcessorPil()
    expected = [image_processor.patchify(s.transpose(2, 0, 1), patch_size=14, merge_size=2, temporal_patch_size=2)[0]
                for s in stills]
    assert np.allclose(patches.numpy(), np.concatenate(expected))
    # an odd frame count repeats the last frame
    odd, grid = patchify_video(stills, 14, 2, 2)
    assert grid == (2, 4, 6) and odd.shape == (2 * 24, 3 * 2 * 14 * 14)


def test_prompt_and_video_assembly(judge, bench):
    item = _item(bench, edited=Video(np.full((16, 32, 32, 3), 255, np.uint8), 8.0))
    item.source.frames[:] = 0  # a black source and a white edit show which video block is which
    messages, clips = judge.judge_inputs(item)
    inputs = judge.model_inputs(messages, clips)
    tokenizer = judge.tokenizer
    text = tokenizer.decode(inputs["input_ids"][0])
    assert text.startswith("<|im_start|>system\nYou are a strict, careful judge") and text.endswith("<|im_start|>assistant\n")
    assert item.sample.instruction in text and "Reasoning dimension: causal" in text
    assert "source frame 1/8 at t=0.00s; " in text and "edited frame 8/8 at t=1.88s:" in text
    assert text.index("Source video: 16 frames") < text.index("<|vision_start|>") < text.index("Output video: 16 frames")
    # 32x32 frames -> 112x112 (min_pixels 16*28*28) -> 8x8 patches; 8 frames -> 4 temporal patches
    assert inputs["video_grid_thw"].tolist() == [[4, 8, 8], [4, 8, 8]]
    assert text.count("<|vision_start|>") == 2 and text.count("<|video_pad|>") == 2 * 4 * 8 * 8 // 4
    assert (inputs["mm_token_type_ids"] == 2).sum() == 128
    assert inputs["second_per_grid_ts"].tolist() == [0.5, 0.5]  # 2 / (8 of 16 frames at 8 fps)
    pixels = inputs["pixel_values_videos"]
    assert pixels.shape == (2 * 4 * 8 * 8, 3 * 2 * 14 * 14)
    assert pixels[:256].max() < -1.4 and pixels[256:].min() > 1.8  # black source first, white edit second


def test_random_model_failure_is_recorded_and_the_run_goes_on(qwen, bench, tmp_path):
    out = tmp_path / "both"
    result = run_bench(bench, out, editor="copy", judges=["gt", "hf-vlm"], progress=False, report=False,
                       judge_options={"hf-vlm": {"model": str(qwen), "max_new_tokens": 8}})
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and result.n_failed == 0 and all(r["status"] == "ok" for r in rows)
    for row in rows:
        error = row["judges"]["hf-vlm"]["error"]
        assert error.startswith(f"hf-vlm judge: sample {row['id']}: unparseable answer") and "\n" not in error
        assert row["judges"]["hf-vlm"]["reasoning"] is None and row["judges"]["gt"]["error"] is None
    with JudgeCache(out / "judge_cache.sqlite") as cache:
        assert sorted(f["sample_id"] for f in cache.failures()) == sorted(r["id"] for r in rows)
        assert len(cache) == 0
    info = json.loads((out / "run.json").read_text())["judges"]["hf-vlm"]
    assert info["video_input"] == "builtin" and info["model_type"] == "qwen2_5_vl" and info["k"] == 8
    assert info["decoding"] == "greedy" and info["prompt_hash"] and info["config_sha256"]

    alone = tmp_path / "alone"
    result = run_bench(bench, alone, editor="copy", judges=["hf-vlm"], progress=False, report=False,
                       judge_options={"hf-vlm": {"model": str(qwen), "max_new_tokens": 4}})
    rows = [json.loads(line) for line in (alone / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and result.n_failed == 2
    assert all(r["status"] == "failed" and "every judge failed" in r["error"] and r["id"] in r["error"] for r in rows)
    assert (alone / "summary.json").is_file()


def test_parsing_and_cache_with_a_stub_generate(qwen, bench, tmp_path, monkeypatch):
    """The random model cannot write JSON, so only ``generate`` is replaced; inputs, decoding, parsing and
    caching stay real."""
    import torch

    judge = create_judge("hf-vlm", model=str(qwen), cache=str(tmp_path / "cache.sqlite"), k=4)
    answer = '{"reasoning": 4, "consistency": 5, "quality": 3, "rationale": "The crate stops the ball."}'
    seen = []

    def fake_generate(**kwargs):
        seen.append({k: v for k, v in kwargs.items() if k != "generation_config"})
        assert kwargs["generation_config"].do_sample is False and kwargs["generation_config"].num_beams == 1
        reply = judge.tokenizer(answer + "<|im_end|>", return_tensors="pt")["input_ids"]
        return torch.cat([kwargs["input_ids"], reply], dim=1)

    monkeypatch.setattr(judge.model, "generate", fake_generate)
    item = _item(bench)
    result = judge.score(item)
    assert (result.reasoning, result.consistency, result.quality) == (4.0, 5.0, 3.0)
    assert result.rationale == "The crate stops the ball." and result.error is None and result.judge == "hf-vlm"
    assert seen[0]["video_grid_thw"].tolist() == [[2, 8, 8], [2, 8, 8]]  # k=4 frames per video
    assert judge.score(item).overall == pytest.approx(4.0) and len(seen) == 1  # second time: the cache
    other = _item(bench, 1)
    monkeypatch.setattr(judge.model, "generate", lambda **kw: torch.cat(
        [kw["input_ids"], judge.tokenizer("Sure! 5/5", return_tensors="pt")["input_ids"]], dim=1))
    with pytest.raises(JudgeError, match=rf"hf-vlm judge: sample {other.sample.id}: unparseable answer.*Sure! 5/5"):
        judge.score(other)
    judge.close()


def test_p_yes_from_the_real_random_model(judge, bench):
    item = _item(bench)
    p = judge.p_yes(item.source, item.sample.instruction, item.edited)
    assert 0.0 < p < 1.0
    assert judge.p_yes(item.source, item.sample.instruction, item.edited) == p
    noise = Video(np.random.default_rng(1).integers(0, 255, item.edited.frames.shape, dtype=np.uint8), 8.0)
    assert judge.p_yes(item.source, item.sample.instruction, noise) != p


def test_missing_model_is_one_line_through_the_cli(bench, tmp_path, monkeypatch, capsys, no_network):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    code = main(["bench", "run", "--bench", str(bench), "--out", str(tmp_path / "run"), "--editor", "copy",
                 "--judge", "gt,hf-vlm", "--no-progress", "--no-report"])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: hf-vlm judge: model Qwen/Qwen2.5-VL-7B-Instruct ")
    assert "revise prefetch Qwen/Qwen2.5-VL-7B-Instruct" in lines[0]
    assert no_network == []


def test_repo_id_from_the_local_cache_offline(qwen, bench, tmp_path, monkeypatch, no_network):
    storage = tmp_path / "hub" / "models--tiny-org--qwen"
    (storage / "refs").mkdir(parents=True)
    (storage / "refs" / "main").write_text(COMMIT)
    shutil.copytree(qwen, storage / "snapshots" / COMMIT)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    judge = create_judge("hf-vlm", model="tiny-org/qwen", hub_cache=str(tmp_path / "hub"), max_new_tokens=2)
    info = judge.info()
    assert info["commit"] == COMMIT and info["repo_id"] == "tiny-org/qwen" and info["path"].endswith(COMMIT)
    assert COMMIT in judge.model_id
    with pytest.raises(JudgeError, match="unparseable answer"):
        judge.score(_item(bench))
    assert no_network == []


def test_checkpoint_without_a_chat_template_gets_chatml(qwen, bench, tmp_path):
    folder = tmp_path / "no-template"
    shutil.copytree(qwen, folder)
    (folder / "chat_template.jinja").unlink()
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    judge = create_judge("hf-vlm", model=str(folder), k=2)
    assert judge.tokenizer.chat_template is None
    messages, clips = judge.judge_inputs(_item(bench))
    text = judge.render(messages)
    assert text.startswith("<|im_start|>system\nYou are a strict") and text.endswith("<|im_end|>\n<|im_start|>assistant\n")
    assert text.count("<|vision_start|><|video_pad|><|vision_end|>") == 2
    assert judge.model_inputs(messages, clips)["video_grid_thw"].tolist() == [[1, 8, 8], [1, 8, 8]]


def test_bad_options_are_one_line_config_errors(qwen, tmp_path):
    llama = tmp_path / "llama"
    llama.mkdir()
    (llama / "config.json").write_text(json.dumps({"model_type": "llama"}))
    cases = [(dict(model=str(qwen), temperature=0.7), "unknown option(s) temperature"),
             (dict(model=str(qwen), min_pixels=10_000, max_pixels=100), "min_pixels <= max_pixels"),
             (dict(model=str(qwen), video_input="pixels"), "video_input must be one of"),
             (dict(model=str(qwen), dtype="int4"), "dtype must be one of"),
             (dict(model=str(llama)), "model type 'llama' is not supported"),
             (dict(model=str(tmp_path)), "no config.json")]
    if importlib.util.find_spec("torchvision") is None:
        cases.append((dict(model=str(qwen), video_input="transformers"), "needs torchvision"))
    for kwargs, message in cases:
        with pytest.raises(ConfigError) as info:
            create_judge("hf-vlm", **kwargs)
        assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.skipif(importlib.util.find_spec("torchvision") is None,
                    reason="transformers' Qwen processors need torchvision, which this project does not install")
def test_processor_path_matches_the_builtin_path(qwen, bench):  # pragma: no cover - needs torchvision
    import torch
    from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessor, Qwen2VLVideoProcessor
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(qwen, local_files_only=True)
    processor = Qwen2_5_VLProcessor(image_processor=Qwen2VLImageProcessor(), tokenizer=tokenizer,
                                    video_processor=Qwen2VLVideoProcessor(), chat_template=CHAT_TEMPLATE)
    folder = qwen.parent / "with-processor"
    if not folder.exists():
        shutil.copytree(qwen, folder)
        processor.save_pretrained(folder)
    item = _item(bench)
    builtin = create_judge("hf-vlm", model=str(folder), video_input="builtin")
    official = create_judge("hf-vlm", model=str(folder), video_input="transformers")
    a = builtin.model_inputs(*builtin.judge_inputs(item))
    b = official.model_inputs(*official.judge_inputs(item))
    assert torch.equal(a["input_ids"], b["input_ids"]) and torch.equal(a["video_grid_thw"], b["video_grid_thw"])
    assert torch.allclose(a["pixel_values_videos"], b["pixel_values_videos"], atol=1e-5)
    assert torch.allclose(a["second_per_grid_ts"].float(), torch.as_tensor(b["second_per_grid_ts"]).float())
