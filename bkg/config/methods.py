"""Methods of the generated config dataclasses (schema ``x-mixin``): what is derived, not stored."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from bkg.config.model import Config, GMinus2Reference

__all__ = ["ConfigMethods", "FrozenMap", "GMinus2Methods", "MassGridMethods", "plain"]


class FrozenMap(Mapping[str, Any]):
    """A read-only mapping for a config section with free keys (hashable, picklable)."""

    def __init__(self, items: Mapping[str, Any]) -> None:
        self._items = dict(items)

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(tuple(self._items.items()))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and dict(self._items) == dict(other)

    def __repr__(self) -> str:
        return f"FrozenMap({self._items!r})"


def plain(value: Any) -> Any:
    """A config value as the plain data of its YAML (dataclass -> dict, tuple -> list)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value) if f.compare
        }
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    return value


class ConfigMethods:
    """The effective configuration of a run: plain data, a copy with changes, a hash."""

    raw: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The effective configuration as plain data (what was validated)."""
        return copy.deepcopy(dict(self.raw))

    def replace(self, **changes: Any) -> Config:
        """A copy with top-level fields replaced (e.g. ``n_mot``, ``beam=...``).

        ``raw`` (what :meth:`to_dict` and :attr:`hash` give, what the stage caches key
        on) follows, a replaced section included.
        """
        raw = self.to_dict()
        for key, value in changes.items():
            if key in raw:
                raw[key] = plain(value)
        return dataclasses.replace(self, raw=raw, **changes)  # type: ignore[type-var,return-value]

    @property
    def hash(self) -> str:
        """sha256 of the canonical JSON of the effective configuration."""
        from bkg.config import config_hash

        return config_hash(self.raw)


class MassGridMethods:
    """``signal.masses_gev``: the log-spaced Z' mass grid of the scan."""

    min: float
    max: float
    points: int

    def values(self) -> np.ndarray:
        """The grid's masses in GeV, log-spaced from ``min`` to ``max``."""
        import numpy as np

        return np.geomspace(self.min, self.max, self.points)


class GMinus2Methods:
    """``g_minus_2``: the (g-2)_mu references and the chosen one."""

    reference: str
    references: Mapping[str, GMinus2Reference]

    def chosen(self) -> GMinus2Reference:
        """The reference named by ``g_minus_2.reference``."""
        return self.references[self.reference]
