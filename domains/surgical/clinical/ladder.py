"""The ladder for a user's own model: zero-shot → windows → K shots → linear probe → temporal head on their labelled
training videos and test set (:func:`hvl.core.evaluation.adapt.run_ladder`), with its table and plot for the
clinical notebook."""
from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hvl.core.errors import HVLInputError
from hvl.core.io import write_json

from .page import html_table
from .plots import figure_png, plot_ladder
from .review import load_videos

__all__ = ["evaluate_ladder", "ladder_rows"]


def ladder_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Flat rows for a table: rung, space, mean ± std of each metric, Δ accuracy vs zero-shot with its CI."""
    out = []
    for r in rows:
        d = r["vs_zeroshot"]["accuracy"]
        out.append({"rung": r["rung"], "space": r["level"],
                    **{m: f"{r[m]['mean']:.3f} ± {r[m]['std']:.3f}" for m in ("accuracy", "f1_macro", "jaccard")},
                    "Δ accuracy vs zero-shot [95% CI]": f"{d['delta']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}]"})
    return out


def evaluate_ladder(ckpt: str | Path, train: str | Path, dataset: str | Path, prompts: str, *,
                    dataset_format: str = "manifest", domain: str = "surgical", split: str | None = None,
                    train_split: str = "train", levels: Sequence[str] = ("clip", "phase"),
                    seeds: Sequence[int] = (0, 1, 2), windows: Sequence[float] = (2, 4, 8),
                    shots: Sequence[int] = (1, 4, 16), fractions: Sequence[float] = (0.1, 1.0),
                    probe_windows: Sequence[float] = (4,), temporal: bool = True, fps: float = 1.0,
                    n_boot: int = 2000, num_workers: int = 2, out_dir: str | Path = "clinical_report",
                    cache_dir: str | None = "data/feature_cache", text_model: str | None = None,
                    head_options: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The ladder of one checkpoint (or pretrained model) on labelled training videos ``train`` (a manifest; for a
    domain reader such as ``cholec80``, the dataset root with ``train_split``) and the test set ``dataset``. Seeds
    draw the shots / videos and initialise the heads. Writes ``ladder.png`` and ``ladder.json`` in ``out_dir``."""
    from hvl.core.data.schema import load_prompt_file
    from hvl.core.evaluation.adapt.ladder import default_rungs, ladder_table, run_ladder
    from hvl.core.evaluation.zeroshot.config import check_inputs
    from hvl.core.models.backbones import BACKBONES
    from hvl.core.models.checkpoint import load_for_eval, preprocess_of
    from hvl.core.registry import resolve_prompt_file

    if isinstance(seeds, (str, bytes)) or not seeds or not all(isinstance(x, int) and not isinstance(x, bool)
                                                             for x in seeds):
        raise HVLInputError(f"ladder seeds must be a non-empty list of whole numbers, e.g. [0, 1, 2] (got {seeds!r}; "
                            "with papermill pass lists as YAML: -y 'ladder_seeds: [0, 1, 2]')")
    t0 = time.perf_counter()
    prompt_file = load_prompt_file(resolve_prompt_file(prompts))
    options = {"split": split} if dataset_format != "manifest" and split else {}
    test = load_videos(dataset, dataset_format, domain, **options)
    if dataset_format == "manifest":
        train_videos = load_videos(train, "manifest", domain)
    else:
        train_videos = load_videos(train, dataset_format, domain, split=train_split)
    check_inputs(train_videos, prompt_file)
    check_inputs(test, prompt_file)
    pretrained = Path(ckpt).is_dir() or str(ckpt).split(":", 1)[0] in BACKBONES
    model, meta = load_for_eval(None if pretrained else ckpt, str(ckpt) if pretrained else None, text_model)
    rungs = default_rungs(windows, shots, fractions, probe_windows, temporal)
    run = run_ladder(model, preprocess_of(meta), train_videos, test, prompt_file, levels, rungs, seeds, fps,
                     cache_dir, num_workers=num_workers, head_options=head_options)
    rows = ladder_table([run], n_boot)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figure = out / "ladder.png"
    figure.write_bytes(figure_png(plot_ladder(rows, f"the ladder of {Path(str(ckpt)).name} ({len(seeds)} seed(s))")))
    table = ladder_rows(rows)
    result = {"checkpoint": str(ckpt), "train": str(train), "dataset": str(dataset), "prompts": prompts,
              "seeds": list(seeds), "rows": rows, "table": table, "figure": str(figure), "html": html_table(table),
              "n_train_videos": len(train_videos), "n_test_videos": len(test),
              "seconds": round(time.perf_counter() - t0, 1)}
    result["json"] = str(write_json(out / "ladder.json", {k: v for k, v in result.items() if k != "html"}))
    return result
