"""RVE-Sim scenario families, registered by name; importing this package registers them all."""

from .base import (MATERIALS, SCENARIOS, SPLITS, BuildContext, Clip, Episode, Scenario, families,
                   register_scenario, split_of)
from . import rave_causal  # noqa: F401

__all__ = ["MATERIALS", "SCENARIOS", "SPLITS", "BuildContext", "Clip", "Episode", "Scenario", "families",
           "register_scenario", "split_of"]
