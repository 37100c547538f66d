"""The RVE-Bench runner: editor (or prediction files) -> judges -> ``OUT/results.jsonl``, resumable.

Example::

    from revise.bench import run_bench
    result = run_bench("rve-sim-mini", "out/copy", editor="copy", judges=["gt"])
    print(result.summary["overall"])

What a run writes into ``OUT``:

* ``run.json``: provenance, written before the first sample (package version, git commit, platform,
  editor and judge info with prompt hashes, seed, frame sampling k, bench manifest + sha256, shard,
  CLI arguments). ``--resume`` refuses to continue a run whose editor, judges, bench, seed, k, length
  policy, shard or limit differ.
* ``results.jsonl``: one row per sample, appended, flushed and fsynced as it finishes (see
  :mod:`revise.bench.results`). Editor outputs go to ``videos/<id>.mp4`` and the row's ``prediction``
  is that path relative to OUT; with ``predictions=DIR`` nothing is copied and ``prediction`` is the
  absolute path of ``DIR/<id>.mp4``. ``OUT / row["prediction"]`` finds the video either way.
* ``summary.json``, ``leaderboard.csv`` (and ``report.html`` when :mod:`revise.bench.report` exists),
  derived from ``results.jsonl`` at the end.

Sharding by launcher ranks (``shard="auto"``, ``--shard auto``): under ``torchrun`` or ``accelerate launch``
(``RANK``/``WORLD_SIZE``, else ``LOCAL_RANK``/``LOCAL_WORLD_SIZE``, else Open MPI's or PMI's rank and size)
rank ``i`` of ``n`` runs shard ``i/n`` into ``OUT/shards/rank<i>`` (a complete run folder of its own) and
leaves ``OUT/shards/rank<i>/shard.done.json`` when it is finished. Rank 0 then waits for every shard's
marker (files only, no process group; ``shard_timeout`` seconds at most) and merges the shards into OUT
with :func:`revise.bench.merge.merge_runs`. ``--resume`` resumes each shard and merges again. Without
launcher variables ``auto`` is one shard: a plain run into OUT.

Judges score an editor's output as returned (lossless), not the re-decoded mp4: the mp4 in ``videos/``
is for viewing and the report, and the H.264 encoder is neither lossless nor byte-reproducible. So for
an editor, ``prediction_sha256`` is :func:`frames_sha256` of the output (shape, fps, pixels: stable
across reruns, which judge caches key on); for ``--predictions`` it is the sha256 of the file.

Frame count: an edited video must have as many frames as the source (or as the target, where the
ground truth itself has another length). With ``length_policy="fail"`` (the default) any other length
fails the sample with ``wrong length: ...``; with ``"resample"`` it is resampled in time to the source's
length (nearest frame) and the row's ``flags`` says so. A size different from the source's is flagged,
not failed (judges resize).

Failures: an editor, video or length error fails the sample (``status: "failed"`` + a one-line
``error``) and the run goes on. A judge error is recorded in ``judges[name].error`` and keeps the other
judges' scores; only when every judge fails is the row ``failed``.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import math
import os
import re
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..data import Manifest, Sample, load_manifest
from ..editors import EditContext, Editor, create_editor
from ..errors import ConfigError, ReviseError, VideoError
from ..judges import JUDGES, Judge, JudgeInput, JudgeResult, create_judge
from ..provenance import base_provenance, file_hash
from ..video import Video, VideoFile, match_length, write_video
from .aggregate import judge_outcome, summarize_run
from .leaderboard import append_leaderboard, leaderboard_rows
from .results import (LEADERBOARD_FILE, RESULTS_FILE, RUN_FILE, SUMMARY_FILE, VIDEOS_DIR, ResultsWriter,
                      json_safe, read_json, read_results, repair_torn_tail, write_json)

MINI_NAME = "rve-sim-mini"
MINI_PER_DIMENSION = 4
MINI_FORMAT = 1  # bump when the recipe below changes; with the generator version, names the cache folder
LENGTH_POLICIES = ("fail", "resample")
LOCK_FILE = ".lock"
SHARDS_DIR = "shards"  # OUT/shards/rank<i>: rank i's shard under --shard auto
SHARD_DONE = "shard.done.json"  # its completion marker
# (rank, size) variables of the launchers, in order of preference: torchrun and accelerate launch, Open MPI, PMI
LAUNCHER_ENV = (("RANK", "WORLD_SIZE"), ("LOCAL_RANK", "LOCAL_WORLD_SIZE"),
                ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"), ("PMI_RANK", "PMI_SIZE"))
# run.json fields that must match for --resume (and for merging shards, minus "shard")
IDENTITY_KEYS = ("bench_sha256", "editor", "judges", "judge_names", "seed", "frames_k", "length_policy",
                 "limit", "shard")


@dataclass
class RunResult:
    """What :func:`run_bench` did and where it left it."""

    out_dir: Path
    summary: dict
    n_planned: int  # samples in this run (after limit and shard)
    n_run: int  # samples processed by this call
    n_skipped: int  # samples already finished in results.jsonl (resume)
    n_failed: int  # failed rows in results.jsonl
    report: Path | None = None

    @property
    def results_path(self) -> Path:
        return self.out_dir / RESULTS_FILE

    @property
    def summary_path(self) -> Path:
        return self.out_dir / SUMMARY_FILE


# --------------------------------------------------------------------------------------------- bench


def cache_root() -> Path:
    """``$REVISE_CACHE`` or ``~/.cache/revise``."""
    return Path(os.environ.get("REVISE_CACHE") or Path.home() / ".cache" / "revise")


def rve_sim_mini(seed: int = 0, *, cache_dir: str | os.PathLike | None = None, progress: bool = False) -> Path:
    """The manifest of RVE-Sim-mini (test split, ``MINI_PER_DIMENSION`` per dimension, 128 px, 16 frames
    at 8 fps), generated once per seed and version of RVE-Sim's code (:func:`revise.sim.generate.code_fingerprint`)
    into the cache.

    Generated into a temporary folder next to the cache entry and renamed into place, so a killed or
    concurrent generation never leaves a half-written benchmark behind.
    """
    from ..sim import generate_dataset
    from ..sim.generate import code_fingerprint

    root = Path(cache_dir) if cache_dir is not None else cache_root()
    final = root / f"{MINI_NAME}-{seed}-{code_fingerprint()}.{MINI_FORMAT}"
    manifest = final / "manifest.jsonl"
    if manifest.is_file():
        return manifest
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=root))
    try:
        generate_dataset(tmp, per_dimension=MINI_PER_DIMENSION, seed=seed, split="test", size=128, frames=16, fps=8,
                 progress=progress)
        if not (tmp / "manifest.jsonl").is_file():
            raise ConfigError(f"{MINI_NAME}: revise.sim.generate_dataset wrote no manifest.jsonl into {tmp}")
        try:
            os.rename(tmp, final)
        except OSError:
            if not manifest.is_file():  # not a lost race with another process: a real failure
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return manifest


def resolve_bench(bench: str | os.PathLike, *, cache_dir: str | os.PathLike | None = None,
                  progress: bool = False) -> tuple[Manifest, dict]:
    """Load a benchmark: a manifest path, or ``rve-sim-mini`` / ``rve-sim-mini:SEED`` (default seed 0).

    Returns the manifest and its provenance (name, manifest path, sha256 of the manifest file).
    """
    text = os.fspath(bench)
    if text == MINI_NAME or text.startswith(MINI_NAME + ":"):
        seed_text = text[len(MINI_NAME) + 1:] or "0"
        try:
            seed = int(seed_text)
        except ValueError:
            raise ConfigError(f"--bench {text}: the seed after ':' must be an integer") from None
        path = rve_sim_mini(seed, cache_dir=cache_dir, progress=progress)
        name = MINI_NAME if seed == 0 else f"{MINI_NAME}:{seed}"
    else:
        path = Path(text)
        name = path.parent.name if path.name == "manifest.jsonl" and path.parent.name else path.stem
    manifest = load_manifest(path)
    path = Path(manifest.path).resolve()
    return manifest, {"name": name, "manifest": str(path), "sha256": file_hash(path), "n_samples": len(manifest)}


def parse_shard(text: str | Sequence[int] | None) -> tuple[int, int] | None:
    """``"i/n"`` (or ``(i, n)``) -> ``(i, n)`` with ``0 <= i < n``; None stays None."""
    if text is None:
        return None
    if isinstance(text, str):
        parts = text.split("/")
        try:
            i, n = (int(p) for p in parts)
        except ValueError:
            raise ConfigError(f"--shard {text!r}: expected i/n, e.g. 0/4") from None
    else:
        i, n = (int(v) for v in text)
    if n < 1 or not 0 <= i < n:
        raise ConfigError(f"--shard {i}/{n}: need n >= 1 and 0 <= i < n")
    return i, n


def launcher_shard(env: dict | None = None) -> tuple[int, int]:
    """This process's ``(rank, world size)`` as a launcher (torchrun, accelerate launch, mpirun) set it in
    the environment; ``(0, 1)`` without one."""
    env = os.environ if env is None else env
    for rank_var, size_var in LAUNCHER_ENV:
        if rank_var in env and size_var in env:
            try:
                i, n = int(env[rank_var]), int(env[size_var])
            except ValueError:
                raise ConfigError(f"--shard auto: {rank_var}={env[rank_var]!r} and {size_var}={env[size_var]!r} "
                                  "must be integers") from None
            if n < 1 or not 0 <= i < n:
                raise ConfigError(f"--shard auto: {rank_var}={i} and {size_var}={n} do not name a rank")
            return i, n
    return 0, 1


def select_samples(manifest: Manifest, *, shard: tuple[int, int] | None = None, limit: int | None = None) -> list[Sample]:
    """Manifest order; the first ``limit`` samples; then every sample whose index % n == i."""
    samples = list(manifest)
    if limit is not None:
        if limit < 1:
            raise ConfigError(f"--limit {limit}: must be at least 1")
        samples = samples[:limit]
    if shard is not None:
        i, n = shard
        samples = [s for k, s in enumerate(samples) if k % n == i]
    return samples


# ------------------------------------------------------------------------------------- editor, judges


FRAMES_PARAMS = ("frames_k", "k")  # what judge factories call "frames sampled per video"


def _frames_param(factory) -> str | None:
    """The keyword (``frames_k`` or ``k``) by which ``factory`` takes the frame sampling k, if any."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return None
    return next((name for name in FRAMES_PARAMS if name in params), None)


