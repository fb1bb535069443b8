"""Publication tables: one object, four outputs (Typst, HTML, LaTeX, unrounded CSV).

:class:`PubTable` takes a tidy frame and per-column formats (:class:`Col`) and emits

- ``to_typst()``: a Typst ``figure`` of kind table with its caption on top, a header that repeats
  on every page (``table.header``), booktabs rules, numbers right-aligned;
- ``to_html()``: a ``<figure>`` with a ``<figcaption>``, the table in a box that scrolls by
  itself on a narrow screen, notes under it;
- ``to_latex()``: booktabs with ``r`` columns for numbers, ``\\caption``, ``\\label``, notes and
  escaped special characters (``longtable`` with a repeated head when it is long);
- ``to_csv()``: the unrounded values;
- ``to_qmd()``: what the paper's template includes: a pandoc Div ``{#tbl-x}`` holding the Typst
  and HTML raw blocks around a Markdown caption, so caption and table stay one float, the
  caption's cross-references and code are converted by pandoc, and the ``.qmd`` stays
  Quarto-compatible. A table without a caption falls back to a pipe table.

Every rendered number goes through :func:`fmt_number` (a true minus sign U+2212, one thousands
rule: a comma from 1,000 on), p-values through :func:`fmt_p` (``< .001``, ``.034``: the one p style of the paper, prose included, from
:func:`discbias.report.fmt.p_value`) and intervals
through :func:`fmt_interval` (``[a, b]``); text cells and headers go through the label
dictionary (:func:`discbias.report.labels.label`).

Why hand-written: no maintained Python library writes Typst tables (the PDF path), and
``great_tables`` (HTML, LaTeX) formats with its own rules (ASCII hyphen minus in LaTeX, no
notes/labels in ``as_latex``, inline CSS per table id), so the three outputs would disagree on a
cell. Here one formatted cell grid feeds three small emitters, which keeps them identical.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..results import atomic_write_text, write_table
# one escaping layer for every output (report.escape); latex_escape is re-exported here
from .escape import LATEX_SPECIAL as _LATEX_SPECIAL  # noqa: F401
from .escape import html_text as _html_escape
from .escape import latex_escape
from .escape import one_line as _one_line
from .escape import typst_str
from .labels import label as _label

MINUS = "\u2212"
DASH = "\u2014"  # a missing value


def _missing(x) -> bool:
    return x is None or x is pd.NA or (isinstance(x, (float, np.floating)) and math.isnan(x))


def minus_signs(text: str) -> str:
    """Replace a hyphen used as a minus sign (before a digit, not inside a word or range) by U+2212.

    Examples
    --------
    >>> minus_signs("from -0.5 to -3, in 2020-21, x-1")
    'from −0.5 to −3, in 2020-21, x-1'
    """
    return re.sub(r"(?<![\w.\-\u2212])-(?=\.?\d)", MINUS, str(text))


_APOSTROPHE = re.compile(r"(?<=[\w.])'(?=[a-z])")


def typographic(text: str) -> str:
    """Text for a reader: a hyphen used as a minus sign becomes U+2212 and a straight quote used
    as an apostrophe (``Grissom et al.'s``, ``paper's``) becomes ’ (U+2019), as in the prose.

    Examples
    --------
    >>> typographic("the paper's slope is -0.5 (Grissom et al.'s model), c('a', 'b')")
    "the paper’s slope is −0.5 (Grissom et al.’s model), c('a', 'b')"
    """
    return _APOSTROPHE.sub("\u2019", minus_signs(text))


def _group(s: str) -> str:
    """Thousands separators in the integer part of a plain decimal string."""
    neg = s.startswith("-")
    s = s.lstrip("-")
    whole, _, frac = s.partition(".")
    if len(whole) > 3:
        whole = f"{int(whole):,}"
    return ("-" if neg else "") + whole + ("." + frac if frac else "")


def fmt_number(x, digits: int | None = 2, sig: int | None = None) -> str:
    """A number for a table: ``digits`` decimals (or ``sig`` significant digits), a true minus
    sign, a comma every three digits from 1,000 on, ``—`` when missing; a value that would round
    to zero is written with two significant digits as ``a × 10⁻ⁿ``.

    Examples
    --------
    >>> fmt_number(-1.23456, 3), fmt_number(12345.678, 1), fmt_number(0.0123456, sig=3)
    ('−1.235', '12,345.7', '0.0123')
    >>> fmt_number(float("nan")), fmt_number(-0.00001234, 2), fmt_number(7, 0)
    ('—', '−1.2 × 10⁻⁵', '7')
    """
    if _missing(x):
        return DASH
    x = float(x)
    if math.isinf(x):
        return ("" if x > 0 else MINUS) + "\u221e"
    if sig is not None:
        if x == 0:
            digits = max(sig - 1, 0)
        else:
            digits = max(0, sig - 1 - int(math.floor(math.log10(abs(x)))))
    digits = 2 if digits is None else digits
    s = f"{x:.{digits}f}"
    if x != 0 and float(s) == 0:
        mant, exp = f"{x:.1e}".split("e")
        sup = str.maketrans("-0123456789", "\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079")
        return mant.replace("-", MINUS) + " \u00d7 10" + str(int(exp)).translate(sup)
    if float(s) == 0:
        s = s.lstrip("-")
    return _group(s).replace("-", MINUS)


def fmt_int(x) -> str:
    """An integer count: ``12,345``; missing as ``—``.

    Examples
    --------
    >>> fmt_int(12345.0), fmt_int(-3), fmt_int(None)
    ('12,345', '−3', '—')
    """
    return DASH if _missing(x) else fmt_number(round(float(x)), 0)


def fmt_p(p, digits: int = 3) -> str:
    """A p-value in the paper's one style (:func:`discbias.report.fmt.p_value`, as in the prose):
    ``< .001`` below the precision (0 included), else ``digits`` decimals without a leading zero.

    Examples
    --------
    >>> fmt_p(0.0), fmt_p(0.01234), fmt_p(float("nan")), fmt_p(0.5, 4), fmt_p(1.0)
    ('< .001', '.012', '—', '.5000', '> .999')
    """
    from .fmt import p_value

    if _missing(p):
        return DASH
    return p_value(float(p), prefix=False, digits=digits)


def fmt_interval(low, high, digits: int | None = 2, sig: int | None = None) -> str:
    """An interval as ``[a, b]`` (``—`` when both ends are missing).

    Examples
    --------
    >>> fmt_interval(-0.1234, 0.5, 2)
    '[−0.12, 0.50]'
    """
    if _missing(low) and _missing(high):
        return DASH
    return f"[{fmt_number(low, digits, sig)}, {fmt_number(high, digits, sig)}]"


# Backwards-compatible helpers (older callers and templates).
def format_value(x, digits: int = 2) -> str:
    """One cell of an untyped column: integers plainly, floats to ``digits``, booleans yes/no.

    Examples
    --------
    >>> format_value(3), format_value(-1.23456, 3), format_value(float("nan")), format_value(True)
    ('3', '−1.235', '—', 'yes')
    """
    if _missing(x):
        return DASH
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, (int, np.integer)):
        return fmt_int(x)
    if isinstance(x, (float, np.floating)):
        return fmt_number(x, digits)
    return minus_signs(str(x))


def is_p_column(name: str) -> bool:
    """Whether a column holds p-values (``p``, ``Holm p``, ``p (Holm)``, ``p_value``...).

    Examples
    --------
    >>> is_p_column("Holm p"), is_p_column("p_value"), is_p_column("Partial eta sq")
    (True, True, False)
    """
    n = str(name).strip().lower().replace("_", " ")
    return n in ("p", "p value", "pr(>f)") or n.endswith(" p") or n.startswith("p ")


@dataclass
class Col:
    """How one column of a :class:`PubTable` is shown.

    Parameters
    ----------
    id : str
        Column of the frame (for ``fmt="interval"``: the lower bound).
    label : str, optional
        Header; default: the label dictionary's label of ``id``.
    fmt : str
        ``"auto"`` (from the dtype), ``"text"``, ``"num"``, ``"int"``, ``"p"``, ``"interval"``,
        ``"pct"`` (a share shown in percent), ``"bool"`` or ``"code"`` (shown verbatim in a
        monospace font: formulas, file names, ids meant to be typed).
    digits, sig : int, optional
        Decimals, or significant digits (``sig`` wins).
    high : str, optional
        For ``fmt="interval"``: the column with the upper bound.
    unit : str
        Appended to the header in parentheses.
    align : str, optional
        ``"left"``, ``"right"`` or ``"center"``; default right for numbers, left for text.
    relabel : bool
        Map text cells through the label dictionary.

    Examples
    --------
    >>> Col("conf_low", "95% CI", fmt="interval", high="conf_high").header()
    '95% CI'
    >>> Col("score", unit="logit").header()
    'Score (logit)'
    """

    id: str
    label: str | None = None
    fmt: str = "auto"
    digits: int | None = None
    sig: int | None = None
    high: str | None = None
    unit: str = ""
    align: str | None = None
    relabel: bool = True

    def header(self) -> str:
        h = self.label if self.label is not None else _label(self.id)
        return f"{h} ({self.unit})" if self.unit else h


def _auto_fmt(s: pd.Series, name: str) -> str:
    if pd.api.types.is_bool_dtype(s):
        return "bool"
    if pd.api.types.is_numeric_dtype(s):
        if is_p_column(name):
            return "p"
        vals = s.dropna()
        if pd.api.types.is_integer_dtype(s) or (len(vals) and vals.apply(lambda v: float(v).is_integer()).all()):
            return "int"
        return "num"
    return "text"


def _breakable(s: str) -> str:
    """Allow a line break after ``_``, ``/``, ``.`` and ``~`` inside long tokens (zero-width spaces),
    so identifiers and paths wrap inside a narrow column instead of running into the next one.

    Examples
    --------
    >>> _breakable("s1_top_bottom") == "s1_\u200btop_\u200bbottom"
    True
    """
    return re.sub(r"([_/~])(?=\w)", "\\1\u200b", str(s)) if len(str(s)) > 12 else str(s)


def _typst_str(s: str) -> str:
    return typst_str(s)


#: The LaTeX packages the exported tables need (``report/latex-preamble.tex`` loads them).
LATEX_PACKAGES = ("booktabs", "longtable", "array", "pdflscape", "siunitx")
#: Text width and height of the LaTeX page the tables are fitted to: the article class at 10 pt
#: (345 pt by 550 pt), the narrowest a journal's single column is likely to be.
#: Both are used at 95%: a margin for wide glyphs (minus, <, capitals) the estimate misses.
LATEX_TEXT_WIDTH_PT = 345.0 * 0.95
LATEX_TEXT_HEIGHT_PT = 550.0 * 0.95
#: Average advance of a table character in em (Computer Modern / Latin Modern digits are 0.5 em).
LATEX_CHAR_EM = 0.5
#: Advance of a character of an unbreakable word (letters, capitals and code are wider than digits).
LATEX_WORD_EM = 0.6
LATEX_TABCOLSEP_PT = 6.0

_SUPERSCRIPT = str.maketrans("\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079", "-0123456789")
_SCIENTIFIC = re.compile("([\u2212-]?\\d[\\d.,]*) \u00d7 10([\u207b\u2070\u00b9\u00b2\u00b3\u2074-\u2079]+)")


def _latex_header(h: str, chars: int, spec: str) -> str:
    r"""A column header; in a number column, one longer than the column wraps onto lines of at
    most ``chars`` characters (a nested ``tabular``), aligned as the column is.

    Examples
    --------
    >>> print(_latex_header("Column 10", 6, "r"))
    \begin{tabular}[b]{@{}r@{}}Column\\10\end{tabular}
    >>> _latex_header("Term", 10, "l")
    'Term'
    """
    if len(h) <= chars or spec not in ("l", "r", "c") or " " not in h:
        return latex_escape(h)
    lines, cur = [], ""
    for word in h.split():
        if cur and len(cur) + 1 + len(word) > chars:
            lines.append(cur)
            cur = word
        else:
            cur = f"{cur} {word}".strip()
    lines.append(cur)
    return rf"\begin{{tabular}}[b]{{@{{}}{spec}@{{}}}}" + r"\\".join(latex_escape(x) for x in lines) + r"\end{tabular}"


#: A table cell that is a plain decimal number (a minus sign, thousands separators, no exponent):
#: what a siunitx ``S`` column aligns on its decimal point.
_PLAIN_NUMBER = re.compile(r"^[\u2212-]?\d{1,3}(?:,\d{3})*(?:\.\d+)?$|^[\u2212-]?\d+(?:\.\d+)?$")
#: A cell that holds no value (left as text in a decimal-aligned column).
_NO_VALUE = re.compile(r"^(?:|[\u2013\u2014]|n/a)$")


def decimal_format(cells) -> str | None:
    r"""The siunitx ``table-format`` of a column whose cells are plain numbers (or empty), so that
    they align on the decimal point; ``None`` for any other column (p-values such as ``.034`` or
    ``< .001``, intervals, percentages, scientific notation, text stay right-aligned).

    Examples
    --------
    >>> decimal_format(["1.25", "−12.5", "—"]), decimal_format(["70,000", "512"]), decimal_format([".034"])
    ('-2.2', '5.0', None)
    """
    nums = [str(c) for c in cells if not _NO_VALUE.match(str(c))]
    if not nums or not all(_PLAIN_NUMBER.match(c) for c in nums):
        return None
    sign = any(c[0] in "-\u2212" for c in nums)
    digits = [c.lstrip("-\u2212").replace(",", "").partition(".") for c in nums]
    whole = max(len(i) for i, _, _ in digits)
    frac = max(len(f) for _, _, f in digits)
    return f"{'-' if sign else ''}{whole}.{frac}"


def _si_cell(s: str) -> str:
    """A cell of a decimal-aligned column: the number as siunitx reads it, or braced text."""
    if _NO_VALUE.match(str(s)):
        return "{" + latex_escape(str(s)) + "}"
    return str(s).replace("\u2212", "-").replace(",", "")


def latex_cell(s: str) -> str:
    r"""A formatted cell for LaTeX: :func:`latex_escape`, with ``a × 10⁻ⁿ`` as maths.

    Examples
    --------
    >>> print(latex_cell("1.0 × 10⁻¹⁵"), latex_cell("a_b"))
    \ensuremath{1.0 \times 10^{-15}} a\_b
    """
    out, pos = [], 0
    for m in _SCIENTIFIC.finditer(str(s)):
        out.append(latex_escape(s[pos:m.start()]))
        mant = m.group(1).replace("\u2212", "-")
        out.append(rf"\ensuremath{{{mant} \times 10^{{{m.group(2).translate(_SUPERSCRIPT)}}}}}")
        pos = m.end()
    out.append(latex_escape(str(s)[pos:]))
    return "".join(out)


def _convert_caption(md: str, code, ref, text) -> str:
    """A caption's Markdown subset (code spans, ``@tbl-x`` references, backslash-escaped
    characters, text: :func:`discbias.report.escape.split_markdown_subset`) through three formatters.
    Anything else in a caption is text, in every output: a value written into a caption with
    :func:`~discbias.report.escape.md_text` or :func:`~discbias.report.escape.md_code` stays literal."""
    from .escape import split_markdown_subset

    return "".join(code(v) if k == "code" else ref(v) if k == "ref" else text(v)
                   for k, v in split_markdown_subset(md))


def _caption_markdown(md: str) -> str:
    """The caption as pandoc Markdown that holds only the subset (text escaped, code spans fenced)."""
    from .escape import md_code, md_text

    return _convert_caption(md, md_code, lambda r: "@" + r, md_text)


def _caption_latex(md: str) -> str:
    return _convert_caption(md, lambda c: r"\texttt{" + latex_escape(c) + "}", lambda r: r"\ref{" + r + "}",
                            latex_escape)


def _caption_typst(md: str) -> str:
    return _convert_caption(md, lambda c: "#raw(" + _typst_str(c) + ")", lambda r: f"#ref(<{r}>)",
                            lambda t: "#" + _typst_str(t))


def _caption_html(md: str) -> str:
    return _convert_caption(md, lambda c: "<code>" + _html_escape(c) + "</code>",
                            lambda r: f'<a href="#{r}">{r}</a>', html.escape)


#: Width of the PDF's text block in points (A4, pandoc's Typst margins) and the table font size.
TEXT_WIDTH_PT = 415.0
TABLE_FONT_PT = 7.5
#: A publication table of at most this many rows is unbreakable in the PDF (stays with its caption);
#: a longer one breaks across pages. typst-keep.typ skips measuring the tables this makes unbreakable.
UNBREAKABLE_MAX_ROWS = 25
#: Average character width of the table font in em, and the horizontal cell padding (estimates of width).
CHAR_EM = 0.47
CELL_INSET_PT = 3.0


@dataclass
class PubTable:
    """A publication table: a tidy frame plus how to show it.

    Parameters
    ----------
    df : DataFrame
        The values, unrounded (what ``to_csv`` writes).
    columns : sequence of Col or str, optional
        Columns in order; a str is ``Col(str)``. Default: every column, formats from dtypes.
    caption : str
        Markdown (code in backticks, ``@tbl-x`` references); without it ``to_qmd`` gives a
        plain pipe table.
    label : str
        Cross-reference id, ``tbl-...``.
    notes : str
        Printed under the table.
    spanners : mapping of str to list of str, optional
        A header over adjacent columns (by ``Col.id``), e.g. one per specification.
    digits : int or mapping
        Decimals of ``"num"`` columns without their own (per column id or header when a mapping).
    landscape : bool or None
        Print the table on a landscape page; ``None``: when it is estimated wider than the text.

    Examples
    --------
    >>> df = pd.DataFrame({"term": ["mean_r", "Intercept"], "estimate": [-0.51234, 12.0],
    ...                    "conf_low": [-0.9, 10.1], "conf_high": [-0.1, 13.9], "p_value": [0.0001, 0.2]})
    >>> t = PubTable(df, [Col("term", "Term"), Col("estimate", digits=2),
    ...                   Col("conf_low", "95% CI", fmt="interval", high="conf_high", digits=1),
    ...                   Col("p_value", fmt="p")], caption="RGB model.", label="tbl-rgb")
    >>> t.body()[0]
    ['Mean red (0–255)', '−0.51', '[−0.9, −0.1]', '< .001']
    >>> print(t.to_latex().splitlines()[5])
    \\begin{tabular}{lS[table-format=-2.2]rr}
    >>> "table.header(repeat: true" in t.to_typst() and 'class="table-scroll"' in t.to_html()
    True
    """

    df: pd.DataFrame
    columns: Sequence[Col | str] | None = None
    caption: str = ""
    label: str = ""
    notes: str = ""
    spanners: Mapping[str, Sequence[str]] | None = None
    digits: int | Mapping[str, int] = 2
    landscape: bool | None = None
    #: key columns whose value, when it repeats the row above's, is printed blank (the CSV keeps it
    #: on every row)
    blank_repeats: Sequence[str] = ()
    #: the tidy frame the CSV holds instead of ``df`` when the printed table is a reshaped view of
    #: it (a pivot, cells such as "154.7 (5401)"): one value per cell, keys on every row
    tidy: pd.DataFrame | None = None
    #: whether the PDF table may break across pages; default: when it has more than
    #: ``UNBREAKABLE_MAX_ROWS`` rows (a few rows of long wrapped text may be taller than a page)
    breakable: bool | None = None
    cols: list[Col] = field(init=False, repr=False)

    def __post_init__(self):
        self.df = self.df.reset_index(drop=True)
        if self.columns is None:
            self.columns = _default_columns(self.df)
        cols = []
        for c in self.columns:
            c = Col(c) if isinstance(c, str) else c
            if c.id not in self.df:
                raise KeyError(f"table column {c.id!r} is not in the frame (columns: {list(self.df.columns)})")
            if c.fmt == "interval" and (c.high is None or c.high not in self.df):
                raise KeyError(f"interval column {c.id!r} needs `high` naming a column of the frame")
            if c.fmt == "auto":
                c = Col(**{**c.__dict__, "fmt": _auto_fmt(self.df[c.id], c.header())})
            if c.digits is None and c.sig is None:
                d = self.digits
                dd = (d.get(c.id, d.get(c.header(), 2)) if isinstance(d, Mapping) else d)
                c = Col(**{**c.__dict__, "digits": dd})
            cols.append(c)
        self.cols = cols
        if self.label and not re.fullmatch(r"tbl-[\w-]+", self.label):
            raise ValueError(f"table label {self.label!r} must look like 'tbl-name'")

    # ---- cells -----------------------------------------------------------------------------------
    def _cell(self, c: Col, i: int) -> str:
        x = self.df.at[i, c.id]
        if c.fmt == "interval":
            return fmt_interval(x, self.df.at[i, c.high], c.digits, c.sig)
        if _missing(x):
            return DASH
        if c.fmt == "p":
            return fmt_p(x, 3)  # one rule for every table and the prose: "< .001", else ".034"
        if c.fmt == "int":
            return fmt_int(x)
        if c.fmt == "num":
            return fmt_number(x, c.digits, c.sig)
        if c.fmt == "pct":
            return fmt_number(100 * float(x), c.digits, c.sig) + "%"
        if c.fmt == "bool":
            return "yes" if bool(x) else "no"
        if c.fmt == "code":
            return _one_line(x)
        text = _label(str(x)) if c.relabel else str(x)
        return typographic(_one_line(text))

    def headers(self) -> list[str]:
        """The column headers (labels, units).

        Examples
        --------
        >>> PubTable(pd.DataFrame({"n_obs": [1], "Mean": [2.0]}), [Col("n_obs"), Col("Mean", unit="logit")]).headers()
        ['n', 'Mean (logit)']
        """
        return [typographic(_one_line(c.header())) for c in self.cols]

    def body(self) -> list[list[str]]:
        """Every cell as rendered text (the same in every output)."""
        rows = [[self._cell(c, i) for c in self.cols] for i in range(len(self.df))]
        keys = [k for k, c in enumerate(self.cols) if c.id in set(self.blank_repeats)]
        for i in range(len(rows) - 1, 0, -1):  # a repeated key prints once, on the first row of its run
            if keys and all(self.df.at[i, self.cols[k].id] == self.df.at[i - 1, self.cols[k].id] for k in keys):
                for k in keys:
                    rows[i][k] = ""
        return rows

    def aligns(self) -> list[str]:
        """``left``/``right``/``center`` per column."""
        body = self.body()
        numeric = re.compile(r"^(?:[\u2212<>\[(]?\s*[\u2212]?\d[\d,.]*(?:\s*%)?(?:\s*[\[(].*[\])])?|\u2014)$")

        def looks_numeric(k):  # text cells that are numbers ("0.84 [0.83, 0.85]", "153.7 (12)")
            vals = [r[k] for r in body]
            return any(v != DASH for v in vals) and all(numeric.match(v) for v in vals)

        return [c.align or ("left" if c.fmt == "code" else "right" if c.fmt != "text" or looks_numeric(k) else "left")
                for k, c in enumerate(self.cols)]

    def spanner_row(self) -> list[tuple[str, int]] | None:
        """The spanner header as ``(text, colspan)`` runs, or None."""
        if not self.spanners:
            return None
        ids = [c.id for c in self.cols]
        owner = {}
        for name, members in self.spanners.items():
            pos = sorted(ids.index(m) for m in members)
            if pos != list(range(pos[0], pos[0] + len(pos))):
                raise ValueError(f"spanner {name!r} must cover adjacent columns")
            for p in pos:
                owner[p] = name
        runs: list[tuple[str, int]] = []
        for k in range(len(ids)):
            name = owner.get(k, "")
            if runs and name and runs[-1][0] == name:
                runs[-1] = (name, runs[-1][1] + 1)
            else:
                runs.append((name, 1))
        return runs

    def _widths_chars(self) -> list[int]:
        body = self.body()
        return [max([len(h) for h in self.headers()[k:k + 1]] + [len(r[k]) for r in body] + [1])
                for k in range(len(self.cols))]

    def estimated_width_pt(self) -> float:
        """Width of the table with every column at its natural width (rough: 0.5 em a character)."""
        return sum(w * TABLE_FONT_PT * CHAR_EM + 2 * CELL_INSET_PT for w in self._widths_chars())

    def is_landscape(self) -> bool:
        """Whether the table goes on a landscape page (explicit, or too wide even with wrapping)."""
        if self.landscape is not None:
            return bool(self.landscape)
        w = self._widths_chars()  # text columns can wrap down to about 14 characters
        fixed = sum(min(x, 14) if c.fmt in ("text", "code") else x for x, c in zip(w, self.cols))
        return fixed * TABLE_FONT_PT * CHAR_EM + 2 * CELL_INSET_PT * len(w) > TEXT_WIDTH_PT * 1.02

    def _typst_columns(self) -> list[str]:
        w = self._widths_chars()
        natural = self.estimated_width_pt()
        room = TEXT_WIDTH_PT * (1.45 if self.is_landscape() else 1.0)
        out = []
        for k, c in enumerate(self.cols):
            wrap = c.fmt in ("text", "code") and w[k] > 24 and natural > room
            out.append(f"{max(1.0, min(w[k], 80) / 10):.1f}fr" if wrap else "auto")
        return out

    # ---- emitters --------------------------------------------------------------------------------
    def _typst_table(self) -> str:
        aligns = self.aligns()
        head = ["table.hline(stroke: 0.8pt)"]
        runs = self.spanner_row()
        if runs:
            start = 0
            for name, span in runs:
                head.append(f"table.cell(colspan: {span}, align: center, {_typst_str(name)})")
                start += span
            start = 0
            for name, span in runs:
                if name:
                    head.append(f"table.hline(start: {start}, end: {start + span}, stroke: 0.4pt)")
                start += span
        head += [_typst_str(h) for h in self.headers()] + ["table.hline(stroke: 0.5pt)"]
        wrap = [w != "auto" for w in self._typst_columns()]
        code = [c.fmt == "code" for c in self.cols]
        rows = [", ".join(("raw({})" if code[k] else "{}").format(_typst_str(_breakable(v) if wrap[k] else v))
                          for k, v in enumerate(r)) + "," for r in self.body()]
        notes = (f"\n  block(width: 100%, inset: (top: 3pt), align(left, text(size: {TABLE_FONT_PT}pt, "
                 f"{_typst_str(typographic(self.notes))})))") if self.notes else ""
        return ("{\n  table(\n    columns: (" + ", ".join(self._typst_columns()) + ",),\n"
                f"    align: ({', '.join(aligns)},),\n    stroke: none,\n    inset: (x: {CELL_INSET_PT}pt, y: 2.2pt),\n"
                "    table.header(repeat: true, " + ", ".join(head) + "),\n    "
                + "\n    ".join(rows) + "\n    table.hline(stroke: 0.8pt),\n  )" + notes + "\n}")

    def _typst_wrap(self, caption_typst: str) -> tuple[str, str]:
        """Typst before and after the caption's markup."""
        breakable = self.breakable if self.breakable is not None else len(self.df) > UNBREAKABLE_MAX_ROWS
        pre = "#page(flipped: true)[\n" if self.is_landscape() else ""
        # a long table breaks across pages (its header repeats); a short one stays with its caption
        pre += f"#[\n#show figure: set block(breakable: {'true' if breakable else 'false'})\n"
        # A short table takes the document's figure placement: the paper's main text floats its
        # figures and short tables (placement: auto, to the top or bottom of a page, as a journal
        # places them), so that one that does not fit below the text before it leaves no hole; its
        # back matter does not (paper.qmd.j2). A long or landscape table never floats: a float
        # cannot break across pages.
        place = "  placement: none,\n" if breakable or self.is_landscape() else ""
        pre += "#figure(\n  kind: table,\n" + place + "  caption: figure.caption(position: top)["
        post = "],\n" + self._typst_table() + "\n)" + (f" <{self.label}>" if self.label else "") + "\n]"
        post += "\n]" if self.is_landscape() else ""
        return pre, post

    def to_typst(self) -> str:
        """The table as a Typst figure (caption on top, repeated header, label).

        Examples
        --------
        >>> s = PubTable(pd.DataFrame({"x": [-1.5]}), caption="C.", label="tbl-c").to_typst()
        >>> '"\u22121.50"' in s and s.rstrip().endswith("<tbl-c>\\n]")
        True
        """
        pre, post = self._typst_wrap("")
        return pre + _caption_typst(typographic(self.caption)) + post

    def _html_table(self) -> str:
        aligns = self.aligns()
        cls = lambda a: f' class="{"num" if a == "right" else a}"'  # noqa: E731
        head = []
        runs = self.spanner_row()
        if runs:
            head.append("<tr>" + "".join(f'<th colspan="{s}" class="spanner">{_html_escape(n)}</th>' for n, s in runs)
                        + "</tr>")
        head.append("<tr>" + "".join(f'<th scope="col"{cls(a)}>{_html_escape(h)}</th>'
                                     for h, a in zip(self.headers(), aligns)) + "</tr>")
        code = [c.fmt == "code" for c in self.cols]
        body = ["<tr>" + "".join(f"<td{cls(a)}><code>{_html_escape(v)}</code></td>" if code[k] else
                                 f"<td{cls(a)}>{_html_escape(v)}</td>" for k, (v, a) in enumerate(zip(r, aligns)))
                + "</tr>" for r in self.body()]
        notes = f'\n<p class="table-notes">{_html_escape(typographic(self.notes))}</p>' if self.notes else ""
        return ('<div class="table-scroll" tabindex="0">\n<table class="pubtable">\n<thead>\n' + "\n".join(head)
                + "\n</thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody>\n</table>\n</div>" + notes)

    def to_html(self) -> str:
        """The table as an HTML ``<figure>`` (caption, scrolling box, notes).

        Examples
        --------
        >>> s = PubTable(pd.DataFrame({"a": ["x<y"], "b": [-2.0]}), caption="C.").to_html()
        >>> "x&lt;y" in s and '<td class="num">\u22122</td>' in s
        True
        """
        ident = f' id="{self.label}"' if self.label else ""
        return (f'<figure class="pubtable"{ident}>\n<figcaption>{_caption_html(typographic(self.caption))}'
                "</figcaption>\n" + self._html_table() + "\n</figure>")

    def _latex_widths(self) -> tuple[str, list[str], bool, list[int]]:
        r"""The LaTeX font size, column specification, orientation and header widths that fit.

        Widths are estimated from the cells (``LATEX_CHAR_EM`` em a digit, ``LATEX_WORD_EM`` em a
        character of a word). A number column is as wide as its widest cell or the longest word
        of its header (a longer header wraps onto several lines); a text column wraps (``p{}``)
        down to its longest word. Tried in order: ``\small`` and ``\footnotesize`` at natural
        widths, ``\footnotesize`` with wrapping text columns, then a landscape page
        (``pdflscape``; ``\linewidth`` is then the page's height) at ``\footnotesize`` and
        ``\scriptsize``.
        """
        headers, body = self.headers(), self.body()
        aligns = self.aligns()
        text = [a == "left" for a in aligns]  # a column of numbers set as text (estimate [interval]) stays right-aligned
        sep = 2 * LATEX_TABCOLSEP_PT

        def words(x) -> list[str]:
            return [t for t in re.split(r"[\s\u200b]+", str(x)) if t] or [""]

        body_chars = [max([len(r[k]) for r in body] + [1]) for k in range(len(self.cols))]
        head_word = [max(len(t) for t in words(h)) for h in headers]
        head_chars = [len(h) for h in headers]
        word_chars = [max([len(t) for r in body for t in words(r[k])] + [head_word[k]]) for k in range(len(self.cols))]
        # a number column's width in digit advances: its widest cell or its header's longest word
        num_chars = [max(b, int(math.ceil(hw * LATEX_WORD_EM / LATEX_CHAR_EM))) for b, hw in zip(body_chars, head_word)]
        natural_chars = [max(b, h) for b, h in zip(body_chars, head_chars)]

        def width(chars, pt, em=LATEX_CHAR_EM):
            return chars * pt * em + sep

        for size, pt in (("\\small", 9.0), ("\\footnotesize", 8.0)):
            if sum(width(x, pt, LATEX_WORD_EM if t else LATEX_CHAR_EM) for x, t in zip(natural_chars, text)) <= LATEX_TEXT_WIDTH_PT:
                return size, ["l" if t else "r" for t in text], False, natural_chars
        for landscape, size, pt in ((False, "\\footnotesize", 8.0), (True, "\\footnotesize", 8.0),
                                    (True, "\\scriptsize", 7.0)):
            page = LATEX_TEXT_HEIGHT_PT if landscape else LATEX_TEXT_WIDTH_PT
            fixed = sum(width(num_chars[k], pt) for k, t in enumerate(text) if not t)
            wraps = [k for k, t in enumerate(text) if t]
            room = page - fixed - sep * len(wraps)
            least = {k: word_chars[k] * pt * LATEX_WORD_EM for k in wraps}
            if room < sum(least.values()) and not (landscape and size == "\\scriptsize"):
                continue
            self._latex_shrink = room < sum(least.values())  # even the last resort is too wide: scale it down
            share = dict(least)
            spare = max(room - sum(least.values()), 0.0)
            extra = {k: max(natural_chars[k] * pt * LATEX_WORD_EM - least[k], 0.0) for k in wraps}
            total = sum(extra.values()) or 1.0
            for k in wraps:  # what is left goes to the columns with more text, up to their natural width
                share[k] += min(extra[k], spare * extra[k] / total)
            spec = ["r" if not t else rf">{{\raggedright\arraybackslash}}p{{{share[k] / page:.3f}\linewidth}}"
                    for k, t in enumerate(text)]
            return size, spec, landscape, [natural_chars[k] if t else max(body_chars[k], head_word[k])
                                           for k, t in enumerate(text)]
        raise AssertionError("unreachable")  # pragma: no cover

    def to_latex(self) -> str:
        r"""The table as LaTeX that fits the text width (booktabs; ``longtable`` with more than 40 rows).

        Fitting (:meth:`_latex_widths`): ``\small`` ``l``/``r`` columns when the table fits (a
        column of plain numbers as a siunitx ``S`` column aligned on the decimal point,
        :func:`decimal_format`),
        else ``\footnotesize`` with wrapping ``p{}`` text columns, else a landscape page. Numbers
        in scientific notation are typeset as maths (``$1.2 \times 10^{-5}$``). The packages
        it needs are those of :data:`LATEX_PACKAGES` (``report/latex-preamble.tex`` of the paper).

        Examples
        --------
        >>> s = PubTable(pd.DataFrame({"a_b": ["x"], "n": [3]}), caption="C.", label="tbl-c").to_latex()
        >>> r"\begin{tabular}{lS[table-format=1.0]}" in s and r"\label{tbl-c}" in s and r"a\_b" in s
        True
        >>> print(latex_cell(fmt_number(-0.0000123, 2)))
        \ensuremath{-1.2 \times 10^{-5}}
        """
        self._latex_shrink = False
        size, spec_cols, landscape, header_chars = self._latex_widths()
        shrink = self._latex_shrink and len(self.df) <= 40  # a longtable cannot be scaled
        if shrink:  # natural widths, the whole tabular scaled to the line
            spec_cols = ["l" if c.startswith(">") else c for c in spec_cols]
        rows = self.body()
        # number columns align on the decimal point (siunitx S columns; p-values and text stay r)
        si = {}
        for k, c in enumerate(self.cols):
            if spec_cols[k] == "r" and c.fmt not in ("p", "code", "text", "bool"):
                fmtk = decimal_format([r[k] for r in rows])
                if fmtk is not None:
                    si[k] = fmtk
                    spec_cols[k] = f"S[table-format={fmtk}]"
        spec = "".join(spec_cols)
        head = []
        runs = self.spanner_row()
        if runs:
            head.append(" & ".join(rf"\multicolumn{{{s}}}{{c}}{{{latex_escape(n)}}}" for n, s in runs) + r" \\")
            start = 1
            for name, span in runs:
                if name:
                    head.append(rf"\cmidrule(lr){{{start}-{start + span - 1}}}")
                start += span
        head.append(" & ".join(("{" + _latex_header(h, n, "c") + "}") if k in si else _latex_header(h, n, spec_cols[k])
                               for k, (h, n) in enumerate(zip(self.headers(), header_chars))) + r" \\")
        code = [c.fmt == "code" for c in self.cols]
        body = [" & ".join(_si_cell(v) if k in si else rf"\texttt{{{latex_cell(v)}}}" if code[k] else latex_cell(v)
                           for k, v in enumerate(r)) + r" \\" for r in rows]
        cap = rf"\caption{{{_caption_latex(typographic(self.caption))}}}" if self.caption else ""
        lab = rf"\label{{{self.label}}}" if self.label else ""
        notes = (rf"\par\smallskip{{\footnotesize\raggedright {latex_escape(typographic(self.notes))}\par}}"
                 if self.notes else "")
        if len(self.df) > 40:
            lines = [r"\begingroup" + size, rf"\begin{{longtable}}{{{spec}}}",
                     cap + lab + (r" \\" if cap or lab else ""), r"\toprule",
                     *head, r"\midrule", r"\endfirsthead", r"\toprule", *head, r"\midrule", r"\endhead",
                     *body, r"\bottomrule", r"\end{longtable}"]
            if notes:
                lines.append(notes)
            lines.append(r"\endgroup")
        else:
            lines = [r"\begin{table}[htbp]", r"\centering", size, cap, lab,
                     (r"\resizebox{\linewidth}{!}{" if shrink else "") + rf"\begin{{tabular}}{{{spec}}}",
                     r"\toprule", *head, r"\midrule", *body, r"\bottomrule", r"\end{tabular}" + ("}" if shrink else ""),
                     notes, r"\end{table}"]
        if landscape:
            lines = [r"\begin{landscape}", *lines, r"\end{landscape}"]
        return "\n".join(x for x in lines if x != "") + "\n"

    def to_markdown(self) -> str:
        """A pandoc pipe table (no caption): the fallback for a table without one.

        Examples
        --------
        >>> print(PubTable(pd.DataFrame({"a": ["x"], "b": [-1.0]})).to_markdown())
        | a | b |
        |:--|--:|
        | x | −1 |
        """
        from .escape import md_text

        esc = md_text  # cells are text: no Markdown from a value, and "|" cannot end a cell
        w = self._widths_chars()
        dashes = ["-" * max(2, min(40, x) - 1) for x in w]
        align = "|" + "|".join(d + ":" if a == "right" else ":" + d for d, a in zip(dashes, self.aligns())) + "|"
        head = "| " + " | ".join(esc(h) for h in self.headers()) + " |"
        return "\n".join([head, align, *("| " + " | ".join(esc(v) for v in r) + " |" for r in self.body())])

    def to_qmd(self) -> str:
        """What the paper includes: a Div holding Typst and HTML raw blocks around the Markdown
        caption (a pipe table when there is no caption).

        Examples
        --------
        >>> s = PubTable(pd.DataFrame({"a": [1]}), caption="Cap @tbl-b.", label="tbl-a").to_qmd()
        >>> s.splitlines()[0], "```{=typst}" in s and "```{=html}" in s and "Cap @tbl-b." in s
        ('::: {#tbl-a .pubtable}', True)
        """
        if not self.caption:
            return self.to_markdown()
        pre, post = self._typst_wrap("")
        open_html = '<figure class="pubtable">\n<figcaption>'
        close_html = "</figcaption>\n" + self._html_table() + "\n</figure>"
        ident = f"#{self.label} " if self.label else ""
        fence = "````"
        return "\n".join([f"::: {{{ident}.pubtable}}", "", f"{fence}{{=latex}}", self.to_latex().rstrip("\n"), fence, "",
                          f"{fence}{{=typst}}", pre, fence, "",
                          f"{fence}{{=html}}", open_html, fence, "", _caption_markdown(typographic(self.caption)), "",
                          f"{fence}{{=typst}}", post, fence, "", f"{fence}{{=html}}", close_html, fence, "", ":::"])

    def to_csv(self, path: str | Path) -> None:
        """Write the unrounded values (the frame's own columns, used columns first).

        Examples
        --------
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
        >>> PubTable(pd.DataFrame({"x": [1 / 3]})).to_csv(p); float(pd.read_csv(p)["x"][0]) == 1 / 3
        True
        """
        if self.tidy is not None:
            write_table(self.tidy, Path(path))
            return
        used = [x for c in self.cols for x in (c.id, c.high) if x]  # an interval's high end next to its low end
        rest = [c for c in self.df.columns if c not in used]
        write_table(self.df[list(dict.fromkeys(used)) + rest], Path(path))

    def write(self, out_dir: str | Path, name: str) -> None:
        """Write ``<name>.csv`` (unrounded), ``.tex`` (LaTeX), ``.typ`` (Typst), ``.html`` and
        ``.md`` (what the template includes) in ``out_dir``.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> PubTable(pd.DataFrame({"x": [1.23456]}), caption="X.", label="tbl-x").write(d, "t")
        >>> sorted(p.suffix for p in d.iterdir())
        ['.csv', '.html', '.md', '.tex', '.typ']
        """
        from ..safeio import safe_name

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        name = safe_name(name)  # names may come from data (a group column): one file name inside out_dir
        self.to_csv(out_dir / f"{name}.csv")
        atomic_write_text(out_dir / f"{name}.tex", self.to_latex())
        atomic_write_text(out_dir / f"{name}.typ", self.to_typst() + "\n")
        atomic_write_text(out_dir / f"{name}.html", self.to_html() + "\n")
        atomic_write_text(out_dir / f"{name}.md", self.to_qmd() + "\n")


