"""An event of `GET /events` as `hatoba events --format` templates see it (docker's events.Message).

Its own module because it is a `Mapping`: `collections` is imported only by `events`, not by every
command of `hatoba.cli.commands.system`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any


class EventMessage(Mapping[str, Any]):
    """An event as templates see it: Go's events.Message fields (.ID, .Time, ...); `json` gives the wire JSON."""

    _FIELDS = {"Status": "status", "ID": "id", "From": "from", "Type": "Type", "Action": "Action",
               "Actor": "Actor", "Scope": "scope", "Time": "time", "TimeNano": "timeNano"}
    _DEFAULTS: dict[str, Any] = {"Status": "", "ID": "", "From": "", "Type": "", "Action": "",
                                 "Scope": "", "Time": 0, "TimeNano": 0}

    def __init__(self, raw: Mapping[str, Any]):
        self.raw = raw

    def __getitem__(self, key: str) -> Any:
        if key not in self._FIELDS:
            raise KeyError(key)
        if key == "Actor":
            actor = self.raw.get("Actor") or {}
            return {"ID": actor.get("ID", ""), "Attributes": actor.get("Attributes") or {}}
        return self.raw.get(self._FIELDS[key], self._DEFAULTS[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._FIELDS)

    def __len__(self) -> int:
        return len(self._FIELDS)

    def items(self) -> Any:  # what the template `json` function serialises
        return self.raw.items()
