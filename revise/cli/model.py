"""``revise train`` / ``revise edit``: train the unified model and edit videos with it."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

train_app = typer.Typer(
    help=("Train the unified model (internal VLM + flow-matching generator) on RVE-Sim. One CPU process by "
          "default; `accelerate launch -m revise.cli.main train ...` spreads it over several."),
    no_args_is_help=True,
)



def _json_option(text: Optional[str], what: str) -> dict:
    from ..jsonfile import parse_json_object

    return parse_json_object(text, what) if text else {}


def _echo_finished(result, noun: str = "loss") -> None:
    """The line every trainer ends with: its steps, seconds, last losses and output folder."""
    typer.echo(f"finished: {result.steps} steps in {result.seconds:.0f} s; last {noun} "
               f"{ {k: round(v, 4) for k, v in result.last_loss.items()} } -> {result.out_dir}")


def _or(value, default):
    return default if value is None else value


def _refuse_options(where: str, given: dict) -> None:
    """A one-line error naming the options of ``given`` (``{flag: (value, default)}``) that were set away from
    their defaults although they do not apply ``where``."""
    from ..errors import ConfigError

    changed = [flag for flag, (value, default) in given.items() if value != default]
    if changed:
        raise ConfigError(f"{', '.join(changed)}: not used {where}")


def _run_scaled(config: Path, data: Path, out: Path, init: Optional[str], resume: bool, threads: int, **settings):
    from ..train.scaled import ScaledTrainConfig, train_scaled

    result = train_scaled(config, data, out, ScaledTrainConfig(**settings), init=init, resume=resume,
                          threads=threads)
    _echo_finished(result)


@train_app.command("sft")
def sft(
    data: Path = typer.Option(..., "--data", help="RVE-Sim train folder (manifest.jsonl); generated there first if "
                              "the folder is missing or empty."),
    out: Path = typer.Option(..., "--out", help="Checkpoint folder to write (vlm/, generator/, revise.json, "
                             "state/, metrics.csv, tensorboard/)."),
    max_minutes: Optional[float] = typer.Option(None, "--max-minutes", help="Wall-clock budget: each stage's step "
                                                "count is fitted to it (and revised if the machine slows down); "
                                                "the run always ends with a checkpoint."),
    seed: int = typer.Option(0, "--seed", help="Seed of the data generation, initialisation and batch order."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in OUT from its last checkpoint "
                                "(the same settings are required; the losses match an uninterrupted run)."),
    per_dimension: int = typer.Option(150, "--per-dimension", help="Train samples per dimension when generating."),
    stages: str = typer.Option("vlm,generator", "--stages", help="Which stages to run, in order."),
    bf16: str = typer.Option("", "--bf16", help="Stages whose forward passes run under bf16 autocast, e.g. "
                             "'generator' (fp32 weights, moments and checkpoints). Faster or slower depending on the "
                             "CPU (measured from 1.16x faster to 0.66x on the same machine type): time it with "
                             "benchmarks/bench_generator_step.py first, docs/training.md."),
    vlm_steps: int = typer.Option(3000, "--vlm-steps", help="VLM steps (an upper bound with --max-minutes)."),
    gen_steps: Optional[int] = typer.Option(None, "--gen-steps", help="Generator steps (an upper bound with "
                                            "--max-minutes). Default 1500; 1000 with --config."),
    vlm_batch_size: int = typer.Option(32, "--vlm-batch-size"),
    gen_batch_size: Optional[int] = typer.Option(None, "--gen-batch-size", help="Generator clips per step and "
                                                 "process. Default 8; 1 with --config."),
    vlm_lr: float = typer.Option(1e-3, "--vlm-lr", help="Peak learning rate of the VLM (AdamW, cosine decay)."),
    gen_lr: Optional[float] = typer.Option(None, "--gen-lr", help="Peak learning rate of the generator. Default "
                                           "5e-4; 1e-4 with --config."),
    vlm_warmup: int = typer.Option(100, "--vlm-warmup", help="Linear warm-up steps of the VLM."),
    gen_warmup: Optional[int] = typer.Option(None, "--gen-warmup", help="Linear warm-up steps of the generator. "
                                             "Default 100; 50 with --config."),
    loss_space: Optional[str] = typer.Option(None, "--loss-space", help="x0 (every noise level alike) or velocity "
                                             "(the paper's L_FM); see docs/model-generator.md. Default x0; velocity "
                                             "(Wan's own) with --config."),
    change_weight: float = typer.Option(0.0, "--change-weight", help="Extra loss weight on pixels the edit changes."),
    dimension_weights: Optional[str] = typer.Option(None, "--dimension-weights", help="JSON: how often the "
                                                    "generator stage draws each 'subset/dimension' relative to the "
                                                    "rest (1), e.g. '{\"rave/commonsense\": 2}'."),
    vlm_share: float = typer.Option(0.4, "--vlm-share", help="Share of --max-minutes given to the VLM stage."),
    ema: float = typer.Option(0.0, "--ema", help="Decay of an exponential moving average of the generator's weights "
                              "(e.g. 0.999; 0 = off). The average becomes generator/, the last raw weights "
                              "generator-raw/."),
    vlm_facts: bool = typer.Option(False, "--vlm-facts", help="Also teach the VLM what the simulator knows is in "
                                   "each clip: 'Which objects are in this video?' answered with the source's "
                                   "colours and objects (docs/training.md)."),
    init_vlm: str = typer.Option("", "--init-vlm", help="With --stages generator: train a generator conditioned on "
                                 "this VLM (a shipped name such as revise-tiny, a checkpoint or a VLM folder), copied "
                                 "into OUT/vlm."),
    gen_vae: str = typer.Option("", "--gen-vae", help="A VAE folder from `revise train vae` (RUN/vae): the generator "
                                "works in its latent space (the VAE frozen, saved inside the generator; set "
                                "patch_size/source_patch_size for the latent grid in --generator-config)."),
    vlm_config: Optional[str] = typer.Option(None, "--vlm-config", help="JSON overrides of the VLM config."),
    generator_config: Optional[str] = typer.Option(None, "--generator-config", help="JSON overrides of the "
                                                   "generator config."),
    checkpoint_every: int = typer.Option(250, "--checkpoint-every", help="Steps between training-state saves."),
    log_every: int = typer.Option(50, "--log-every", help="Steps between metrics rows."),
    threads: int = typer.Option(1, "--threads", help="torch CPU threads (1 is fastest on a shared 2-core machine)."),
    config: Optional[Path] = typer.Option(None, "--config", help="Train the unified model over PRETRAINED parts "
                                          "(Wan transformer + VAE, Qwen-VL) named in this JSON/YAML file instead "
                                          "of the tiny one: flow matching of the generator side, the VLM frozen; "
                                          "see docs/gpu.md. Uses --gen-* for the generator, --frames, --size, "
                                          "--grad-accum; the VLM-stage options do not apply."),
    frames: int = typer.Option(17, "--frames", help="With --config: frames per clip (1 + 4k, Wan's VAE)."),
    size: int = typer.Option(256, "--size", help="With --config: square frame size (a multiple of 16 for Wan)."),
    grad_accum: int = typer.Option(1, "--grad-accum", help="With --config: micro-batches per optimizer step."),
) -> None:
    """Supervised training: stage 1 the VLM (describe/reason/judge), stage 2 the generator conditioned on it.

    With --config, the unified model over pretrained parts instead (flow matching; the VLM is frozen)."""
    if config is not None:
        _refuse_options("with --config (pretrained parts)", {
            "--stages": (stages, "vlm,generator"), "--vlm-steps": (vlm_steps, 3000),
            "--vlm-batch-size": (vlm_batch_size, 32), "--vlm-lr": (vlm_lr, 1e-3), "--vlm-warmup": (vlm_warmup, 100),
            "--change-weight": (change_weight, 0.0), "--dimension-weights": (dimension_weights, None),
            "--vlm-share": (vlm_share, 0.4), "--bf16": (bf16, ""), "--ema": (ema, 0.0),
            "--init-vlm": (init_vlm, ""), "--vlm-facts": (vlm_facts, False), "--vlm-config": (vlm_config, None),
            "--generator-config": (generator_config, None), "--gen-vae": (gen_vae, "")})
        _run_scaled(config, data, out, None, resume, threads, recipe="sft", seed=seed, per_dimension=per_dimension,
                    steps=_or(gen_steps, 1000), batch_size=_or(gen_batch_size, 1), lr=_or(gen_lr, 1e-4),
                    warmup=_or(gen_warmup, 50), loss_space=_or(loss_space, "velocity"), frames=frames, size=size,
                    grad_accum=grad_accum, max_minutes=max_minutes, checkpoint_every=checkpoint_every,
                    log_every=log_every)
        return
    _refuse_options("without --config (they shape the pretrained model's clips)",
                    {"--frames": (frames, 17), "--size": (size, 256), "--grad-accum": (grad_accum, 1)})
    from ..train.sft import SFTConfig, train_sft

    config = SFTConfig(seed=seed, per_dimension=per_dimension, stages=tuple(s.strip() for s in stages.split(",")
                                                                          if s.strip()),
                       bf16_stages=tuple(s.strip() for s in bf16.split(",") if s.strip()),
                       vlm_steps=vlm_steps, vlm_batch_size=vlm_batch_size, vlm_lr=vlm_lr, vlm_warmup=vlm_warmup,
                       vlm_config=_json_option(vlm_config, "--vlm-config"), gen_steps=_or(gen_steps, 1500),
                       gen_batch_size=_or(gen_batch_size, 8), gen_lr=_or(gen_lr, 5e-4), gen_warmup=_or(gen_warmup, 100),
                       loss_space=_or(loss_space, "x0"),
                       change_weight=change_weight,
                       dimension_weights=_json_option(dimension_weights, "--dimension-weights"),
                       generator_config=_json_option(generator_config, "--generator-config"),
                       max_minutes=max_minutes, vlm_share=vlm_share, checkpoint_every=checkpoint_every,
                       log_every=log_every, ema_decay=ema, init_vlm=init_vlm, vlm_facts=vlm_facts,
                       gen_vae=gen_vae)
    result = train_sft(data, out, config, resume=resume, threads=threads)
    _echo_finished(result, "losses")


@train_app.command("srf")
def srf(
    init: Optional[str] = typer.Option(None, "--init", help="The SFT checkpoint to start from (a folder, or "
                                       "revise-tiny). With --config: a `train sft --config` run folder, or none "
                                       "to start from the pretrained parts."),
    data: Path = typer.Option(..., "--data", help="RVE-Sim train folder (generated there first if missing/empty)."),
    out: Path = typer.Option(..., "--out", help="The new checkpoint folder."),
    lam: float = typer.Option(0.1, "--lambda", help="Weight of the critic's -log p(Yes); 0 = FM-only fine-tuning."),
    reward_t_range: str = typer.Option("0.0,0.6", "--reward-t-range", help="Flow times t whose clean estimate "
                                       "the critic judges (lo,hi)."),
    reward_every: int = typer.Option(1, "--reward-every", help="Apply the reward every K steps."),
    reward_sampler_steps: int = typer.Option(0, "--reward-sampler-steps", help="0: the reward judges the one-step "
                                             "clean estimate at the training time t (the paper's). N: it judges an "
                                             "N-step sample from fresh noise instead (DRaFT-K; one process)."),
    reward_grad_last: int = typer.Option(1, "--reward-grad-last", help="With --reward-sampler-steps: the last K "
                                         "sampler steps keep their graph (DRaFT-K's K; 1 = DRaFT-1)."),
    reward_guidance: Optional[float] = typer.Option(None, "--reward-guidance", help="With --reward-sampler-steps: "
                                                    "the sampler's CFG scale (default: the checkpoint's)."),
    reward_clip: float = typer.Option(0.0, "--reward-clip", help="Clip the critic's log-odds at C before the loss "
                                      "(a hinge: no push past C); 0 = off."),
    unfreeze_critic_head: bool = typer.Option(False, "--unfreeze-critic-head", help="Train the critic's Yes/No "
                                              "head too (anchored on true targets and sources)."),
    grad_checkpointing: bool = typer.Option(False, "--grad-checkpointing", help="Recompute activations in the "
                                            "backward pass (generator and critic) to save memory."),
    steps: int = typer.Option(300, "--steps", help="Fine-tuning steps (an upper bound with --max-minutes)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Clips per step and process. Default 8; "
                                             "1 with --config."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Peak learning rate of the generator. Default 2e-4; "
                                       "1e-4 with --config."),
    warmup: int = typer.Option(20, "--warmup", help="Linear warm-up steps."),
    loss_space: Optional[str] = typer.Option(None, "--loss-space", help="x0 or velocity (L_FM), as for sft. "
                                             "Default x0; velocity with --config."),
    max_minutes: Optional[float] = typer.Option(None, "--max-minutes", help="Wall-clock budget; the step count "
                                                "is fitted to it and the run always ends with a checkpoint."),
    seed: int = typer.Option(0, "--seed", help="Seed of the batch order and noise."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in OUT from its last checkpoint."),
    per_dimension: int = typer.Option(150, "--per-dimension", help="Train samples per dimension when generating."),
    checkpoint_every: int = typer.Option(100, "--checkpoint-every"),
    log_every: int = typer.Option(25, "--log-every"),
    threads: int = typer.Option(1, "--threads", help="torch CPU threads."),
    config: Optional[Path] = typer.Option(None, "--config", help="Self-reflective training of the unified model "
                                          "over PRETRAINED parts (Wan + Qwen-VL, the Qwen-VL model also the critic) "
                                          "named in this JSON/YAML file; see docs/gpu.md."),
    frames: int = typer.Option(17, "--frames", help="With --config: frames per clip (1 + 4k, Wan's VAE)."),
    size: int = typer.Option(256, "--size", help="With --config: square frame size (a multiple of 16 for Wan)."),
    grad_accum: int = typer.Option(1, "--grad-accum", help="With --config: micro-batches per optimizer step."),
    critic_refresh_every: int = typer.Option(0, "--critic-refresh-every", help="A critic that keeps learning: "
                                             "every N steps the generator edits --refresh-edits train clips, "
                                             "--labels labels them, and the critic's Yes/No head learns from them "
                                             "(mixed with true targets and sources); 0 = off."),
    refresh_edits: int = typer.Option(16, "--refresh-edits", help="Train clips edited per critic refresh."),
    refresh_steps: int = typer.Option(10, "--refresh-steps", help="Head steps per critic refresh."),
    refresh_buffer: int = typer.Option(256, "--refresh-buffer", help="Labelled edits kept (first in, first out)."),
    labels: str = typer.Option("gt", "--labels", help="The reference judge that labels the refresh edits (any "
                               "registered judge: gt on RVE-Sim, openai for a VLM server)."),
    monitor_every: int = typer.Option(0, "--monitor-every", help="Reward-hacking monitor: every N steps (and "
                                      "before the first and after the last) edit a fixed val set and score it by "
                                      "the critic and the exact gt judge into OUT/metrics.jsonl; 0 = off."),
    monitor_data: str = typer.Option("", "--monitor-data", help="The monitor's RVE-Sim val manifest (default: "
                                     "a val split generated into OUT/monitor-val, seed 0)."),
    monitor_samples: int = typer.Option(16, "--monitor-samples", help="How many of its samples the monitor edits."),
) -> None:
    """Self-reflective fine-tuning: L_FM + lambda * -log p_critic(Yes | x0_hat), the critic being the model's VLM."""
    from ..train.srf import SRFConfig, parse_range, train_srf

    if config is not None:
        _refuse_options("with --config (pretrained parts)",
                        {"--unfreeze-critic-head": (unfreeze_critic_head, False),
                         "--reward-sampler-steps": (reward_sampler_steps, 0),
                         "--reward-grad-last": (reward_grad_last, 1), "--reward-guidance": (reward_guidance, None),
                         "--reward-clip": (reward_clip, 0.0),
                         "--critic-refresh-every": (critic_refresh_every, 0),
                         "--refresh-edits": (refresh_edits, 16), "--refresh-steps": (refresh_steps, 10),
                         "--refresh-buffer": (refresh_buffer, 256), "--labels": (labels, "gt"),
                         "--monitor-every": (monitor_every, 0), "--monitor-data": (monitor_data, ""),
                         "--monitor-samples": (monitor_samples, 16)})
        _run_scaled(config, data, out, init, resume, threads, recipe="srf", seed=seed, per_dimension=per_dimension,
                    steps=steps, batch_size=_or(batch_size, 1), lr=_or(lr, 1e-4), warmup=warmup, lam=lam,
                    reward_t_range=parse_range(reward_t_range), reward_every=reward_every,
                    grad_checkpointing=grad_checkpointing, loss_space=_or(loss_space, "velocity"), frames=frames,
                    size=size, grad_accum=grad_accum, max_minutes=max_minutes, checkpoint_every=checkpoint_every,
                    log_every=log_every)
        return
    _refuse_options("without --config (they shape the pretrained model's clips)",
                    {"--frames": (frames, 17), "--size": (size, 256), "--grad-accum": (grad_accum, 1)})
    if init is None:
        from ..errors import ConfigError

        raise ConfigError("train srf: --init is required (an SFT checkpoint folder, or revise-tiny)")
    config = SRFConfig(seed=seed, per_dimension=per_dimension, steps=steps, batch_size=_or(batch_size, 8),
                       lr=_or(lr, 2e-4), warmup=warmup, lam=lam, reward_t_range=parse_range(reward_t_range),
                       reward_every=reward_every, unfreeze_critic_head=unfreeze_critic_head,
                       reward_sampler_steps=reward_sampler_steps, reward_grad_last=reward_grad_last,
                       reward_guidance=reward_guidance, reward_clip=reward_clip,
                       grad_checkpointing=grad_checkpointing, loss_space=_or(loss_space, "x0"),
                       max_minutes=max_minutes, checkpoint_every=checkpoint_every, log_every=log_every,
                       monitor_every=monitor_every, monitor_data=monitor_data, monitor_samples=monitor_samples,
                       critic_refresh_every=critic_refresh_every, refresh_edits=refresh_edits,
                       refresh_steps=refresh_steps, refresh_buffer=refresh_buffer, labels=labels)
    result = train_srf(init, data, out, config, resume=resume, threads=threads)
    _echo_finished(result)