def _default_columns(df: pd.DataFrame) -> list[Col | str]:
    """Every column; an adjacent ``<x> low`` / ``<x> high`` pair becomes one ``[a, b]`` column.

    Examples
    --------
    >>> [c if isinstance(c, str) else (c.label, c.high) for c in
    ...  _default_columns(pd.DataFrame(columns=["Estimate", "95% CI low", "95% CI high", "n"]))]
    ['Estimate', ('95% CI', '95% CI high'), 'n']
    """
    names = [str(c) for c in df.columns]
    out: list[Col | str] = []
    k = 0
    while k < len(names):
        m = re.fullmatch(r"(.*?)[ _]?low", names[k])
        if m and k + 1 < len(names) and re.fullmatch(re.escape(m[1]) + r"[ _]?high", names[k + 1]):
            prefix = m[1].strip(" _")
            head = {"95%": "95% CI", "": "Interval", "conf": "95% CI"}.get(prefix, prefix)
            out.append(Col(names[k], head, fmt="interval", high=names[k + 1]))
            k += 2
            continue
        out.append(names[k])
        k += 1
    return out


def write_publication_table(df: pd.DataFrame, out_dir: str | Path, name: str, *,
                            digits: Mapping[str, int] | int = 2, rename: Mapping[str, str] | None = None,
                            **table) -> PubTable:
    """Build a :class:`PubTable` from ``df`` (columns renamed by ``rename``) and write its files.

    Extra keywords (``caption``, ``label``, ``notes``, ``columns``, ``spanners``, ``landscape``)
    go to :class:`PubTable`; a label defaults to ``tbl-<name>`` when there is a caption.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = write_publication_table(pd.DataFrame({"x": [-1.23456]}), d, "t", digits=2)
    >>> (d / "t.md").read_text().splitlines()[-1]
    '| −1.23 |'
    """
    if rename:
        df = df.rename(columns=dict(rename))
    if table.get("caption") and not table.get("label"):
        from ..safeio import safe_name

        table["label"] = "tbl-" + safe_name(name).replace("_", "-").replace(".", "-")
    t = PubTable(df, digits=digits, **table)
    t.write(out_dir, name)
    return t


