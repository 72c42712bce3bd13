"""Engine and sessions: SQLite under the data dir by default (WAL, busy timeout),
any SQLAlchemy URL otherwise; Alembic migrations run automatically, once per
process and URL, under a lock so concurrent CLI runs do not race."""

from __future__ import annotations

import contextlib
import os
import threading
from functools import lru_cache
from importlib import resources
from pathlib import Path

from sqlalchemy import event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DatabaseError, OperationalError
from sqlmodel import Session, create_engine

from taskcodec.errors import StoreError
from taskcodec.settings import Settings, get_settings

_MIGRATE_LOCK = threading.Lock()
PG_ADVISORY_KEY = 7_357_001


def _sqlite_path(url: str) -> Path | None:
    u = make_url(url)
    if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
        return Path(u.database)
    return None


def _check_sqlite_file(path: Path) -> None:
    """A SQLite store must be a writable file in a writable folder (WAL writes beside it)."""
    if path.exists() and not path.is_file():
        raise StoreError(f"{path}: the store is not a file")
    for p, what in ((path, "file"), (path.parent, "folder")):
        if p.exists() and not os.access(p, os.R_OK | os.W_OK):
            raise StoreError(f"{path}: the store's {what} is read-only (taskcodec records every encoding there)")


_IDENTITY: dict[Path, tuple[int, int]] = {}  # SQLite store -> (device, inode) when its engine was made


def check_alive(url: str) -> None:
    """A SQLite store deleted or replaced while this process uses it would swallow every record written
    to the old, unlinked file: fail instead."""
    path = _sqlite_path(url)
    if path is None or path not in _IDENTITY:
        return
    try:
        st = path.stat()
    except FileNotFoundError:
        raise StoreError(f"{path}: the store was deleted while taskcodec was using it; nothing more is recorded "
                         "(rerun once it is back)") from None
    if (st.st_dev, st.st_ino) != _IDENTITY[path]:
        raise StoreError(f"{path}: the store was replaced by another file while taskcodec was using it")


@lru_cache(maxsize=8)
def _engine_for(url: str, busy_timeout_s: float = 60.0) -> Engine:
    try:
        return _make_engine(url, busy_timeout_s)
    except (OperationalError, DatabaseError) as exc:
        where = _sqlite_path(url) or make_url(url).render_as_string()
        reason = str(getattr(exc, "orig", exc)).splitlines()[0]
        raise StoreError(f"{where}: the store cannot be used ({reason})") from None


def _make_engine(url: str, busy_timeout_s: float) -> Engine:
    path = _sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        _check_sqlite_file(path)
        engine = create_engine(url, connect_args={"timeout": busy_timeout_s, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # noqa: ANN001
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()
    else:
        if make_url(url).get_backend_name() == "postgresql":
            from taskcodec.errors import require_extra

            driver = make_url(url).get_driver_name()
            require_extra("postgres", "a PostgreSQL store", {"psycopg": "psycopg", "psycopg2": "psycopg2"}.get(driver, driver))
        engine = create_engine(url, pool_pre_ping=True)
    migrate(engine, url)
    if path is not None:
        st = path.stat()
        _IDENTITY[path] = (st.st_dev, st.st_ino)
    return engine


def store_exists(settings: Settings | None = None) -> bool:
    """Whether there is a store to read: a SQLite file that exists, or any other database URL.
    Readers that only look things up (``info``) ask first, so they never create a store."""
    path = _sqlite_path((settings or get_settings()).db_url)
    return path is None or path.is_file()


def get_engine(settings: Settings | None = None) -> Engine:
    s = settings or get_settings()
    return _engine_for(s.db_url, s.db_busy_timeout_s)


def session(settings: Settings | None = None) -> Session:
    """A session on the store; raises ``StoreError`` (one line, naming the file) if the store cannot
    be used or went away since this process opened it."""
    engine = get_engine(settings)
    check_alive((settings or get_settings()).db_url)
    return Session(engine, expire_on_commit=False)


@contextlib.contextmanager
def _migration_lock(engine: Engine, url: str):
    path = _sqlite_path(url)
    with _MIGRATE_LOCK:
        if path is not None:  # one process migrates at a time; the others wait, then find nothing to do
            from filelock import FileLock

            with FileLock(str(path) + ".migrate.lock"):
                yield None
        elif engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": PG_ADVISORY_KEY})
                try:
                    yield None
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": PG_ADVISORY_KEY})
                    conn.commit()
        else:
            yield None


def alembic_config(url: str):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("taskcodec.store").joinpath("migrations")))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


@lru_cache(maxsize=1)
def head_revision() -> str:
    """The newest migration's revision, read from the migration files without importing Alembic (0.6 s
    of every command's start): the one revision no other names as its ``down_revision``."""
    import re

    revs, downs = set(), set()
    for f in resources.files("taskcodec.store").joinpath("migrations", "versions").iterdir():
        if f.name.endswith(".py"):
            src = f.read_text()
            for rev, down in re.findall(r"^revision, down_revision = '([^']+)', '?([^'\n]+)'?$", src, re.M):
                revs.add(rev)
                downs.add(down)
    (head,) = revs - downs
    return head


def _at_head(engine: Engine) -> bool:
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head_revision()
    except DatabaseError:  # no such table yet: a new store
        return False


def migrate(engine: Engine, url: str) -> None:
    """Bring the schema to the newest revision (no-op when it already is; Alembic is imported only when
    there is something to do)."""
    if _at_head(engine):
        return
    from alembic import command

    cfg = alembic_config(url)
    with _migration_lock(engine, url):
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
