"""The customer store: one SQLite file per plan, the single source of truth."""

from warmup.store.database import SCHEMA_VERSION, Store, now_iso, open_store, store_path_for

__all__ = ["SCHEMA_VERSION", "Store", "now_iso", "open_store", "store_path_for"]