def issue_summary(issues: pd.DataFrame, examples: int = 3) -> pd.DataFrame:
    """Data issues grouped by source file, problem and action, with a count and a few examples.

    Members of an archive (``archive.tar.gz:json/00001.json``) are grouped under the archive; the
    full list stays in ``build/results/data_issues.csv``.

    Examples
    --------
    >>> d = pd.DataFrame({"file": ["a.tgz:x/1.json", "a.tgz:x/2.json"], "line": [0, 0], "column": ["c", "c"],
    ...                   "value": ["[]", "[]"], "problem": ["empty", "empty"], "action": ["kept", "kept"]})
    >>> issue_summary(d)[["File", "n", "Examples"]].values.tolist()
    [['a.tgz', 2, 'x/1.json, x/2.json']]
    """
    if not len(issues):
        return pd.DataFrame({"File": ["(all files)"], "Problem": ["none found"], "Action": ["—"], "n": [0],
                             "Examples": ["—"]})
    d = issues.copy()
    parts = d["file"].astype(str).str.split(":", n=1, expand=True)
    d["source"] = parts[0]
    member = parts[1] if parts.shape[1] > 1 else pd.Series(None, index=d.index)
    d["where"] = [m if isinstance(m, str) else f"line {ln}" for m, ln in zip(member, d["line"])]
    g = d.groupby(["source", "problem", "action"], sort=True)
    out = g.agg(n=("where", "size"), Examples=("where", lambda w: ", ".join(list(w)[:examples])
                                                 + (", ..." if len(w) > examples else ""))).reset_index()
    return out.rename(columns={"source": "File", "problem": "Problem", "action": "Action"})


