"""Render episodes into benchmark samples and whole RVE-Sim datasets.

``generate_dataset`` writes ``OUT/manifest.jsonl``, ``OUT/videos/<id>_src.mp4``, ``OUT/videos/<id>_tgt.mp4``
and ``OUT/states/<id>.json``. Every random choice flows from ``seed``: the same arguments give a
byte-identical manifest and state files and identical decoded frames.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data import SUBSETS, Sample, write_manifest
from ..errors import SceneError
from ..video import write_video
from .physics import simulate
from .render import project_velocity, render_frame
from .scene import PALETTE, Scene
from .scenarios import SPLITS, BuildContext, Clip, Episode, families, split_of
from .state import FORMAT, dump_state

GENERATOR = "rve-sim/1"
MAX_ATTEMPTS = 400
_SPLIT_CODE = {"train": 1, "val": 2, "test": 3}


def code_fingerprint() -> str:
    """A hash of RVE-Sim's own source files: caches of generated data are keyed on it, so a change to
    a scenario, the physics or the renderer never serves stale samples."""
    import hashlib

    root = Path(__file__).resolve().parent
    digest = hashlib.sha256(GENERATOR.encode())
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def palette_of(*scenes: Scene) -> dict[str, list[int]]:
    """Part id -> RGB for every perceivable part (bodies and their coloured sub-parts) of the scenes."""
    palette: dict[str, list[int]] = {}
    for scene in scenes:
        for b in scene.bodies:
            if not b.perceivable:
                continue
            palette[b.id] = list(PALETTE[b.colour])
            for attr, suffix in (("mouth_colour", "mouth"), ("flame_colour", "flame"), ("pot_colour", "pot")):
                if b.attrs.get(attr):
                    palette[f"{b.id}:{suffix}"] = list(PALETTE[b.attrs[attr]])
    return palette


def _plain_attrs(attrs: dict) -> dict:
    return {k: v for k, v in attrs.items() if isinstance(v, (int, float, str, bool)) and not k.endswith("_colour")}


def render_clip(clip: Clip, size: tuple[int, int], parts: list[str]) -> tuple[np.ndarray, list[dict]]:
    """Simulate and draw a clip: ``(frames uint8 (T, H, W, 3), per-frame state dicts)``."""
    scene = clip.scene
    world_frames = simulate(scene, clip.times)
    images, states = [], []
    min_area = 1.0 * size[0] * size[1] / (128 * 128)
    for wf in world_frames:
        image, notes, scale = render_frame(wf, scene.statics, size=size, world=scene.world, background=scene.background)
        by_id = {o.id: o for o in wf.objects}
        objects = {}
        for part in parts:
            body_id = part.split(":")[0]
            o = by_id.get(body_id)
            note = notes.get(part)
            area = note.area if note else 0.0
            record = {"visible": bool(area >= min_area), "area": area,
                      "x": note.x if note and area >= min_area else None,
                      "y": note.y if note and area >= min_area else None}
            if o is not None:
                vx, vy = project_velocity(o.vx, o.vy, scale, wf.camera[3])
                record.update({"vx": vx, "vy": vy, "angle": o.angle, "wx": o.x, "wy": o.y, "in_scene": o.visible})
                record.update(_plain_attrs(o.attrs))
            objects[part] = record
        images.append(image)
        states.append({"t": wf.t, "objects": objects,
                       "globals": {"brightness": float(image.mean()) / 255.0, "ambient": wf.ambient,
                                   "camera": list(wf.camera[:3]), "mirror": wf.camera[3],
                                   "lamps": [lamp[3] for lamp in wf.lamps]}})
    if clip.reverse:
        images, states = images[::-1], states[::-1]
        for s in states:
            for rec in s["objects"].values():
                if "vx" in rec:
                    rec["vx"], rec["vy"] = -rec["vx"], -rec["vy"]
    return np.stack(images), states


@dataclass
class RenderedSample:
    sample: Sample
    source: np.ndarray
    target: np.ndarray
    state: dict


def build_episode(scenario, seed: int, split: str, index: int, ctx: BuildContext) -> Episode:
    """The episode for sample ``index`` of ``split``: re-drawn until its signature hashes into the split."""
    for attempt in range(MAX_ATTEMPTS):
        rng = np.random.default_rng([seed, _SPLIT_CODE[split], index, attempt, _stable_id(scenario.name)])
        episode = scenario.build(rng, ctx)
        if split_of(f"{scenario.name}|{episode.signature}") == split:
            return episode
    raise SceneError(f"scenario {scenario.name!r} found no scene for split {split!r} in {MAX_ATTEMPTS} attempts")


def _stable_id(text: str) -> int:
    import hashlib

    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


def make_sample(out_dir: Path, sample_id: str, scenario, episode: Episode, *, seed: int, split: str,
                size: tuple[int, int], ctx: BuildContext) -> Sample:
    """Render an episode and write its two videos and state file; returns the manifest sample."""
    palette = palette_of(episode.source.scene, episode.target.scene)
    parts = sorted(palette)
    src_frames, src_states = render_clip(episode.source, size, parts)
    tgt_frames, tgt_states = render_clip(episode.target, size, parts)
    src_path = out_dir / "videos" / f"{sample_id}_src.mp4"
    tgt_path = out_dir / "videos" / f"{sample_id}_tgt.mp4"
    state_path = out_dir / "states" / f"{sample_id}.json"
    write_video(src_path, src_frames, ctx.fps)
    write_video(tgt_path, tgt_frames, ctx.fps)
    state = {
        "format": FORMAT, "sample_id": sample_id, "scenario": scenario.name, "subset": scenario.subset,
        "dimension": scenario.dimension, "size": list(size), "fps": ctx.fps, "num_frames": ctx.frames,
        "palette": palette, "source": {"frames": src_states}, "target": {"frames": tgt_states},
        "involved": episode.involved, "preserved": episode.preserved, "checks": episode.checks,
        "scenes": {"source": episode.source.scene.to_dict(), "target": episode.target.scene.to_dict()},
        "times": {"source": episode.source.times, "target": episode.target.times,
                  "source_reversed": episode.source.reverse, "target_reversed": episode.target.reverse},
    }
    dump_state(state, state_path)
    metadata = {"scenario": scenario.name, "target_caption": episode.target_caption, "seed": seed, "split": split,
                "generator": GENERATOR, "template": episode.template, "signature": episode.signature,
                "params": episode.params, "size": list(size), "frames": ctx.frames, "fps": ctx.fps}
    return Sample(id=sample_id, subset=scenario.subset, dimension=scenario.dimension, instruction=episode.instruction,
                  source=src_path, target=tgt_path, reference_answer=episode.reference_answer, state=state_path,
                  metadata=metadata)


def plan(per_dimension: int, dimensions: list[str] | None = None) -> list[tuple[str, str, int]]:
    """``(subset, dimension, index)`` for every sample, in manifest order."""
    wanted = None if dimensions is None else set(dimensions)
    jobs = []
    for subset, dims in SUBSETS.items():
        for dim in dims:
            if wanted is not None and f"{subset}/{dim}" not in wanted and dim not in wanted and subset not in wanted:
                continue
            jobs += [(subset, dim, i) for i in range(per_dimension)]
    return jobs


def _job(args) -> Sample:
    out_dir, subset, dim, index, seed, split, size, ctx = args
    fams = families(subset, dim)
    if not fams:
        raise SceneError(f"no scenario family for {subset}/{dim}")
    scenario = fams[index % len(fams)]
    episode = build_episode(scenario, seed, split, index, ctx)
    sample_id = f"{subset}-{dim}-{split}-s{seed}-{index:04d}"
    return make_sample(Path(out_dir), sample_id, scenario, episode, seed=seed, split=split, size=size, ctx=ctx)


def generate_dataset(out_dir: str | os.PathLike, *, per_dimension: int, seed: int = 0, split: str = "test",
                     size: int | tuple[int, int] = 128, frames: int = 16, fps: float = 8.0,
                     dimensions: list[str] | None = None, workers: int = 1, progress: bool = False,
                     overwrite: bool = False) -> Path:
    """Generate ``per_dimension`` samples for each of the eight dimensions; returns the manifest path.

    ``dimensions`` restricts to e.g. ``["rave/causal", "icvg"]``. ``workers`` > 1 renders in processes
    (the output is identical). An existing non-empty ``out_dir`` is refused unless ``overwrite``.
    """
    if split not in SPLITS:
        raise SceneError(f"unknown split {split!r}; expected one of {list(SPLITS)}")
    if per_dimension < 1:
        raise SceneError("per_dimension must be at least 1")
    if frames < 2 or fps <= 0:
        raise SceneError("frames must be >= 2 and fps positive")
    hw = (size, size) if isinstance(size, int) else tuple(size)
    if min(hw) < 16:
        raise SceneError(f"size {hw} is too small (at least 16 pixels)")
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise SceneError(f"{out}: output folder is not empty (pass overwrite=True / --overwrite)")
        for sub in ("videos", "states"):
            shutil.rmtree(out / sub, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    ctx = BuildContext(frames=frames, fps=fps)
    jobs = [(str(out), subset, dim, i, seed, split, hw, ctx) for subset, dim, i in plan(per_dimension, dimensions)]
    if not jobs:
        raise SceneError(f"no dimension matches {dimensions}")
    samples = _run(jobs, workers, progress)
    return write_manifest(samples, out / "manifest.jsonl")


def _run(jobs: list, workers: int, progress: bool) -> list[Sample]:
    from rich.progress import Progress

    results: list[Sample] = []
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("RVE-Sim", total=len(jobs))
        if workers <= 1:
            for job in jobs:
                results.append(_job(job))
                bar.advance(task)
        else:
            from concurrent.futures import ProcessPoolExecutor
            import multiprocessing

            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                for sample in pool.map(_job, jobs, chunksize=4):
                    results.append(sample)
                    bar.advance(task)
    return results
