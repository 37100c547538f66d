"""The internal VLM with tiny random components on a tiny RVE-Sim dataset: tokenizer, data, training,
save/load, the differentiable judge, generation and checkpoint errors. The real code path, toy sizes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from revise.data import load_manifest
from revise.errors import ConfigError
from revise.model.tokenizer import TextTokenizer
from revise.model.vlm import ReviseVLM, VLMConfig, prepare_video
from revise.model.vlm_data import NEGATIVE_KINDS, Clip, TaskBuilder, clip_frames, collate, corpus, load_frames
from revise.sim import generate_dataset
from revise.train.vlm import answer_scores, evaluate_vlm, train_vlm

TOY = dict(image_size=16, grid=2, vision_channels=[8, 16, 16], frames=4, tubelet=2, hidden_size=32, num_layers=2,
           num_heads=2, intermediate_size=64, max_text_tokens=24, max_answer_tokens=24)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    torch.set_num_threads(1)  # toy sizes: a second thread only adds contention
    return generate_dataset(tmp_path_factory.mktemp("vlm") / "train", per_dimension=1, seed=0, split="train",
                            size=32, frames=16)


@pytest.fixture(scope="module")
def bank(manifest):
    return load_frames(manifest, size=16, frames=16)


@pytest.fixture(scope="module")
def tokenizer(bank) -> TextTokenizer:
    return TextTokenizer.build(corpus(bank.samples))


@pytest.fixture(scope="module")
def trained(manifest, tmp_path_factory):
    out = tmp_path_factory.mktemp("vlm-run")
    metrics = train_vlm(manifest, out, steps=60, batch_size=8, lr=3e-3, warmup=5, seed=0, model_config=TOY,
                        eval_manifest=manifest, log_every=10, threads=1, progress=False)
    return out, metrics


def _model(tokenizer, seed=0) -> ReviseVLM:
    torch.manual_seed(seed)
    return ReviseVLM.create(tokenizer, **TOY).eval()


def test_tokenizer_round_trip_and_determinism(bank, tokenizer, tmp_path):
    texts = corpus(bank.samples)
    for text in texts + ["Yes", "No", "2.2 17 (3) - red, blue.", ""]:
        assert tokenizer.decode(tokenizer.encode(text)) == text
        assert tokenizer.unknown_rate(text) == 0
    assert tokenizer.encode("Yes") == [tokenizer.yes_id] and tokenizer.encode("No") == [tokenizer.no_id]
    again = TextTokenizer.build(list(reversed(texts)))
    assert again.to_json() == tokenizer.to_json()  # same ids whatever the order of the texts
    tokenizer.save(tmp_path / "tokenizer.json")
    loaded = TextTokenizer.from_file(tmp_path / "tokenizer.json")
    assert loaded.encode(texts[0]) == tokenizer.encode(texts[0])
    assert "<unk>" in tokenizer.decode(tokenizer.encode("a zebra")) or tokenizer.unknown_rate("a zebra") > 0


def test_judge_data_is_balanced_deterministic_and_truly_wrong(bank):
    builder = TaskBuilder(bank, k=4, seed=3)
    epoch = builder.epoch(0)
    judge = [e for e in epoch if e.task == "judge"]
    assert sum(e.label for e in judge) == sum(not e.label for e in judge) > 0
    assert {e.task for e in epoch} == {"describe", "reason", "judge"}
    assert [e for e in TaskBuilder(bank, k=4, seed=3).epoch(0)] == epoch
    assert TaskBuilder(bank, k=4, seed=4).epoch(0) != epoch
    evaluation = builder.judge_eval()
    kinds = {e.kind.split(":")[0] for e in evaluation}
    assert set(NEGATIVE_KINDS) | {"positive", "swapped"} <= kinds
    for e in evaluation:
        if not e.label and e.video2 is not None and e.kind != "swapped":
            assert not np.array_equal(clip_frames(bank, e.video2, 8), clip_frames(bank, Clip(e.video1.index), 8)), e


@pytest.mark.numerics
def test_prepare_video_layouts_and_sampling():
    rng = np.random.default_rng(0)
    clip = rng.integers(0, 256, (2, 8, 32, 32, 3), dtype=np.uint8)
    a = prepare_video(clip, 4, 16)
    b = prepare_video(torch.from_numpy(clip).permute(0, 1, 4, 2, 3).float() / 255.0, 4, 16)
    assert a.shape == (2, 4, 3, 16, 16) and float(a.min()) >= 0 and float(a.max()) <= 1
    torch.testing.assert_close(a, b)
    expected = clip[:, [0, 2, 5, 7]].reshape(2, 4, 16, 2, 16, 2, 3).mean((3, 5)) / 255.0
    torch.testing.assert_close(a.permute(0, 1, 3, 4, 2), torch.from_numpy(expected).float())
    assert prepare_video(clip[0], 4, 16).shape == (1, 4, 3, 16, 16)


def test_training_lowers_the_loss(trained):
    out, metrics = trained
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    first = np.mean([log[0][k] for k in ("loss_describe", "loss_reason", "loss_judge")])
    last = np.mean([log[-1][k] for k in ("loss_describe", "loss_reason", "loss_judge")])
    assert last < 0.75 * first, (first, last)
    assert metrics["steps"] == 60
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "log.jsonl", "metrics.json", "model.safetensors",
                                                     "tokenizer.json"]
    e = metrics["eval"]
    assert 0 <= e["judge_accuracy"] <= 1 and 0 <= e["reason"]["keyword_f1"] <= 1
    assert len(e["judge_by_dimension"]) == 8


def test_time_budget_and_missing_budget(manifest, tmp_path):
    metrics = train_vlm(manifest, tmp_path / "timed", max_minutes=0.02, batch_size=4, model_config=TOY, threads=1,
                        progress=False)
    assert metrics["steps"] >= 1 and (tmp_path / "timed" / "model.safetensors").is_file()
    with pytest.raises(ConfigError, match="steps or max_minutes"):
        train_vlm(manifest, tmp_path / "none", model_config=TOY)


def test_save_load_gives_identical_outputs(trained, bank, tmp_path):
    out, _ = trained
    model = ReviseVLM.from_pretrained(out)
    model.save_pretrained(tmp_path / "again")
    again = ReviseVLM.from_pretrained(tmp_path / "again")
    batch = TaskBuilder(bank, k=4).epoch(0)[:6]
    tasks, instructions, answers, v1, v2 = collate(bank, batch, 4)
    with torch.no_grad():
        h1 = model.hidden_states(model.build_inputs(tasks, instructions, answers), v1, v2)
        h2 = again.hidden_states(again.build_inputs(tasks, instructions, answers), v1, v2)
        assert torch.equal(model.lm.lm_head(h1), again.lm.lm_head(h2))
    src = bank.source[:2]
    assert model.generate(src, [s.instruction for s in bank.samples[:2]]) == \
        again.generate(src, [s.instruction for s in bank.samples[:2]])


@pytest.mark.numerics
def test_judge_gradient_reaches_candidate_pixels_only(tokenizer, bank):
    model = _model(tokenizer)
    for p in model.parameters():
        p.requires_grad_(False)
    source = torch.from_numpy(bank.source[:2]).float() / 255.0                       # (B, T, H, W, 3)
    candidate = (torch.from_numpy(bank.target[:2]).float() / 255.0).permute(0, 1, 4, 2, 3).contiguous()
    candidate.requires_grad_(True)                                                    # (B, T, 3, H, W)
    p_yes = model.judge_probability(source, [s.instruction for s in bank.samples[:2]], candidate)
    assert p_yes.shape == (2,) and bool(((p_yes > 0) & (p_yes < 1)).all())
    (-torch.log(p_yes)).sum().backward()
    assert candidate.grad is not None and torch.isfinite(candidate.grad).all()
    assert float(candidate.grad.abs().sum()) > 0
    assert all(p.grad is None for p in model.parameters())
    # the same judgment from uint8 channels-last frames
    with torch.no_grad():
        again = model.judge_probability(bank.source[:2], [s.instruction for s in bank.samples[:2]], bank.target[:2])
    torch.testing.assert_close(again, p_yes.detach(), atol=1e-4, rtol=1e-4)


def test_encode_and_generate(tokenizer, bank):
    model = _model(tokenizer)
    instructions = [s.instruction for s in bank.samples[:3]]
    hidden, mask = model.encode(bank.source[:3], instructions)
    assert hidden.shape[0] == 3 and hidden.shape[2] == 32 and mask.shape == hidden.shape[:2]
    assert bool((mask[:, -1] == 1).all())
    hidden2, _ = model.encode(bank.source[:3], instructions, candidate=bank.target[:3])
    assert hidden2.shape[1] == hidden.shape[1] + 1 + model.config.visual_tokens
    for texts in (model.generate(bank.target[:3], max_new_tokens=5),
                  model.generate(bank.source[:3], instructions, max_new_tokens=5),
                  model.generate(bank.source[:3], instructions, candidate=bank.target[:3], max_new_tokens=2)):
        assert len(texts) == 3 and all(isinstance(t, str) for t in texts)


def test_bad_checkpoints_raise_one_line_config_errors(trained, tmp_path):
    out, _ = trained
    with pytest.raises(ConfigError, match="not found") as info:
        ReviseVLM.from_pretrained(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(info.value)
    cases = {
        "no-weights": lambda d: (d / "model.safetensors").unlink(),
        "bad-json": lambda d: (d / "config.json").write_text("{not json"),
        "bad-config": lambda d: (d / "config.json").write_text(json.dumps({"image_size": 30})),
        "bad-weights": lambda d: (d / "model.safetensors").write_bytes(b"\x00" * 64),
        "bad-tokenizer": lambda d: (d / "tokenizer.json").write_text("[]"),
    }
    for name, damage in cases.items():
        d = tmp_path / name
        d.mkdir()
        for f in ("config.json", "model.safetensors", "tokenizer.json"):
            (d / f).write_bytes((out / f).read_bytes())
        damage(d)
        with pytest.raises(ConfigError) as info:
            ReviseVLM.from_pretrained(d)
        message = str(info.value)
        assert str(d) in message and "\n" not in message, (name, message)


def test_config_rejects_inconsistent_geometry():
    with pytest.raises(ConfigError, match="image_size"):
        VLMConfig(vocab_size=10, image_size=30)
    with pytest.raises(ConfigError, match="tubelet"):
        VLMConfig(vocab_size=10, frames=6, tubelet=4)


def test_answer_scores():
    ref = "The red ball rolls left and hits the blue crate."
    assert answer_scores(ref, ref) == {"exact": 1.0, "word_f1": 1.0, "keyword_f1": 1.0, "colour_match": 1.0}
    wrong = answer_scores("The green ball rolls right.", ref)
    assert wrong["exact"] == 0 and wrong["colour_match"] == 0 and 0 < wrong["word_f1"] < 1
    assert wrong["keyword_f1"] < wrong["word_f1"]
    assert answer_scores("", ref)["word_f1"] == 0


def test_evaluate_reports_every_kind(trained, manifest):
    out, _ = trained
    model = ReviseVLM.from_pretrained(out)
    result = evaluate_vlm(model, manifest, reason=False)
    assert {"positive", "source", "other", "perturbed", "swapped"} <= set(result["judge_by_kind"])
    assert result["judge_by_kind"]["positive"]["n"] == 8


def test_facts_answers_name_what_the_simulator_put_in_the_source(bank, manifest, tmp_path):
    from revise.data import Sample
    from revise.model.vlm_data import FACTS_QUESTION, facts_answer
    from revise.train.vlm import object_set

    for s in bank.samples:
        state = json.loads(Path(s.state).read_text())
        present = {(b["colour"], b["shape"]) for b in state["scenes"]["source"]["bodies"]
                   if b.get("visible", True) and b.get("perceivable", True)}
        answer = facts_answer(s)
        assert object_set(answer) == present and answer.endswith("."), (s.id, answer)
        # bodies the edit adds (absent from the source) are not named
        hidden = {(b["colour"], b["shape"]) for b in state["scenes"]["source"]["bodies"] if not b.get("visible", True)}
        assert not (hidden - present) & object_set(answer)
    assert facts_answer(bank.samples[0]) == facts_answer(bank.samples[0])
    # an epoch with facts is the epoch without them plus one facts example per sample
    plain, with_facts = TaskBuilder(bank, 4, seed=0).epoch(0), TaskBuilder(bank, 4, seed=0, facts=True).epoch(0)
    facts = [e for e in with_facts if e.kind == "facts"]
    assert len(with_facts) == len(plain) + len(bank) and len(facts) == len(bank)
    assert plain == TaskBuilder(bank, 4, seed=0).epoch(0)
    assert all(e.task == "reason" and e.instruction == FACTS_QUESTION and e.video1.which == "source" for e in facts)
    texts = corpus(bank.samples, facts=True)
    tok = TextTokenizer.build(texts)
    assert tok.unknown_rate(FACTS_QUESTION) == 0 and all(tok.unknown_rate(facts_answer(s)) == 0 for s in bank.samples)
    assert set(corpus(bank.samples)) < set(texts)
    with pytest.raises(ConfigError, match="no state file"):
        facts_answer(Sample(id="x", subset="rave", dimension="causal", instruction="i", source=Path("a.mp4")))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="bad.json: unreadable RVE-Sim state"):
        facts_answer(Sample(id="x", subset="rave", dimension="causal", instruction="i", source=Path("a.mp4"),
                            state=bad))


def test_evaluate_scores_the_facts_question(trained, manifest):
    from revise.train.vlm import object_set

    assert object_set("a blue ball, an orange box and a green character.") == {
        ("blue", "ball"), ("orange", "box"), ("green", "character")}
    model = ReviseVLM.from_pretrained(trained[0])
    result = evaluate_vlm(model, manifest)
    facts = result["facts"]
    describe = result["describe"]  # the target captions, scored like the reasoning answers
    assert all(0.0 <= describe[k] <= 1.0 for k in ("word_f1", "colour_match", "token_accuracy"))
    captions = {s.metadata["target_caption"] for s in load_manifest(manifest)}
    assert describe["examples"] and all(e["reference"] in captions for e in describe["examples"])
    assert set(facts) >= {"colour_match", "object_match", "colour_recall", "by_dimension", "examples"}
    assert all(0.0 <= facts[k] <= 1.0 for k in ("colour_match", "object_match", "colour_recall"))
    assert len(facts["by_dimension"]) == 8 and facts["examples"][0]["reference"].endswith(".")
