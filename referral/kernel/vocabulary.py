"""The base of every closed vocabulary: stored values are English codes; people read the German labels."""

from __future__ import annotations

import enum


class Labelled(enum.StrEnum):
    @property
    def label(self) -> str:
        return self._labels()[self]

    @classmethod
    def _labels(cls) -> dict[Labelled, str]:
        raise NotImplementedError

    @classmethod
    def choices(cls) -> list[tuple[str, str]]:
        return [(m.value, m.label) for m in cls]
