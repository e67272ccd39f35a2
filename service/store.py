"""The product database: one SQLite file, seeded with the seed's two products.

SQLite calls run in a worker thread (`asyncio.to_thread`) so the event loop keeps serving cache
hits. The seed's slow database is simulated by `DB_DELAY_MS` on reads, paid after the query: the
snapshot is taken when the read starts, as a slow query's would be. WAL mode and a busy timeout let
several service processes share one file.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from typing import TypedDict

SEED = ((1, "Laptop"), (2, "Phone"))


class Product(TypedDict):
    id: int
    name: str


class ProductStore:
    def __init__(
        self,
        path: str,
        *,
        delay: float = 0.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.path = path
        self.delay = delay
        self._sleep = sleep
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def open(self) -> None:
        """Open, create and seed the file; raise sqlite3.Error if it is not a product database."""
        conn = sqlite3.connect(self.path, timeout=10, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout = 10000")
            conn.execute("PRAGMA journal_mode = WAL")
            with conn:
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS products ("
                    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
                    " name TEXT NOT NULL)"
                )
                # Idempotent, so several processes may start on one file at once.
                conn.executemany("INSERT OR IGNORE INTO products (id, name) VALUES (?, ?)", SEED)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    async def list_products(self) -> list[Product]:
        products = await asyncio.to_thread(self._select)
        if self.delay:
            await self._sleep(self.delay)
        return products

    async def add_product(self, name: str) -> Product:
        return await asyncio.to_thread(self._insert, name)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("the product store is not open")
        return self._conn

    def _select(self) -> list[Product]:
        with self._lock:
            rows = self._connection().execute("SELECT id, name FROM products ORDER BY id")
            return [Product(id=row[0], name=row[1]) for row in rows.fetchall()]

    def _insert(self, name: str) -> Product:
        with self._lock:
            conn = self._connection()
            with conn:
                cursor = conn.execute("INSERT INTO products (name) VALUES (?)", (name,))
            product_id = cursor.lastrowid
            assert product_id is not None
            return Product(id=product_id, name=name)
