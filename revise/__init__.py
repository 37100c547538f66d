"""revise: reason-informed video editing.

RVE-Sim (a physics-simulated world of counterfactual edits with exact ground truth), the RVE-Bench
harness (editors, judges, metrics, resumable runs, reports) and a unified VLM + flow-matching
generator trained with self-reflective learning.
"""

__version__ = "0.1.0"
