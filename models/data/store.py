"""The artifact store: datasets in, weights and models out, addressed by id only.

Files are written under a temporary name and renamed into place, so a reader never sees a
half-written file where a finished one should be. No user-given path ever reaches the disk:
every path is built from a kind, a server-made id and a fixed file name.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from models.errors import ArtifactNotFound

_ID = re.compile(r"^[0-9a-f]{32}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
KINDS = ("datasets", "jobs")


def _sync(path: Path) -> None:
    """Flush a file's bytes, or a folder's entries, to disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class LocalStore:
    """A folder on local disk or on a shared volume mounted by every API and worker."""

    def __init__(self, root: Path) -> None:
        self.root = root
        for kind in KINDS:
            (root / kind).mkdir(parents=True, exist_ok=True)
        (root / "tmp").mkdir(parents=True, exist_ok=True)

    def folder(self, kind: str, item_id: str) -> Path:
        if kind not in KINDS or not _ID.match(item_id):
            raise ArtifactNotFound(f"No {kind} item with id {item_id!r}.")
        return self.root / kind / item_id

    def path(self, kind: str, item_id: str, name: str) -> Path:
        """Where ``name`` of item ``item_id`` lives; the file may not exist yet."""
        if not _NAME.match(name) or ".." in name:
            raise ValueError(f"Invalid artifact name {name!r}.")
        return self.folder(kind, item_id) / name

    def exists(self, kind: str, item_id: str, name: str) -> bool:
        return self.path(kind, item_id, name).is_file()

    def temp_path(self, suffix: str = "") -> Path:
        """A fresh path in the store's own tmp folder (same filesystem, so renames are atomic)."""
        return self.root / "tmp" / f"{uuid.uuid4().hex}{suffix}"

    @contextmanager
    def writing(self, kind: str, item_id: str, name: str) -> Iterator[Path]:
        """Yield a temporary path to write; on success it is renamed to its final name.

        The file and its folder are on disk once this returns, as with :meth:`adopt`, so the
        row that names the file is committed after it. On error the temporary file is removed
        and the final name is untouched.
        """
        final = self.path(kind, item_id, name)
        new_folder = not final.parent.is_dir()
        final.parent.mkdir(parents=True, exist_ok=True)
        suffix = "".join(Path(name).suffixes)
        temp = final.parent / f".tmp-{uuid.uuid4().hex}{suffix}"
        try:
            yield temp
            if not temp.exists():
                raise FileNotFoundError(f"Nothing was written to {temp}.")
            _sync(temp)
            os.replace(temp, final)
            _sync(final.parent)
            if new_folder:  # the item's folder is itself an entry of its kind's folder
                _sync(final.parent.parent)
        finally:
            temp.unlink(missing_ok=True)

    def remove_temporaries(self, kind: str, item_id: str) -> int:
        """Delete what a crashed writer left of ``writing()`` in an item's folder.

        Only for the item's one writer (the worker that just claimed a job): the previous
        owner of the job was killed or gave it up, so its temporaries will never be renamed.
        """
        removed = 0
        for temp in self.folder(kind, item_id).glob(".tmp-*"):
            temp.unlink(missing_ok=True)
            removed += 1
        return removed

    def adopt(self, temp: Path, kind: str, item_id: str, name: str) -> Path:
        """Move a finished temporary file into place under ``kind/item_id/name``.

        The file and its folder are on disk when this returns, so a row committed next never
        names a file that a power cut loses.
        """
        final = self.path(kind, item_id, name)
        final.parent.mkdir(parents=True, exist_ok=True)
        _sync(temp)
        os.replace(temp, final)
        _sync(final.parent)
        _sync(final.parent.parent)  # the item's new folder is an entry of its kind's folder
        return final

    def delete(self, kind: str, item_id: str) -> None:
        """Remove every file of an item; missing items are fine."""
        shutil.rmtree(self.folder(kind, item_id), ignore_errors=True)

    def reachable(self) -> bool:
        probe = self.temp_path(".probe")
        try:
            probe.write_bytes(b"ok")
            probe.unlink()
            return True
        except OSError:
            return False
