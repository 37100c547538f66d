"""The levers of issue 19 at toy sizes: the memory-mapped frame bank (with a resumed decode), the
instruction summary through adaLN (``adaln_condition``) and the generator's EMA weights (``ema_decay``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from toymodel import Crash, TOY_GEN, crash_after_checkpoint, toy_config
from revise.errors import ConfigError
from revise.model.generator import ReviseGenerator
from revise.model.vlm_data import load_frames
from revise.sim import generate_dataset
from revise.train import sft
from revise.train.sft import SFTConfig, train_sft

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("levers") / "train"
    generate_dataset(folder, per_dimension=1, seed=5, split="train", size=32, frames=16)
    return folder


# ---- the memory-mapped frame bank --------------------------------------------------------------------
def test_cached_bank_is_memory_mapped_and_equals_the_in_memory_decode(data, tmp_path):
    plain = load_frames(data / "manifest.jsonl", size=16, frames=16)
    assert not isinstance(plain.source, np.memmap)
    cached = load_frames(data / "manifest.jsonl", size=16, frames=16, cache_dir=tmp_path)
    assert isinstance(cached.source, np.memmap) and isinstance(cached.target, np.memmap)
    assert not cached.source.flags.writeable  # read-only: training cannot damage the cache
    assert np.array_equal(cached.source, plain.source) and np.array_equal(cached.target, plain.target)
    (folder,) = tmp_path.glob("frames-*")
    assert json.loads((folder / "ids.json").read_text()) == [s.id for s in plain.samples]
    assert not (folder / "progress.json").exists()
    again = load_frames(data / "manifest.jsonl", size=16, frames=16, cache_dir=tmp_path)
    assert np.array_equal(again.source, plain.source)
    # two decoding processes fill the same arrays
    two = load_frames(data / "manifest.jsonl", size=16, frames=16, cache_dir=tmp_path / "two", workers=2)
    assert np.array_equal(two.source, plain.source) and np.array_equal(two.target, plain.target)


def test_a_killed_decode_resumes_from_its_last_chunk(data, tmp_path, monkeypatch):
    from revise.model import vlm_data

    plain = load_frames(data / "manifest.jsonl", size=16, frames=16)
    monkeypatch.setattr(vlm_data, "_fill", _fill_then_die(vlm_data._fill, after=3))
    with pytest.raises(Crash):
        load_frames(data / "manifest.jsonl", size=16, frames=16, cache_dir=tmp_path)
    (folder,) = tmp_path.glob("frames-*")
    assert json.loads((folder / "progress.json").read_text())["filled"] == 3
    assert not (folder / "ids.json").exists()  # incomplete: never read as a bank
    monkeypatch.undo()
    decoded = []
    original = vlm_data._decode_chunk
    monkeypatch.setattr(vlm_data, "_decode_chunk", lambda job: decoded.append(job[0]) or original(job))
    bank = load_frames(data / "manifest.jsonl", size=16, frames=16, cache_dir=tmp_path)
    assert decoded and min(decoded) == 3  # only what was missing
    assert np.array_equal(bank.source, plain.source) and np.array_equal(bank.target, plain.target)


def _fill_then_die(fill, after: int):
    def run(src, tgt, pairs, start, frames, size, workers, chunk, progress, mark):
        def mark_then_die(count):
            mark(count)
            raise Crash()

        fill(src, tgt, pairs[:after], start, frames, size, 1, after, progress, mark_then_die)
    return run


def test_a_bank_cached_for_other_samples_is_refused(data, tmp_path):
    load_frames(data / "manifest.jsonl", size=16, frames=16, cache_dir=tmp_path)
    (folder,) = tmp_path.glob("frames-*")
    (folder / "ids.json").write_text(json.dumps(["someone-else"]))
    with pytest.raises(ConfigError, match="other samples"):
        load_frames(data / "manifest.jsonl", size=16, frames=16, cache_dir=tmp_path)


# ---- the instruction through adaLN ---------------------------------------------------------------------
def _generators():
    torch.manual_seed(0)
    with_summary = ReviseGenerator(**TOY_GEN, vocab_size=50, vlm_dim=32, adaln_condition=True)
    torch.manual_seed(0)
    plain = ReviseGenerator(**TOY_GEN, vocab_size=50, vlm_dim=32)
    state = {k: v for k, v in with_summary.state_dict().items() if not k.startswith("instruction_summary.")}
    plain.load_state_dict(state)
    for model in (with_summary, plain):  # an output layer that is no longer zero, so the denoiser's input matters
        torch.nn.init.normal_(model.transformer.proj_out.weight, std=0.05, generator=torch.Generator().manual_seed(1))
    return with_summary, plain


def test_a_fresh_instruction_summary_changes_nothing_and_a_trained_one_reads_the_instruction():
    with_summary, plain = _generators()
    g = torch.Generator().manual_seed(2)
    x, src = torch.randn(2, 3, 16, 32, 32, generator=g), torch.randn(2, 3, 16, 32, 32, generator=g)
    t = torch.tensor([0.4, 0.8])
    ids_a, ids_b = torch.randint(1, 50, (2, 12), generator=g), torch.randint(1, 50, (2, 12), generator=g)
    # zero-initialised output: exactly the model without the summary (temb + 0)
    assert torch.equal(with_summary(x, t, src, ids_a), plain(x, t, src, ids_a))
    torch.nn.init.normal_(with_summary.instruction_summary.out[-1].weight, std=0.5,
                          generator=torch.Generator().manual_seed(3))
    changed = with_summary(x, t, src, ids_a)
    assert (changed - plain(x, t, src, ids_a)).abs().max() > 1e-3
    # the summary depends on the instruction: the same model, another instruction, another output
    assert (changed - with_summary(x, t, src, ids_b)).abs().max() > 1e-3
    assert with_summary._temb_extra is None  # nothing left behind for a later call


def test_the_summary_survives_save_and_load(tmp_path):
    with_summary, _ = _generators()
    torch.nn.init.normal_(with_summary.instruction_summary.out[-1].weight, std=0.5)
    with_summary.save_pretrained(tmp_path / "g", safe_serialization=True)
    loaded = ReviseGenerator.from_pretrained(tmp_path / "g")
    assert loaded.config.adaln_condition and loaded.instruction_summary is not None
    g = torch.Generator().manual_seed(4)
    x, src = torch.randn(1, 3, 16, 32, 32, generator=g), torch.randn(1, 3, 16, 32, 32, generator=g)
    ids = torch.randint(1, 50, (1, 12), generator=g)
    assert torch.equal(loaded(x, torch.tensor([0.5]), src, ids), with_summary(x, torch.tensor([0.5]), src, ids))


# ---- EMA weights -----------------------------------------------------------------------------------------
def test_ema_is_the_generator_and_the_raw_weights_stay_beside_it(data, tmp_path):
    out = tmp_path / "ema"
    train_sft(data, out, toy_config(vlm_steps=20, gen_steps=30, ema_decay=0.9), progress=False)
    ema = load_file(str(out / "generator" / "diffusion_pytorch_model.safetensors"))
    raw = load_file(str(out / "generator-raw" / "diffusion_pytorch_model.safetensors"))
    assert ema.keys() == raw.keys()
    moved = [k for k in raw if not torch.equal(ema[k], raw[k])]
    assert moved, "the EMA equals the raw weights"
    # the average lies between where training started and where it ended, for the output layer that starts at 0
    key = "transformer.proj_out.weight"
    assert 0 < ema[key].abs().mean() < raw[key].abs().mean() * 1.5


def test_ema_resumes_exactly(data, tmp_path, monkeypatch):
    config = toy_config(vlm_steps=10, gen_steps=40, ema_decay=0.9)
    whole = tmp_path / "whole"
    train_sft(data, whole, config, progress=False)
    cut = tmp_path / "cut"
    with monkeypatch.context() as m:
        crash_after_checkpoint(m, sft._Trainer, 20)
        with pytest.raises(Crash):
            train_sft(data, cut, config, progress=False)
    train_sft(data, cut, config, resume=True, progress=False)
    for part in ("generator", "generator-raw"):
        a = load_file(str(whole / part / "diffusion_pytorch_model.safetensors"))
        b = load_file(str(cut / part / "diffusion_pytorch_model.safetensors"))
        assert all(torch.equal(a[k], b[k]) for k in a), part


def test_bad_ema_decay_is_one_line():
    with pytest.raises(ConfigError, match="ema_decay"):
        SFTConfig(ema_decay=1.0)
