"""``hvl demo <domain> --out DIR [--seed N]``: a domain's seeded demo dataset. A domain declares options of its own
(``Domain.add_demo_arguments``, e.g. ``hvl demo surgical --preset realistic``); each is listed under its domain in
``hvl demo --help``, and refused for another domain."""
from __future__ import annotations

import argparse
from typing import Any

COMMON = ("command", "domain", "out", "seed", "demo_options")


class _Recorder:
    """Stands in for a parser: keeps a domain's ``add_argument`` calls, to declare them once for all domains."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def add_argument(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append((args, kwargs))


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..registry import available, get_domain

    p.add_argument("domain", help="an installed domain (`hvl domains`)")
    p.add_argument("--out", required=True, help="folder to write the demo into")
    p.add_argument("--seed", type=int, default=0, help="everything the demo draws is a function of it")
    owners: dict[str, tuple[str, set[str]]] = {}  # dest -> (its flag, the domains that declare it)
    dest_of: dict[str, str] = {}  # flag -> dest
    for name in sorted(available()):
        try:
            plugin = get_domain(name)
        except Exception:  # noqa: BLE001, S112 (a broken plugin says what is wrong when its demo is asked for)
            continue
        if plugin.add_demo_arguments is None:
            continue
        recorder = _Recorder()
        plugin.add_demo_arguments(recorder)
        group = p.add_argument_group(f"options of the {name} demo")
        for args, kwargs in recorder.calls:
            dest = next((dest_of[a] for a in args if a in dest_of), None)
            if dest is None:  # absent unless given: the domain's own defaults apply
                action = group.add_argument(*args, **{**kwargs, "default": argparse.SUPPRESS})
                dest = action.dest
                dest_of.update(dict.fromkeys(action.option_strings, dest))
                owners[dest] = (action.option_strings[0], set())
            owners[dest][1].add(name)
    p.set_defaults(demo_options=owners)


def run(args: argparse.Namespace) -> None:
    from ..errors import HVLInputError
    from ..registry import available, generate_demo

    options = {k: v for k, v in vars(args).items() if k not in COMMON}
    for dest in options:
        flag, domains = args.demo_options[dest]
        if args.domain not in domains and args.domain in available():  # an unknown domain: generate_demo says so
            raise HVLInputError(f"{flag}: the {args.domain} demo has no such option (it is the "
                                f"{' and '.join(sorted(domains))} demo's); drop {flag}")
    generate_demo(args.domain, args.out, seed=args.seed, **options)
