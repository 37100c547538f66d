"""The editor interface and registry: ``edit(source, instruction, context) -> Video``."""

from __future__ import annotations

from dataclasses import dataclass

from ..data import Manifest, Sample
from ..registry import Registry
from ..video import Video


@dataclass
class EditContext:
    """What an editor may know beyond the source and the instruction (baselines use the manifest)."""

    sample: Sample
    manifest: Manifest | None
    seed: int = 0


class Editor:
    """Base class. Subclasses set ``name`` and implement :meth:`edit`; raise EditorError on failure."""

    name: str = "editor"

    def edit(self, source: Video, instruction: str, context: EditContext) -> Video:  # pragma: no cover
        raise NotImplementedError

    def info(self) -> dict:
        """Provenance: name, checkpoint, steps, seed, ..."""
        return {"editor": self.name}


EDITORS: Registry[Editor] = Registry("editor")
register_editor = EDITORS.register


def available() -> list[str]:
    """Names of the registered editors."""
    return EDITORS.available()


def create_editor(name: str, **kwargs) -> Editor:
    """Instantiate a registered editor by name (raises RegistryError naming the known ones)."""
    return EDITORS.create(name, **kwargs)
