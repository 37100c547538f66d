"""RVE-Sim scenario families, registered by name; importing this package registers them all."""

from .base import (MATERIALS, SCENARIOS, SPLITS, BuildContext, Clip, Episode, Scenario, families,
                   register_scenario, split_of)
from . import icvg_camera  # noqa: F401
from . import icvg_causal  # noqa: F401
from . import icvg_commonsense  # noqa: F401
from . import icvg_emotional  # noqa: F401
from . import rave_causal  # noqa: F401
from . import rave_commonsense  # noqa: F401
from . import rave_spatial  # noqa: F401
from . import rave_temporal  # noqa: F401

__all__ = ["MATERIALS", "SCENARIOS", "SPLITS", "BuildContext", "Clip", "Episode", "Scenario", "families",
           "register_scenario", "split_of"]