def _takes(factory, name: str) -> bool:
    try:
        return name in inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False


def make_judges(judges: Iterable[str | Judge], judge_options: dict | None, frames_k: int,
                cache: Path | None = None) -> dict[str, Judge]:
    """Instantiate judges by name (``judge_options[name]`` as keyword arguments). A judge whose factory
    takes ``frames_k`` or ``k`` gets the run's frame sampling k unless its options set one; one that takes
    ``cache`` (a response cache, e.g. the openai judge) gets ``cache`` unless its options set one."""
    built: dict[str, Judge] = {}
    options = dict(judge_options or {})
    for item in judges:
        if isinstance(item, Judge):
            name, judge = item.name, item
        else:
            name = str(item).strip()
            if not name:
                continue
            kwargs = dict(options.get(name) or {})
            param = _frames_param(JUDGES.factory(name)) if name in JUDGES else None
            if param and not any(p in kwargs for p in FRAMES_PARAMS):
                kwargs[param] = frames_k
            if cache is not None and "cache" not in kwargs and name in JUDGES and _takes(JUDGES.factory(name), "cache"):
                kwargs["cache"] = str(cache)
            judge = create_judge(name, **kwargs)
        if name in built:
            raise ConfigError(f"judge {name!r} is listed twice")
        built[name] = judge
    if not built:
        raise ConfigError("no judge given: pass at least one, e.g. --judge gt")
    unknown = set(options) - set(built)
    if unknown:
        raise ConfigError(f"options given for judge(s) {sorted(unknown)} that are not in this run")
    return built


