"""RVE-Sim: a physics-simulated world of counterfactual video edits with exact ground truth.

Scene description (:mod:`.scene`, plain data) -> simulator (:mod:`.physics`, pymunk) -> renderer
(:mod:`.render`, anti-aliased SDFs) -> annotations (:mod:`.state`); scenario families
(:mod:`.scenarios`) build a source and a counterfactual target scene for an implicit instruction;
:mod:`.perceive` recovers the annotations from any video; :mod:`.checks` states what must differ.
"""

from .checks import evaluate, evaluate_all
from .generate import GENERATOR, generate_dataset, render_clip
from .perceive import perceive
from .scene import PALETTE, Body, Camera, Event, Lamp, Light, Material, Scene, Static
from .state import FORMAT, SimState, Tracks, load_state

__all__ = ["FORMAT", "GENERATOR", "PALETTE", "Body", "Camera", "Event", "Lamp", "Light", "Material", "Scene",
           "SimState", "Static", "Tracks", "evaluate", "evaluate_all", "generate_dataset", "load_state", "perceive",
           "render_clip"]
