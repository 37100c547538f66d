"""``revise train sft`` and the unified model at toy sizes: training, exact resume after a real SIGKILL,
checkpoints, ``revise edit`` (on real footage too), the ``revise-tiny`` bench editor and bad inputs."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from footage import clip
from toymodel import TOY_GEN, TOY_VLM, toy_config
from revise.cli.main import main as cli_main
from revise.errors import ConfigError
from revise.model.unified import ReviseModel, edit_file
from revise.sim import generate_dataset
from revise.train.sft import train_sft
from revise.video import read_video

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("sft") / "train"
    generate_dataset(folder, per_dimension=1, seed=3, split="train", size=32, frames=16)
    return folder


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("sft-run") / "ckpt"
    result = train_sft(data, out, toy_config(), progress=False)
    return out, result


def _losses(out: Path, stage: str | None = None) -> list[tuple[str, str, str]]:
    with (out / "metrics.csv").open(newline="") as f:
        return [(r["stage"], r["step"], r["loss"]) for r in csv.DictReader(f) if stage in (None, r["stage"])]


def test_sft_trains_both_stages_and_losses_fall(trained):
    out, result = trained
    assert result.finished and result.steps == {"vlm": 60, "generator": 60}
    for stage in ("vlm", "generator"):
        losses = [float(loss) for _, _, loss in _losses(out, stage)]
        assert len(losses) == 60
        first, last = np.mean(losses[:10]), np.mean(losses[-10:])
        assert last < 0.85 * first, (stage, first, last)
    for name in ("revise.json", "vlm/model.safetensors", "vlm/tokenizer.json", "generator/config.json",
                 "generator/diffusion_pytorch_model.safetensors", "state/state.safetensors", "sft_config.json"):
        assert (out / name).is_file(), name
    assert list((out / "tensorboard").rglob("events.out.tfevents.*")), "no TensorBoard events"
    manifest = json.loads((out / "revise.json").read_text())
    assert manifest["training"]["steps"] == {"vlm": 60, "generator": 60}
    assert manifest["provenance"]["version"] and manifest["provenance"]["git_commit"]
    assert not list(out.rglob("*.bin")) and not list(out.rglob("*.pt")) and not list(out.rglob("*.pkl"))


def test_save_load_gives_identical_edits(trained, data, tmp_path):
    out, _ = trained
    model = ReviseModel.from_pretrained(out)
    source = read_video(next((data / "videos").glob("*_src.mp4"))).frames
    a = model.edit(source, "What if the red ball had never been there?", seed=3)
    model.save_pretrained(tmp_path / "copy")
    again = ReviseModel.from_pretrained(tmp_path / "copy")
    b = again.edit(source, "What if the red ball had never been there?", seed=3)
    assert a.shape == source.shape and a.dtype == np.uint8
    assert np.array_equal(a, b)
    for (ka, va), (kb, vb) in zip(model.generator.state_dict().items(), again.generator.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    c = model.edit(source, "What if the red ball had never been there?", seed=4)
    assert not np.array_equal(a, c), "the seed does not reach the sampler"


def test_resume_after_sigkill_matches_an_uninterrupted_run(trained, data, tmp_path):
    """A real SIGKILL in the middle of training; ``--resume`` must end with the same losses and weights."""
    reference, _ = trained
    out = tmp_path / "killed"
    args = [sys.executable, "-m", "revise.cli.main", "train", "sft", "--data", str(data), "--out", str(out),
            "--vlm-steps", "60", "--gen-steps", "60", "--vlm-batch-size", "8", "--gen-batch-size", "4",
            "--vlm-lr", "3e-3", "--gen-lr", "2e-3", "--checkpoint-every", "20", "--log-every", "1",
            "--vlm-config", json.dumps(TOY_VLM), "--generator-config", json.dumps(TOY_GEN)]
    warm = ["--vlm-warmup", "5", "--gen-warmup", "5"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(args + warm + ["--threads", "1"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    state = out / "state" / "state.json"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if state.is_file() and json.loads(state.read_text())["meta"]["stage_steps"].get("generator", 0) >= 20:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "training ended before it could be killed: " + proc.stderr.read().decode()[-500:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "revise.json").exists()
    saved = json.loads((out / "sft_config.json").read_text())
    del saved["dimension_weights"]  # a run started before the setting existed resumes as its default
    (out / "sft_config.json").write_text(json.dumps(saved))
    rc = subprocess.run(args + warm + ["--threads", "1", "--resume"], env=env, capture_output=True, text=True)
    assert rc.returncode == 0, rc.stderr[-800:]
    assert _losses(out) == _losses(reference)
    a, b = ReviseModel.from_pretrained(reference), ReviseModel.from_pretrained(out)
    for part in ("vlm", "generator"):
        sa, sb = getattr(a, part).state_dict(), getattr(b, part).state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa), part


def test_train_generates_its_own_data_when_the_folder_is_empty(tmp_path):
    result = train_sft(tmp_path / "fresh", tmp_path / "out",
                       toy_config(per_dimension=1, stages=("vlm",), vlm_steps=2), progress=False)
    assert result.finished and (tmp_path / "fresh" / "manifest.jsonl").is_file()
    assert (tmp_path / "out" / "vlm" / "model.safetensors").is_file()
    assert not (tmp_path / "out" / "revise.json").exists(), "a VLM-only run is not an editor checkpoint"


def test_generator_only_run_conditions_on_the_vlm_it_is_given(trained, data, tmp_path):
    """--stages generator --init-vlm CKPT: the VLM is copied in unchanged, only the generator trains, and the
    result is an editor checkpoint; the same run from the VLM folder itself gives the same losses."""
    from safetensors.torch import load_file

    out, _ = trained
    run = tmp_path / "gen-only"
    result = train_sft(data, run, toy_config(stages=("generator",), init_vlm=str(out)), progress=False)
    assert result.finished and result.steps == {"generator": 60}
    given, copied = load_file(out / "vlm" / "model.safetensors"), load_file(run / "vlm" / "model.safetensors")
    assert given.keys() == copied.keys() and all(torch.equal(given[k], copied[k]) for k in given)
    assert (run / "vlm" / "tokenizer.json").read_bytes() == (out / "vlm" / "tokenizer.json").read_bytes()
    assert {r[0] for r in _losses(run)} == {"generator"}
    # the trained run's own generator stage saw the same VLM, batches and initialisation
    assert _losses(run, "generator") == _losses(out, "generator")
    training = json.loads((run / "revise.json").read_text())["training"]
    assert training["config"]["init_vlm"] == str(out)
    # the record says where the VLM came from and carries that checkpoint's own training record
    given_training = json.loads((out / "revise.json").read_text())["training"]
    assert training["vlm_from"]["spec"] == str(out) and training["vlm_from"]["training"] == given_training
    ReviseModel.from_pretrained(run)
    again = tmp_path / "gen-only-folder"
    train_sft(data, again, toy_config(stages=("generator",), init_vlm=str(out / "vlm")), progress=False)
    assert _losses(again, "generator") == _losses(run, "generator")
    with pytest.raises(ConfigError, match="cannot be combined with the vlm stage"):
        toy_config(init_vlm=str(out))
    with pytest.raises(ConfigError, match="--init-vlm needs a unified checkpoint"):
        train_sft(data, tmp_path / "bad", toy_config(stages=("generator",), init_vlm=str(tmp_path)), progress=False)
    assert not (tmp_path / "bad").exists()  # refused before the run folder was written: a retry is not refused


def test_vlm_facts_teach_the_vlm_the_simulators_objects(data, tmp_path):
    """--vlm-facts: the tokenizer knows the facts question and answers, and the VLM stage trains on them."""
    from revise.model.vlm import ReviseVLM
    from revise.model.vlm_data import FACTS_QUESTION, facts_answer
    from revise.data import load_manifest

    run = tmp_path / "facts"
    result = train_sft(data, run, toy_config(stages=("vlm",), vlm_steps=8, vlm_facts=True), progress=False)
    assert result.finished
    vlm = ReviseVLM.from_pretrained(run / "vlm")
    samples = list(load_manifest(data / "manifest.jsonl"))
    assert vlm.tokenizer.unknown_rate(FACTS_QUESTION) == 0
    assert all(vlm.tokenizer.unknown_rate(facts_answer(s)) == 0 for s in samples)
    assert json.loads((run / "sft_config.json").read_text())["vlm_facts"] is True


def test_train_refuses_bad_folders_and_changed_settings(trained, data, tmp_path):
    out, _ = trained
    with pytest.raises(ConfigError, match="not empty; pass --resume"):
        train_sft(data, out, toy_config(), progress=False)
    with pytest.raises(ConfigError, match=r"changed settings \['gen_lr'\]"):
        train_sft(data, out, toy_config(gen_lr=1e-4), resume=True, progress=False)
    with pytest.raises(ConfigError, match="nothing to resume"):
        train_sft(data, tmp_path / "empty", toy_config(), resume=True, progress=False)
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("hello")
    with pytest.raises(ConfigError, match="has no manifest.jsonl and is not empty"):
        train_sft(junk, tmp_path / "o2", toy_config(), progress=False)
    with pytest.raises(ConfigError, match="stages"):
        toy_config(stages=("vlm", "critic"))


def test_dimension_weights_set_how_often_each_dimension_is_drawn(data, tmp_path, capsys):
    from revise.model.vlm_data import load_frames
    from revise.train.sft import sample_weights

    samples = load_frames(data / "manifest.jsonl", size=32, frames=16).samples
    assert sample_weights(samples, {}) is None  # uniform draws: runs without weights are unchanged
    weights = sample_weights(samples, {"rave/commonsense": 3, "icvg/emotional": 0.5})
    keys = [f"{s.subset}/{s.dimension}" for s in samples]
    assert [float(w) for w in weights] == [3.0 if k == "rave/commonsense" else 0.5 if k == "icvg/emotional"
                                           else 1.0 for k in keys]
    draws = torch.multinomial(weights, 20000, replacement=True, generator=torch.Generator().manual_seed(0))
    share = np.bincount(draws.numpy(), minlength=len(keys)) / 20000
    expected = weights.numpy() / weights.numpy().sum()
    assert np.abs(share - expected).max() < 0.02, (share, expected)
    with pytest.raises(ConfigError, match=r"does not have"):
        sample_weights(samples, {"rave/comonsense": 2})
    for bad, why in (('{"commonsense": 2}', "subset/dimension"), ('{"rave/commonsense": 0}', "> 0"),
                     ('{"rave/commonsense": "2"}', "> 0"), ('{"rave/spatial": 2, "icvg/nope": 1}', "does not have")):
        rc, _, err = _cli(capsys, "train", "sft", "--data", str(data), "--out", str(tmp_path / "o"), "--vlm-steps",
                          "1", "--gen-steps", "1", "--dimension-weights", bad)
        assert rc not in (0, None) and why in err and len(err.strip().splitlines()) == 1, (bad, err)
        assert "Traceback" not in err


def _cli(capsys, *argv) -> tuple[int, str, str]:
    rc = cli_main(list(argv))
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def test_edit_cli_on_real_footage(trained, tmp_path, capsys):
    out, _ = trained
    source = clip("carphone_pristine.mp4")  # 120 frames of 176x144 at 29.97 fps: far outside RVE-Sim
    result = tmp_path / "edited.mp4"
    rc, stdout, err = _cli(capsys, "edit", "--model", str(out), "--video", str(source), "--instruction",
                           "What if the man had never been there?", "-o", str(result), "--steps", "2",
                           "--detail", "0.3")
    assert rc in (0, None), err
    edited, original = read_video(result), read_video(source)
    assert edited.frames.shape == original.frames.shape
    assert abs(edited.fps - original.fps) < 1e-3
    assert stdout.strip() == str(result)


def test_shipped_revise_tiny_edits_real_footage(tmp_path):
    source = clip("bikes.mp4")
    out = edit_file("revise-tiny", source, "What would happen next?", tmp_path / "bikes.mp4", steps=2)
    edited = read_video(out)
    assert edited.frames.shape == read_video(source).frames.shape


@pytest.mark.parametrize("case", ["missing", "corrupt-config", "corrupt-weights", "empty-instruction",
                                  "not-a-folder", "bad-steps", "bad-detail"])
def test_edit_bad_inputs_are_one_line_errors(case, trained, data, tmp_path, capsys):
    import shutil

    out, _ = trained
    model = tmp_path / "model"
    shutil.copytree(out, model, ignore=shutil.ignore_patterns("state", "cache", "tensorboard"))
    source = next((data / "videos").glob("*_src.mp4"))
    instruction, extra = "What if the ball were blue?", []
    expected = {"missing": "checkpoint not found", "corrupt-config": "generator/config.json: invalid JSON",
                "corrupt-weights": "unreadable safetensors", "empty-instruction": "the instruction is empty",
                "not-a-folder": "a checkpoint is a folder", "bad-steps": "--steps must be >= 1",
                "bad-detail": "--detail must be a finite number >= 0"}[case]
    if case == "missing":
        model = tmp_path / "nowhere"
    elif case == "corrupt-config":
        (model / "generator" / "config.json").write_text("{not json")
    elif case == "corrupt-weights":
        (model / "vlm" / "model.safetensors").write_bytes(b"\x00" * 64)
    elif case == "empty-instruction":
        instruction = "   "
    elif case == "not-a-folder":
        model = model / "revise.json"
    elif case == "bad-steps":
        extra = ["--steps", "0"]
    elif case == "bad-detail":
        extra = ["--detail", "-0.5"]
    rc, _, err = _cli(capsys, "edit", "--model", str(model), "--video", str(source), "--instruction", instruction,
                      "-o", str(tmp_path / "o.mp4"), *extra)
    assert rc == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert expected in err, err


def test_revise_tiny_bench_editor_runs_and_fails_one_corrupt_sample(trained, tmp_path):
    from revise.bench import run_bench

    out, _ = trained
    bench = tmp_path / "bench"
    manifest = generate_dataset(bench, per_dimension=1, seed=11, split="test", size=32, frames=16,
                                dimensions=["rave/causal", "icvg/camera", "rave/spatial"])
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    (bench / rows[0]["source"]).write_bytes(b"this is not an mp4")
    result = run_bench(manifest, tmp_path / "run", editor="revise-tiny",
                       editor_options={"model": str(out), "detail": 0.2}, judges=["gt"], progress=False, report=False)
    results = [json.loads(line) for line in (tmp_path / "run" / "results.jsonl").read_text().splitlines()]
    assert len(results) == 3
    failed = [r for r in results if r.get("error")]
    assert len(failed) == 1 and rows[0]["id"] in failed[0]["error"]
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["editor"]["editor"] == "revise-tiny" and len(run["editor"]["weights_sha256"]["generator"]) == 64
    assert run["editor"]["detail"] == 0.2
    assert result.summary
    with pytest.raises(ConfigError, match="detail must be >= 0"):
        run_bench(manifest, tmp_path / "run2", editor="revise-tiny", editor_options={"model": str(out), "detail": -1},
                  judges=["gt"], progress=False, report=False)


def test_checkpoint_provenance_is_the_code_the_run_started_with(data, tmp_path, monkeypatch):
    """The tree may change while a long run trains (it did: a 56-minute run ended on a later commit); the
    checkpoint names the commit it started from."""
    import revise.provenance as provenance
    import revise.train.sft as sft

    training = []
    original = sft._Trainer.train_vlm

    def train_vlm(self):
        training.append(True)  # from here on the tree "holds a later commit"
        return original(self)

    monkeypatch.setattr(sft._Trainer, "train_vlm", train_vlm)
    monkeypatch.setattr(provenance, "git_commit", lambda: "committed-while-training" if training else "started-here")
    train_sft(data, tmp_path / "ckpt", toy_config(vlm_steps=3, gen_steps=3, checkpoint_every=10), progress=False)
    manifest = json.loads((tmp_path / "ckpt" / "revise.json").read_text())
    assert manifest["provenance"]["git_commit"] == "started-here"


def test_time_budget_plan_survives_a_slow_interval_and_follows_a_slowdown():
    """The time-budget plan: one slow interval early on costs a few steps, not a fifth of the budget, and a
    machine that halves its speed still ends about on time."""
    from revise.train.sft import replay_plan

    def run(cost, asked=10**6):
        result = replay_plan(cost, 100.0, log_every=10, asked=asked)
        return result["steps"], result["seconds"]

    # 20 s go to ten slow steps; 80 steps fit. Keeping the slow interval's speed planned 46 steps (66 s).
    steps, seconds = run(lambda i: 3.0 if 20 <= i < 30 else 1.0)
    assert 74 <= steps <= 80 and seconds <= 100.0, (steps, seconds)
    # The speed halves after 30 steps: 65 fit. At worst one step runs past the budget (the loop's deadline stop).
    steps, seconds = run(lambda i: 1.0 if i < 30 else 2.0)
    assert 60 <= steps <= 66 and seconds <= 102.0, (steps, seconds)
    steps, seconds = run(lambda i: 1.0, asked=50)
    assert steps == 50 and seconds == 50.0  # never more than asked


def test_time_budget_ends_with_a_usable_checkpoint(data, tmp_path):
    """--max-minutes: far more steps asked than fit; the run still ends on time with a complete checkpoint."""
    budget_s = 8.0
    started = time.perf_counter()
    result = train_sft(data, tmp_path / "budget", toy_config(vlm_steps=100000, gen_steps=100000,
                                                             max_minutes=budget_s / 60, checkpoint_every=10000,
                                                             log_every=5, dimension_weights={"rave/causal": 2}),
                       progress=False)
    took = time.perf_counter() - started
    assert result.finished
    assert 10 <= result.steps["vlm"] < 100000 and 10 <= result.steps["generator"] < 100000
    assert took < budget_s + 20, took  # data loading and saving come on top of the training budget
    manifest = json.loads((tmp_path / "budget" / "revise.json").read_text())
    assert manifest["training"]["steps"] == result.steps
    ReviseModel.from_pretrained(tmp_path / "budget")


def test_bf16_stages_autocast_only_the_stages_named(trained, data, tmp_path, capsys):
    from safetensors.torch import load_file

    out, _ = trained
    run = tmp_path / "bf16"
    result = train_sft(data, run, toy_config(bf16_stages=("generator",)), progress=False)
    assert result.finished and result.steps == {"vlm": 60, "generator": 60}
    # the VLM stage was not named: it ran in fp32, exactly as the fp32 run did
    assert _losses(run, "vlm") == _losses(out, "vlm")
    fp32_vlm, run_vlm = load_file(out / "vlm" / "model.safetensors"), load_file(run / "vlm" / "model.safetensors")
    assert all(torch.equal(fp32_vlm[k], run_vlm[k]) for k in fp32_vlm)
    # the generator's forward passes ran in bf16: the same weights and batch give a loss off in its last digits
    fp32 = [float(loss) for _, _, loss in _losses(out, "generator")]
    bf16 = [float(loss) for _, _, loss in _losses(run, "generator")]
    assert fp32 != bf16
    assert abs(bf16[0] - fp32[0]) / fp32[0] < 0.02, (fp32[0], bf16[0])
    assert np.mean(bf16[-10:]) < 0.85 * np.mean(bf16[:10])
    # weights, moments and checkpoint stay fp32
    weights = load_file(run / "generator" / "diffusion_pytorch_model.safetensors")
    state = load_file(run / "state" / "state.safetensors")
    assert {t.dtype for t in weights.values()} == {torch.float32}
    assert {t.dtype for t in state.values() if t.is_floating_point()} == {torch.float32}
    assert json.loads((run / "sft_config.json").read_text())["bf16_stages"] == ["generator"]
    model = ReviseModel.from_pretrained(run)
    assert model.generator.dtype == torch.float32
    for bad in ("painter", "generator,generator"):
        rc, _, err = _cli(capsys, "train", "sft", "--data", str(data), "--out", str(tmp_path / "o"), "--vlm-steps",
                          "1", "--gen-steps", "1", "--bf16", bad)
        assert rc not in (0, None) and "bf16_stages" in err and len(err.strip().splitlines()) == 1, (bad, err)
