"""Render checks: what a reader or reviewer would catch, found before they do.

Each check takes the rendered files (``paper.qmd``, ``paper.html``, ``paper.pdf`` and the
``paper.typ`` Typst source with the markers of ``typst-checks.typ``) and returns a list of
:class:`Finding` objects naming the page (PDF) or section (HTML) where the problem is. An empty
list means the check passed. :func:`run_checks` runs them all; :func:`discbias.report.render.render`
fails the render when any finds something (``discbias render --draft`` downgrades them to
warnings).

The checks:

``warnings``
    every pandoc and Typst warning is a finding.
``overflow``
    characters outside the PDF page's text area (left or right margin, or off the page).
``overlap``
    characters printed over other characters on the same line of a PDF page (a word wider than
    its table column runs into the next column).
``split-caption``
    a table whose caption is on a page where none of its cells are.
``numbering``
    a cross-reference whose printed number differs from the number of its target, in the PDF
    (Typst's counters) or the HTML (pandoc's section numbers and caption prefixes).
``raw-identifier``
    a key of the study's label dictionary (a ``snake_case`` identifier) in the body text.
``hyphen-minus``
    an ASCII hyphen used as a minus sign before a number (``-0.4``, ``[-1, 1]``).
``unreferenced``
    a figure or table that no cross-reference points at.
``unresolved``
    a citation or cross-reference left unresolved (``@fig-x`` or citeproc's ``???`` in the text).
``original-numbering``
    "Figure N" / "Table N" in the text that is not one of this paper's cross-references: the
    replicated paper's figures are named as such ("Grissom et al.'s Figure 7").
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from html.parser import HTMLParser
from pathlib import Path


@dataclass(frozen=True)
class Finding:
    """One failed render check.

    Attributes
    ----------
    check : str
        Name of the check (``overflow``, ``hyphen-minus``, ...).
    where : str
        Page (``page 3``) or section (``section "Methods"``) of the problem.
    message : str
        What is wrong, with the offending text.
    """

    check: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"[{self.check}] {self.where}: {self.message}"


def format_findings(findings: list[Finding]) -> str:
    """One line per finding, grouped by check.

    Examples
    --------
    >>> format_findings([Finding("overflow", "page 2", "text beyond the right margin: 'x'")])
    "[overflow] page 2: text beyond the right margin: 'x'\\n"
    """
    return "".join(f"{f}\n" for f in sorted(findings, key=lambda f: f.check))


def _excerpt(text: str, start: int, end: int, width: int = 30) -> str:
    s = text[max(0, start - width):end + width].replace("\n", " ")
    return re.sub(r"\s+", " ", s).strip()


# ------------------------------------------------------------------------------------ HTML text
class _BodyText(HTMLParser):
    """Text of an HTML page by section, without code, maths, scripts and the table of contents."""

    SKIP = {"script", "style", "code", "pre", "math", "head", "nav"}
    HEADINGS = {"h1", "h2", "h3", "h4"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.segments: list[list[str]] = [["front matter", ""]]
        self._skip = 0
        self._heading: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self._skip += 1
        elif tag in self.HEADINGS and not self._skip:
            self._heading = []

    def handle_endtag(self, tag):
        if tag in self.SKIP and self._skip:
            self._skip -= 1
        elif tag in self.HEADINGS and self._heading is not None:
            self.segments.append([" ".join("".join(self._heading).split()), ""])
            self._heading = None

    def handle_data(self, data):
        if self._skip:
            return
        if self._heading is not None:
            self._heading.append(data)
        else:
            self.segments[-1][1] += data


def html_sections(html: str) -> list[tuple[str, str]]:
    """``(section heading, body text)`` pairs of an HTML page (code, maths and TOC left out).

    Examples
    --------
    >>> html_sections('<h1>Intro</h1><p>Text <code>x_y</code> here.</p>')
    [('front matter', ''), ('Intro', 'Text  here.')]
    """
    return list(_sections(html))


@lru_cache(maxsize=2)
def _sections(html: str) -> tuple[tuple[str, str], ...]:
    """Parsed once per page text: four checks read the sections of the same (embedded-image) page."""
    p = _BodyText()
    p.feed(html)
    return tuple((h, t) for h, t in p.segments)


def _read(path) -> str:
    return Path(path).read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------- checks
def check_warnings(warnings: list[str]) -> list[Finding]:
    """Every pandoc or Typst warning is a finding.

    Examples
    --------
    >>> check_warnings(["typst: unknown font family: foo"])[0].check
    'warnings'
    """
    return [Finding("warnings", w.split(":", 1)[0], w.split(":", 1)[-1].strip()) for w in warnings]


def _length_pt(length: str) -> float:
    m = re.fullmatch(r"\s*([\d.]+)\s*(pt|in|cm|mm)\s*", str(length))
    if not m:
        raise ValueError(f"cannot read the length {length!r} (use pt, in, cm or mm)")
    return float(m.group(1)) * {"pt": 1.0, "in": 72.0, "cm": 72 / 2.54, "mm": 72 / 25.4}[m.group(2)]


_PAGES: dict[tuple, list[tuple[float, float, list[dict]]]] = {}


_SPACES = frozenset((0x09, 0x0A, 0x0D, 0x20, 0xA0))


def _read_pdf_chars(path: str) -> list[tuple[float, float, list[dict]]]:
    """Every page's characters through PDFium (C): text, advance box, baseline.

    A character's box runs from its origin over its advance width (the font's width of the
    glyph), as pdfminer's does, and over the font's ascent and descent. PDFium's own "loose" box
    takes the inked outline's right edge where that lies further (a Q's tail), which reads as
    an overlap with the next letter, so it is used only where the font's width of the character
    cannot be had, or for one glyph that stands for several characters (a ligature), which PDFium
    reports as characters with one origin and a share of the glyph's box each, and which becomes
    one character with the whole box, as in pdfminer.
    """
    import ctypes

    import pypdfium2 as pdfium
    import pypdfium2.raw as raw

    # the C functions, looked up once (a handful of calls per character)
    get_unicode = raw.FPDFText_GetUnicode
    loose_box, char_origin, text_object = raw.FPDFText_GetLooseCharBox, raw.FPDFText_GetCharOrigin, raw.FPDFText_GetTextObject
    glyph_width, char_matrix = raw.FPDFFont_GetGlyphWidth, raw.FPDFText_GetMatrix
    pages = []
    doc = pdfium.PdfDocument(path)
    try:
        rect = raw.FS_RECTF()
        ox, oy = ctypes.c_double(), ctypes.c_double()
        size, width = ctypes.c_float(), ctypes.c_float()
        matrix = raw.FS_MATRIX()
        widths: dict[tuple, float] = {}  # (font, font size, character) -> advance in points, 0 if unknown
        for i in range(len(doc)):
            page = doc[i]
            page_w, page_h = page.get_size()
            text = page.get_textpage()
            chars: list[dict] = []
            objects: dict[bytes, tuple] = {}  # text object's address -> (font, its address, font size, matrix scale)
            prev = None
            for k in range(raw.FPDFText_CountChars(text)):
                uni = get_unicode(text, k)
                if uni in _SPACES:  # a space or line break (PDFium infers them; the checks skip them)
                    prev = None
                    continue
                uni = 0x2D if uni == 0x02 else uni  # PDFium's code for a hyphen at a line break
                loose_box(text, k, rect)
                char_origin(text, k, ox, oy)
                origin = (ox.value, oy.value)
                if prev is not None and origin == prev[0]:
                    # one glyph for several characters (a ligature, or a letter with a zero-width
                    # space typeset after it): PDFium gives each a share of the glyph's box
                    prev[1]["text"] += chr(uni)
                    prev[1]["x1"] = max(prev[1]["x1"], rect.right)
                    continue
                obj = text_object(text, k)
                key = bytes(obj)  # the pointer's address (a cheap, hashable identity)
                if key not in objects:
                    font = raw.FPDFTextObj_GetFont(obj) if obj else None
                    font_size = size.value if obj and raw.FPDFTextObj_GetFontSize(obj, size) else 0.0
                    char_matrix(text, k, matrix)  # the text object's and the page's scaling of the font size
                    objects[key] = (font, bytes(font) if font else b"", font_size, math.hypot(matrix.a, matrix.b))
                font, font_key, font_size, scale = objects[key]
                wkey = (font_key, font_size, uni)
                if wkey not in widths:
                    ok = font and font_size and glyph_width(font, uni, font_size, width) and width.value > 0
                    widths[wkey] = width.value if ok else 0.0
                advance = rect.right - rect.left
                if widths[wkey]:
                    advance = min(advance, widths[wkey] * scale)
                c = {"text": chr(uni), "x0": ox.value, "x1": ox.value + advance,
                     "top": page_h - rect.top, "bottom": page_h - rect.bottom, "baseline": page_h - oy.value}
                chars.append(c)
                prev = (origin, c)
            text.close()
            page.close()
            for c in chars:  # a character beyond the BMP (math italic 𝑛) comes as its two UTF-16 halves
                if any("\ud800" <= ch <= "\udfff" for ch in c["text"]):
                    c["text"] = c["text"].encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
                if len(c["text"]) > 1 and "\u200b" in c["text"]:  # a zero-width space shares its neighbour's glyph
                    c["text"] = c["text"].replace("\u200b", "") or "\u200b"
            pages.append((float(page_w), float(page_h), chars))
    finally:
        doc.close()
    return pages


def pdf_chars(pdf) -> list[tuple[float, float, list[dict]]]:
    """Each page's width, height and characters, parsed once per file version.

    A character is a dict of ``text``, ``x0``, ``x1`` (its advance box), ``top``, ``bottom`` (the
    font's ascent and descent) and ``baseline``, in points from the page's top-left corner, as
    PDFium (``pypdfium2``) reads them. The advance box is the one pdfminer and pdfplumber report
    (they agree to about 0.1 pt), read about 30 times faster; the render checks group characters
    into lines by their baseline.

    :func:`check_overflow` and :func:`check_overlap` both read them.

    Examples
    --------
    >>> pdf_chars("paper.pdf")[0][2][0]["text"]  # doctest: +SKIP
    'P'
    """
    p = Path(pdf)
    st = p.stat()
    key = (str(p.resolve()), st.st_mtime_ns, st.st_size)
    if key not in _PAGES:
        pages = _read_pdf_chars(str(p))
        _PAGES.clear()
        _PAGES[key] = pages
    return _PAGES[key]


def check_overflow(pdf, margin: dict | None = None, tolerance: float = 3.0) -> list[Finding]:
    """Characters outside the text area of each PDF page (left or right margin, or off the page).

    ``margin`` gives the Typst page margins (``{"x": "1.25in", "y": "1.25in"}``); the text
    area is the page less the ``x`` margin on each side, widened by ``tolerance`` points for
    Typst's hanging punctuation (a hyphen or comma at the end of a justified line overhangs the
    margin by design). Page numbers in the bottom margin are fine; anything beyond the page's
    edge is not.

    Examples
    --------
    >>> check_overflow("paper.pdf", {"x": "1.25in", "y": "1.25in"})  # doctest: +SKIP
    [Finding(check='overflow', where='page 7', message="text beyond the right margin by 31 pt: '...'")]
    """
    mx = _length_pt((margin or {}).get("x", "1.25in"))
    out = []
    for i, (width, height, chars) in enumerate(pdf_chars(pdf), start=1):
        left, right = mx - tolerance, width - mx + tolerance
        bad = [c for c in chars if c["text"].strip() and (
            c["x0"] < left or c["x1"] > right or c["top"] < 0 or c["bottom"] > height)]
        if not bad:
            continue
        worst = max(max(left - c["x0"], c["x1"] - right) for c in bad)
        side = "right" if any(c["x1"] > right for c in bad) else "left"
        lines: dict[int, list] = {}
        for c in chars:
            lines.setdefault(round(c["baseline"]), []).append(c)
        tops = sorted({round(c["baseline"]) for c in bad})
        sample = " | ".join("".join(ch["text"] for ch in sorted(lines[t], key=lambda ch: ch["x0"]))[-60:]
                            for t in tops[:3])
        out.append(Finding("overflow", f"page {i}",
                           f"{len(bad)} character(s) beyond the {side} margin (by up to {worst:.0f} pt) "
                           f"on {len(tops)} line(s): '{sample}'"))
    return out


def check_overlap(pdf, threshold: float = 1.5) -> list[Finding]:
    """Characters printed over their neighbours on the same line (text running into a table column).

    Characters of a line are taken in order of their left edge; a character that starts more than
    ``threshold`` points before its left neighbour ends overlaps it (kerning moves glyphs by less).

    Examples
    --------
    >>> check_overlap("paper.pdf")  # doctest: +SKIP
    [Finding(check='overlap', where='page 34', message="text overlaps other text on 3 line(s): 's1x_spline_exposure_valuescore'")]
    """
    out = []
    for i, (_, _, chars) in enumerate(pdf_chars(pdf), start=1):
        lines: dict[int, list] = {}
        for c in chars:
            if c["text"].strip():
                lines.setdefault(round(c["baseline"]), []).append(c)
        bad = []
        for top in sorted(lines):
            cs = sorted(lines[top], key=lambda c: c["x0"])
            if any(b["x0"] < a["x1"] - threshold for a, b in zip(cs, cs[1:])):
                bad.append("".join(c["text"] for c in cs)[:60])
        if bad:
            out.append(Finding("overlap", f"page {i}", f"text overlaps other text on {len(bad)} line(s): "
                               + " | ".join(f"'{b}'" for b in bad[:3])))
    return out


_MARKS: dict[tuple, list[dict]] = {}


def _query(typ, mark: str, root) -> list[dict]:
    """The ``<discbias-mark>`` markers of kind ``mark`` (one Typst query per file version)."""
    import typst

    p = Path(typ)
    key = (str(p.resolve()), p.stat().st_mtime_ns, str(root))
    if key not in _MARKS:
        _MARKS.clear()
        _MARKS[key] = json.loads(typst.query(str(p), "<discbias-mark>", field="value",
                                             root=str(root or p.parent)))
    return [m for m in _MARKS[key] if m.get("mark") == mark]


def check_split_captions(typ, root=None) -> list[Finding]:
    """Tables whose caption is on a page where none of the table's cells are.

    Reads the caption and cell markers (``<discbias-mark>``) that ``typst-checks.typ``
    puts into the document.

    Examples
    --------
    >>> check_split_captions("paper.typ")  # doctest: +SKIP
    [Finding(check='split-caption', where='page 4', message='Table 3: caption on page 4, table on page 5')]
    """
    caps = [c for c in _query(typ, "caption", root) if c["kind"] == "table"]
    cells: dict[int, set[int]] = {}
    for c in _query(typ, "cell", root):
        cells.setdefault(int(c["n"]), set()).add(int(c["page"]))
    out = []
    for c in caps:
        pages = cells.get(int(c["n"]))
        if pages and int(c["page"]) not in pages:
            span = f"page {min(pages)}" if len(pages) == 1 else f"pages {min(pages)}-{max(pages)}"
            out.append(Finding("split-caption", f"page {c['page']}",
                               f"Table {c['n']}: caption on page {c['page']}, table on {span}"))
    return out


_LINK = re.compile(r'<a href="#((?:sec|fig|tbl|eq)-[\w-]+)"[^>]*>(.*?)</a>', re.S)


def _strip_tags(s: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", s)).replace("\u00a0", " ").strip()


def check_numbering(html=None, typ=None, root=None) -> list[Finding]:
    """Cross-references whose printed number is not the number of their target.

    HTML: the link text of ``<a href="#sec-x">`` must end in the section number pandoc printed
    in that heading, and a figure or table link in the number of its caption prefix. PDF: each
    link's number must equal Typst's number for the label (``<discbias-mark>`` number markers).

    Examples
    --------
    >>> html = '<h1 id="sec-a"><span class="header-section-number">2</span> A</h1><a href="#sec-a">Section 3</a>'
    >>> [f.message for f in check_numbering(html=html)]
    ["'Section 3' points at sec-a, which is numbered 2"]
    """
    out = []
    if html is not None:
        text = html if "<" in str(html) else _read(html)
        printed: dict[str, str] = {}
        for m in re.finditer(r'<h\d[^>]*id="(sec-[\w-]+)"[^>]*>\s*<span class="header-section-number">([\d.]+)</span>',
                             text):
            printed[m.group(1)] = m.group(2)
        for m in re.finditer(r'id="((?:fig|tbl)-[\w-]+)".*?<strong>(?:Figure|Table) (\d+):</strong>', text, re.S):
            printed.setdefault(m.group(1), m.group(2))
        for m in _LINK.finditer(text):
            target, label = m.group(1), _strip_tags(m.group(2))
            num = re.search(r"([\d.]+)$", label)
            if num and target in printed and num.group(1) != printed[target]:
                out.append(Finding("numbering", f"HTML, link to {target}",
                                   f"'{label}' points at {target}, which is numbered {printed[target]}"))
    if typ is not None:
        numbers = {m["label"]: str(m["n"]) for m in _query(typ, "number", root)}
        src = _read(typ)
        for m in re.finditer(r"#link\(<((?:sec|fig|tbl|eq)-[\w-]+)>\)\[(.*?)\]", src):
            target, label = m.group(1), m.group(2).replace("~", " ").replace("\u00a0", " ")
            num = re.search(r"([\d.]+)$", label.strip())
            if num and target in numbers and num.group(1) != numbers[target].rstrip("."):
                out.append(Finding("numbering", f"PDF, link to {target}",
                                   f"'{label.strip()}' points at {target}, which Typst numbers {numbers[target]}"))
    return out


#: Quoted text the raw-identifier check leaves alone: curly double quotes, and one quoted name.
_QUOTED = re.compile(r"\u201c[^\u201d]*\u201d|'[\w./:-]+'")


def check_raw_identifiers(html, keys) -> list[Finding]:
    """Keys of the label dictionary (``snake_case`` identifiers) in the body text.

    Only keys with an underscore count: a plain word such as ``male`` is also prose. Code spans
    are left out of the body text, so an identifier a reader must type may stay in one; so is
    quoted text (a warning quoted in \u201ccurly quotes\u201d as a library wrote it, or one quoted
    name such as ``'skin_r1'``), and a path (an id after ``/``, ``.`` or ``-``).

    Examples
    --------
    >>> [f.message for f in check_raw_identifiers("<h1>Results</h1><p>The blue_mean slope.</p>", ["blue_mean"])]
    ["raw identifier 'blue_mean' (label: use the readable label): 'The blue_mean slope.'"]
    >>> check_raw_identifiers("<p>Fit: \u201cblue_mean is collinear\u201d; column 'blue_mean'.</p>", ["blue_mean"])
    []
    """
    keys = sorted({k for k in keys if "_" in str(k)}, key=len, reverse=True)
    if not keys:
        return []
    pat = re.compile(r"(?<![\w./-])(" + "|".join(map(re.escape, keys)) + r")(?![\w-])")
    out = []
    text = html if "<" in str(html) else _read(html)
    for head, body in html_sections(text):
        body = _QUOTED.sub(lambda q: " " * len(q.group(0)), body)
        for m in pat.finditer(body):
            out.append(Finding("raw-identifier", f'section "{head}"',
                               f"raw identifier '{m.group(1)}' (label: use the readable label): "
                               f"'{_excerpt(body, m.start(), m.end())}'"))
    return out


_HYPHEN_MINUS = re.compile(r"(?:(?<=^)|(?<=[\s(\[{=<>,;:/|]))-(?=\.?\d)", re.M)


def check_hyphen_minus(html) -> list[Finding]:
    """An ASCII hyphen used as a minus sign before a number, in the body text.

    A hyphen counts as a minus when it follows a space, an opening bracket, ``=``, ``<``, ``>``,
    a comma, a colon or a slash and precedes a digit (``-0.4``, ``[-1, 1]``); ranges like
    ``1-7`` and ``D1-D10`` are hyphens. Code and maths are left out.

    Examples
    --------
    >>> [f.message for f in check_hyphen_minus("<h1>Results</h1><p>slope -0.37 on 1-7 scales</p>")]
    ["ASCII hyphen as a minus sign (use U+2212): 'slope -0.37 on 1-7 scales'"]
    """
    out = []
    text = html if "<" in str(html) else _read(html)
    for head, body in html_sections(text):
        for m in _HYPHEN_MINUS.finditer(body):
            out.append(Finding("hyphen-minus", f'section "{head}"',
                               f"ASCII hyphen as a minus sign (use U+2212): '{_excerpt(body, m.start(), m.end())}'"))
    return out


_DEFINED = re.compile(r"\{#((?:fig|tbl)-[\w-]+)[\s}]")
_REFERENCED = re.compile(r"@((?:fig|tbl)-[\w-]*\w)")


def check_unreferenced(qmd) -> list[Finding]:
    """Figures and tables that no cross-reference (``@fig-x``, ``@tbl-x``) points at.

    Examples
    --------
    >>> [f.message for f in check_unreferenced("![A](a.png){#fig-a}\\n\\nSee @fig-b.\\n\\n![B](b.png){#fig-b}")]
    ['fig-a is never referenced in the text']
    """
    text = qmd if "{#" in str(qmd) or "@" in str(qmd) else _read(qmd)
    defined = _DEFINED.findall(text)
    used = set(_REFERENCED.findall(text))
    return [Finding("unreferenced", f"{'figure' if d.startswith('fig') else 'table'} {d}",
                    f"{d} is never referenced in the text") for d in defined if d not in used]


def check_unresolved(html) -> list[Finding]:
    """Citations or cross-references left unresolved in the HTML body text.

    Examples
    --------
    >>> [f.check for f in check_unresolved("<h1>Intro</h1><p>As shown by (<strong>smith2020?</strong>) in @fig-x.</p>")]
    ['unresolved', 'unresolved']
    """
    out = []
    text = html if "<" in str(html) else _read(html)
    for head, body in html_sections(text):
        for m in re.finditer(r"(?<![\w.])@(?:fig|tbl|sec|eq)-[\w-]+|\?\?\?|\b[\w:-]+\?(?=\))", body):
            out.append(Finding("unresolved", f'section "{head}"',
                               f"unresolved citation or cross-reference '{m.group(0)}': "
                               f"'{_excerpt(body, m.start(), m.end())}'"))
    return out


def check_original_numbering(html) -> list[Finding]:
    """"Figure N" or "Table N" in the text that is not one of this paper's cross-references.

    The replicated paper's figures must be named as such ("Grissom et al.'s Figure 7"), never
    bare, where they would collide with this paper's numbering.

    Examples
    --------
    >>> [f.check for f in check_original_numbering("<h1>A</h1><p>the model of Figure 7 and <a href='#x'>x</a></p>")]
    ['original-numbering']
    >>> check_original_numbering("<h1>A</h1><p>Grissom et al.'s Figure 7; <a href=\\"#fig-a\\">Figure 2</a></p>")
    []
    """
    text = html if "<" in str(html) else _read(html)
    text = _LINK.sub(" ", text)
    text = re.sub(r"<strong>(?:Figure|Table) \d+:</strong>", " ", text)
    out = []
    pat = re.compile(r"\b(?:Figure|Fig\.|Table|Tab\.)\s?\d+")
    for head, body in html_sections(text):
        body = _QUOTED.sub(lambda q: " " * len(q.group(0)), body)
        for m in pat.finditer(body):
            before = body[max(0, m.start() - 12):m.start()]
            if re.search(r"(?:al\.|paper)['\u2019]s\s$", before):
                continue
            out.append(Finding("original-numbering", f'section "{head}"',
                               f"'{m.group(0)}' is not a cross-reference of this paper; name another paper's "
                               f"figure as such (\"Grissom et al.'s Figure 7\"): '{_excerpt(body, m.start(), m.end())}'"))
    return out


#: Page limit of the main text (title page to the references) that :func:`check_main_text_length`
#: reads, unless the study configuration's ``[paper] main_text_max_pages`` sets another.
MAIN_TEXT_MAX_PAGES = 20
#: Least share of a main-text page's text area that must be filled (:func:`check_empty_pages`),
#: unless ``[paper] min_page_fill`` sets another.
MIN_PAGE_FILL = 0.5
#: Checks whose findings are listed in ``render_checks.txt`` but do not fail the render. Empty: the
#: layout checks (a main text over its page limit, a half-empty page before the appendix) fail it
#: like every other check; a study whose venue allows more pages says so in its configuration.
ADVISORY: frozenset = frozenset()

#: Every check :func:`run_checks` runs, for the list in ``render_checks.txt``.
CHECK_NAMES = ("warnings", "overflow", "overlap", "split-caption", "numbering", "raw-identifier", "hyphen-minus",
               "unreferenced", "unresolved", "original-numbering", "joined-sentence", "collapsed-list",
               "python-repr", "placeholder-plural", "negative-zero", "p-style", "apostrophe", "repeated-caption",
               "empty-page", "main-text-length", "figure-overlap", "empty-table")


def run_checks(qmd=None, html=None, pdf=None, typ=None, root=None, warnings=(), label_keys=(),
               margin=None, figures=(), max_pages: int = MAIN_TEXT_MAX_PAGES,
               min_fill: float = MIN_PAGE_FILL) -> list[Finding]:
    """Run every render check whose input exists; return all findings.

    ``max_pages`` and ``min_fill`` are the layout limits (:func:`check_main_text_length`,
    :func:`check_empty_pages`); :func:`layout_limits` reads them from a study configuration.

    Examples
    --------
    >>> run_checks(warnings=["pandoc (html5): [WARNING] Duplicate identifier 'x'"])[0].check
    'warnings'
    """
    findings = check_warnings(list(warnings))
    if qmd is not None and Path(qmd).exists():
        findings += check_unreferenced(qmd)
    if html is not None and Path(html).exists():
        findings += check_raw_identifiers(html, label_keys)
        findings += check_hyphen_minus(html)
        findings += check_unresolved(html)
        findings += check_original_numbering(html)
        findings += check_numbering(html=html)
    if pdf is not None and Path(pdf).exists():
        findings += check_overflow(pdf, margin)
        findings += check_overlap(pdf)
    if typ is not None and Path(typ).exists():
        findings += check_split_captions(typ, root)
        findings += check_numbering(typ=typ, root=root)
    findings += run_reader_checks(html=html, pdf=pdf, margin=margin, figures=figures, max_pages=max_pages,
                                  min_fill=min_fill)
    return findings


def layout_limits(paper: dict | None) -> dict:
    """``max_pages`` and ``min_fill`` for :func:`run_checks` from a configuration's ``[paper]``
    table (``main_text_max_pages``, ``min_page_fill``), with the defaults where it sets none.

    Examples
    --------
    >>> layout_limits({"main_text_max_pages": 30}), layout_limits(None)
    ({'max_pages': 30, 'min_fill': 0.5}, {'max_pages': 20, 'min_fill': 0.5})
    """
    paper = paper or {}
    return dict(max_pages=int(paper.get("main_text_max_pages") or MAIN_TEXT_MAX_PAGES),
                min_fill=float(paper.get("min_page_fill", MIN_PAGE_FILL)))


def checks_report(findings: list[Finding], checked=CHECK_NAMES, limits: dict | None = None) -> str:
    """The text of ``render_checks.txt``: the findings (or that all passed), then the checks run.

    Examples
    --------
    >>> print(checks_report([], checked=("overflow", "p-style")), end="")
    all render checks passed
    <BLANKLINE>
    checked: overflow, p-style
    """
    failing = [f for f in findings if f.check not in ADVISORY]
    advisory = [f for f in findings if f.check in ADVISORY]
    head = format_findings(failing) or "all render checks passed\n"
    if advisory:
        head += "\nadvisory (listed, not failing the render):\n" + format_findings(advisory)
    tail = ""
    if limits:
        tail = (f"layout limits: main text at most {limits['max_pages']} pages, each page before the appendix at "
                f"least {100 * limits['min_fill']:.0f}% filled ([paper] main_text_max_pages, min_page_fill)\n")
    return head + "\nchecked: " + ", ".join(checked) + "\n" + tail


# ------------------------------------------------------------------ what a reader sees in the text
class _BlockText(_BodyText):
    """Body text by section, with a line break at every block boundary (paragraph, list item,
    table cell, caption), so that text of two blocks never reads as one sentence; captions are
    collected apart (``captions``)."""

    BLOCKS = {"p", "li", "td", "th", "tr", "div", "br", "figcaption", "caption", "dd", "dt", "blockquote",
              "ul", "ol", "table", "figure", "section", "h1", "h2", "h3", "h4", "h5", "h6"}
    CAPTIONS = {"figcaption", "caption"}

    def __init__(self):
        super().__init__()
        self.captions: list[str] = []
        self._caption: list[str] | None = None
        self._caption_depth = 0

    def handle_starttag(self, tag, attrs):
        if tag in self.BLOCKS and not self._skip:
            self.segments[-1][1] += "\n"
        if tag in self.CAPTIONS and not self._skip:
            self._caption, self._caption_depth = [], self._caption_depth + 1
        super().handle_starttag(tag, attrs)

    def handle_endtag(self, tag):
        super().handle_endtag(tag)
        if tag in self.BLOCKS and not self._skip:
            self.segments[-1][1] += "\n"
        if tag in self.CAPTIONS and self._caption is not None:
            self.captions.append(" ".join("".join(self._caption).split()))
            self._caption = None

    def handle_data(self, data):
        super().handle_data(data)
        if self._caption is not None and not self._skip:
            self._caption.append(data)


@lru_cache(maxsize=2)
def _blocks(html: str) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    p = _BlockText()
    p.feed(html)
    return tuple((h, t) for h, t in p.segments), tuple(p.captions)


def html_blocks(html) -> list[tuple[str, str]]:
    """``(section heading, body text)`` pairs of an HTML page with a line break between blocks.

    Examples
    --------
    >>> html_blocks('<h1>A</h1><p>One.</p><p>Two <code>x</code>.</p>')[1]
    ('A', '\\n\\nOne.\\n\\nTwo .\\n')
    """
    text = html if "<" in str(html) else _read(html)
    return list(_blocks(text)[0])


def pdf_text(pdf) -> list[str]:
    """The text of each PDF page as PDFium reads it (words separated by spaces, lines by breaks).

    Examples
    --------
    >>> pdf_text("paper.pdf")[0][:5]  # doctest: +SKIP
    'Title'
    """
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(str(pdf))
    try:
        pages = []
        for i in range(len(doc)):
            page = doc[i]
            tp = page.get_textpage()
            pages.append(tp.get_text_range().replace("\r\n", "\n").replace("\r", "\n").replace("\x02", "-"))
            tp.close()
            page.close()
        return pages
    finally:
        doc.close()


def _texts(html=None, pdf=None) -> list[tuple[str, str]]:
    """``(where, text)`` for every HTML section (References left out) and every PDF page."""
    out = []
    if html is not None:
        out += [(f'section "{h}" (HTML)', t) for h, t in html_blocks(html) if h != "References"]
    if pdf is not None:
        for i, t in enumerate(pdf_text(pdf), start=1):
            out.append((f"page {i} (PDF)", t))
    return out


#: "in training.Without", "made.The", "re-estimated(19": a sentence end glued to the next word.
_JOINED = re.compile(r"(?<![A-Z.])\b([a-z]{2,}[a-z)\]]?)([.!?:;])([A-Z][a-z]+)|\b([a-z]{3,})\((\d)")
#: "rescore them.- Correlational", "group.- Reliability": a list item run into the paragraph.
_COLLAPSED = re.compile(r"[a-z)\]*][.:;] ?[-*][ \t]+\**[A-Z]")
_ABBREV = {"e.g", "i.e", "etc", "vs", "cf", "al", "fig", "tab", "eq", "no", "approx"}


def check_joined_sentences(html=None, pdf=None) -> list[Finding]:
    """Sentences glued together (``training.Without``, ``re-estimated(19``) and lists collapsed
    into a paragraph (``rescore them.- Correlational``), in the HTML sections and the PDF pages.

    File names and domains (``paper.Rmd``, ``www.Nature``) are told apart from sentence ends by
    what follows them: a sentence start is a capital and a lower-case word.

    Examples
    --------
    >>> [f.message for f in check_joined_sentences(html="<h1>A</h1><p>in training.Without it.</p>")]
    ["sentences run together: 'in training.Without it.'"]
    >>> [f.message for f in check_joined_sentences(html="<h1>A</h1><p>them.- Correlational data</p>")]
    ["a list collapsed into a paragraph: 'them.- Correlational data'"]
    >>> check_joined_sentences(html="<h1>A</h1><p>One.</p><ul><li>Two, e.g.Three (19 cells).</li></ul>")
    []
    """
    out = []
    for where, text in _texts(html, pdf):
        for m in _JOINED.finditer(text):
            if m.group(1) and m.group(1).lower() in _ABBREV:
                continue
            before = text[max(0, m.start() - 40):m.start()]
            if m.group(1) and re.search(r"(?:https?://|www\.|/|@)\S*$", before):
                continue
            out.append(Finding("joined-sentence", where, f"sentences run together: '{_excerpt(text, m.start(), m.end())}'"))
        for m in _COLLAPSED.finditer(text):
            out.append(Finding("collapsed-list", where,
                               f"a list collapsed into a paragraph: '{_excerpt(text, m.start(), m.end())}'"))
    return out


_REPR = re.compile(r"(?<![\w\-\u2212.])(True|False|nan|NaN|inf|-inf|\u2212inf)(?![\w\-])"
                   r"|(?<=[:=(,] )(None)(?![\w\-])|(?<![\w\-])(None)(?=[,;)])")
_PLACEHOLDER_PLURAL = re.compile(r"\b\w+\((?:s|es)\)|\b\w+\(ies\)")


def check_python_reprs(html=None, pdf=None) -> list[Finding]:
    """Python representations (``True``, ``False``, ``None``, ``nan``, ``inf``) and placeholder
    plurals (``issue(s)``) in the text a reader sees (HTML prose outside code, PDF pages).

    Examples
    --------
    >>> [f.check for f in check_python_reprs(html="<h1>A</h1><p>converged: True; 599 issue(s); REML log-lik inf</p>")]
    ['python-repr', 'python-repr', 'placeholder-plural']
    >>> check_python_reprs(html="<h1>A</h1><p>None of the fits; <code>x=None</code>. True to form, 1 issue.</p>")
    []
    """
    out = []
    for where, text in _texts(html, pdf):
        for m in _REPR.finditer(text):
            word = m.group(0)
            if word == "True" and re.match(r"\s+[a-z]", text[m.end():m.end() + 3]) and \
                    re.search(r"(?:^|[.!?]\s+|\n)$", text[:m.start()]):
                continue  # a sentence that starts with the word "True"
            out.append(Finding("python-repr", where,
                               f"a Python value '{word}' in the text (write a word or a phrase): "
                               f"'{_excerpt(text, m.start(), m.end())}'"))
        for m in _PLACEHOLDER_PLURAL.finditer(text):
            out.append(Finding("placeholder-plural", where,
                               f"a placeholder plural '{m.group(0)}' (write the count's number): "
                               f"'{_excerpt(text, m.start(), m.end())}'"))
    return out


_NEG_ZERO = re.compile(r"(?<![\w.])[\u2212\-]0(?:[.,]0+)?(?![\d.,]*[1-9])(?![\d.])")


def check_negative_zero(html=None, pdf=None) -> list[Finding]:
    """A negative zero (``−0.0``, ``-0.00``, ``−0``) in the text or a table.

    Examples
    --------
    >>> [f.message for f in check_negative_zero(html="<h1>A</h1><p>slope \u22120.0 and \u22120.05</p>")]
    ["negative zero '\u22120.0': 'slope \u22120.0 and \u22120.05'"]
    """
    out = []
    for where, text in _texts(html, pdf):
        for m in _NEG_ZERO.finditer(text):
            out.append(Finding("negative-zero", where, f"negative zero '{m.group(0)}': '{_excerpt(text, m.start(), m.end())}'"))
    return out


_P_LEADING = re.compile(r"(?m)\bp\s*[=<>]\s*0\.\d|^[ \t]*[<>][ \t]*0\.\d+[ \t]*$")
_P_BARE = re.compile(r"(?m)\bp\s*[=<>]\s*\.\d|^[ \t]*[<>][ \t]*\.\d+[ \t]*$")


def check_p_styles(html=None, pdf=None) -> list[Finding]:
    """p-values in two styles in one document (``p = .034`` in the prose, ``0.034`` / ``< 0.001``
    in a table): the paper uses one.

    A p-value is a number after ``p =``, ``p <`` (prose) or after a ``<`` that is a table cell's
    whole text (``< 0.001``; a cell is a line of the HTML text).

    Examples
    --------
    >>> [f.check for f in check_p_styles(html="<h1>A</h1><p>p = .034</p><table><tr><td>&lt; 0.001</td></tr></table>")]
    ['p-style']
    >>> check_p_styles(html="<h1>A</h1><p>p = .034</p><table><tr><td>&lt; .001</td></tr></table>")
    []
    """
    lead, bare = [], []
    for where, text in _texts(html, pdf):
        lead += [(where, _excerpt(text, m.start(), m.end())) for m in _P_LEADING.finditer(text)]
        bare += [(where, _excerpt(text, m.start(), m.end())) for m in _P_BARE.finditer(text)]
    if lead and bare:
        return [Finding("p-style", lead[0][0], f"p-values in two styles: {len(lead)} with a leading zero "
                        f"(first: '{lead[0][1]}') and {len(bare)} without (first, {bare[0][0]}: '{bare[0][1]}')")]
    return []


_BAD_APOSTROPHE = re.compile(r"(?<=[\w.])['\u2018](?=[a-z])")


def check_apostrophes(html=None, pdf=None) -> list[Finding]:
    """A straight quote or an opening quote (‘) used as an apostrophe (``Grissom et al.'s``,
    ``al.‘s``): the paper's apostrophe is ’ (U+2019).

    Examples
    --------
    >>> [f.message for f in check_apostrophes(html="<h1>A</h1><p>Grissom et al.\u2018s Figure 7</p>")]
    ["apostrophe '\u2018' (use \u2019): 'Grissom et al.\u2018s Figure 7'"]
    >>> check_apostrophes(html="<h1>A</h1><p>Grissom et al.\u2019s Figure; <code>c('a')</code></p>")
    []
    """
    out = []
    for where, text in _texts(html, pdf):
        for m in _BAD_APOSTROPHE.finditer(text):
            out.append(Finding("apostrophe", where, f"apostrophe '{m.group(0)}' (use \u2019): "
                               f"'{_excerpt(text, m.start(), m.end())}'"))
    return out


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.;:])\s+(?=[A-Z(])", text) if len(s.split()) >= 8]


def check_repeated_captions(html) -> list[Finding]:
    """A caption, or a sentence of at least eight words, repeated verbatim in more than one
    figure or table caption (say it once in the text instead).

    Examples
    --------
    >>> cap = "Each estimate is drawn in units of its own interval so that scales can share one axis."
    >>> html = f"<figure><figcaption>Claim A. {cap}</figcaption></figure><figure><figcaption>Claim B. {cap}</figcaption></figure>"
    >>> [f.check for f in check_repeated_captions(html)]
    ['repeated-caption']
    """
    text = html if "<" in str(html) else _read(html)
    captions = [c for c in _blocks(text)[1] if c]
    seen: dict[str, int] = {}
    for c in captions:
        for s in set(_sentences(c)) | ({c} if len(c.split()) >= 3 else set()):
            seen[s] = seen.get(s, 0) + 1
    return [Finding("repeated-caption", "captions", f"repeated verbatim in {n} captions: '{s[:90]}'")
            for s, n in sorted(seen.items()) if n > 1]


class _TableCells(HTMLParser):
    """The body cells (``td``) of every table of an HTML page, with the table's caption."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tables: list[tuple[str, list[str]]] = []
        self._cell: list[str] | None = None
        self._caption: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append(["", []])
        elif tag == "td" and self.tables:
            self._cell = []
        elif tag == "caption" and self.tables:
            self._caption = []

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.tables[-1][1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "caption" and self._caption is not None:
            self.tables[-1][0] = " ".join("".join(self._caption).split())
            self._caption = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._caption is not None:
            self._caption.append(data)


#: What an empty table cell prints: nothing, a dash, or a missing-value marker.
_EMPTY_CELL = re.compile(r"^(?:|[-\u2013\u2014\u2212]|n/?a|NA|NaN|\.)$", re.I)


def check_empty_tables(html, max_empty: float = 0.6, min_cells: int = 6) -> list[Finding]:
    """Tables most of whose body cells (more than ``max_empty``) are empty or a dash: an empty
    grid tells a reader nothing a sentence could not (a cross of which only one cell is possible).

    Examples
    --------
    >>> grid = "<table><caption>Cells.</caption>" + "<tr><td>a</td><td>\u2014</td><td>\u2014</td></tr>" * 3 + "</table>"
    >>> [f.check for f in check_empty_tables(grid)], check_empty_tables(grid.replace("\u2014", "1.0"))
    (['empty-table'], [])
    """
    text = html if "<" in str(html) else _read(html)
    p = _TableCells()
    p.feed(text)
    out = []
    for caption, cells in p.tables:
        if len(cells) < min_cells:
            continue
        empty = sum(bool(_EMPTY_CELL.match(c)) for c in cells)
        if empty / len(cells) > max_empty:
            out.append(Finding("empty-table", f"table '{caption[:60]}'" if caption else "a table",
                               f"{empty} of {len(cells)} cells are empty or a dash: give the few filled values in the "
                               f"text, or drop the structurally empty rows and columns"))
    return out


def _starts_back_matter(text: str) -> bool:
    """Whether a page holds the heading of the references or an appendix (a line of its own; a
    table of contents names them too, followed by dot leaders and a page number).

    Examples
    --------
    >>> _starts_back_matter("Appendix A: Provenance . . . . . . 30"), _starts_back_matter("text\\nReferences\\nA. Author")
    (False, True)
    """
    return any(re.match(r"\s*(?:[A-Z]\s+)?(?:References|Appendix [A-Z]\b)", line) and not re.search(r"(?:\. ){3,}|\.{4,}", line)
               for line in text.splitlines())


def _page_fill(pdf, margin: dict | None = None) -> list[tuple[float, bool]]:
    """Per page: the share of the text area's height covered by any page object (text, paths,
    images), and whether the page holds a heading that starts the appendix or the references."""
    import pypdfium2 as pdfium

    my = _length_pt((margin or {}).get("y", "1.25in"))
    out = []
    doc = pdfium.PdfDocument(str(pdf))
    try:
        texts = pdf_text(pdf)
        for i in range(len(doc)):
            page = doc[i]
            _, h = page.get_size()
            top, bottom = h - my, my  # PDF coordinates: y up
            spans = []
            for obj in page.get_objects(max_depth=3):
                try:
                    left, b, right, t = obj.get_bounds()
                except Exception:  # an object without bounds
                    continue
                b, t = max(b, bottom), min(t, top)
                if t > b:
                    spans.append((b, t))
            spans.sort()
            covered, end = 0.0, bottom
            for b, t in spans:
                if t > end:
                    covered += t - max(b, end)
                    end = t
            out.append((covered / (top - bottom), _starts_back_matter(texts[i])))
            page.close()
    finally:
        doc.close()
    return out


def check_empty_pages(pdf, margin: dict | None = None, min_fill: float = 0.5) -> list[Finding]:
    """Pages before the appendix (and the references) whose text area is more than half empty,
    the last page of the main text excepted: a float pushed to the next page leaves a hole.

    Examples
    --------
    >>> check_empty_pages("paper.pdf", {"x": "1.25in", "y": "1.25in"})  # doctest: +SKIP
    [Finding(check='empty-page', where='page 9', message='page 9 is 38% filled ...')]
    """
    fills = _page_fill(pdf, margin)
    end = next((i for i, (_, starts_back) in enumerate(fills) if starts_back), len(fills))
    out = []
    for i in range(1, max(end - 1, 1)):  # the title page and the last main-text page may be short
        fill = fills[i][0]
        if fill < min_fill:
            out.append(Finding("empty-page", f"page {i + 1}", f"the page's text area is {100 * fill:.0f}% filled "
                               f"(less than {100 * min_fill:.0f}%, [paper] min_page_fill) before the appendix: a figure or table "
                               f"that did not fit left a hole"))
    return out


def main_text_pages(pdf) -> tuple[int, int]:
    """``(main, total)``: the pages before the one where the references (or the first appendix)
    begin, and all pages.

    Examples
    --------
    >>> main_text_pages("paper.pdf")  # doctest: +SKIP
    (19, 34)
    """
    texts = pdf_text(pdf)
    start = next((i for i, t in enumerate(texts) if i > 0 and _starts_back_matter(t)), len(texts))
    return start, len(texts)


def check_main_text_length(pdf, max_pages: int = 20) -> list[Finding]:
    """A main text (title page to the page before the references) longer than ``max_pages``.

    Examples
    --------
    >>> check_main_text_length("paper.pdf", 20)  # doctest: +SKIP
    [Finding(check='main-text-length', where='pages 1-31', message='the main text runs to 31 pages (limit 20) ...')]
    """
    main, total = main_text_pages(pdf)
    if main > max_pages:
        return [Finding("main-text-length", f"pages 1-{main}", f"the main text runs to {main} pages (limit "
                        f"{max_pages}, [paper] main_text_max_pages); move diagnostics and long tables to the "
                        f"supplement after the references")]
    return []


def check_figure_overlap(figures, threshold: float = 0.5) -> list[Finding]:
    """Text labels that overlap in the figures' PDF files (tick and category labels, n labels on
    error bars): characters of two different text runs whose boxes intersect by more than
    ``threshold`` points each way.

    Examples
    --------
    >>> check_figure_overlap(["build/figures/s1_race_bars.pdf"])  # doctest: +SKIP
    [Finding(check='figure-overlap', where='figure s1_race_bars', message="...")]
    """
    import pypdfium2 as pdfium
    import pypdfium2.raw as raw

    out = []
    for path in figures:
        path = Path(path)
        doc = pdfium.PdfDocument(str(path))
        try:
            boxes = []  # (run id, x0, y0, x1, y1, char)
            for pi in range(len(doc)):
                page = doc[pi]
                tp = page.get_textpage()
                run, prev = 0, None
                for k in range(raw.FPDFText_CountChars(tp)):
                    uni = raw.FPDFText_GetUnicode(tp, k)
                    if uni in _SPACES or uni == 0:
                        continue
                    obj = bytes(raw.FPDFText_GetTextObject(tp, k))
                    if obj != prev:
                        run, prev = run + 1, obj
                    x0, y0, x1, y1 = tp.get_charbox(k, loose=False)
                    if x1 > x0 and y1 > y0:
                        boxes.append((run, x0, y0, x1, y1, chr(uni)))
                tp.close()
                page.close()
        finally:
            doc.close()
        runs: dict[int, str] = {}
        for b in boxes:
            runs[b[0]] = runs.get(b[0], "") + b[5]
        hits = set()
        boxes.sort(key=lambda b: b[1])
        for i, a in enumerate(boxes):
            for b in boxes[i + 1:]:
                if b[1] >= a[3] - threshold:
                    break
                if a[0] != b[0] and min(a[3], b[3]) - max(a[1], b[1]) > threshold and \
                        min(a[4], b[4]) - max(a[2], b[2]) > threshold:
                    hits.add(tuple(sorted((runs[a[0]], runs[b[0]]))))
        if hits:
            out.append(Finding("figure-overlap", f"figure {path.stem}", f"labels overlap in {len(hits)} place(s): "
                               + " | ".join(f"'{x}' over '{y}'" for x, y in sorted(hits)[:3])))
    return out


def run_reader_checks(html=None, pdf=None, margin=None, figures=(), max_pages: int = MAIN_TEXT_MAX_PAGES,
                      min_fill: float = MIN_PAGE_FILL) -> list[Finding]:
    """The checks of what a reader sees in the text: joined sentences and collapsed lists, Python
    values and placeholder plurals, negative zero, mixed p styles, wrong apostrophes, repeated
    captions, half-empty pages before the appendix and overlapping figure labels.

    Examples
    --------
    >>> [f.check for f in run_reader_checks(html="<h1>A</h1><p>made.The end; 2 row(s); \u22120.0</p>")]
    ['joined-sentence', 'placeholder-plural', 'negative-zero']
    """
    html = None if html is None or ("<" not in str(html) and not Path(html).exists()) else html
    pdf = None if pdf is None or not Path(pdf).exists() else pdf
    out = check_joined_sentences(html, pdf) + check_python_reprs(html, pdf) + check_negative_zero(html, pdf)
    out += check_p_styles(html, pdf) + check_apostrophes(html, pdf)
    if html is not None:
        out += check_repeated_captions(html)
        out += check_empty_tables(html)
    if pdf is not None:
        out += check_empty_pages(pdf, margin, min_fill)
        out += check_main_text_length(pdf, max_pages)
    if figures:
        out += check_figure_overlap(figures)
    return out