def _normalise(value):
    """JSON round trip: what run.json will hold (tuples -> lists, NaN -> None, ...)."""
    return json.loads(json.dumps(json_safe(value), sort_keys=True, default=str))


def _one_line(exc: BaseException, limit: int = 500) -> str:
    text = " | ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__
    if not isinstance(exc, ReviseError):
        text = f"{type(exc).__name__}: {text}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _SampleFailure(Exception):
    """Ends one sample with status 'failed' and this one-line message."""


# --------------------------------------------------------------------------------------------- run


@dataclass
class _Plan:
    out_dir: Path
    manifest: Manifest
    editor: Editor | None
    editor_label: str
    predictions: Path | None
    judges: dict[str, Judge]
    seed: int
    length_policy: str
    editor_lock: threading.Lock


def _load_video(path: Path, what: str) -> VideoFile:
    """The video checked end to end (a decoding pass: a corrupt file fails the sample here) and left on disk:
    judges that stream (``metrics``) read it chunk by chunk, the others load its frames once."""
    try:
        return VideoFile(path)
    except VideoError as exc:
        raise _SampleFailure(f"{what}: {_one_line(exc)}") from None


def _check_shape(edited: Video, source: Video, target: Video | None, policy: str, what: str,
                 flags: list[str]) -> Video:
    allowed = sorted({source.num_frames} | ({target.num_frames} if target is not None else set()))
    if edited.num_frames not in allowed:
        if policy == "fail":
            expected = f"{allowed[0]} (the source's)" if len(allowed) == 1 else \
                f"{source.num_frames} (the source's) or {target.num_frames} (the target's)"
            raise _SampleFailure(f"wrong length: the {what} has {edited.num_frames} frames, expected {expected}")
        flags.append(f"resampled from {edited.num_frames} to {source.num_frames} frames")
        edited = Video(match_length(edited.frames, source.num_frames), edited.fps)
    if (edited.height, edited.width) != (source.height, source.width):
        flags.append(f"size {edited.width}x{edited.height} differs from the source's {source.width}x{source.height}")
    return edited