def _true(x) -> bool:
    return x if isinstance(x, bool) else str(x).strip().lower() == "true"


_ITERATIVE = re.compile(r"mixed|REML|\bML\b|GLM|logit|quantile|MCMC|NUTS|Bayes|PyMC|nutpie|posterior|optimi|BFGS|"
                        r"Nelder|bootstrap|Krippendorff|tree|BLUP", re.I)


def is_iterative(method) -> bool:
    """Whether a model's method is fitted iteratively (so that "converged" means something).

    Examples
    --------
    >>> is_iterative("Welch two-sample t-test (mean difference a - b)"), is_iterative("linear mixed model, REML")
    (False, True)
    """
    return bool(_ITERATIVE.search(str(method)))


def _answer(x) -> str:
    return "—" if not isinstance(x, str) or x in ("", "not applicable") else x


def claims_summary_table(claims: pd.DataFrame) -> pd.DataFrame:
    """One row per claim: its kind and the three answers apart (reproduction, robustness, extension),
    the primary specification's estimate, interval and posterior probability of the claimed
    direction, and how many same-estimand specifications support it.

    Examples
    --------
    >>> c = pd.DataFrame(dict(claim_id=["A"], kind=["replication"], reproduction=["reproduced"], robustness=["robust"],
    ...                       extension=["not applicable"], primary_label=["OLS"], estimate=[1.0], conf_low=[0.5],
    ...                       conf_high=[1.5], p_direction=[float("nan")], n_supporting=[2], n_voting=[2]))
    >>> claims_summary_table(c)[["Claim", "Reproduction", "Robustness", "Extension", "Agree"]].values.tolist()
    [['A', 'reproduced', 'robust', '—', '2 of 2']]
    """
    return pd.DataFrame({
        "Claim": claims["claim_id"], "Kind": claims["kind"],
        "Reproduction": [_answer(x) for x in claims["reproduction"]],
        "Robustness": [_answer(x) for x in claims["robustness"]],
        "Extension": [_answer(x) for x in claims["extension"]],
        "Primary specification": claims["primary_label"].fillna("").replace("", "—"),
        "Estimate": claims["estimate"], "95% low": claims["conf_low"], "95% high": claims["conf_high"],
        "P(direction)": claims["p_direction"],
        "Agree": [f"{int(a)} of {int(b)}" if b == b and b else "—"
                  for a, b in zip(claims["n_supporting"], claims["n_voting"])]})


