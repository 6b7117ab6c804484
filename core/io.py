"""Files in and out: YAML read safely and validated against a schema, results written atomically.

A leaf beside :mod:`hvl.core.errors`: every part of hvl may import it.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from .errors import HVLInputError, format_validation_error

__all__ = ["atomic_dir", "atomic_path", "atomic_write_bytes", "atomic_writer", "confined_dir", "file_sha256",
           "hash_file", "load_config", "npy_bytes", "open_append", "open_lock", "read_json", "read_npy", "read_yaml",
           "remove_inside", "write_json", "write_npy"]

M = TypeVar("M", bound=BaseModel)
# libyaml's SafeLoader where PyYAML was built with it: the same safe subset (no tags that build objects), ~10x
# faster on a query set of 20,000 entries
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# mkstemp creates 0600 files; written files get the mode open() would give them (read once, at import, since
# reading the umask means setting it)
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def read_yaml(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise HVLInputError(f"{path}: file not found")
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER)
    except UnicodeDecodeError as e:
        raise HVLInputError(f"{path}: not UTF-8 text (byte {e.start}); save the file as UTF-8") from None
    except yaml.YAMLError as e:
        raise HVLInputError(f"{path}: not valid YAML ({e})") from None


def load_config(path: str | Path, model: type[M]) -> M:
    """A YAML file validated against ``model``; errors name the file and the field."""
    data = read_yaml(path)
    try:
        return model.model_validate(data or {})
    except ValidationError as e:
        raise HVLInputError(format_validation_error(e, path)) from None


_JSON_TYPES = {dict: "an object ({...})", list: "an array ([...])"}


def read_json(path: str | Path, what: str = "the file", fix: str = "restore it or delete it",
              top: type = dict) -> Any:
    """``path`` parsed as JSON whose top level is a ``top``; anything else is one HVLInputError naming the file,
    what is wrong with it, ``what`` it should hold and the ``fix``: a missing file, bytes that are not UTF-8 (a
    BOM is allowed), text that is not JSON or holds a number too long to read, nesting deeper than the parser
    recurses (shared files are read by hvl, so their shape must not decide whether it crashes), and a top level
    of another type."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise HVLInputError(f"{path}: file not found; {fix}") from None
    except IsADirectoryError:
        raise HVLInputError(f"{path}: a folder where {what} should be; {fix}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise HVLInputError(f"{path}: not UTF-8 text (byte {e.start}), so not {what}; {fix}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise HVLInputError(f"{path}, line {e.lineno}: not valid JSON ({e.msg}), so not {what}; {fix}") from None
    except RecursionError:
        raise HVLInputError(f"{path}: nested too deeply to read (more levels than Python recurses), so not {what}; "
                            f"{fix}") from None
    except ValueError as e:  # an integer of more than 4300 digits
        raise HVLInputError(f"{path}: not readable as JSON ({str(e)[:120]}), so not {what}; {fix}") from None
    if not isinstance(data, top):
        found = next((v for k, v in _JSON_TYPES.items() if isinstance(data, k)), f"a {type(data).__name__}")
        raise HVLInputError(f"{path}: expected {what} as {_JSON_TYPES.get(top, top.__name__)}, found {found}; {fix}")
    return data


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temp_beside(path: Path) -> tuple[int, str]:
    """An open, new, exclusive file in ``path``'s folder, named ``.<name>.<random>.tmp`` (what orphan cleanups
    match)."""
    return tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")


@contextlib.contextmanager
def atomic_writer(path: str | Path) -> Iterator[IO[bytes]]:
    """The one way hvl creates a temporary file: yields a binary file that becomes ``path`` when the block ends.

    The temporary file is made by :func:`tempfile.mkstemp` in ``path``'s folder: an unpredictable name opened
    with ``O_CREAT | O_EXCL | O_NOFOLLOW``, so a link planted in a shared folder under any name hvl might pick is
    never followed, and no other process's file is overwritten. Then fsync, an atomic rename over ``path`` (which
    replaces a link at ``path`` itself, never its target) and an fsync of the folder: a reader never sees half a
    file, a crash keeps the old one, and an exception leaves nothing behind."""
    path = Path(path)
    fd, tmp = _temp_beside(path)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """``data`` written to ``path`` through :func:`atomic_writer`."""
    with atomic_writer(path) as f:
        f.write(data)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """For a writer that takes a file name, not a file (PyAV, FFmpeg): the name of a new temporary file beside
    ``path``, created as :func:`atomic_writer` creates its own (so a planted link is never followed), that
    becomes ``path`` when the block ends; an exception leaves nothing behind. The writer opens an existing
    regular file that this process just made under an unpredictable name."""
    path = Path(path)
    fd, tmp = _temp_beside(path)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        os.close(fd)
        yield Path(tmp)
        fd = os.open(tmp, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """A folder's counterpart of :func:`atomic_path`: a new, empty, exclusive folder beside ``path``
    (:func:`tempfile.mkdtemp`: ``mkdir`` never follows a link), filled in the block, then renamed over ``path``
    (an earlier folder there is replaced, and a link there is removed as a link, never followed)."""
    import shutil

    path = Path(path)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        os.chmod(tmp, 0o777 & ~_UMASK)
        yield tmp
        if path.is_symlink():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(path.parent)


def open_append(path: str | Path, what: str = "files it appends to") -> IO[bytes]:
    """``path`` opened to append (created if missing), never through a link (``O_NOFOLLOW``): a planted
    ``x.jsonl -> ~/.bashrc`` is refused instead of creating or growing the file it points at."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o644)
    except OSError:
        if path.is_symlink():
            raise HVLInputError(f"{path}: is a symbolic link; hvl opens its {what} only as regular files "
                                "(delete the link)") from None
        raise
    return os.fdopen(fd, "ab")


def open_lock(path: str | Path) -> IO[bytes]:
    """A lock file opened for ``flock``, never through a link (``O_NOFOLLOW``): a planted ``x.lock -> ~/.bashrc``
    is refused instead of creating or touching the file it points at."""
    return open_append(path, "lock files")


def confined_dir(root: str | Path, *parts: str, create: bool = False) -> Path:
    """``root/parts...``, refused with one error when any part is a symbolic link or the folder resolves outside
    ``root``: a shared index folder decides nothing about where hvl writes, deletes or reads. ``root`` itself
    may be a link (the user named it); what lies inside it is data. ``create`` makes missing folders."""
    root = Path(root)
    real_root = root.resolve()
    d = root
    for part in parts:
        if not part or part in (".", "..") or "/" in part or "\\" in part:
            raise ValueError(f"not a plain folder name: {part!r}")
        d = d / part
        if d.is_symlink():
            raise HVLInputError(f"{d}: is a symbolic link (to {os.readlink(d)!r}); hvl reads and writes only real "
                                f"folders inside {root} — replace the link by a folder, or delete it and re-run")
        if not d.exists():
            if not create:
                return d
            d.mkdir(exist_ok=True)
        elif not d.is_dir():
            raise HVLInputError(f"{d}: expected a folder, found a file; delete it and re-run")
    if not d.resolve().is_relative_to(real_root):
        raise HVLInputError(f"{d}: resolves outside {root}; hvl reads and writes only inside the folder it is given")
    return d


def remove_inside(folder: str | Path, name: str) -> bool:
    """Delete the file ``folder/name`` that hvl itself recorded: a plain name (no separator, not ``..``) in a
    confined folder. A link is removed as a link, never its target. Returns whether something was deleted."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        return False
    p = Path(folder) / name
    try:
        if p.is_dir() and not p.is_symlink():
            return False
        p.unlink()
        return True
    except FileNotFoundError:
        return False


def hash_file(h: Any, path: str | Path) -> Any:
    """``h`` (a :mod:`hashlib` object) updated with the bytes of ``path``, read in 1 MiB blocks; returns ``h``."""
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h


def file_sha256(path: str | Path) -> str:
    """The hex sha256 of a file's bytes (what ``sha256sum`` prints)."""
    import hashlib

    return hash_file(hashlib.sha256(), path).hexdigest()


def npy_bytes(arr: Any) -> bytes:
    """``arr`` as the bytes of a ``.npy`` file (no pickled objects), for :func:`atomic_write_bytes`."""
    import io

    import numpy as np  # here, not at the top: `hvl --help` imports this module and never needs numpy

    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def write_npy(path: str | Path, arr: Any) -> None:
    """``arr`` written atomically as a ``.npy`` file."""
    atomic_write_bytes(path, npy_bytes(arr))


def read_npy(path: str | Path, mmap: bool = False) -> Any:
    """A ``.npy`` file, never unpickling objects (``mmap``: memory-mapped, read-only)."""
    import numpy as np

    return np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)


def write_json(path: str | Path, obj: Any) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, (json.dumps(obj, indent=2) + "\n").encode())
    return out
