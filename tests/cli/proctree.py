"""The process tree under a pid, read from /proc (no psutil): for "no orphan survives" checks."""

from __future__ import annotations

from pathlib import Path

__all__ = ["stat_of", "descendants", "survivors"]


def stat_of(pid: int) -> tuple[int, int, str] | None:
    """(ppid, start time, state) of ``pid`` from /proc/PID/stat, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # the command name may hold spaces / parens
    return int(fields[1]), int(fields[19]), fields[0]


def descendants(root: int) -> dict[int, int]:
    """Every process below ``root`` (children, grandchildren, ...): pid -> start time."""
    parents: dict[int, list[tuple[int, int]]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        info = stat_of(int(entry.name))
        if info is not None:
            parents.setdefault(info[0], []).append((int(entry.name), info[1]))
    found: dict[int, int] = {}
    todo = [root]
    while todo:
        for pid, started in parents.get(todo.pop(), []):
            if pid not in found:
                found[pid] = started
                todo.append(pid)
    return found


def survivors(processes: dict[int, int]) -> list[int]:
    """The pids of ``processes`` still running (same pid *and* start time; zombies count as gone)."""
    alive = []
    for pid, started in processes.items():
        info = stat_of(pid)
        if info is not None and info[1] == started and info[2] != "Z":
            alive.append(pid)
    return alive
