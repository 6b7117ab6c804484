"""The files `hvl serve` may send: fixed at startup, confined to one folder, checked again when they are opened.

An index or a predictions folder is often someone else's file, and every path in it is data, not a
permission. So a file is served only if, when the server starts,

1. it resolves (symlinks followed) to a regular file inside the served folder (``--videos``, else the
   ``videos_root`` the index recorded), with a video suffix;
2. its identity is recorded: device, inode, size and modification time.

and, at each request, it is opened without following a final symlink and its ``fstat`` must still be that
identity. A file replaced after startup (a symlink to ``/etc/passwd``, another file moved over it) is a
different inode and is refused, whatever path games put it there.
"""
from __future__ import annotations

import os
import stat
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from starlette.responses import FileResponse

from ...errors import HVLInputError

VIDEO_TYPES = {".mp4": "video/mp4", ".webm": "video/webm", ".mkv": "video/x-matroska", ".mov": "video/quicktime",
               ".avi": "video/x-msvideo"}


class FileGone(Exception):
    """A served file that is missing, outside the folder, or no longer the file recorded at startup."""


@dataclass(frozen=True)
class ServedFile:
    path: Path   # resolved, inside the served folder
    identity: tuple[int, int, int, int]  # st_dev, st_ino, st_size, st_mtime_ns at startup

    @property
    def media_type(self) -> str:
        return VIDEO_TYPES[self.path.suffix.lower()]


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


class ServedFolder:
    """One folder whose video files may be served; :meth:`admit` decides at startup, :meth:`open` at request time."""

    def __init__(self, root: str | Path, named_by: str):
        self.root = Path(root).resolve()
        if self.root == Path(self.root.anchor):
            raise HVLInputError(f"{named_by} is the file-system root '{self.root}': the index could then name any "
                                "video on this machine; pass --videos <the folder that holds its videos>")
        if self.root.is_file():  # an index built from a manifest records the manifest
            self.root = self.root.parent
        self.named_by = named_by

    def admit(self, path: str | Path) -> ServedFile:
        """The file at ``path`` as it is now, or :class:`FileGone` with the reason."""
        p = Path(path)
        try:
            real = p.resolve(strict=True)
        except (OSError, RuntimeError):
            raise FileGone(f"the video file of this entry is gone ({p.name})") from None
        if not real.is_relative_to(self.root):
            raise FileGone(f"{p.name} is outside the served folder {self.root} (set by {self.named_by}); "
                           "start hvl serve with --videos <folder> to serve another folder")
        if real.suffix.lower() not in VIDEO_TYPES:
            raise FileGone(f"{p.name} is not a video file ({sorted(VIDEO_TYPES)})")
        st = os.stat(real, follow_symlinks=False)
        if not stat.S_ISREG(st.st_mode):
            raise FileGone(f"{p.name} is not a regular file")
        return ServedFile(real, _identity(st))

    @staticmethod
    def open(f: ServedFile) -> int:
        """A read-only descriptor of ``f``, refused unless it is still the file recorded at startup."""
        try:
            fd = os.open(f.path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            raise FileGone(f"{f.path.name} is gone or was replaced by a link since hvl serve started") from None
        if _identity(os.fstat(fd)) != f.identity:
            os.close(fd)
            raise FileGone(f"{f.path.name} changed since hvl serve started; restart it to serve the new file")
        return fd


class VerifiedFileResponse(FileResponse):
    """Starlette's ``FileResponse`` (range requests, HEAD) reading from a descriptor checked by :meth:`ServedFolder.open`."""

    def __init__(self, f: ServedFile, **kw: Any):
        fd = ServedFolder.open(f)
        os.close(fd)  # checked now, for a clear 404 before headers; checked again when the body is read
        st = os.stat(f.path, follow_symlinks=False)
        super().__init__(f.path, media_type=f.media_type, stat_result=st, **kw)
        self.served = f

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        ext = dict(scope.get("extensions") or {})
        ext.pop("http.response.pathsend", None)  # the server would reopen the path itself
        await super().__call__({**scope, "extensions": ext}, receive, send)

    @asynccontextmanager
    async def _open_file(self):
        file = anyio.wrap_file(os.fdopen(ServedFolder.open(self.served), "rb"))
        try:
            yield file
        finally:
            with anyio.CancelScope(shield=True):  # closing must finish even when the transfer is cancelled
                await file.aclose()
