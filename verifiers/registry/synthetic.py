"""The embedded synthetic registry: civil, mobile and deeds registries in one read-only SQLite file.

The default adapter (``HOVIYAT_REGISTRY_ADAPTER=synthetic``). :func:`seed`
writes the file from :mod:`verifiers.registry.generator`, so person ``i`` is
the same for the same seed on every machine. :class:`SyntheticRegistry`
answers lookups from it: one read-only connection per thread (``mode=ro``),
primary-key or unique-index lookups only, tens of microseconds each.

Layout (``meta`` records seed and counts)::

    persons(idx PK, national_code UNIQUE, first_name, last_name, father_name,
            birth_date ISO, gender, alive, national_card_serial, postal_code,
            mobiles "09..,09..")
    entities(idx PK, national_id UNIQUE, name, registration_number,
             registration_date ISO, registering_body, status)
    representatives(entity_idx, national_code, role, signing_authority,
                    valid_from ISO, valid_until ISO|NULL)
"""

from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping
from datetime import date
from pathlib import Path
from typing import Any, Literal

from verifiers.registry import generator
from verifiers.registry.base import (
    LegalEntity,
    Person,
    Registries,
    RegistryUnavailable,
    Representative,
    register_adapter,
)
from verifiers.registry.wire import entity_to_json, person_to_json

