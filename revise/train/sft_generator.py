"""Stage 2 of ``revise train sft``: the flow-matching generator, conditioned on the *frozen* stage-1 VLM's
hidden states of the ``reason`` prompt (computed once per training sample), the source video and the
instruction's tokens (the VLM's tokenizer); ``L_x0`` or the paper's ``L_FM``
(:func:`revise.model.flow.flow_matching_loss`), an optional EMA of the weights, per-dimension draw weights.
The clips come from the frame bank at the generator's own size (memory-mapped when cached)."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from .engine import SHARDED, lr_scale


def sample_weights(samples, dimension_weights: dict):
    """Per-sample drawing weights for the generator's batches from ``{"subset/dimension": weight}`` (every other
    dimension 1), or None when there are none (plain uniform draws). A key no sample has is a ConfigError."""
    if not dimension_weights:
        return None
    import torch

    keys = [f"{s.subset}/{s.dimension}" for s in samples]
    unknown = sorted(set(dimension_weights) - set(keys))
    if unknown:
        raise ConfigError(f"sft config: dimension_weights names {unknown}, which the training data does not have "
                          f"(it has {sorted(set(keys))})")
    return torch.tensor([float(dimension_weights.get(k, 1.0)) for k in keys], dtype=torch.float64)


def check_generator_shape(shape) -> tuple[int, int, int]:
    """``shape`` ``(T, H, W)`` if the trainers can feed a generator of that size (square 16-frame clips, as
    the frame bank holds them), else a :class:`ConfigError`."""
    frames, height, width = (int(v) for v in shape)
    if frames != 16 or height != width:
        raise ConfigError(f"the trainers feed the generator square 16-frame clips; its config asks for "
                          f"{frames}x{height}x{width} (T x H x W)")
    return frames, height, width


def configured_generator_shape(options: dict) -> tuple[int, int, int]:
    """The ``(T, H, W)`` a ``generator_config`` asks for (the generator's defaults where it is silent)."""
    import inspect

    from ..model.generator import ReviseGenerator

    defaults = inspect.signature(ReviseGenerator.__init__).parameters
    frames = options.get("num_frames", defaults["num_frames"].default)
    size = options.get("sample_size", defaults["sample_size"].default)
    try:
        height, width = size
        return int(frames), int(height), int(width)
    except (TypeError, ValueError):
        raise ConfigError(f"generator config: sample_size must be [height, width] and num_frames an integer, "
                          f"got {size!r} and {frames!r}") from None


class GeneratorStage:
    """``train_generator`` and its helpers, mixed into the SFT trainer (a :class:`~revise.train.engine.StageTrainer`)."""

    def generator_bank(self, generator):
        """The frame bank at the generator's size: the generator trains on clips decoded straight to its
        resolution, while the VLM's features keep coming from the VLM's own-size frames, as at inference."""
        _, height, _ = check_generator_shape(generator.video_shape)
        return self.bank_at(height)

    def latent_bank(self, model, frames, what: str):
        """``(N, z, t, h, w)`` float32 latents of the bank's uint8 clips (:meth:`ReviseGenerator.to_model_space`),
        in batches of 16, with a progress bar."""
        import torch

        out = []
        with self.progress_bar() as bar, torch.no_grad():
            task = bar.add_task(f"encode {what} clips", total=len(frames), info="")
            for start in range(0, len(frames), 16):
                x = torch.from_numpy(np.array(frames[start:start + 16])).permute(0, 4, 1, 2, 3).float() / 127.5 - 1.0
                out.append(model.to_model_space(x).float())
                bar.update(task, advance=len(x))
        return torch.cat(out)

    def vlm_features(self, vlm) -> tuple:
        """The frozen VLM's ``reason`` hidden states for every training sample (left-padded) and masks."""
        import torch

        hidden, masks = [], []
        with torch.no_grad():
            for start in range(0, len(self.bank), 64):
                src = self.bank.source[start:start + 64]
                instructions = [s.instruction for s in self.bank.samples[start:start + 64]]
                h, m = vlm.encode(src, instructions)
                hidden.append(h)
                masks.append(m.bool())
        length = max(h.shape[1] for h in hidden)
        pad_h = [torch.cat([h.new_zeros(h.shape[0], length - h.shape[1], h.shape[2]), h], 1) for h in hidden]
        pad_m = [torch.cat([m.new_zeros(m.shape[0], length - m.shape[1]), m], 1) for m in masks]
        return torch.cat(pad_h), torch.cat(pad_m)

    def train_generator(self) -> bool:
        import torch

        from ..model.flow import flow_matching_loss
        from ..model.generator import ReviseGenerator
        from ..model.unified import encode_instruction
        from ..model.vlm import ReviseVLM

        cfg, acc = self.cfg, self.accelerator
        vlm_dir = self.out / "vlm"
        if not (vlm_dir / "config.json").is_file():
            raise ConfigError(f"{self.out}: the generator stage needs the VLM of stage 1 ({vlm_dir} is missing)")
        vlm = ReviseVLM.from_pretrained(vlm_dir)
        tok = vlm.tokenizer
        options = {"vocab_size": tok.vocab_size, "pad_token_id": tok.pad_id, "vlm_dim": vlm.config.hidden_size,
                   **cfg.generator_config}
        vae = None
        if cfg.gen_vae:
            from ..model.latent import load_vae, vae_options

            vae = load_vae(cfg.gen_vae)
            options["latent_vae"] = vae_options(vae)
        torch.manual_seed(cfg.seed)
        model = ReviseGenerator(**options)
        if vae is not None:
            model.vae.load_state_dict(vae.state_dict())
        bank = self.generator_bank(model)
        hidden, masks = self.vlm_features(vlm)
        del vlm
        max_len = int(model.config.max_text_len)
        ids = torch.stack([model.pad_ids(encode_instruction(tok, s.instruction, max_len))[0]
                           for s in self.bank.samples])
        source, target = bank.source, bank.target  # uint8 (N, T, H, W, 3), memory-mapped when cached
        if vae is not None:  # latent space: every clip encoded once (the VAE is frozen), kept in memory
            source, target = self.latent_bank(model, source, "source"), self.latent_bank(model, target, "target")
        optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.gen_lr, weight_decay=0.01, betas=(0.9, 0.99))
        gen = torch.Generator().manual_seed(cfg.seed * 7919 + 17 + acc.process_index)
        ema = None
        if cfg.ema_decay > 0:
            if self.strategy in SHARDED:
                raise ConfigError(f"sft config: ema_decay needs whole weights on every rank; {self.strategy} shards "
                                  "them (use DDP or one process)")
            import copy

            ema = copy.deepcopy(model).requires_grad_(False)
        states = {"generator": model} if ema is None else {"generator": model, "ema": ema}
        step = self.restore("generator", states, optimizer, {"data": gen})
        wrapped, optimizer = self.prepare(model, optimizer)
        core = acc.unwrap_model(wrapped)
        wrapped.train()
        if ema is not None:
            ema.to(acc.device)
            pairs = list(zip(ema.parameters(), core.parameters()))

        def update_ema(i: int) -> None:
            # the usual warm-up, so that the early average does not hold the random start: min(d, (1+i)/(10+i))
            decay = min(cfg.ema_decay, (1.0 + i) / (10.0 + i))
            with torch.no_grad():
                for e, p in pairs:
                    e.lerp_(p.detach(), 1.0 - decay)

        dev = acc.device  # the bank stays on the CPU; each batch goes to the model's device

        def unit(frames, idx):  # the batch's clips, read from the bank -> (B, 3, T, H, W) in [-1, 1]
            if isinstance(frames, torch.Tensor):  # latents (B, z, t, h, w)
                return frames[idx].to(dev)
            x = torch.from_numpy(np.ascontiguousarray(frames[idx.numpy()])).permute(0, 4, 1, 2, 3)
            return x.to(dev).float() / 127.5 - 1.0

        def step_fn(i: int, total: int):
            lr = cfg.gen_lr * lr_scale(i, total, cfg.gen_warmup)
            for group in optimizer.param_groups:
                group["lr"] = lr
            if self.draw_weights is None:
                idx = torch.randint(0, len(source), (cfg.gen_batch_size,), generator=gen)
            else:
                idx = torch.multinomial(self.draw_weights, cfg.gen_batch_size, replacement=True, generator=gen)
            batch = {"source": unit(source, idx), "target": unit(target, idx), "text_ids": ids[idx].to(dev),
                     "vlm_hidden": hidden[idx].to(dev), "vlm_mask": masks[idx].to(dev)}
            with self.autocast("generator"):
                loss, _ = flow_matching_loss(wrapped, batch, gen, change_weight=cfg.change_weight,
                                             loss_space=cfg.loss_space)
            optimizer.zero_grad(set_to_none=True)
            acc.backward(loss)
            acc.clip_grad_norm_(wrapped.parameters(), 1.0)
            optimizer.step()
            if ema is not None:
                update_ema(i)
            return float(loss.item()), lr, {}

        def modules() -> dict:
            return {"generator": core} if ema is None else {"generator": core, "ema": ema}

        def save(i: int):
            self.checkpoint("generator", modules(), optimizer, {"data": gen}, i)

        done = self.loop("generator", cfg.gen_steps, step, step_fn, save)
        core.eval()
        plain = self.full_module(core)  # every rank: FSDP / DeepSpeed gather the full weights
        if acc.is_main_process:
            if ema is None:
                plain.eval().save_pretrained(self.out / "generator", safe_serialization=True)
            else:  # the average is the model; the last raw weights stay beside it, for comparison
                ema.eval().save_pretrained(self.out / "generator", safe_serialization=True)
                plain.eval().save_pretrained(self.out / "generator-raw", safe_serialization=True)
        if done:
            self.meta["done"].append("generator")
            self.checkpoint("generator", modules(), optimizer, {"data": gen},
                            int(self.meta["stage_steps"]["generator"]))
        return done