def claims_long_table(claims: pd.DataFrame, specs: pd.DataFrame | None) -> pd.DataFrame:
    """The specifications of every claim as printed: one row per claim x specification (the claim on
    its first row), estimate and 95% interval, the posterior probability of the claimed direction
    and the Monte Carlo errors of the bounds (MCMC fits), what the specification says, and whether it
    votes (same estimand) or answers a different question; a claim without specifications
    (``not tested``) gets one row saying what it needs. "[paper]" marks the paper's own
    specification, "[primary]" the primary one.

    Examples
    --------
    >>> c = pd.DataFrame(dict(claim_id=["A", "B"], verdict=["fragile", "not tested"], needs=["", "weights"]))
    >>> s = pd.DataFrame(dict(claim_id=["A", "A"], label=["paper", "OLS"], role=["paper", "robustness"],
    ...                       estimate=[1.0, 0.5], conf_low=[0.5, -0.1], conf_high=[1.5, 1.1],
    ...                       outcome=["supports", "includes 0"], vote=["votes", "a different question"],
    ...                       primary=[True, False]))
    >>> claims_long_table(c, s)["Claim"].tolist(), claims_long_table(c, s)["Specification"].tolist()[0]
    (['A', 'A', 'B'], 'paper [paper] [primary]')
    """
    nan = float("nan")
    rows = []
    for _, c in claims.iterrows():
        sub = specs[specs["claim_id"] == c["claim_id"]] if specs is not None and len(specs) else specs
        if sub is None or not len(sub):
            needs = c.get("needs", "")
            rows.append({"Claim": c["claim_id"],
                         "Specification": f"needs {needs}" if isinstance(needs, str) and needs else "none estimated",
                         "Estimate": nan, "95% low": nan, "95% high": nan, "P(direction)": nan, "MCSE low": nan,
                         "MCSE high": nan, "Outcome": "—", "Vote": "—"})
            continue
        for k, (_, s) in enumerate(sub.iterrows()):
            lab = s["label"] + (" [paper]" if s["role"] == "paper" else "") + (" [primary]" if _true(s.get("primary", False)) else "")
            out = s["outcome"]
            vote = s.get("vote", "")
            if out == "missing" and not _true(s.get("required", True)):
                out = "not available (optional)"
            rows.append({"Claim": c["claim_id"], "Specification": lab, "Estimate": s["estimate"],
                         "95% low": s["conf_low"], "95% high": s["conf_high"], "P(direction)": s.get("p_direction", nan),
                         "MCSE low": s.get("mcse_low", nan), "MCSE high": s.get("mcse_high", nan),
                         "Outcome": out, "Vote": vote if isinstance(vote, str) and vote else "—"})
    return pd.DataFrame(rows)