SCHEMA_VERSION = "1"
_BATCH = 20_000

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE persons (
    idx INTEGER PRIMARY KEY,
    national_code TEXT NOT NULL,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    father_name TEXT NOT NULL,
    birth_date TEXT NOT NULL,
    gender TEXT NOT NULL,
    alive INTEGER NOT NULL,
    national_card_serial TEXT NOT NULL,
    postal_code TEXT NOT NULL,
    mobiles TEXT NOT NULL
);
CREATE TABLE entities (
    idx INTEGER PRIMARY KEY,
    national_id TEXT NOT NULL,
    name TEXT NOT NULL,
    registration_number TEXT NOT NULL,
    registration_date TEXT NOT NULL,
    registering_body TEXT NOT NULL,
    status TEXT NOT NULL
);
CREATE TABLE representatives (
    entity_idx INTEGER NOT NULL,
    national_code TEXT NOT NULL,
    role TEXT NOT NULL,
    signing_authority TEXT NOT NULL,
    valid_from TEXT NOT NULL,
    valid_until TEXT
);
"""

# Created after the bulk load: building an index once over sorted keys is far
# cheaper than maintaining it through a million random inserts.
_INDEXES = """
CREATE UNIQUE INDEX persons_national_code ON persons (national_code);
CREATE UNIQUE INDEX entities_national_id ON entities (national_id);
CREATE INDEX representatives_entity ON representatives (entity_idx);
CREATE INDEX representatives_person ON representatives (national_code);
"""


def _person_row(seed: int, i: int) -> tuple[Any, ...]:
    code, first, last, father, birth, gender, alive, serial, postal, mobiles = (
        generator.person_fields(seed, i)
    )
    return (
        i,
        code,
        first,
        last,
        father,
        birth.isoformat(),
        gender,
        int(alive),
        serial,
        postal,
        ",".join(mobiles),
    )


def seed(
    path: Path,
    *,
    persons: int,
    entities: int,
    seed: int,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Write a registry of ``persons`` people and ``entities`` entities to ``path``.

    Deterministic from ``seed``. Built in a temporary file next to ``path``
    without a journal (nobody reads it yet), then renamed over ``path``, so
    readers see the old registry or the new one, never half of one.
    ``progress`` is called after each batch with the number of records
    (persons, then entities) written so far.
    """
    if not 0 <= persons <= generator.MAX_PERSONS:
        raise ValueError(f"persons must be between 0 and {generator.MAX_PERSONS}")
    if not 0 <= entities <= generator.MAX_ENTITIES:
        raise ValueError(f"entities must be between 0 and {generator.MAX_ENTITIES}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    temporary.unlink(missing_ok=True)
    connection = sqlite3.connect(temporary)
    try:
        connection.execute("PRAGMA journal_mode = OFF")
        connection.execute("PRAGMA synchronous = OFF")
        connection.execute("PRAGMA cache_size = -65536")
        connection.executescript(_SCHEMA)
        done = 0
        for start in range(0, persons, _BATCH):
            rows = [_person_row(seed, i) for i in range(start, min(start + _BATCH, persons))]
            connection.executemany(
                "INSERT INTO persons VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
            )
            done += len(rows)
            if progress:
                progress(done)
        for start in range(0, entities, _BATCH):
            entity_rows: list[tuple[Any, ...]] = []
            representative_rows: list[tuple[Any, ...]] = []
            for j in range(start, min(start + _BATCH, entities)):
                item = generator.entity(seed, j, persons)
                entity_rows.append(
                    (
                        j,
                        item.national_id,
                        item.name,
                        item.registration_number,
                        item.registration_date.isoformat(),
                        item.registering_body,
                        item.status,
                    )
                )
                representative_rows.extend(
                    (
                        j,
                        r.national_code,
                        r.role,
                        r.signing_authority,
                        r.valid_from.isoformat(),
                        r.valid_until.isoformat() if r.valid_until else None,
                    )
                    for r in item.representatives
                )
            connection.executemany("INSERT INTO entities VALUES (?, ?, ?, ?, ?, ?, ?)", entity_rows)
            connection.executemany(
                "INSERT INTO representatives VALUES (?, ?, ?, ?, ?, ?)", representative_rows
            )
            done += len(entity_rows)
            if progress:
                progress(done)
        connection.executescript(_INDEXES)
        connection.executemany(
            "INSERT INTO meta VALUES (?, ?)",
            [
                ("schema_version", SCHEMA_VERSION),
                ("seed", str(seed)),
                ("persons", str(persons)),
                ("entities", str(entities)),
            ],
        )
        connection.commit()
        connection.execute("PRAGMA journal_mode = DELETE")
        connection.close()
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        connection.close()
        temporary.unlink(missing_ok=True)
        raise


def _person(row: sqlite3.Row | tuple[Any, ...]) -> Person:
    return Person(
        national_code=row[0],
        first_name=row[1],
        last_name=row[2],
        father_name=row[3],
        birth_date=date.fromisoformat(row[4]),
        gender=row[5],
        alive=bool(row[6]),
        national_card_serial=row[7],
        postal_code=row[8],
    )


_SELECT_PERSON = (
    "SELECT national_code, first_name, last_name, father_name, birth_date, gender, alive, "
    "national_card_serial, postal_code, mobiles FROM persons"
)
_SELECT_ENTITY = (
    "SELECT idx, national_id, name, registration_number, registration_date, registering_body, "
    "status FROM entities"
)


_READER_CACHE_KIB = 256


class _Held:
    """One thread's connection, closed when the thread ends.

    Held only by the thread's ``threading.local`` (the registry keeps a weak
    reference, for :meth:`SyntheticRegistry.close`). The server's thread pool
    ends threads idle for 10 s and starts new ones as load comes back, each
    opening its own connection: a strong list of them grew a worker without
    bound (a file descriptor and up to a page cache each; two every minute
    or so in a soak, bench/bench_soak.py) while the pool stayed a few threads.
    """

    __slots__ = ("__weakref__", "connection")

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def __del__(self) -> None:
        self.connection.close()


class SyntheticRegistry:
    """Civil, mobile and deeds registry over a seeded SQLite file, read-only, thread-safe."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(
                f"synthetic registry {self.path} does not exist; "
                "create it with: hoviyat registry seed --persons N --entities M --seed S"
            )
        self._uri = self.path.resolve().as_uri() + "?mode=ro"
        self._local = threading.local()
        self._lock = threading.Lock()
        # Weakly: a thread's connection is closed when the thread ends (see _Held).
        self._held: weakref.WeakSet[_Held] = weakref.WeakSet()

    def _connection(self) -> sqlite3.Connection:
        held: _Held | None = getattr(self._local, "held", None)
        if held is None:
            try:
                connection = sqlite3.connect(self._uri, uri=True, check_same_thread=False)
            except sqlite3.Error as exc:
                raise RegistryUnavailable("synthetic", f"cannot open {self.path}: {exc}") from None
            # One connection per server thread (up to 40 each worker), each with its own
            # page cache: SQLite's default 2 MiB apiece grew a worker by ~80 MB over a
            # soak. The file is read-only and the OS page cache serves it as fast
            # (11 us a lookup either way), so each connection keeps only 256 KiB.
            connection.execute(f"PRAGMA cache_size = -{_READER_CACHE_KIB}")
            held = self._local.held = _Held(connection)
            with self._lock:
                self._held.add(held)
        return held.connection

    def _query(self, sql: str, parameters: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        try:
            return self._connection().execute(sql, parameters).fetchall()
        except sqlite3.Error as exc:
            raise RegistryUnavailable("synthetic", f"query failed: {exc}") from None

    # CivilRegistry
    def person(self, national_code: str) -> Person | None:
        rows = self._query(_SELECT_PERSON + " WHERE national_code = ?", (national_code,))
        return _person(rows[0]) if rows else None

    def mobiles(self, national_code: str) -> tuple[str, ...]:
        rows = self._query("SELECT mobiles FROM persons WHERE national_code = ?", (national_code,))
        return tuple(m for m in rows[0][0].split(",") if m) if rows else ()

    # MobileRegistry
    def owns(self, national_code: str, mobile: str) -> bool:
        return mobile in self.mobiles(national_code)

    # DeedsRegistry
    def entity(self, national_id: str) -> LegalEntity | None:
        rows = self._query(_SELECT_ENTITY + " WHERE national_id = ?", (national_id,))
        if not rows:
            return None
        return self._entity(rows[0])

    def entities_represented_by(self, national_code: str) -> list[str]:
        rows = self._query(
            "SELECT DISTINCT e.national_id FROM representatives r "
            "JOIN entities e ON e.idx = r.entity_idx WHERE r.national_code = ? "
            "ORDER BY e.national_id",
            (national_code,),
        )
        return [row[0] for row in rows]

    def _entity(self, row: tuple[Any, ...]) -> LegalEntity:
        representatives = self._query(
            "SELECT national_code, role, signing_authority, valid_from, valid_until "
            "FROM representatives WHERE entity_idx = ? ORDER BY rowid",
            (row[0],),
        )
        return LegalEntity(
            national_id=row[1],
            name=row[2],
            registration_number=row[3],
            registration_date=date.fromisoformat(row[4]),
            registering_body=row[5],
            status=row[6],
            representatives=tuple(
                Representative(
                    national_code=r[0],
                    role=r[1],
                    signing_authority=r[2],
                    valid_from=date.fromisoformat(r[3]),
                    valid_until=date.fromisoformat(r[4]) if r[4] else None,
                )
                for r in representatives
            ),
        )

    @property
    def meta(self) -> dict[str, str]:
        """``schema_version``, ``seed``, ``persons`` and ``entities`` as seeded."""
        return {k: v for k, v in self._query("SELECT key, value FROM meta", ())}

    def iter_persons(self, limit: int) -> Iterator[tuple[Person, tuple[str, ...]]]:
        rows = self._query(_SELECT_PERSON + " ORDER BY idx LIMIT ?", (limit,))
        for row in rows:
            yield _person(row), tuple(m for m in row[9].split(",") if m)

    def iter_entities(self, limit: int) -> Iterator[LegalEntity]:
        rows = self._query(_SELECT_ENTITY + " ORDER BY idx LIMIT ?", (limit,))
        for row in rows:
            yield self._entity(row)

    def ping(self) -> None:
        """Raise :class:`RegistryUnavailable` unless the file answers a query."""
        if not self._query("SELECT value FROM meta WHERE key = 'schema_version'", ()):
            raise RegistryUnavailable("synthetic", f"{self.path} has no schema version")

    def close(self) -> None:
        with self._lock:
            held, self._held = list(self._held), weakref.WeakSet()
        for each in held:
            each.connection.close()
        self._local = threading.local()

    def registries(self) -> Registries:
        return Registries(
            civil=self, mobile=self, deeds=self, ping=self.ping, close=self.close, blocking=False
        )


def export(
    path: Path, kind: Literal["persons", "entities"], limit: int
) -> Iterator[dict[str, Any]]:
    """The first ``limit`` persons or entities as JSON-able dicts (shapes: ``wire``)."""
    registry = SyntheticRegistry(path)
    try:
        if kind == "persons":
            for person, mobiles in registry.iter_persons(limit):
                yield person_to_json(person, mobiles)
        elif kind == "entities":
            for item in registry.iter_entities(limit):
                yield entity_to_json(item)
        else:
            raise ValueError(f"kind must be 'persons' or 'entities', not {kind!r}")
    finally:
        registry.close()


def _open(options: Mapping[str, Any]) -> Registries:
    return SyntheticRegistry(Path(options["path"])).registries()


register_adapter("synthetic", _open)
