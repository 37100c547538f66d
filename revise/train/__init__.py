"""Trainers for the unified model: the internal VLM (vlm.py); SFT and self-reflective training follow."""
