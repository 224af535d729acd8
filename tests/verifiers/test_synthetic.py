"""The embedded synthetic registry: deterministic, realistic, fast enough to read."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from verifiers.dates import parse_date
from verifiers.identifiers import validate_national_code, validate_national_id, validate_postal_code
from verifiers.mobile import normalize_mobile
from verifiers.registry import generator, open_registries
from verifiers.registry.synthetic import SyntheticRegistry, export, seed

SEED, PERSONS, ENTITIES = 7, 2_000, 300


def _digest(path: Path) -> str:
    connection = sqlite3.connect(path)
    try:
        text = "\n".join(
            repr(row)
            for table in ("persons", "entities", "representatives")
            for row in connection.execute(f"SELECT * FROM {table} ORDER BY rowid")
        )
    finally:
        connection.close()
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture(scope="module")
def registry(synthetic_registry_path: Path) -> Iterator[SyntheticRegistry]:
    opened = SyntheticRegistry(synthetic_registry_path)
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def persons(synthetic_registry_path: Path) -> list[dict]:
    return list(export(synthetic_registry_path, "persons", PERSONS))


@pytest.fixture(scope="module")
def entities(synthetic_registry_path: Path) -> list[dict]:
    return list(export(synthetic_registry_path, "entities", ENTITIES))


def test_same_seed_same_rows_other_seed_other_rows(
    tmp_path: Path, synthetic_registry_path: Path
) -> None:
    again = tmp_path / "again.db"
    seed(again, persons=PERSONS, entities=ENTITIES, seed=SEED)
    assert _digest(again) == _digest(synthetic_registry_path)
    other = tmp_path / "other.db"
    seed(other, persons=PERSONS, entities=ENTITIES, seed=SEED + 1)
    assert _digest(other) != _digest(synthetic_registry_path)


def test_person_i_is_reproducible_from_seed_and_index(registry: SyntheticRegistry) -> None:
    for i in (0, 1, 999, PERSONS - 1):
        person, mobiles = generator.person_record(SEED, i)
        assert registry.person(person.national_code) == person
        assert registry.mobiles(person.national_code) == mobiles
    entity = generator.entity(SEED, 42, PERSONS)
    assert registry.entity(entity.national_id) == entity


def test_seeding_replaces_the_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    seed(path, persons=50, entities=5, seed=1)
    old = SyntheticRegistry(path)
    first = generator.person(1, 0)
    assert old.person(first.national_code) == first
    seed(path, persons=10, entities=1, seed=2)
    fresh = SyntheticRegistry(path)
    assert fresh.meta == {"schema_version": "1", "seed": "2", "persons": "10", "entities": "1"}
    assert fresh.person(first.national_code) is None
    assert [p.name for p in tmp_path.iterdir()] == ["registry.db"]  # no temporary left behind
    old.close()
    fresh.close()


def test_persons_are_realistic(persons: list[dict]) -> None:
    codes = [p["national_code"] for p in persons]
    assert len(set(codes)) == len(codes)
    for p in persons:
        assert validate_national_code(p["national_code"]) == p["national_code"]
        assert validate_postal_code(p["postal_code"]).warnings == ()
        assert date(1930, 1, 1) <= date.fromisoformat(p["birth_date"]) <= date(2008, 12, 31)
        assert parse_date(p["birth_date_jalali"]).isoformat() == p["birth_date"]
        assert len(p["national_card_serial"]) == 10
        assert p["national_card_serial"][0].isdigit() and p["national_card_serial"][1].isupper()
        assert p["national_card_serial"][2:].isdigit()
        for mobile in p["mobiles"]:
            assert normalize_mobile(mobile) == mobile
        assert all(
            "\u0600" <= ch <= "\u06ff" or ch in " \u200c"
            for ch in p["first_name"] + p["last_name"] + p["father_name"]
        )
    genders = Counter(p["gender"] for p in persons)
    assert 0.4 < genders["female"] / len(persons) < 0.6
    deceased = sum(not p["alive"] for p in persons) / len(persons)
    assert 0.005 < deceased < 0.05
    mobile_counts = Counter(len(p["mobiles"]) for p in persons)
    assert set(mobile_counts) == {0, 1, 2}
    all_mobiles = [m for p in persons for m in p["mobiles"]]
    assert len(set(all_mobiles)) == len(all_mobiles)


def test_entities_are_realistic(entities: list[dict], persons: list[dict]) -> None:
    known = {p["national_code"] for p in persons}
    for e in entities:
        assert validate_national_id(e["national_id"]) == e["national_id"]
        assert e["name"].startswith(("شرکت", "موسسه"))
        assert len(e["representatives"]) in range(1, 5)
        assert {r["national_code"] for r in e["representatives"]} <= known
        assert parse_date(e["registration_date_jalali"]).isoformat() == e["registration_date"]
        for r in e["representatives"]:
            assert r["valid_from"] >= e["registration_date"]
    statuses = Counter(e["status"] for e in entities)
    assert set(statuses) == {"active", "dissolved", "suspended", "in_liquidation"}
    assert statuses["active"] > len(entities) / 2
    assert any(len(e["representatives"]) >= 3 for e in entities)
    on = generator.REFERENCE_DATE
    expired = [
        r
        for e in entities
        for r in e["representatives"]
        if r["valid_until"] and r["valid_until"] < on.isoformat()
    ]
    assert expired
    # The first representative (the managing director) is in force on the reference date.
    assert all(e["representatives"][0]["valid_from"] <= on.isoformat() for e in entities)


def test_lookups(registry: SyntheticRegistry, persons: list[dict]) -> None:
    someone = next(p for p in persons if p["mobiles"])
    assert registry.owns(someone["national_code"], someone["mobiles"][0])
    other = next(p for p in persons if p["mobiles"] and p is not someone)
    assert not registry.owns(someone["national_code"], other["mobiles"][0])
    assert not registry.owns("0499370899", someone["mobiles"][0])
    assert registry.person("0499370899") is None
    assert registry.entity("10380284790") is None


def test_thread_per_connection(registry: SyntheticRegistry, persons: list[dict]) -> None:
    found: list[bool] = []

    def look_up(chunk: list[dict]) -> None:
        found.extend(registry.person(p["national_code"]) is not None for p in chunk)

    threads = [threading.Thread(target=look_up, args=(persons[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert found.count(True) == len(persons)


def test_file_is_opened_read_only(registry: SyntheticRegistry) -> None:
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        registry._connection().execute("DELETE FROM persons")


def test_adapter_by_name(synthetic_registry_path: Path) -> None:
    registries = open_registries("synthetic", {"path": synthetic_registry_path})
    person = generator.person(SEED, 3)
    assert registries.civil.person(person.national_code) == person
    registries.ping()
    registries.close()


def test_missing_file_says_how_to_create_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="hoviyat registry seed"):
        SyntheticRegistry(tmp_path / "absent.db")


def test_identifiers_are_unique_beyond_the_sample() -> None:
    codes = {generator.national_code(SEED, i) for i in range(50_000)}
    assert len(codes) == 50_000
    # The generator's table-driven checksum agrees with the validator everywhere.
    assert all(validate_national_code(code) == code for code in codes)
    ids = {generator.national_id(SEED, j) for j in range(20_000)}
    assert len(ids) == 20_000


def test_many_server_threads_do_not_each_hold_a_default_page_cache(
    registry: SyntheticRegistry, persons: list[dict]
) -> None:
    """Each server thread opens its own read connection; a 2 MiB cache apiece across
    a worker's thread pool grew the worker ~80 MB during a soak (bench/bench_soak.py)."""
    sizes: list[int] = []

    def lookup() -> None:
        registry.person(persons[0]["national_code"])
        sizes.append(registry._connection().execute("PRAGMA cache_size").fetchone()[0])

    threads = [threading.Thread(target=lookup) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sizes == [-256] * 4


@pytest.fixture
def own_registry(synthetic_registry_path: Path, tmp_path: Path) -> Iterator[SyntheticRegistry]:
    """A registry on a file of its own: SQLite defers closing a file's descriptors while
    another connection in the process holds a lock on that file (as the module's
    registry may, after the read-only test's refused write)."""
    path = tmp_path / "registry.db"
    shutil.copyfile(synthetic_registry_path, path)
    opened = SyntheticRegistry(path)
    yield opened
    opened.close()


def _open_descriptors(path: Path) -> int:
    """How many of this process's file descriptors are open on ``path`` (Linux /proc)."""
    count = 0
    for entry in Path("/proc/self/fd").iterdir():
        try:
            if Path(os.readlink(entry)) == path.resolve():
                count += 1
        except OSError:
            continue  # closed meanwhile
    return count


needs_proc = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc (Linux)")


@needs_proc
def test_threads_that_end_leave_no_connection_open(
    own_registry: SyntheticRegistry, persons: list[dict]
) -> None:
    """The server's thread pool ends idle threads and starts new ones as load comes back,
    each opening a connection: one kept past its thread's end grew a worker without bound
    over a soak (bench/bench_soak.py), though the pool never held more than a few threads."""
    registry = own_registry
    registry.person(persons[0]["national_code"])  # this thread's connection, kept
    before = _open_descriptors(registry.path)

    def lookup() -> None:
        assert registry.person(persons[1]["national_code"]) is not None

    for _ in range(50):  # one after another: each thread has ended before the next starts
        thread = threading.Thread(target=lookup)
        thread.start()
        thread.join()
    assert _open_descriptors(registry.path) == before == 1
    # Still answering, on this thread and on new ones.
    assert registry.person(persons[2]["national_code"]) is not None
    lookup()


@needs_proc
def test_close_closes_the_connections_of_live_threads(
    own_registry: SyntheticRegistry, persons: list[dict]
) -> None:
    registry = own_registry
    looked_up, release = threading.Event(), threading.Event()

    def hold() -> None:
        registry.person(persons[0]["national_code"])
        looked_up.set()
        release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    assert looked_up.wait(10)
    registry.person(persons[0]["national_code"])
    assert _open_descriptors(registry.path) == 2
    registry.close()
    assert _open_descriptors(registry.path) == 0
    release.set()
    thread.join()
    # A closed registry opens again on its next lookup, as before.
    assert registry.person(persons[0]["national_code"]) is not None
