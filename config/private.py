"""Files that hold what radios said (positions, names, voice) and the folders they live in are the site's:
created readable by their owner only (0600, folders 0700) whatever the process's umask. A program started
by hand under the usual umask 022 would otherwise leave them readable by every user of the machine.

SQLite creates a database's ``-wal`` and ``-shm`` files with the database file's own permissions (and
sets them so whatever the umask), so a database made private here keeps its journal private too; those
files left from an older, looser run are tightened as the database is opened.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

FILE_MODE, DIR_MODE = 0o600, 0o700
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def private_dir(path: Path) -> Path:
    """``path`` and any missing parents created 0700 (``mkdir``'s mode is cut by the umask, so each is set
    after). A folder that exists already keeps its mode: it may be shared on purpose."""
    missing = []
    at = path
    while not at.exists() and at != at.parent:
        missing.append(at)
        at = at.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue  # made meanwhile by someone else: theirs
        os.chmod(folder, DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """``path`` created empty with mode 0600 if it does not exist (in a folder made by
    :func:`private_dir`), else set to 0600 where it is ours to set."""
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        _tighten(path)
        return path
    try:
        os.fchmod(fd, FILE_MODE)  # os.open's mode is cut by the umask too
    finally:
        os.close(fd)
    return path


def private_sqlite(path: Path) -> Path:
    """A SQLite database file made private before SQLite opens it, with its journal files."""
    private_file(path)
    for suffix in SQLITE_SIDE_FILES:
        side = path.with_name(path.name + suffix)
        if side.exists():
            _tighten(side)
    return path


def _tighten(path: Path) -> None:
    try:
        if path.stat().st_mode & 0o777 != FILE_MODE:
            os.chmod(path, FILE_MODE)
    except PermissionError as exc:  # another user's file, used through a group: theirs to set
        log.warning("cannot make %s readable by its owner only: %s", path, exc.strerror)
    except FileNotFoundError:
        pass
