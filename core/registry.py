"""Domains are plugins found through the ``hvl.domains`` entry-point group, so core never imports one."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from .errors import HVLInputError


@dataclass
class Domain:
    """What a domain brings: a demo generator (and the options of its ``hvl demo <name>``), eval readers
    (name → records), shipped prompt files."""

    name: str
    demo: Callable[..., dict[str, Any]]
    readers: dict[str, Callable[..., list]] = field(default_factory=dict)
    prompts_dir: Path | None = None
    description: str = ""
    query_types: tuple[str, ...] = ()  # kinds of search query its query sets use (gameplay: bug, simple, compound)
    # declares the options of ``hvl demo <name>`` beyond --out and --seed on the parser it is given (calls of
    # ``add_argument``); their values reach ``demo`` as keywords, by ``dest``
    add_demo_arguments: Callable[[Any], None] | None = None
    # per-frame keypoints beside its videos (:class:`hvl.core.data.keypoints.KeypointReader`), for pose-aware models
    keypoints: Any = None


def available() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group="hvl.domains")}


def get_domain(name: str) -> Domain:
    eps = available()
    if name not in eps:
        raise HVLInputError(f"unknown domain '{name}'; installed domains: {sorted(eps) or 'none'} "
                            "(a domain registers itself under the 'hvl.domains' entry point)")
    return eps[name].load()


def generate_demo(name: str, out: str | Path, seed: int = 0, **options: Any) -> dict[str, Any]:
    """``hvl demo <name>``: the domain's seeded demo dataset under ``out``, and its summary printed as JSON."""
    import json

    summary = get_domain(name).demo(str(out), seed=seed, **options)
    print(json.dumps(summary, indent=2, default=str))
    return summary


def describe_domains() -> None:
    """``hvl domains``: each installed domain and what it is for, one a line."""
    for name in sorted(available()):
        print(f"{name}: {get_domain(name).description}")


DEFAULT_QUERY_TYPES = ("simple", "compound")


def query_types() -> tuple[str, ...]:
    """The query types of the installed domains, in their order (the first is the default), else the neutral two."""
    out: list[str] = []
    for name in sorted(available()):
        try:
            out += [t for t in get_domain(name).query_types if t not in out]
        except Exception:  # noqa: BLE001, S112 (a broken third-party plugin must not take search down with it)
            continue
    return tuple(out) or DEFAULT_QUERY_TYPES


def resolve_prompt_file(spec: str) -> Path:
    """A path, or ``<domain>:<name>`` for a prompt file shipped with a domain (e.g. ``surgical:cholec80``)."""
    p = Path(spec)
    if p.is_file() or ":" not in spec:
        return p
    domain, name = spec.split(":", 1)
    d = get_domain(domain)
    if d.prompts_dir is None:
        raise HVLInputError(f"domain '{domain}' ships no prompt files")
    return d.prompts_dir / (name if name.endswith(".yaml") else f"{name}.yaml")
