"""Benchmark data model: samples, JSONL manifests, the official ReViSE importer."""

from .manifest import SUBSETS, Manifest, Sample, load_manifest, resolve_inside, write_manifest
from .official import import_official, parse_type

__all__ = ["SUBSETS", "Manifest", "Sample", "import_official", "load_manifest", "parse_type", "resolve_inside",
           "write_manifest"]
