"""Figure style of the paper: sizes in inches at the printed width, fonts of at least 7 pt there,
colour-blind-safe palettes.

The PDF prints a figure at its own size (the Typst path drops relative widths), so a figure made
with :func:`figsize` and saved by :meth:`discbias.pipeline.FigureContext.save_figure` has the
font sizes of :data:`RC` on paper. ``save_figure`` calls :func:`fit_to_print`, which shrinks a
figure wider than the text block to the text width (constrained layout re-flows it; fonts keep
their point size) and raises any font below :data:`MIN_FONT_PT`.

Palettes: :data:`OKABE_ITO` for unordered categories (Okabe & Ito 2008), :func:`sequential` for
ordered ones (viridis, colour-blind-safe and monotone in lightness).
"""

from __future__ import annotations

from collections.abc import Sequence

#: Text width of the PDF (A4, pandoc's Typst margins of 1.25 in), in inches.
TEXT_WIDTH_IN = 5.77
#: Smallest font size allowed in a figure at print size, in points.
MIN_FONT_PT = 7.0

#: Okabe-Ito colour-blind-safe qualitative palette (black last: used for references).
OKABE_ITO = ["#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7", "#F0E442", "#000000"]

#: matplotlib settings applied by the figures stage.
RC = {
    "font.size": 8.0, "axes.titlesize": 8.5, "axes.labelsize": 8.0, "xtick.labelsize": 7.5,
    "ytick.labelsize": 7.5, "legend.fontsize": 7.5, "legend.title_fontsize": 7.5, "figure.titlesize": 9.0,
    "axes.linewidth": 0.6, "xtick.major.width": 0.6, "ytick.major.width": 0.6, "lines.linewidth": 1.2,
    "lines.markersize": 4.0, "axes.spines.top": False, "axes.spines.right": False,
    "legend.frameon": False, "figure.constrained_layout.use": True, "figure.dpi": 100,
    "savefig.dpi": 300, "svg.fonttype": "path", "pdf.fonttype": 42,
    "axes.prop_cycle": None,  # set in apply_style (needs cycler)
    "image.cmap": "viridis",
}


def figsize(width: float = 1.0, aspect: float = 0.55) -> tuple[float, float]:
    """A figure size in inches: ``width`` as a fraction of the text width, height = width x aspect.

    Examples
    --------
    >>> figsize(1.0, 0.5)
    (5.77, 2.885)
    """
    w = TEXT_WIDTH_IN * width
    return (round(w, 3), round(w * aspect, 3))


def apply_style() -> None:
    """Make :data:`RC` (Okabe-Ito colour cycle) matplotlib's defaults.

    Examples
    --------
    >>> import matplotlib
    >>> apply_style(); matplotlib.rcParams["legend.fontsize"] >= MIN_FONT_PT
    True
    """
    import matplotlib
    from cycler import cycler

    rc = dict(RC)
    rc["axes.prop_cycle"] = cycler(color=OKABE_ITO)
    matplotlib.rcParams.update(rc)


def sequential(n: int, cmap: str = "viridis", lo: float = 0.1, hi: float = 0.85) -> list:
    """``n`` colours for ordered categories (light to dark ends trimmed).

    Examples
    --------
    >>> len(sequential(3)), sequential(1)[0] == sequential(3)[1]
    (3, True)
    """
    import matplotlib

    cm = matplotlib.colormaps[cmap]
    if n == 1:
        return [cm((lo + hi) / 2)]
    return [cm(lo + (hi - lo) * k / (n - 1)) for k in range(n)]


def colours(keys: Sequence) -> dict:
    """One Okabe-Ito colour per key, in order (cycles after eight).

    Examples
    --------
    >>> colours(["a", "b"])
    {'a': '#E69F00', 'b': '#56B4E9'}
    """
    return {k: OKABE_ITO[i % len(OKABE_ITO)] for i, k in enumerate(keys)}


def _texts(fig):
    from matplotlib.text import Text

    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]


def check_figure(fig) -> list[str]:
    """Problems of a figure at print size: wider than the text, or text below :data:`MIN_FONT_PT`.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg"); import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots(figsize=(8, 2)); _ = ax.set_title("t", fontsize=5)
    >>> [p.split(":")[0] for p in check_figure(fig)]
    ['width', 'font']
    >>> plt.close(fig)
    """
    out = []
    w = fig.get_size_inches()[0]
    if w > TEXT_WIDTH_IN + 1e-6:
        out.append(f"width: {w:.2f} in is wider than the text ({TEXT_WIDTH_IN} in)")
    small = sorted({round(t.get_fontsize(), 1) for t in _texts(fig) if t.get_fontsize() < MIN_FONT_PT - 1e-6})
    if small:
        out.append(f"font: text at {small} pt, below {MIN_FONT_PT} pt")
    return out


def fit_to_print(fig) -> None:
    """Make a figure printable: at most the text width (height scaled alike), fonts >= 7 pt.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg"); import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots(figsize=(8, 2)); _ = ax.set_title("t", fontsize=5)
    >>> fit_to_print(fig); check_figure(fig)
    []
    >>> plt.close(fig)
    """
    w, h = fig.get_size_inches()
    if w > TEXT_WIDTH_IN:  # height shrinks less than width: the fonts keep their size
        fig.set_size_inches(TEXT_WIDTH_IN, h * (TEXT_WIDTH_IN / w) ** 0.5)
    for t in _texts(fig):
        if t.get_fontsize() < MIN_FONT_PT:
            t.set_fontsize(MIN_FONT_PT)
