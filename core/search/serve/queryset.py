"""Testers' judgements → a query set in exactly the format `hvl bugsearch-eval` reads.

Two files beside each other:

* ``<queries>.yaml``: ``queries: [{id, type, text, relevant: [video ids], bug?}]`` — what
  ``hvl.core.search.evaluate.load_queries`` reads; holds the queries with at least one relevant video
  (the format requires one);
* ``<queries>.judgements.json``: every verdict, "not relevant" included (the evaluation format has no
  place for them, and a query may have none relevant yet). It is the record the YAML is written from.

The store keeps the query set in memory, keyed by id (and by normalised text), and re-reads the files only
when one changed since this process last read or wrote it (another server on the same file, a hand edit):
a save costs one write of both files, not a parse of every query. Saves run under a thread lock and an
``flock`` on ``<queries>.lock`` and write atomically (temporary file, fsync, rename), YAML first: two
browser tabs, or two servers on the same file, never lose each other's verdicts.

Hand edits win. The judgements file records the sha256 of the YAML it last wrote; a YAML that differs was
edited by someone, so its queries are merged in (their text, type, bug and relevant videos replace the
stored ones; a query deleted from the YAML loses its relevant videos, its other verdicts are kept). Queries
already in a YAML hvl never wrote (e.g. the demo's ``queries.yaml``, or hand-written ones) are taken over
the same way.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ...errors import HVLInputError, format_validation_error
from ...io import atomic_write_bytes, open_lock, read_json, write_json

JUDGEMENTS_FORMAT = "hvl-judgements"


def normalise(text: str) -> str:
    return " ".join(text.split()).lower()


def query_id(text: str) -> str:
    """Readable and stable: the same text (up to case and spacing) is the same query."""
    norm = normalise(text)
    slug = re.sub(r"[^a-z0-9]+", "-", norm).strip("-")[:48] or "query"
    return f"{slug}-{hashlib.sha1(norm.encode()).hexdigest()[:6]}"


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


# characters PyYAML's reader refuses raw (control characters, C1, U+FFFE/FFFF) or reads as line breaks inside a
# quoted string (NEL, U+2028/2029): written as \\uXXXX escapes
_NOT_YAML = re.compile("[^\x09\x0a\x0d\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _query_set_yaml(queries: list[dict[str, Any]]) -> bytes:
    """``queries:`` with one query a line, each a JSON object (a YAML flow mapping): valid YAML that any YAML
    reader and a person can read and edit, written in milliseconds where PyYAML's representer takes ~1.4 s for
    20,000 queries."""
    def flow(q: dict[str, Any]) -> str:
        return _NOT_YAML.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(q, ensure_ascii=False))

    return ("queries:\n" + "".join(f"  - {flow(q)}\n" for q in queries)).encode()


class _Judged(BaseModel):
    """One query of the judgements file, as :meth:`QuerySetStore._write` writes it."""

    model_config = ConfigDict(extra="ignore")
    id: str = Field(min_length=1)
    type: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,39}$")
    text: str = Field(min_length=1)
    bug: str | None = None
    relevant: list[str] = Field(default_factory=list)
    not_relevant: list[str] = Field(default_factory=list)


class _JudgementsFile(BaseModel):
    model_config = ConfigDict(extra="ignore")
    format: Literal["hvl-judgements"] = JUDGEMENTS_FORMAT
    version: int = 1
    yaml_sha256: str | None = None
    queries: list[_Judged]


def read_judgements(path: Path, yaml_name: str) -> tuple[list[dict[str, Any]], str | None]:
    """The queries of a judgements file and the sha256 of the YAML it last wrote; a file that is not one is one
    error naming the file, the entry and the field (the file may come with a shared index folder)."""
    fix = f"restore it or delete it (the query set {yaml_name} is kept and read back)"
    data = read_json(path, what="a judgements file ({'format': 'hvl-judgements', 'queries': [...]})", fix=fix)
    try:
        judged = _JudgementsFile.model_validate(data)
    except ValidationError as e:
        raise HVLInputError(f"{format_validation_error(e, path)}\n{fix}") from None
    return [q.model_dump() for q in judged.queries], judged.yaml_sha256


class QuerySetStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        if self.path.suffix not in (".yaml", ".yml"):
            raise HVLInputError(f"--queries {self.path}: the query set is YAML; name it e.g. queries.yaml")
        self.judgements = self.path.with_name(self.path.stem + ".judgements.json")
        self.lockfile = self.path.with_name(self.path.stem + ".lock")
        self._lock = threading.Lock()
        self._queries: dict[str, dict[str, Any]] = {}  # id -> query, in the order they were first judged
        self._by_text: dict[str, str] = {}             # normalised text -> id
        self._seen: tuple[Any, Any] | None = None      # both files' stamps when this process last read or wrote them
        self.reads = 0                                 # full re-reads, so that tests can hold "only on change"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._locked():
            self._refresh()  # a broken file is reported at startup, not at the first save

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock, open_lock(self.lockfile) as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _stamps(self) -> tuple[Any, Any]:
        return _stamp(self.judgements), _stamp(self.path)

    def _refresh(self) -> None:
        if self._seen is not None and self._stamps() == self._seen:
            return
        from ..evaluate import load_queries

        self.reads += 1
        queries: list[dict[str, Any]] = []
        written_sha = None
        if self.judgements.is_file():
            queries, written_sha = read_judgements(self.judgements, self.path.name)
        self._queries = {q["id"]: q for q in queries}
        self._by_text = {normalise(q["text"]): q["id"] for q in queries}
        if self.path.is_file() and hashlib.sha256(self.path.read_bytes()).hexdigest() != written_sha:
            edited = load_queries(self.path).queries  # validated: a broken file names its line and field
            if written_sha is not None:  # hvl wrote this file, then someone removed queries from it
                kept = {q.id for q in edited}
                for q in self._queries.values():
                    if q["id"] not in kept:
                        q["relevant"] = []
            for e in edited:
                qid = e.id if e.id in self._queries else self._by_text.get(normalise(e.text))
                q = self._queries.get(qid) if qid else None
                if q is None:
                    q = {"id": e.id, "not_relevant": []}
                    self._queries[e.id] = q
                else:
                    self._by_text.pop(normalise(q["text"]), None)
                q.update(type=e.type, text=e.text, bug=e.bug, relevant=list(e.relevant))
                q["not_relevant"] = [v for v in q.get("not_relevant", []) if v not in q["relevant"]]
                self._by_text[normalise(e.text)] = q["id"]
        self._seen = self._stamps()

    def _write(self) -> None:
        queries = list(self._queries.values())
        evaluated = [{"id": q["id"], "type": q["type"], "text": q["text"], "relevant": q["relevant"]}
                     | ({"bug": q["bug"]} if q.get("bug") else {}) for q in queries if q["relevant"]]
        sha = None
        if evaluated:  # YAML first: a crash before the judgements are written leaves a YAML that is merged back
            data = _query_set_yaml(evaluated)
            atomic_write_bytes(self.path, data)
            sha = hashlib.sha256(data).hexdigest()
        else:  # the format needs at least one query; every verdict is still in the judgements file
            self.path.unlink(missing_ok=True)
        write_json(self.judgements, {"format": JUDGEMENTS_FORMAT, "version": 1, "yaml_sha256": sha,
                                     "queries": queries})
        self._seen = self._stamps()

    def all(self) -> list[dict[str, Any]]:
        with self._locked():
            self._refresh()
            return [dict(q) for q in self._queries.values()]

    def judge(self, text: str, type_: str, video_id: str, relevant: bool | None) -> dict[str, Any]:
        """Record one verdict (``None`` removes it) and return the query as saved."""
        with self._locked():
            self._refresh()
            norm = normalise(text)
            qid = self._by_text.get(norm)
            if qid is None:
                q = {"id": query_id(text), "type": type_, "text": " ".join(text.split()), "bug": None,
                     "relevant": [], "not_relevant": []}
                self._queries[q["id"]] = q
                self._by_text[norm] = q["id"]
            else:
                q = self._queries[qid]
            q["type"] = type_
            q["relevant"] = [v for v in q["relevant"] if v != video_id]
            q["not_relevant"] = [v for v in q["not_relevant"] if v != video_id]
            if relevant is not None:
                q["relevant" if relevant else "not_relevant"].append(video_id)
            self._write()
            return dict(q)
