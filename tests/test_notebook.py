"""The clinical evaluation notebook runs headless (papermill) on the demo and reports `hvl zeroshot`'s numbers."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "clinical_evaluation.ipynb"

# Prompt file B: surgical:demo reworded (one templated phrase per class instead of two sentences).
REWORDED = """\
level: phase
templates: ["a laparoscopic cholecystectomy video frame showing {}"]
classes:
  - {name: Preparation, text: "trocar ports being placed"}
  - {name: CalotTriangleDissection, text: "the hook dissecting calot's triangle"}
  - {name: ClippingCutting, text: "clips on the cystic duct and scissors cutting it"}
  - {name: GallbladderDissection, text: "the gallbladder being separated from the liver"}
  - {name: GallbladderPackaging, text: "the gallbladder going into a specimen bag"}
  - {name: CleaningCoagulation, text: "irrigation, suction and coagulation of bleeding"}
  - {name: GallbladderRetraction, text: "the specimen bag pulled out through a port"}
"""


@pytest.fixture
def kernel_name(tmp_path, monkeypatch) -> str:
    """A 'python3' kernel spec; installed into a temporary prefix (not the venv) if none is found."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:
        prefix = tmp_path / "jupyter"
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--prefix", str(prefix), "--name", "python3"],
                       check=True, capture_output=True)
        monkeypatch.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))
    return "python3"


def test_notebook_on_demo_matches_hvl_zeroshot(trained_demo, tmp_path, monkeypatch, kernel_name):
    import papermill
    from mlflow import MlflowClient

    work, ckpt, zeroshot = trained_demo
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # the kernel inherits the environment
    prompts_b = tmp_path / "reworded.yaml"
    prompts_b.write_text(REWORDED)
    out = tmp_path / "report"
    t0 = time.perf_counter()
    papermill.execute_notebook(
        str(NOTEBOOK), str(tmp_path / "executed.ipynb"), kernel_name=kernel_name, cwd=str(tmp_path),
        progress_bar=False, execution_timeout=600,
        parameters={"checkpoint": str(ckpt), "dataset": str(work / "data" / "demo_surgical" / "test.jsonl"),
                    "dataset_format": "manifest", "prompts_a": "surgical:demo", "prompts_b": str(prompts_b),
                    "fps": 1.0, "smoothing": "mode", "smoothing_window": 5, "out_dir": str(out), "mlflow": True})
    print(f"notebook executed in {time.perf_counter() - t0:.1f} s")

    # what it produced
    html = (out / "report.html").read_text()
    videos = [json.loads(line)["video_id"] for line in (work / "data" / "demo_surgical" / "test.jsonl").open()]
    figures = ["confusion_a", "confusion_b", "progress", "prompt_comparison", "failures",
               *(f"ribbon_{v}" for v in videos)]
    for name in figures:
        assert (out / f"{name}.png").stat().st_size > 1000, name
        assert f"href='{name}.png'" in html, name
    assert html.count("data:image/png;base64,") == len(figures)

    # prompt file A's metrics are hvl zeroshot's (same checkpoint, videos, prompts, level, fps, image size)
    result = json.loads((out / "clinical.json").read_text())
    a = result["a"]
    assert (a["level"], a["zeroshot"]["fps"], result["image_size"]) == ("phase", 1.0, 64)
    for k in ("accuracy", "f1_macro", "jaccard"):
        assert a["zeroshot"][k] == pytest.approx(zeroshot[k], abs=1e-6), k
        assert a["ci"][k]["mean"] == pytest.approx(zeroshot[k], abs=1e-6), k
        assert a["ci"][k]["lo"] <= zeroshot[k] <= a["ci"][k]["hi"] + 1e-9
        assert a["zeroshot"]["pooled"][k] == pytest.approx(zeroshot["pooled"][k], abs=1e-6)
    assert [(r["video_id"], r["n_frames"]) for r in a["per_video"]] == \
        [(r["video_id"], r["n_frames"]) for r in zeroshot["per_video"]]
    assert result["b"]["prompt_file"] == str(prompts_b) and len(result["comparison"]["per_phase"]) == 7

    # and the same went to MLflow
    run = MlflowClient(uri).get_run(result["mlflow_run_id"])
    for k in ("accuracy", "f1_macro", "jaccard"):
        assert run.data.metrics[f"clinical/demo/{k}"] == pytest.approx(zeroshot[k], abs=1e-6)
    assert "clinical/reworded/accuracy" in run.data.metrics
    logged = {Path(f.path).name for f in MlflowClient(uri).list_artifacts(run.info.run_id, "clinical/demo")}
    assert {"report.html", "clinical.json", "confusion_a.png"} <= logged
