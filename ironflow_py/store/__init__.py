"""Stores: the port (`Store`) and its two adapters, in memory and on PostgreSQL."""

from ironflow_py.store.base import Store
from ironflow_py.store.memory import MemoryStore

__all__ = ["MemoryStore", "Store"]
