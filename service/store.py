"""The product database: one SQLite file, seeded with the seed's two products.

Reads and writes share neither a connection nor a lock, so a write that waits for the database
never holds up a read of the list:

- writes go through one connection on one thread of their own (`store-write`): SQLite allows one
  writer at a time anyway. Each write starts with `BEGIN IMMEDIATE` and waits at most
  `write_timeout` seconds, counted from the call (time spent behind other writes of this process
  included), for another process's write lock; then it raises `StoreBusy` (the API answers 503);
- reads go through up to `READERS` threads of their own (`store-read`), each with its own
  read-only connection (`PRAGMA query_only`). In WAL mode a reader never waits for a writer: it
  reads the last committed state, whoever holds the write lock.

Both sets of threads are the store's own, not asyncio's default pool, so writes waiting for the
lock cannot take the threads reads need. The seed's slow database is simulated by `DB_DELAY_MS`
on reads, paid after the query: the snapshot is taken when the read starts, as a slow query's
would be. WAL mode and the busy timeouts let several service processes share one file.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypedDict, TypeVar

T = TypeVar("T")

SEED = ((1, "Laptop"), (2, "Phone"))
READERS = 4
OPEN_TIMEOUT = 10.0  # start-up may wait longer for the lock than a request does
READ_TIMEOUT = 3.0  # readers wait only outside WAL mode (or while SQLite recovers a WAL file)
BUSY_CODES = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class Product(TypedDict):
    id: int
    name: str


class StoreBusy(Exception):
    """The database stayed locked (by another process) for longer than the wait allows."""

    def __init__(self, operation: str, waited: float) -> None:
        super().__init__(f"{operation}: the database stayed locked for {waited:.1f} s")
        self.waited = waited


def is_busy(exc: sqlite3.Error) -> bool:
    return (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in BUSY_CODES


class ProductStore:
    def __init__(
        self,
        path: str,
        *,
        delay: float = 0.0,
        write_timeout: float = 3.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.path = path
        self.delay = delay
        self.write_timeout = write_timeout
        self.journal_mode = ""
        self._sleep = sleep
        self._writer: sqlite3.Connection | None = None
        self._write_thread: ThreadPoolExecutor | None = None
        self._read_threads: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()  # guards the list only, never a query

    def open(self) -> None:
        """Open, create and seed the file; raise sqlite3.Error if it is not a product database."""
        conn = sqlite3.connect(
            self.path, timeout=OPEN_TIMEOUT, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(OPEN_TIMEOUT * 1000)}")
            self.journal_mode = str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS products ("
                    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
                    " name TEXT NOT NULL)"
                )
                # Idempotent, so several processes may start on one file at once.
                conn.executemany("INSERT OR IGNORE INTO products (id, name) VALUES (?, ?)", SEED)
                conn.execute("COMMIT")
            except BaseException:
                conn.rollback()
                raise
        except BaseException:
            conn.close()
            raise
        self._writer = conn
        self._local = threading.local()
        self._write_thread = ThreadPoolExecutor(1, thread_name_prefix="store-write")
        self._read_threads = ThreadPoolExecutor(READERS, thread_name_prefix="store-read")

    def close(self) -> None:
        """Wait for the queries under way (a write waits at most write_timeout), then close."""
        for pool in (self._write_thread, self._read_threads):
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        self._write_thread = self._read_threads = None
        with self._readers_lock:
            readers, self._readers = self._readers, []
        for conn in readers:
            conn.close()
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    async def list_products(self) -> list[Product]:
        products = await self._run(self._read_threads, self._select)
        if self.delay:
            await self._sleep(self.delay)
        return products

    async def add_product(self, name: str) -> Product:
        deadline = time.monotonic() + self.write_timeout
        return await self._run(self._write_thread, lambda: self._insert(name, deadline))

    async def _run(self, pool: ThreadPoolExecutor | None, call: Callable[[], T]) -> T:
        if pool is None:
            raise RuntimeError("the product store is not open")
        return await asyncio.get_running_loop().run_in_executor(pool, call)

    # -- in the store's threads -----------------------------------------------------------------
    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, timeout=READ_TIMEOUT, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA query_only = ON")
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def _select(self) -> list[Product]:
        started = time.monotonic()
        try:
            rows = self._reader().execute("SELECT id, name FROM products ORDER BY id").fetchall()
        except sqlite3.OperationalError as exc:
            if is_busy(exc):
                raise StoreBusy("read", time.monotonic() - started) from None
            raise
        return [Product(id=row[0], name=row[1]) for row in rows]

    def _insert(self, name: str, deadline: float) -> Product:
        conn = self._writer
        if conn is None:
            raise RuntimeError("the product store is not open")
        started = time.monotonic()
        # What is left of this write's wait; once it is spent, one attempt that does not wait.
        conn.execute(f"PRAGMA busy_timeout = {max(0, int((deadline - started) * 1000))}")
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                cursor = conn.execute("INSERT INTO products (name) VALUES (?)", (name,))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.rollback()
                raise
        except sqlite3.OperationalError as exc:
            if is_busy(exc):
                waited = time.monotonic() - deadline + self.write_timeout
                raise StoreBusy("write", waited) from None
            raise
        product_id = cursor.lastrowid
        assert product_id is not None
        return Product(id=product_id, name=name)
