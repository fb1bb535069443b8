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


def run_checks(qmd=None, html=None, pdf=None, typ=None, root=None, warnings=(), label_keys=(),
               margin=None) -> list[Finding]:
    """Run every render check whose input exists; return all findings.

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
    return findings
