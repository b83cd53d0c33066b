"""A most-recently-used memory of bounded size: what long-running services remember per session or frame."""
from __future__ import annotations

from collections import OrderedDict
from typing import Hashable, TypeVar

V = TypeVar("V")


def remember(memory: OrderedDict, key: Hashable, value: V, limit: int) -> V:
    """Store ``memory[key] = value`` as the most recent entry, dropping the oldest beyond ``limit`` -> value."""
    memory[key] = value
    memory.move_to_end(key)
    while len(memory) > limit:
        memory.popitem(last=False)
    return value
