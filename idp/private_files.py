"""Hoviyat's files are its own: folders 0700, files 0600, whatever the umask.

The data folder holds the database (audit log, tokens), its SQLite ``-wal``
and ``-shm`` files (recent pages of the same), secrets, CA keys and
reconciliation inputs and outputs full of national codes. Under the usual
umask 022 they came out 0644 in a 0755 folder: readable by every local
account. The CLI sets the umask to 077 before any command (worker processes
inherit it), and ``init`` and ``serve`` tighten what an earlier version or
another tool left open. SQLite creates ``-wal`` and ``-shm`` with the mode of
the database file, so a 0600 database keeps them 0600 too.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from sqlalchemy.engine import make_url

PRIVATE_UMASK = 0o077
FILE_MODE = 0o600
FOLDER_MODE = 0o700
_SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")


def restrict_umask() -> None:
    """Files this process (and its children) creates from now on are private."""
    os.umask(PRIVATE_UMASK)


def private_folder(path: Path) -> Path:
    """``path`` created if missing, and 0700."""
    path.mkdir(parents=True, exist_ok=True, mode=FOLDER_MODE)
    path.chmod(FOLDER_MODE)
    return path


def open_private(path: Path, flags: int = os.O_WRONLY | os.O_CREAT | os.O_TRUNC) -> int:
    """A descriptor for ``path``, created 0600 (an existing file is made 0600 too)."""
    fd = os.open(path, flags, FILE_MODE)
    os.fchmod(fd, FILE_MODE)
    return fd


def tighten_tree(root: Path) -> None:
    """Every folder under ``root`` (itself included) 0700, every file 0600.

    Symbolic links are left alone: they may point outside Hoviyat's own files.
    """
    if not root.is_dir() or root.is_symlink():
        return
    root.chmod(FOLDER_MODE)
    for folder, folders, files in os.walk(root):
        for name in folders:
            _chmod(Path(folder, name), FOLDER_MODE)
        for name in files:
            _chmod(Path(folder, name), FILE_MODE)


def tighten_sqlite(database_url: str) -> None:
    """A SQLite database's file and its companions 0600 (its folder is not ours to change)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return
    for suffix in _SQLITE_COMPANIONS:
        _chmod(Path(url.database + suffix), FILE_MODE)


def _chmod(path: Path, mode: int) -> None:
    try:
        if stat.S_ISLNK(path.lstat().st_mode):
            return
        path.chmod(mode)
    except FileNotFoundError:
        pass  # removed meanwhile (a SQLite journal, a finished upload)