def _invalid_video(output) -> str | None:
    if not isinstance(output, Video):
        return f"returned {type(output).__name__}, not a Video"
    frames = output.frames
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        shape = getattr(frames, "shape", None)
        return f"returned frames {getattr(frames, 'dtype', type(frames).__name__)} {shape}, not uint8 (T, H, W, 3)"
    if frames.shape[0] == 0:
        return "returned a video with zero frames"
    try:
        fps = float(output.fps)
    except (TypeError, ValueError):
        fps = float("nan")
    if not (math.isfinite(fps) and fps > 0):
        return f"returned fps {output.fps!r}"
    return None


def frames_sha256(video: Video) -> str:
    """sha256 of decoded content (shape, fps, uint8 bytes): the identity of an editor's output.

    Unlike the bytes of its mp4, it does not depend on the encoder, so a rerun of a deterministic editor
    yields the same hash (judge caches key on it).
    """
    frames = np.ascontiguousarray(video.frames)
    h = hashlib.sha256(f"{tuple(frames.shape)}@{float(video.fps)!r}".encode())
    h.update(frames.data)
    return h.hexdigest()


def _evaluate(plan: _Plan, sample: Sample) -> dict:
    """Edit (or load the prediction for) one sample and judge it; never raises for bad data."""
    started = time.perf_counter()
    row = {"id": sample.id, "subset": sample.subset, "dimension": sample.dimension,
           "instruction": sample.instruction, "editor": plan.editor_label, "status": "ok", "error": None,
           "prediction": None, "prediction_sha256": None, "judges": {}, "seconds": None, "flags": []}
    try:
        source = _load_video(sample.source, "source")
        target = _load_video(sample.target, "target") if sample.target is not None else None
        if plan.predictions is not None:
            path = plan.predictions / f"{sample.id}.mp4"
            row["prediction"] = str(path)
            if path.is_file():
                row["prediction_sha256"] = file_hash(path)
            edited = _check_shape(_load_video(path, "prediction"), source, target, plan.length_policy,
                                  "prediction", row["flags"])
        else:
            context = EditContext(sample=sample, manifest=plan.manifest, seed=plan.seed)
            try:
                with plan.editor_lock:
                    output = plan.editor.edit(source, sample.instruction, context)
            except Exception as exc:  # an editor's crash is that sample's failure, not the run's
                raise _SampleFailure(f"editor {plan.editor_label}: {_one_line(exc)}") from None
            if isinstance(output, VideoFile):  # e.g. `copy` hands back the source it was given
                output = Video(output.frames, output.fps)
            problem = _invalid_video(output)
            if problem:
                raise _SampleFailure(f"editor {plan.editor_label}: {problem}")
            edited = _check_shape(output, source, target, plan.length_policy, "edited video", row["flags"])
            relative = f"{VIDEOS_DIR}/{sample.id}.mp4"
            try:
                write_video(plan.out_dir / relative, edited.frames, edited.fps)
            except VideoError as exc:
                raise _SampleFailure(f"editor {plan.editor_label}: unwritable output: {_one_line(exc)}") from None
            row["prediction"] = relative
            row["prediction_sha256"] = frames_sha256(edited)
        item = JudgeInput(sample=sample, source=source, edited=edited, target=target,
                          edited_sha256=row["prediction_sha256"])
        for name, judge in plan.judges.items():
            row["judges"][name] = _judge_one(name, judge, item)
        errors = [f"{name}: {r['error']}" for name, r in row["judges"].items() if r.get("error")]
        if errors and len(errors) == len(row["judges"]):
            raise _SampleFailure("every judge failed: " + "; ".join(errors))
    except _SampleFailure as failure:
        row["status"] = "failed"
        row["error"] = str(failure)
    row["seconds"] = round(time.perf_counter() - started, 4)
    return row


