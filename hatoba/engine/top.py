"""`docker top`: the host's `ps` output restricted to the container's processes."""

from __future__ import annotations

import asyncio
import shlex
from typing import TYPE_CHECKING, Any

from hatoba.errors import Conflict, HatobaError, InvalidParameter
from hatoba.runtime.conmon import OCIRuntimeError

if TYPE_CHECKING:
    from hatoba.engine.container import Container, Manager


def parse_ps(out: str, pids: set[int]) -> dict[str, Any]:
    """`ps` output → {"Titles", "Processes"} keeping the rows whose PID is one of `pids`."""
    lines = out.splitlines()
    if not lines:
        return {"Titles": [], "Processes": []}
    titles = lines[0].split()
    try:
        pid_col = titles.index("PID")
    except ValueError:
        raise HatobaError("Couldn't find PID field in ps output") from None
    procs = []
    for line in lines[1:]:
        fields = line.split(None, len(titles) - 1)
        if len(fields) > pid_col and fields[pid_col].isdigit() and int(fields[pid_col]) in pids:
            procs.append(fields)
    return {"Titles": titles, "Processes": procs}


async def top(mgr: Manager, c: Container, ps_args: str) -> dict[str, Any]:
    if not c.running:
        raise Conflict(f"Container {c.id} is not running")
    try:
        args = shlex.split(ps_args or "-ef")
    except ValueError as e:
        raise InvalidParameter(f"invalid ps arguments: {e}") from None
    try:
        pids = set(await mgr.rt(c).ps(c.id))
    except OCIRuntimeError as e:
        if e.not_found or e.not_running:
            raise Conflict(f"Container {c.id} is not running") from None
        raise HatobaError(f"runc ps failed: {e.message}") from None
    proc = await asyncio.create_subprocess_exec("ps", *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise InvalidParameter(f"Error running ps: exit status {proc.returncode}: {err.decode(errors='replace').strip()}")
    return parse_ps(out.decode(errors="replace"), pids)