@train_app.command("critic")
def critic(
    init: str = typer.Option(..., "--init", help="The checkpoint whose judge learns (a folder, or revise-tiny)."),
    data: Path = typer.Option(..., "--data", help="RVE-Sim train folder (generated there first if missing/empty)."),
    out: Path = typer.Option(..., "--out", help="The new checkpoint folder (same generator, refined judge)."),
    edits_per_dimension: int = typer.Option(15, "--edits-per-dimension", help="Train samples per dimension the "
                                            "generator edits; the gt judge labels each edit."),
    edit_steps: Optional[int] = typer.Option(None, "--edit-steps", help="Sampler steps of those edits "
                                             "(default: the checkpoint's)."),
    steps: int = typer.Option(250, "--steps", help="Training steps (an upper bound with --max-minutes)."),
    batch_size: int = typer.Option(32, "--batch-size", help="Judge rows per step: generator edits and SFT "
                                   "judge examples."),
    failure_share: float = typer.Option(0.5, "--failure-share", help="Share of each batch taken from the "
                                        "generator's edits."),
    lr: float = typer.Option(1e-3, "--lr", help="Peak learning rate of the judge-only vision parts."),
    head_lr: float = typer.Option(1e-3, "--head-lr", help="Peak learning rate of the Yes/No head."),
    warmup: int = typer.Option(20, "--warmup", help="Linear warm-up steps."),
    max_minutes: Optional[float] = typer.Option(None, "--max-minutes", help="Wall-clock budget; the step count "
                                                "is fitted to it and the run always ends with a checkpoint."),
    seed: int = typer.Option(0, "--seed", help="Seed of the edited subset, the edits' noise and the batches."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in OUT from its last checkpoint."),
    per_dimension: int = typer.Option(150, "--per-dimension", help="Train samples per dimension when generating."),
    checkpoint_every: int = typer.Option(50, "--checkpoint-every"),
    log_every: int = typer.Option(10, "--log-every"),
    threads: int = typer.Option(1, "--threads", help="torch CPU threads."),
) -> None:
    """The judge learns the generator's own failures: the model edits train clips, the exact gt judge labels
    them, and the VLM's judge-only parts and Yes/No head train on them (the generator and the VLM's
    reasoning are unchanged)."""
    from ..train.critic import CriticConfig, train_critic

    config = CriticConfig(seed=seed, per_dimension=per_dimension, edits_per_dimension=edits_per_dimension,
                          edit_steps=edit_steps, steps=steps, batch_size=batch_size, failure_share=failure_share,
                          lr=lr, head_lr=head_lr, warmup=warmup, max_minutes=max_minutes,
                          checkpoint_every=checkpoint_every, log_every=log_every)
    result = train_critic(init, data, out, config, resume=resume, threads=threads)
    _echo_finished(result)


@train_app.command("vae")
def vae(
    data: Path = typer.Option(..., "--data", help="RVE-Sim train folder (generated there first if missing/empty)."),
    out: Path = typer.Option(..., "--out", help="Run folder: OUT/vae/ (the VAE, diffusers format) and OUT/vae.json."),
    size: int = typer.Option(64, "--size", help="Frame size trained on (pixels)."),
    clip_frames: int = typer.Option(5, "--clip-frames", help="Frames per training window (1 + k x the VAE's "
                                    "temporal factor, 4 by default)."),
    vae_config: Optional[str] = typer.Option(None, "--vae-config", help="JSON object of AutoencoderKLWan options "
                                             "over the tiny defaults (base_dim 16, z_dim 8, dim_mult [1,2,4,4], "
                                             "num_res_blocks 1, temperal_downsample [false,true,true])."),
    steps: int = typer.Option(2000, "--steps", help="Training steps (an upper bound with --max-minutes)."),
    batch_size: int = typer.Option(4, "--batch-size", help="Clip windows per step."),
    lr: float = typer.Option(5e-4, "--lr", help="Peak learning rate (AdamW, linear warm-up, cosine decay)."),
    warmup: int = typer.Option(50, "--warmup", help="Linear warm-up steps."),
    kl_weight: float = typer.Option(1e-6, "--kl-weight", help="Weight of the KL term beside L1 + MSE."),
    bf16: bool = typer.Option(False, "--bf16", help="Forward passes under bf16 autocast (fp32 weights)."),
    max_minutes: Optional[float] = typer.Option(None, "--max-minutes", help="Wall-clock budget; the step count "
                                                "is fitted to it and the run always ends with a checkpoint."),
    seed: int = typer.Option(0, "--seed", help="Seed of the initial weights, the windows and the posterior draws."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in OUT from its last checkpoint."),
    per_dimension: int = typer.Option(150, "--per-dimension", help="Train samples per dimension when generating."),
    checkpoint_every: int = typer.Option(100, "--checkpoint-every"),
    log_every: int = typer.Option(10, "--log-every"),
    threads: int = typer.Option(1, "--threads", help="torch CPU threads."),
) -> None:
    """A tiny Wan VAE (diffusers AutoencoderKLWan, 8x in space, 4x in time) trained on RVE-Sim clips: the
    latent space a latent-space generator works in (docs/training.md, "A latent space")."""
    from ..train.vae import VAEConfig, train_vae

    options = _json_option(vae_config, "--vae-config")
    config = VAEConfig(seed=seed, per_dimension=per_dimension, size=size, clip_frames=clip_frames,
                       vae_config=options, steps=steps, batch_size=batch_size, lr=lr, warmup=warmup,
                       kl_weight=kl_weight, bf16_stages=("vae",) if bf16 else (), max_minutes=max_minutes,
                       checkpoint_every=checkpoint_every, log_every=log_every)
    result = train_vae(data, out, config, resume=resume, threads=threads)
    _echo_finished(result)


def edit(
    video: Path = typer.Option(..., "--video", help="The source clip (any video PyAV reads)."),
    instruction: str = typer.Option(..., "--instruction", help="What to change, e.g. 'What if the red ball had "
                                    "never been there?'"),
    out: Path = typer.Option(..., "-o", "--out", help="The edited mp4 (source's frame rate, length and size)."),
    model: str = typer.Option("revise-tiny", "--model", help="A checkpoint folder from `revise train sft`, or "
                              "revise-tiny (shipped)."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Sampler steps (default: the checkpoint's)."),
    guidance: Optional[float] = typer.Option(None, "--guidance", help="Classifier-free guidance scale (1 = off; "
                                             "default: the checkpoint's)."),
    seed: int = typer.Option(0, "--seed", help="Noise seed: the same seed gives the same video."),
    reflect: int = typer.Option(1, "--reflect", help="Inference-time self-reflection: make N candidates and keep "
                                "the one the model's own VLM judges best."),
    detail: Optional[float] = typer.Option(None, "--detail", help="Full-resolution detail transfer: where the "
                                           "edit (at the model's resolution) differs from the source, or its held "
                                           "first or last frame, by less than this (on 0-1), that frame's fine "
                                           "detail is restored. 0 = plain upsampling; default: the checkpoint's."),
    restore: Optional[float] = typer.Option(None, "--restore", help="Low-frequency restore: where the edit is "
                                            "within this (on 0-1) of the source, or its held first or last frame, "
                                            "the output is that frame itself (no patch seams over what the edit "
                                            "left alone), fading out at twice it. 0 = off; default: the "
                                            "checkpoint's (docs/seams.md)."),
    overwrite: bool = typer.Option(False, "--overwrite", "-y", help="Replace OUT if it exists (as ffmpeg -y does); "
                                   "without it an existing OUT is an error. OUT may never be the input."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="A progress bar on stderr while the "
                                  "frames are rendered and encoded."),
    threads: int = typer.Option(1, "--threads", help="torch CPU threads of the model part (1 is fastest for "
                                "revise-tiny; 0 = torch's default)."),
) -> None:
    """Edit one video with the unified model.

    The clip is streamed: any length and size in bounded memory (720p clips included); the output has the
    source's frame rate, length and size. A clip that looks outside RVE-Sim's world gets a one-line
    warning: revise-tiny only knows that world."""
    import sys
    import warnings

    from ..model.unified import DomainWarning, edit_file

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DomainWarning)
        path = edit_file(model, video, instruction, out, steps=steps, guidance=guidance, seed=seed, reflect=reflect,
                         detail=detail, overwrite=overwrite, progress=progress and sys.stderr.isatty(),
                         threads=threads or None, restore=restore)
    for warning in caught:
        if issubclass(warning.category, DomainWarning):
            print(f"warning: {video}: {warning.message}", file=sys.stderr)
        else:
            warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
    typer.echo(str(path))


def register_model_commands(app: typer.Typer) -> None:
    """Attach ``train`` and ``edit`` to the root app."""
    app.add_typer(train_app, name="train")
    app.command("edit")(edit)