def _judge_one(name: str, judge: Judge, item: JudgeInput) -> dict:
    started = time.perf_counter()
    try:
        result = judge.score(item)
        if not isinstance(result, JudgeResult):
            raise TypeError(f"score() returned {type(result).__name__}, not a JudgeResult")
        if result.error:
            result.error = " | ".join(result.error.splitlines())
    except Exception as exc:  # per-judge: the other judges' verdicts on this sample stand
        result = JudgeResult(judge=name, error=_one_line(exc))
    out = json_safe(result.to_dict())
    out["seconds"] = round(time.perf_counter() - started, 4)
    return out


def run_identity(prov: dict) -> dict:
    """The run.json fields that define "the same run" (:data:`IDENTITY_KEYS`), JSON-normalised.

    A judge's or an editor's ``info()["runtime"]`` (concurrency, timeouts, retries, device, threads: how it
    runs, not what it computes) is left out, so a run may be resumed or merged with other such settings."""
    ident = {k: prov.get(k) for k in IDENTITY_KEYS if k != "bench_sha256"}
    if isinstance(ident.get("editor"), dict):
        ident["editor"] = {k: v for k, v in ident["editor"].items() if k != "runtime"}
    if isinstance(ident.get("judges"), dict):
        ident["judges"] = {name: ({k: v for k, v in info.items() if k != "runtime"} if isinstance(info, dict) else info)
                           for name, info in ident["judges"].items()}
    ident["bench_sha256"] = (prov.get("bench") or {}).get("sha256")
    return _normalise(ident)


def _check_resume(out_dir: Path, provenance: dict) -> dict:
    """The existing run.json, after checking it was made with the same settings."""
    existing = read_json(out_dir / RUN_FILE, "run provenance (run.json)")
    old, new = run_identity(existing), run_identity(provenance)
    diffs = [k for k in IDENTITY_KEYS if old.get(k) != new.get(k)]
    if diffs:
        details = "; ".join(f"{k}: run.json has {json.dumps(old.get(k), sort_keys=True)[:160]}, "
                            f"now {json.dumps(new.get(k), sort_keys=True)[:160]}" for k in diffs)
        raise ConfigError(f"{out_dir}: cannot resume, the settings differ from {RUN_FILE} ({details}); "
                          "resume with the same settings or use a fresh --out")
    return existing


def _open_run(out_dir: Path, provenance: dict, *, resume: bool, cli_args: dict | None) -> dict:
    """Check ``out_dir`` against the request and write ``run.json``; returns the run's provenance.

    Fresh run: refuses an OUT whose results.jsonl already holds rows. Resume: keeps the first run.json
    (after :func:`_check_resume`) and appends this invocation to its ``resumed`` list.
    """
    results_path = out_dir / RESULTS_FILE
    run_json = out_dir / RUN_FILE
    if resume:
        if results_path.exists() and not run_json.exists():
            raise ConfigError(f"{out_dir}: {RESULTS_FILE} exists but {RUN_FILE} does not; cannot check the "
                              "settings, use a fresh --out")
        if run_json.exists():
            existing = _check_resume(out_dir, provenance)
            existing.setdefault("resumed", []).append({
                "at": provenance["created"], "git_commit": provenance["git_commit"],
                "version": provenance["version"], "cli_args": cli_args})
            provenance = existing
    else:
        found = read_results(results_path)
        if found.rows or found.torn:
            raise ConfigError(f"{results_path} already holds {len(found.rows)} result row(s): pass --resume to "
                              "continue that run, or choose a fresh --out")
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_json, provenance)
    return provenance


