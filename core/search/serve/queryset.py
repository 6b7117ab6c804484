"""Testers' judgements → a query set in exactly the format `hvl bugsearch-eval` reads.

Two files beside each other:

* ``<queries>.yaml``: ``queries: [{id, type, text, relevant: [video ids], bug?}]`` — what
  ``hvl.core.search.evaluate.load_queries`` reads; holds the queries with at least one relevant video
  (the format requires one);
* ``<queries>.judgements.json``: every verdict, "not relevant" included (the evaluation format has no
  place for them, and a query may have none relevant yet). It is the record the YAML is written from.

A save re-reads both files, applies one verdict and writes both atomically (temporary file, fsync,
rename), all under a thread lock and an ``flock`` on ``<queries>.lock``: two browser tabs, or two
servers on the same file, never lose each other's verdicts. Queries already in the YAML (e.g. the
demo's ``queries.yaml``, or hand-written ones) are taken over on first read.
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
from typing import Any

import yaml

from ...errors import HVLInputError
from ...io import atomic_write_bytes, write_json

JUDGEMENTS_FORMAT = "hvl-judgements"


def normalise(text: str) -> str:
    return " ".join(text.split()).lower()


def query_id(text: str) -> str:
    """Readable and stable: the same text (up to case and spacing) is the same query."""
    norm = normalise(text)
    slug = re.sub(r"[^a-z0-9]+", "-", norm).strip("-")[:48] or "query"
    return f"{slug}-{hashlib.sha1(norm.encode()).hexdigest()[:6]}"


class QuerySetStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        if self.path.suffix not in (".yaml", ".yml"):
            raise HVLInputError(f"--queries {self.path}: the query set is YAML; name it e.g. queries.yaml")
        self.judgements = self.path.with_name(self.path.stem + ".judgements.json")
        self.lockfile = self.path.with_name(self.path.stem + ".lock")
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._locked():
            self._read()  # a broken file is reported at startup, not at the first save

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock, open(self.lockfile, "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _read(self) -> list[dict[str, Any]]:
        from ..evaluate import load_queries

        queries: list[dict[str, Any]] = []
        if self.judgements.is_file():
            try:
                data = json.loads(self.judgements.read_text())
                queries = list(data["queries"])
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise HVLInputError(f"{self.judgements}: unreadable judgements ({e}); restore it or delete it "
                                    f"(the query set {self.path.name} is kept and read back)") from None
        if self.path.is_file():
            known = {q["id"] for q in queries} | {normalise(q["text"]) for q in queries}
            for q in load_queries(self.path).queries:  # validated: a broken file names its line and field
                if q.id not in known and normalise(q.text) not in known:
                    queries.append({"id": q.id, "type": q.type, "text": q.text, "bug": q.bug,
                                    "relevant": list(q.relevant), "not_relevant": []})
        return queries

    def _write(self, queries: list[dict[str, Any]]) -> None:
        write_json(self.judgements, {"format": JUDGEMENTS_FORMAT, "version": 1, "queries": queries})
        evaluated = [{"id": q["id"], "type": q["type"], "text": q["text"], "relevant": q["relevant"]}
                     | ({"bug": q["bug"]} if q.get("bug") else {}) for q in queries if q["relevant"]]
        if evaluated:
            atomic_write_bytes(self.path, yaml.safe_dump({"queries": evaluated}, sort_keys=False,
                                                         allow_unicode=True).encode())
        else:  # the format needs at least one query; every verdict is still in the judgements file
            self.path.unlink(missing_ok=True)

    def all(self) -> list[dict[str, Any]]:
        with self._locked():
            return self._read()

    def judge(self, text: str, type_: str, video_id: str, relevant: bool | None) -> dict[str, Any]:
        """Record one verdict (``None`` removes it) and return the query as saved."""
        with self._locked():
            queries = self._read()
            norm = normalise(text)
            q = next((q for q in queries if normalise(q["text"]) == norm), None)
            if q is None:
                q = {"id": query_id(text), "type": type_, "text": " ".join(text.split()), "bug": None,
                     "relevant": [], "not_relevant": []}
                queries.append(q)
            q["type"] = type_
            q["relevant"] = [v for v in q["relevant"] if v != video_id]
            q["not_relevant"] = [v for v in q["not_relevant"] if v != video_id]
            if relevant is not None:
                q["relevant" if relevant else "not_relevant"].append(video_id)
            self._write(queries)
            return q
