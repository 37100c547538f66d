"""What the single-stage recipes' configs share (``revise train srf``, ``critic`` and ``--config``)."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ConfigError


class OneStage:
    """Mixin for a recipe config with one stage, named by the class attribute ``STAGE``: the names the
    SFT trainer's stage machinery (:class:`revise.train.sft._Trainer`) reads."""

    STAGE = ""

    @property
    def stages(self) -> tuple[str, ...]:
        return (self.STAGE,)

    @property
    def vlm_share(self) -> float:
        return 0.5


def check_settings(cfg, what: str, positive: tuple[str, ...], *, t_range: bool = False,
                   loss_space: bool = False) -> None:
    """One-line :class:`ConfigError` unless every field in ``positive`` is >= 1, ``max_minutes`` is None or
    > 0 and, when asked, ``reward_t_range`` is ``0 <= lo < hi <= 1`` (made a float tuple) and
    ``loss_space`` is ``x0`` or ``velocity``. ``what`` names the config in the message."""
    for name in positive:
        if int(getattr(cfg, name)) < 1:
            raise ConfigError(f"{what}: {name} must be >= 1, got {getattr(cfg, name)}")
    if t_range:
        cfg.reward_t_range = tuple(float(v) for v in cfg.reward_t_range)
        lo_hi = cfg.reward_t_range
        if len(lo_hi) != 2 or not 0.0 <= lo_hi[0] < lo_hi[1] <= 1.0:
            raise ConfigError(f"{what}: reward_t_range must be two numbers 0 <= lo < hi <= 1, got {list(lo_hi)}")
    if loss_space and cfg.loss_space not in ("x0", "velocity"):
        raise ConfigError(f"{what}: loss_space must be 'x0' or 'velocity', got {cfg.loss_space!r}")
    if cfg.max_minutes is not None and not cfg.max_minutes > 0:
        raise ConfigError(f"{what}: max_minutes must be > 0, got {cfg.max_minutes}")


def run_from_checkpoint(trainer, init: str | os.PathLike, data: str | os.PathLike, out_dir: str | os.PathLike, config,
                        config_name: str, *, resume: bool, threads: int | None, progress: bool):
    """Run (or resume) ``trainer(init_path, data, out, config, resume, progress)``, a recipe that starts from the
    unified checkpoint ``init`` (a folder or a shipped name), in ``out_dir``; ``OUT/config_name`` records the
    resolved ``init`` with every setting (:func:`revise.train.sft.run_in_folder`)."""
    from ..model.unified import resolve_checkpoint
    from .engine import run_in_folder

    init_path = resolve_checkpoint(init)
    out = Path(out_dir)
    record = {"init": str(init_path), **config.to_dict()}
    # a setting added after a run began (absent from its saved record) counts as its default on --resume
    return run_in_folder(out, config_name, record, resume, threads,
                         lambda: trainer(init_path, Path(data), out, config, resume, progress).run(),
                         defaults=type(config)().to_dict())