def common_tables(ctx) -> None:
    """Tables every paper has: claims, provenance, models, data issues, software versions."""
    claims = ctx.results["claims"]
    specs = ctx.results.get("claims_specifications")
    summary = claims_summary_table(claims)
    # the main text's table holds the verdicts (it fits a portrait page; a landscape page would break
    # the main text and leave a hole before it); the primary estimates are in the supplement's table
    ctx.save_table(summary[["Claim", "Kind", "Reproduction", "Robustness", "Extension", "Primary specification", "Agree"]],
                   "claims",
                   caption="Claims of Grissom II et al. (2024) and our extensions: the three questions answered apart "
                           "(reproduction of the printed result, robustness over same-estimand specifications, "
                           "extension verdict) and the primary specification; its estimate and 95% interval are in "
                           "@tbl-claims-estimates and in the text.",
                   notes="Agree: same-estimand specifications that support the claim, of those that vote. — : the "
                         "question does not apply.",
                   label="tbl-claims", tidy=summary)
    ctx.save_table(summary[["Claim", "Primary specification", "Estimate", "95% low", "95% high", "P(direction)", "Agree"]],
                   "claims_estimates", digits={"Estimate": 3, "95% low": 3, "95% high": 3, "P(direction)": 3},
                   caption="The primary specification of each claim: its estimate, 95% interval and, for Bayesian fits, "
                           "the posterior probability of the claimed direction.",
                   notes="Agree: same-estimand specifications that support the claim, of those that vote. — : the "
                         "question does not apply.",
                   label="tbl-claims-estimates")
    ctx.save_table(claims_long_table(claims, specs), "claims_specifications",
                   digits={"Estimate": 3, "95% low": 3, "95% high": 3, "P(direction)": 3, "MCSE low": 3,
                           "MCSE high": 3},
                   caption="Every specification of every claim: estimate, 95% interval (Bayesian fits: HDI, with the "
                           "Monte Carlo standard errors of its bounds), posterior probability of the claimed direction, "
                           "outcome, and whether it votes on the claim's robustness or answers a different question.",
                   label="tbl-claims-specifications", blank_repeats=("Claim",))
    rules = pd.DataFrame({"Claim": claims["claim_id"], "Statement": claims["description"],
                          "Paper": claims["paper_value"],
                          "Estimand": claims["estimand"].fillna("") if "estimand" in claims else ""})
    ctx.save_table(rules, "claim_rules",
                   caption="What each claim states, what the paper reported, and the quantity (estimand) its voting "
                           "specifications estimate; each verdict is explained with its numbers in the text.",
                   label="tbl-claim-rules")
    prov = ctx.results["provenance"]
    ctx.save_table(pd.DataFrame({"File": prov["file"], "Rows": prov["rows_expected"],
                                 "sha256": prov["sha256"]}), "provenance",
                   caption="Released inputs, expected rows and verified sha256.",
                   label="tbl-provenance")
    models = ctx.results["models"]
    cols = [c for c in ("model", "formula", "method", "n_obs", "converged", "warnings") if c in models]
    m = models[cols].copy()
    if "warnings" in m:
        m["warnings"] = [w if isinstance(w, str) and w else "none" for w in m["warnings"]]
    if "converged" in m and "method" in m:  # a t-test or OLS has nothing to converge: no "yes" for it
        m["converged"] = [("yes" if _true(c) else "no") if is_iterative(meth) else "n/a"
                          for c, meth in zip(m["converged"], m["method"])]
    m = m.rename(columns={"model": "Model", "formula": "Formula", "method": "Method", "n_obs": "n",
                          "converged": "Converged", "warnings": "Warnings"})
    ctx.save_table(m, "models", digits=0, columns=[Col(c, c, fmt="code") if c == "Formula" else c for c in m.columns],
                   caption="Every model and test fitted, with n, convergence and warnings; convergence is "
                           "n/a for closed-form estimates (OLS, t-tests, correlations, chi-square, ANOVA).",
                   label="tbl-models", tidy=models[cols].reset_index(drop=True))
    ctx.save_table(issue_summary(ctx.results["data_issues"]), "data_issues",
                   caption="Data issues found by the adapters, by file and problem.",
                   label="tbl-data-issues")
    sw = ctx.values["meta"]["software"]
    # every distribution the fit imported (discbias.provenance): three package/version column
    # pairs, so that the table stays short enough to keep with its caption
    items = list(sw.items())
    k = 3
    rows = -(-len(items) // k)
    wide = pd.DataFrame({f"{what}_{j}": [items[j * rows + i][w] if j * rows + i < len(items) else ""
                                          for i in range(rows)]
                         for j in range(k) for w, what in enumerate(("package", "version"))})
    ctx.save_table(wide, "software", columns=[Col(c, "Package" if c.startswith("package") else "Version", fmt="text")
                                              for c in wide.columns],
                   caption=f"Software versions of this build: Python and the {len(items) - 1} distributions the fit "
                           "imported (with the samplers and the renderers, which are always recorded).",
                   label="tbl-software")