SECRET_KEY = re.compile(r"(api_?key|token|secret|password)$", re.IGNORECASE)


def redact_secrets(options: dict) -> dict:
    """``options`` with the values of secret-looking keys (api_key, token, ...) replaced, for run.json."""
    return {k: redact_secrets(v) if isinstance(v, dict) else "<redacted>" if SECRET_KEY.search(str(k)) else v
            for k, v in options.items()}


def run_bench(
    bench: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    editor: str | Editor | None = None,
    editor_options: dict | None = None,
    predictions: str | os.PathLike | None = None,
    judges: Sequence[str | Judge] = ("gt",),
    judge_options: dict | None = None,
    resume: bool = False,
    shard: tuple[int, int] | str | None = None,
    limit: int | None = None,
    seed: int = 0,
    frames_k: int = 8,
    workers: int = 1,
    length_policy: str = "fail",
    leaderboard: str | os.PathLike | None = None,
    report: bool = True,
    progress: bool = True,
    cli_args: dict | None = None,
    shard_timeout: float = 24 * 3600.0,
) -> RunResult:
    """Run ``editor`` (or score ``predictions/<id>.mp4``) over ``bench`` with ``judges`` into ``out_dir``.

    ``bench`` is a manifest path or ``rve-sim-mini[:SEED]``. ``shard=(i, n)`` or ``"i/n"`` runs every
    sample whose index % n == i (after ``limit``); ``shard="auto"`` takes ``i/n`` from the launcher's rank
    variables, runs into ``OUT/shards/rank<i>`` and, on rank 0, waits (``shard_timeout`` seconds at most)
    and merges every shard into OUT (see the module docstring); rank 0 returns the merged run. ``workers`` > 1
    judges samples in threads (the editor call itself is serialised). ``leaderboard`` is a CSV to append to (default ``OUT/leaderboard.csv``).
    Bad settings raise :class:`ConfigError` (or the loader's :class:`ManifestError`) before anything is
    written; a bad *sample* never raises, it becomes a failed row.
    """
    if (editor is None) == (predictions is None):
        raise ConfigError("give exactly one of an editor (--editor NAME) or a predictions folder (--predictions DIR)")
    if length_policy not in LENGTH_POLICIES:
        raise ConfigError(f"length policy {length_policy!r}: expected one of {list(LENGTH_POLICIES)}")
    if frames_k < 1:
        raise ConfigError(f"frames_k {frames_k}: must be at least 1")
    if workers < 1:
        raise ConfigError(f"workers {workers}: must be at least 1")
    if isinstance(shard, str) and shard.strip() == "auto":
        options = dict(bench=bench, editor=editor, editor_options=editor_options, predictions=predictions,
                       judges=judges, judge_options=judge_options, resume=resume, limit=limit, seed=seed,
                       frames_k=frames_k, workers=workers, length_policy=length_policy, leaderboard=leaderboard,
                       report=report, progress=progress, cli_args=cli_args)
        return _run_launched(Path(out_dir), options, shard_timeout)
    shard = parse_shard(shard)
    out_dir = Path(out_dir)
    manifest, bench_info = resolve_bench(bench, progress=progress)
    samples = select_samples(manifest, shard=shard, limit=limit)

    predictions_dir = None
    if predictions is not None:
        predictions_dir = Path(predictions).resolve()
        if not predictions_dir.is_dir():
            raise ConfigError(f"--predictions {predictions}: not a folder (expected <id>.mp4 files in it)")
        editor_obj, editor_label = None, f"predictions:{predictions_dir.name}"
        editor_info = {"editor": "predictions", "predictions_dir": str(predictions_dir)}
    else:
        editor_obj = editor if isinstance(editor, Editor) else create_editor(str(editor), **(editor_options or {}))
        editor_label = editor_obj.name
        editor_info = editor_obj.info()
    judge_objs = make_judges(judges, judge_options, frames_k, cache=out_dir / "judge_cache.sqlite")
    with contextlib.ExitStack() as stack:
        stack.callback(lambda: [judge.close() for judge in judge_objs.values()])
        provenance = {
            **base_provenance(),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "bench": bench_info,
            "editor": editor_info, "editor_label": editor_label,
            "judges": {name: j.info() for name, j in judge_objs.items()}, "judge_names": list(judge_objs),
            "judge_options": redact_secrets(judge_options or {}), "seed": seed, "frames_k": frames_k,
            "length_policy": length_policy, "limit": limit, "shard": list(shard) if shard else None,
            "n_planned": len(samples), "workers": workers, "cli_args": cli_args, "resumed": [],
        }
        stack.enter_context(exclusive_run(out_dir))
        provenance = _open_run(out_dir, _normalise(provenance), resume=resume, cli_args=cli_args)
        results_path = out_dir / RESULTS_FILE
        done_rows = repair_torn_tail(results_path).rows
        done = {r["id"] for r in done_rows}
        pending = [s for s in samples if s.id not in done]
        if predictions_dir is None:
            (out_dir / VIDEOS_DIR).mkdir(exist_ok=True)
            for stale in (out_dir / VIDEOS_DIR).glob(".*.tmp.mp4"):  # left by a kill inside write_video
                stale.unlink(missing_ok=True)
        plan = _Plan(out_dir, manifest, editor_obj, editor_label, predictions_dir, judge_objs, seed,
                     length_policy, threading.Lock())
        n_run = _run_pending(plan, pending, done_rows, results_path, workers=workers, progress=progress,
                             total=len(samples))
        summary = summarize_run(out_dir)
        append_leaderboard(leaderboard or out_dir / LEADERBOARD_FILE, leaderboard_rows(summary, out_dir))
        report_path = write_report_if_available(out_dir) if report else None
    return RunResult(out_dir=out_dir, summary=summary, n_planned=len(samples), n_run=n_run,
                     n_skipped=len(samples) - len(pending), n_failed=summary["n_rows_failed"], report=report_path)


