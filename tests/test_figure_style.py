"""Figures are saved at their printed size with readable fonts and colour-blind-safe colours."""

from __future__ import annotations

import re

import matplotlib
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from discbias.paths import ProjectPaths  # noqa: E402
from discbias.pipeline import FigureContext  # noqa: E402
from discbias.report.style import MIN_FONT_PT, OKABE_ITO, TEXT_WIDTH_IN, apply_style, check_figure  # noqa: E402


@pytest.fixture
def restore_rc():
    with matplotlib.rc_context():
        yield


def test_save_figure_fits_the_text_width_and_raises_small_fonts(tmp_path, restore_rc):
    apply_style()
    paths = ProjectPaths(tmp_path).ensure()
    ctx = FigureContext(None, paths, {}, {}, {})
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.plot([0, 1], [0, 1], label="a line")
    ax.legend(fontsize=5)
    title = ax.set_title("tiny", fontsize=4)
    assert check_figure(fig)  # too wide, too small: the check sees it
    out = ctx.save_figure(fig, "wide")
    assert out.suffix == ".svg" and (paths.figures / "wide.pdf").exists() and (paths.figures / "wide.png").exists()
    width_pt = float(re.search(r'<svg[^>]*width="([\d.]+)pt"', out.read_text())[1])
    assert width_pt <= TEXT_WIDTH_IN * 72 + 0.5
    assert title.get_fontsize() >= MIN_FONT_PT and ax.get_legend().get_texts()[0].get_fontsize() >= MIN_FONT_PT


def test_style_defaults_are_readable_and_okabe_ito(restore_rc):
    apply_style()
    rc = matplotlib.rcParams
    assert min(rc["font.size"], rc["xtick.labelsize"], rc["legend.fontsize"]) >= MIN_FONT_PT
    assert [c.lower() for c in rc["axes.prop_cycle"].by_key()["color"]][:3] == [c.lower() for c in OKABE_ITO[:3]]
