"""The rve-judge-v1 protocol: prompt file and hash, frame sampling and labels, messages, strict parser."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from revise.data import Sample
from revise.errors import JudgeError
from revise.judges import JudgeInput
from revise.judges.protocol import (
    ANSWER_SCHEMA,
    PROTOCOL_VERSION,
    RESPONSE_FORMAT,
    LabelledFrame,
    build_prompt,
    fit_max_side,
    image_data_uri,
    openai_messages,
    parse_answer,
    prompt_hash,
    prompt_text,
    system_prompt,
)
from revise.provenance import text_hash
from revise.video import Video


def ramp_video(num_frames: int = 16, size: tuple[int, int] = (48, 64), fps: float = 8.0, offset: int = 0) -> Video:
    """Frame i is a flat grey of value offset + 10*i, so order survives JPEG and resizing."""
    values = offset + 10 * np.arange(num_frames)
    frames = np.broadcast_to(values[:, None, None, None], (num_frames, *size, 3)).astype(np.uint8)
    return Video(np.ascontiguousarray(frames), fps)


def make_item(subset: str = "rave", reference: str | None = None, source: Video | None = None,
              edited: Video | None = None) -> JudgeInput:
    sample = Sample(id=f"{subset}-causal-test-s0-0001", subset=subset, dimension="causal",
                    instruction="What if the red ball were twice as heavy?", source=Path("/data/src.mp4"),
                    reference_answer=reference)
    return JudgeInput(sample, source or ramp_video(), edited or ramp_video(offset=5), None, "0" * 64)


def decode(uri: str) -> np.ndarray:
    head, data = uri.split(",", 1)
    assert head in ("data:image/jpeg;base64", "data:image/png;base64")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))


def valid(**overrides) -> str:
    answer = {"reasoning": 5, "consistency": 4, "quality": 3, "rationale": "the ball falls faster"}
    answer.update(overrides)
    return json.dumps(answer)


# --- prompt file and version ------------------------------------------------------------------------


def test_prompt_is_versioned_package_data_and_hashed():
    text = prompt_text()
    assert PROTOCOL_VERSION == "rve-judge-v1"
    assert PROTOCOL_VERSION in text
    assert prompt_hash() == text_hash(text)
    assert len(prompt_hash()) == 16


def test_rubric_is_concrete_per_level_and_differs_per_subset():
    rave, icvg = system_prompt("rave"), system_prompt("icvg")
    assert rave != icvg
    assert "preserved" in rave and "pixel-aligned" in rave
    assert "continuity" in icvg and "identity" in icvg.lower()
    for text in (rave, icvg):
        for criterion in ("Reasoning", "Consistency", "Quality"):
            assert criterion in text
        for level in "12345":
            assert text.count(f"  {level}: ") == 3  # every criterion defines every level


def test_unknown_subset_is_refused():
    with pytest.raises(JudgeError, match="unknown subset"):
        system_prompt("other")
    with pytest.raises(JudgeError, match="rave-causal-test|unknown subset"):
        item = make_item()
        item.sample.subset = "other"
        build_prompt(item)


# --- frames ----------------------------------------------------------------------------------------


def test_frames_are_sampled_uniformly_in_order_with_time_labels():
    prompt = build_prompt(make_item(), k=8)
    frames = prompt.frames
    assert [f.label for f in frames[:2]] == ["source frame 1/8 at t=0.00s", "source frame 2/8 at t=0.25s"]
    assert frames[7].label == "source frame 8/8 at t=1.88s"
    assert frames[8].label == "edited frame 1/8 at t=0.00s"
    assert [f.index for f in frames[:8]] == [0, 2, 4, 6, 9, 11, 13, 15]
    assert all(int(f.frame[0, 0, 0]) == 10 * f.index for f in frames[:8])


def test_k_is_configurable_and_short_clips_are_not_repeated():
    item = make_item(edited=ramp_video(num_frames=3, fps=4.0))
    frames = build_prompt(item, k=4).frames
    assert [f.label for f in frames if f.label.startswith("edited")] == [
        "edited frame 1/3 at t=0.00s", "edited frame 2/3 at t=0.25s", "edited frame 3/3 at t=0.50s"]
    assert len([f for f in frames if f.label.startswith("source")]) == 4


def test_prompt_carries_instruction_subset_and_optional_reference():
    with_ref = build_prompt(make_item(reference="the ball hits the floor sooner"))
    text = "\n".join(p for p in with_ref.parts if isinstance(p, str))
    assert "What if the red ball were twice as heavy?" in text and "causal" in text and "RAVE" in text
    assert "the ball hits the floor sooner" in text
    without = build_prompt(make_item(reference="the ball hits the floor sooner"), with_reference=False)
    assert "the ball hits the floor sooner" not in "\n".join(p for p in without.parts if isinstance(p, str))
    assert "ICVG" in build_prompt(make_item("icvg")).parts[0]


def test_empty_video_is_refused():
    empty = Video(np.zeros((0, 8, 8, 3), np.uint8), 8.0)
    with pytest.raises(JudgeError, match="edited video has no frames"):
        build_prompt(make_item(edited=empty))


# --- messages --------------------------------------------------------------------------------------


def test_openai_messages_interleave_labels_and_images_in_order():
    messages = openai_messages(build_prompt(make_item(), k=8), max_side=32)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert "Reasoning" in messages[0]["content"]
    content = messages[1]["content"]
    images = [p for p in content if p["type"] == "image_url"]
    assert len(images) == 16
    for i, part in enumerate(content):
        if part["type"] == "image_url":
            assert content[i - 1]["type"] == "text" and " frame " in content[i - 1]["text"]
    decoded = [decode(p["image_url"]["url"]) for p in images]
    assert all(max(d.shape[:2]) == 32 for d in decoded)
    assert decoded[0].shape[:2] == (24, 32)  # aspect kept
    greys = [int(round(d.mean())) for d in decoded]
    assert greys[:8] == sorted(greys[:8]) and greys[8:] == sorted(greys[8:])
    assert content[-1]["type"] == "text" and '"reasoning"' in content[-1]["text"]


def test_images_are_never_enlarged_and_png_is_lossless():
    frame = ramp_video(size=(20, 30)).frames[3]
    assert fit_max_side(frame, 256) is frame
    assert np.array_equal(decode(image_data_uri(frame, 256, "png")), frame)
    with pytest.raises(JudgeError, match="image format"):
        image_data_uri(frame, 256, "gif")


def test_labelled_frames_are_backend_neutral():
    prompt = build_prompt(make_item(), k=2)
    assert all(isinstance(f, LabelledFrame) and f.frame.dtype == np.uint8 for f in prompt.frames)
    assert isinstance(prompt.parts[0], str)


# --- answer schema and parser ----------------------------------------------------------------------


def test_response_format_wraps_the_answer_schema():
    assert RESPONSE_FORMAT["type"] == "json_schema"
    assert RESPONSE_FORMAT["json_schema"]["schema"] is ANSWER_SCHEMA
    assert RESPONSE_FORMAT["json_schema"]["strict"] is True
    assert ANSWER_SCHEMA["required"] == ["reasoning", "consistency", "quality", "rationale"]
    assert ANSWER_SCHEMA["additionalProperties"] is False
    assert ANSWER_SCHEMA["properties"]["quality"]["enum"] == [1, 2, 3, 4, 5]


def test_parser_accepts_a_valid_object_and_a_json_fence():
    verdict = parse_answer(valid())
    assert (verdict.reasoning, verdict.consistency, verdict.quality) == (5, 4, 3)
    assert parse_answer(f"```json\n{valid()}\n```") == verdict
    assert parse_answer(f"  ```\n{valid()}\n```\n") == verdict
    result = verdict.to_result("openai")
    assert result.overall == pytest.approx(4.0) and not result.passed
    assert parse_answer(valid(consistency=5, quality=5)).to_result("x").passed


@pytest.mark.parametrize("text, reason", [
    (None, "empty"),
    ("   ", "empty"),
    ("The edit is good, 4/5.", "not a JSON object"),
    ('{"reasoning": 4, "consistency": 5, "qual', "not a JSON object"),
    (f"Here you go: {valid()}", "not a JSON object"),
    (f"{valid()} {valid()}", "not a JSON object"),
    ("[5, 4, 3]", "expected a JSON object"),
    ('{"reasoning": 5, "consistency": 4, "rationale": "x"}', "missing quality"),
    (valid(extra=1), "unexpected extra"),
    (valid(reasoning=6), "reasoning must be in 1-5"),
    (valid(quality=0), "quality must be in 1-5"),
    (valid(reasoning=4.5), "must be an integer"),
    (valid(reasoning=4.0), "must be an integer"),
    (valid(reasoning="5"), "must be an integer"),
    (valid(reasoning=True), "must be an integer"),
    (valid(rationale=None), "rationale must be a string"),
    ('{"reasoning": 5, "reasoning": 1, "consistency": 4, "quality": 3, "rationale": ""}', "duplicate key"),
    ('{"reasoning": NaN, "consistency": 4, "quality": 3, "rationale": ""}', "non-finite"),
    (f"```json\n{valid()}", "not a JSON object"),
])
def test_parser_rejects_everything_else_with_a_one_line_reason(text, reason):
    with pytest.raises(JudgeError, match=reason) as info:
        parse_answer(text)
    assert "\n" not in str(info.value)
    assert str(info.value).startswith("unparseable answer")