def _shard_identity(run_dir: Path) -> dict:
    """The run.json identity of a shard folder without its shard: what every shard of one run shares."""
    ident = run_identity(read_json(run_dir / RUN_FILE, "run provenance (run.json)"))
    ident.pop("shard", None)
    return ident


def _check_merge_target(out_dir: Path, resume: bool) -> bool:
    """Whether OUT already holds a merge of its own ``shards/`` (which a resumed run merges anew).

    Refuses an OUT with results of any other run, and any results without ``resume``."""
    found = read_results(out_dir / RESULTS_FILE)
    if not (found.rows or found.torn):
        return False
    if not resume:
        raise ConfigError(f"{out_dir / RESULTS_FILE} already holds {len(found.rows)} result row(s): pass --resume to "
                          "continue that run, or choose a fresh --out")
    prov = read_json(out_dir / RUN_FILE, "run provenance (run.json)") if (out_dir / RUN_FILE).is_file() else {}
    shards = (out_dir / SHARDS_DIR).resolve()
    sources = [Path(m.get("out_dir", "")).resolve().parent for m in prov.get("merged_from") or []]
    if not sources or any(src != shards for src in sources):
        raise ConfigError(f"{out_dir}: holds results that are not a merge of its {SHARDS_DIR}/ folders; "
                          "--shard auto needs a fresh --out (or the OUT of an earlier --shard auto run)")
    return True


