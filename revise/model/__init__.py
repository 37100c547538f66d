"""The unified model: internal VLM, flow-matching generator, adapters."""
