"""``revise prefetch``: fetch pretrained weights into the Hugging Face cache on a machine with internet.

The ``wan-vace``/``wan-v2v`` editors and the ``hf-vlm`` judge only ever read the local cache; this
command fills it (``huggingface_hub.snapshot_download``) and writes a manifest of every file with its
size and sha256, so the copy on an offline GPU machine can be checked against it. It only wraps
:func:`revise.editors.diffusers_wan.prefetch_models`.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def register_scale_commands(app: typer.Typer) -> None:
    """Add ``prefetch`` to the top-level ``revise`` app."""

    @app.command("prefetch")
    def prefetch(
        models: List[str] = typer.Argument(..., help="Hugging Face repo ids, e.g. Wan-AI/Wan2.1-VACE-1.3B-diffusers "
                                           "Qwen/Qwen2.5-VL-7B-Instruct."),
        cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Hub cache folder to fill (default: "
                                                 "HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub). "
                                                 "Give the same folder to the editors/judge as hub_cache=."),
        revision: Optional[str] = typer.Option(None, "--revision", help="Branch, tag or commit for every MODEL "
                                               "(default: main)."),
        manifest: Path = typer.Option(Path("prefetch-manifest.json"), "--manifest", help="Where to write the "
                                      "manifest JSON: repo id, revision, commit, and every file's size and sha256."),
    ) -> None:
        """Download models into the Hugging Face cache (needs the network) and write a manifest of their files."""
        from ..hub import prefetch_models

        path = prefetch_models(list(models), hub_cache=cache_dir, revision=revision, manifest=manifest)
        typer.echo(f"{len(models)} model(s) in the cache; manifest {path}")
