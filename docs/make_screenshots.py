"""Remakes docs/images/predict_review.png, the review page of `hvl serve --zeroshot DIR --videos FOLDER` on a
timeline of `hvl predict` (no index, no labels).

    .venv/bin/python docs/make_screenshots.py

It runs the browser test that asserts that page (``tests/test_serve_browser.py::
test_review_page_of_unlabelled_timelines``: headless Debian Chromium through Selenium, ``apt-get install -y chromium
chromium-driver``), which saves its screenshot where ``HVL_SCREENSHOTS`` points; the page's empty margin below is
cut off and the picture scaled to 960 pixels wide, so the file stays small.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageChops

ROOT = Path(__file__).resolve().parents[1]
TEST = "tests/test_serve_browser.py::test_review_page_of_unlabelled_timelines"
OUT = ROOT / "docs" / "images" / "predict_review.png"
WIDTH = 960


def trimmed(im: Image.Image, margin: int = 12) -> Image.Image:
    """``im`` without the rows of page background (its bottom-right pixel's colour) below the content."""
    background = Image.new(im.mode, im.size, im.getpixel((im.width - 1, im.height - 1)))
    box = ImageChops.difference(im, background).getbbox()
    return im if box is None else im.crop((0, 0, im.width, min(im.height, box[3] + margin)))


def main() -> int:
    with tempfile.TemporaryDirectory() as shots:
        env = {**os.environ, "HVL_SCREENSHOTS": shots, "HVL_REQUIRE_BROWSER": "1"}
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TEST], cwd=ROOT, env=env,
                       check=True)
        with Image.open(Path(shots) / "predict_review.png") as im:
            page = trimmed(im.convert("RGB"))
    scaled = page.resize((WIDTH, round(page.height * WIDTH / page.width)), Image.LANCZOS)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    scaled.save(OUT, optimize=True)
    print(f"{OUT.relative_to(ROOT)}: {scaled.width}x{scaled.height}, {OUT.stat().st_size // 1024} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
