"""A generator whose working size differs from the VLM's frames: ``revise train sft``, ``critic`` and ``srf``
feed it clips decoded straight to its own size, and the trained model edits at any input size."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import revise.model.flow as flow
from revise.cli.main import main as cli_main
from revise.model.unified import ReviseModel
from revise.model.vlm_data import load_frames
from revise.sim import generate_dataset
from revise.train.critic import CriticConfig, train_critic
from revise.train.sft import train_sft
from revise.train.srf import SRFConfig, train_srf
from toymodel import TOY_GEN, toy_config

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = {**TOY_GEN, "sample_size": [16, 16], "source_patch_size": [2, 4, 4]}  # the VLM's bank is 32 px


def _recording(monkeypatch) -> list[np.ndarray]:
    """Record the uint8 source clips of every flow-matching batch the trainers build."""
    seen, original = [], flow.flow_matching_loss

    def loss(model, batch, generator, **kw):
        seen.append(((batch["source"] + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 4, 1).numpy())
        return original(model, batch, generator, **kw)

    monkeypatch.setattr(flow, "flow_matching_loss", loss)
    return seen


def _rows_of(bank_source: np.ndarray, batches: list[np.ndarray]) -> bool:
    flat = {row.tobytes() for row in bank_source}
    return all(clip.tobytes() in flat for batch in batches for clip in batch)


def test_every_trainer_feeds_the_generator_clips_at_its_own_size(tmp_path, monkeypatch):
    manifest = generate_dataset(tmp_path / "train", per_dimension=1, seed=8, split="train", size=32, frames=16)
    small = load_frames(manifest, size=16, frames=16).source

    seen = _recording(monkeypatch)
    sft = tmp_path / "sft"
    result = train_sft(tmp_path / "train", sft, toy_config(vlm_steps=4, gen_steps=6, checkpoint_every=100,
                                                           generator_config=SMALL), progress=False)
    assert result.finished and len(seen) == 6
    assert all(b.shape[1:] == (16, 16, 16, 3) for b in seen) and _rows_of(small, seen)
    model = ReviseModel.from_pretrained(sft)
    assert model.generator.video_shape == (16, 16, 16)
    edited = model.edit(np.zeros((16, 32, 32, 3), np.uint8), "What if the ball were blue?", steps=2)
    assert edited.shape == (16, 32, 32, 3)  # back at the input's size

    critic = tmp_path / "critic"
    train_critic(sft, tmp_path / "train", critic, CriticConfig(edits_per_dimension=1, edit_steps=2, steps=2,
                                                               batch_size=4, warmup=1, log_every=1),
                 progress=False)
    with np.load(critic / "critic_data.npz") as data:
        assert data["edits"].shape == (8, 16, 16, 16, 3)

    seen.clear()
    train_srf(sft, tmp_path / "train", tmp_path / "srf", SRFConfig(steps=3, batch_size=2, warmup=1, lam=0.5,
                                                                    log_every=1), progress=False)
    assert len(seen) == 3 and _rows_of(small, seen)


@pytest.mark.parametrize("shape", [{"sample_size": [16, 32]}, {"num_frames": 8}])
def test_a_generator_the_trainers_cannot_feed_is_a_one_line_error(shape, tmp_path, capsys):
    generate_dataset(tmp_path / "train", per_dimension=1, seed=8, split="train", size=32, frames=16)
    options = {**TOY_GEN, "source_patch_size": [2, 4, 4], **shape}
    code = cli_main(["train", "sft", "--data", str(tmp_path / "train"), "--out", str(tmp_path / "out"),
                     "--generator-config", json.dumps(options)])
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1 and "square 16-frame clips" in err, err
    assert not (tmp_path / "out" / "vlm").exists()  # refused before stage 1 trained anything
