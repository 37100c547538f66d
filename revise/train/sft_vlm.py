"""Stage 1 of ``revise train sft``: the internal VLM from scratch on describe / reason / judge
(teacher-forced cross-entropy on the answer tokens, as :mod:`revise.train.vlm`), on frames at its own size."""

from __future__ import annotations

import numpy as np

from .engine import lr_scale


class VLMStage:
    """``train_vlm``, mixed into the SFT trainer (a :class:`~revise.train.engine.StageTrainer`)."""

    def train_vlm(self) -> bool:
        import torch

        from ..model.tokenizer import TextTokenizer
        from ..model.vlm import ReviseVLM
        from ..model.vlm_data import TaskBuilder, collate, corpus

        cfg, acc = self.cfg, self.accelerator
        tokenizer = TextTokenizer.build(corpus(self.bank.samples, facts=cfg.vlm_facts))
        torch.manual_seed(cfg.seed)
        model = ReviseVLM.create(tokenizer, **cfg.vlm_config)
        k = model.config.frames
        bank = self.bank_at(model.config.image_size)  # the VLM trains on frames at its own size
        builder = TaskBuilder(bank, k, seed=cfg.seed + 1000 * acc.process_index, facts=cfg.vlm_facts)
        decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "embed" not in n]
        no_decay = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "embed" not in n)]
        optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                                       {"params": no_decay, "weight_decay": 0.0}], lr=cfg.vlm_lr, betas=(0.9, 0.98))
        step = self.restore("vlm", {"vlm": model}, optimizer, {})
        wrapped, optimizer = self.prepare(model, optimizer, unused_parameters=True)
        core = acc.unwrap_model(wrapped)
        wrapped.train()

        def batches():
            epoch, queue = 0, []
            while True:
                while len(queue) < cfg.vlm_batch_size:
                    queue += builder.epoch(epoch, judge_pairs=cfg.judge_pairs)
                    epoch += 1
                yield queue[:cfg.vlm_batch_size]
                queue = queue[cfg.vlm_batch_size:]

        stream = batches()
        for _ in range(step):  # replay the data order up to the resumed step (cheap: no frames are touched)
            next(stream)

        def step_fn(i: int, total: int):
            batch = next(stream)
            tasks, instructions, answers, video1, video2 = collate(bank, batch, k)
            inputs = core.build_inputs(tasks, instructions, answers)
            lr = cfg.vlm_lr * lr_scale(i, total, cfg.vlm_warmup)
            for group in optimizer.param_groups:
                group["lr"] = lr
            with self.autocast("vlm"):
                loss, _, _, first_ok = wrapped(inputs, video1, video2)
            optimizer.zero_grad(set_to_none=True)
            acc.backward(loss)
            acc.clip_grad_norm_(wrapped.parameters(), 1.0)
            optimizer.step()
            judge = [bool(ok) for e, ok in zip(batch, first_ok.tolist()) if e.task == "judge"]
            return float(loss.item()), lr, ({"judge_train_acc": float(np.mean(judge))} if judge else {})

        def save(i: int):
            self.checkpoint("vlm", {"vlm": core}, optimizer, {}, i)

        done = self.loop("vlm", cfg.vlm_steps, step, step_fn, save)
        core.eval()
        plain = self.full_module(core)  # every rank: FSDP / DeepSpeed gather the full weights
        if acc.is_main_process:
            plain.eval().save_pretrained(self.out / "vlm")
        if done:
            self.meta["done"].append("vlm")
            self.checkpoint("vlm", {"vlm": core}, optimizer, {}, int(self.meta["stage_steps"]["vlm"]))
        return done
