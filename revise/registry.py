"""A tiny name -> factory registry, shared by editors, judges and metrics (lmms-eval style)."""

from __future__ import annotations

from typing import Callable, Generic, TypeVar

from .errors import RegistryError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to factories. ``register("name")`` is a class/function decorator."""

    def __init__(self, kind: str):
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories and self._factories[name] is not factory:
                raise RegistryError(f"{self.kind} {name!r} is registered twice")
            self._factories[name] = factory
            return factory

        return decorator

    def available(self) -> list[str]:
        return sorted(self._factories)

    def factory(self, name: str) -> Callable[..., T]:
        """The registered factory (e.g. to inspect the options it takes); RegistryError if unknown."""
        try:
            return self._factories[name]
        except KeyError:
            known = ", ".join(self.available()) or "none"
            raise RegistryError(f"unknown {self.kind} {name!r}; available: {known}") from None

    def create(self, name: str, **kwargs) -> T:
        return self.factory(name)(**kwargs)

    def __contains__(self, name: str) -> bool:
        return name in self._factories