def _run_launched(out_dir: Path, options: dict, timeout: float) -> RunResult:
    """``--shard auto``: this rank's shard into ``OUT/shards/rank<i>``; rank 0 then waits and merges."""
    from .merge import merge_runs

    i, n = launcher_shard()
    if n == 1:
        return run_bench(out_dir=out_dir, shard=None, **options)
    _check_merge_target(out_dir, options["resume"])
    shards = [out_dir / SHARDS_DIR / f"rank{r}" for r in range(n)]
    own = shards[i]
    (own / SHARD_DONE).unlink(missing_ok=True)
    result = run_bench(out_dir=own, shard=(i, n), **{**options, "leaderboard": None, "report": False,
                                                     "progress": options["progress"] and i == 0})
    identity = _shard_identity(own)
    write_json(own / SHARD_DONE, {"shard": [i, n], "n_rows": result.summary.get("n_rows"), "identity": identity,
                                  "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    if i != 0:
        return result
    deadline = time.monotonic() + timeout
    waiting = list(shards[1:])
    while waiting:
        waiting = [d for d in waiting if not _shard_done(d, identity)]
        if waiting and time.monotonic() > deadline:
            raise ConfigError(f"--shard auto: rank 0 waited {timeout:g} s for {', '.join(str(d) for d in waiting)} "
                              f"to finish (no {SHARD_DONE}); merge them later with `revise bench merge`")
        if waiting:
            time.sleep(0.2)
    if _check_merge_target(out_dir, options["resume"]):
        (out_dir / RESULTS_FILE).unlink()  # the previous merge: derived from the shards, made again below
    return merge_runs(shards, out_dir, leaderboard=options["leaderboard"], report=options["report"],
                      cli_args=options["cli_args"])


def _shard_done(run_dir: Path, identity: dict) -> bool:
    """A shard folder's completion marker is there and was left by a shard of this very run."""
    try:
        marker = json.loads((run_dir / SHARD_DONE).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and marker.get("identity") == identity


@contextlib.contextmanager
def exclusive_run(out_dir: Path):
    """Hold an exclusive lock on ``OUT/.lock`` (released by the OS even on kill -9): two processes
    appending to one results.jsonl would interleave their rows."""
    import fcntl

    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / LOCK_FILE, "w") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"{out_dir}: another revise bench process is writing to this folder") from None
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class _RunningMean:
    """The progress bar's running Overall (failed = 1) of the first judge that gives rubric scores."""

    def __init__(self, judge_names: list[str], rows: list[dict]):
        self.sums = {name: [0.0, 0, False] for name in judge_names}  # sum, count, any scored
        self.failed = 0
        for row in rows:
            self.add(row)

    def add(self, row: dict) -> None:
        self.failed += row.get("status") != "ok"
        for name, acc in self.sums.items():
            outcome = judge_outcome(row, name)
            if outcome.state != "na":
                acc[0] += outcome.overall
                acc[1] += 1
                acc[2] = acc[2] or outcome.state == "scored"

    def describe(self, label: str) -> str:
        for name, (total, count, scored) in self.sums.items():
            if scored:
                return f"{label}  Overall {total / count:.2f} ({name})  failed {self.failed}"
        return f"{label}  failed {self.failed}"


def _finished_rows(plan: _Plan, pending: list[Sample], workers: int):
    """Rows as samples finish: in order with one worker, in completion order with a thread pool."""
    if workers == 1:
        for sample in pending:
            yield _evaluate(plan, sample)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_evaluate, plan, s) for s in pending]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:  # interrupted: do not start the samples still queued
            for future in futures:
                future.cancel()


def _run_pending(plan: _Plan, pending: list[Sample], done_rows: list[dict], results_path: Path, *,
                 workers: int, progress: bool, total: int) -> int:
    """Evaluate ``pending`` and append each row as it finishes; returns how many were run."""
    mean = _RunningMean(list(plan.judges), done_rows)
    n_run = 0
    with ResultsWriter(results_path) as writer, _progress_bar(progress) as bar:
        task = bar.add_task(mean.describe(plan.editor_label), total=total, completed=len(done_rows))
        for row in _finished_rows(plan, pending, workers):
            writer.append(row)
            n_run += 1
            mean.add(row)
            bar.update(task, advance=1, description=mean.describe(plan.editor_label))
    return n_run


def _progress_bar(enabled: bool):
    """A rich progress bar on stderr (disabled: one that draws nothing)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=Console(stderr=True), disable=not enabled)


def write_report_if_available(out_dir: Path) -> Path | None:
    """Call ``revise.bench.report.write_report(out_dir)``; a failing report is a warning (the results
    are already safe on disk), not a failed run."""
    from . import report

    try:
        return report.write_report(out_dir)
    except Exception as exc:  # the report is derived and optional; never lose a run to it
        import sys

        print(f"warning: report not written: {_one_line(exc)}", file=sys.stderr)
        return None
