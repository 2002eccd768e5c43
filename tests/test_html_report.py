"""qir report --html: content, determinism, and a headless-Chromium screenshot of qkeras_3layer's
report whose chart region must contain the bars (pixel checks)."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qir.cli import main as qir_main

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from mlp_models import INPUT_TYPE, write_mlp  # noqa: E402

BLUE, ORANGE = (0x1F, 0x77, 0xB4), (0xFF, 0x7F, 0x0E)   # LUT and FF bars (qir.html_report)


def test_html_report_content_and_determinism(tmp_path, capsys):
    model = write_mlp(tmp_path / "m", "ternary")
    out = tmp_path / "o"
    assert qir_main(["compile", str(model), "-o", str(out), "--input-type", INPUT_TYPE]) == 0
    assert qir_main(["report", str(out), "--html"]) == 0
    text = (out / "report.html").read_text()
    assert qir_main(["report", str(out), "--html", str(tmp_path / "again.html")]) == 0
    assert (tmp_path / "again.html").read_text() == text
    assert text.count("<svg") == 1 and "<script" not in text
    assert not re.search(r"(src|href)=[\"'](https?:|file:|/)", text)   # self-contained
    from qir.html_report import layer_costs
    from qir.ir import read_module

    rows = layer_costs(read_module(out / "lowered.mlir"))
    for r in rows:
        assert f"<td>{r['layer']}</td>" in text and f"<td>{r['luts']}</td>" in text
    assert "latency" in text and "initiation interval (II)" in text and "estimated Fmax" in text
    # report.html is qir's own file: compiling into the folder again replaces it
    assert "report.html" in (out / ".qir-manifest").read_text().splitlines()
    assert qir_main(["compile", str(model), "-o", str(out), "--input-type", INPUT_TYPE]) == 0


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def _screenshot(html: Path, png: Path, tmp: Path) -> np.ndarray:
    import matplotlib.image as mpimg

    exe = _chromium()
    res = subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                          f"--user-data-dir={tmp / 'profile'}", "--window-size=1200,1400",
                          f"--screenshot={png}", html.resolve().as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert png.is_file(), res.stderr[-2000:]
    return (mpimg.imread(png)[:, :, :3] * 255).round().astype(int)


def _count(img: np.ndarray, rgb) -> int:
    return int((np.abs(img - np.array(rgb)).max(axis=2) <= 6).sum())


@pytest.mark.slow
@pytest.mark.skipif(_chromium() is None, reason="headless Chromium missing: apt-get install chromium "
                    "(QIR_SETUP_CHROMIUM=1 ./setup.sh installs it)")
def test_html_report_renders_in_chromium(tmp_path):
    data = HERE / "data" / "qkeras_3layer"
    out = tmp_path / "q3"
    assert qir_main(["compile", str(data / "qkeras_3layer.json"), "-o", str(out), "--input-type", "fixed<16,6>",
                     "--softmax", "none"]) == 0
    assert qir_main(["report", str(out), "--html"]) == 0
    img = _screenshot(out / "report.html", tmp_path / "shot.png", tmp_path)
    blue, orange = _count(img, BLUE), _count(img, ORANGE)
    # four layers of LUT bars (fc1 ~12.7k LUTs is the tallest) and FF bars, plus the legend
    assert blue > 4000 and orange > 2000, (blue, orange)
    rows = np.nonzero((np.abs(img - np.array(BLUE)).max(axis=2) <= 6).any(axis=1))[0]
    assert rows.max() - rows.min() > 150     # tall bars, not a legend swatch only
    # negative control: the same page without its chart has none of these pixels
    text = (out / "report.html").read_text()
    bare = tmp_path / "bare.html"
    bare.write_text(re.sub(r"<div id=\"chart\">.*?</svg>\s*</div>", "<div id=\"chart\"></div>", text, flags=re.S))
    img2 = _screenshot(bare, tmp_path / "bare.png", tmp_path)
    assert _count(img2, BLUE) < 50 and _count(img2, ORANGE) < 50
