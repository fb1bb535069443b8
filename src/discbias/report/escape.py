r"""One escaping layer for text that reaches a document (the paper, the audit report, verify's report).

Values (anything from a configuration, a data file, a results file or a bundle: titles, the
abstract, claim ids and descriptions, labels, group levels, file names) are *text*: they must never
become Markdown syntax, raw HTML/Typst/LaTeX, a citation, a cross-reference or template source.
Each output target has one function here:

- :func:`md_text`: prose in pandoc Markdown (every character Markdown could read as syntax is
  backslash-escaped; line breaks become spaces);
- :func:`md_code`: a code span whose fence is longer than any run of backticks in the value;
- :func:`md_ident`: an identifier after ``#`` or ``@`` (``{#fig-<id>}``, ``@tbl-<id>``): any character
  other than ASCII letters, digits, ``_`` and ``-`` becomes ``-``;
- :func:`md_yaml`: a YAML front-matter string (pandoc reads metadata strings as Markdown, so the
  value is :func:`md_text` first, then quoted);
- :func:`md_literal_block`: the literal text of a template that is itself configuration (the
  ``[paper] abstract``): escaped line by line, keeping its line breaks;
- :func:`latex_text`, :func:`typst_str`, :func:`html_text`: text for raw LaTeX, Typst and HTML
  blocks (the publication tables), always on one line so that a value cannot close the raw block.

The Jinja environment of the paper (:func:`discbias.report.render.make_environment`) applies
:func:`md_text` to every value a template prints (Jinja's autoescape with this escaper: a value is
escaped unless it is :class:`markupsafe.Markup`, which only the package's own helpers return).

Examples
--------
>>> print(md_text("**x** <b>y</b> $x$ `c` ![](/etc/hostname) #set {=html} @tbl-a"))
\*\*x\*\* \<b\>y\</b\> \$x\$ \`c\` \!\[\](/etc/hostname) \#set \{=html\} \@tbl-a
>>> print(md_code("a`b"), md_ident("S1 race/../x"), md_yaml("**bold**: x"))
``a`b`` S1-race-x "\\*\\*bold\\*\\*\\: x"
"""

from __future__ import annotations

import html as _html
import json
import re

from markupsafe import Markup

__all__ = ["Markup", "md_text", "md_code", "md_ident", "md_link_target", "md_yaml", "md_literal_block", "latex_text",
           "latex_escape", "LATEX_SPECIAL", "typst_str",
           "html_text", "one_line", "split_markdown_subset"]

#: Control characters and Unicode line/paragraph separators: a value is one line of text.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\x85]+")
#: Characters pandoc Markdown (or raw HTML, maths, citations, attributes, tables) can read as syntax.
#: (``(`` and ``)`` need none: a link or an image needs ``](``, and brackets are escaped.)
_SPECIAL = re.compile(r"([\\`*{}\[\]#!|~<>&:@$^])")
_QUOTES = re.compile(r"([\"'])")
#: An underscore inside a word is never emphasis (pandoc's intraword_underscores, GFM): only one at
#: a word's edge is escaped, so identifiers stay readable in the Markdown.
_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
#: At the start of a line: a list item, an ordered-list number, a horizontal rule.
_LINE_START = re.compile(r"^(\s*)(-(?=[\s-]|$)|\+(?=\s|$)|=|\d+\.(?=\s|$))")


def one_line(x) -> str:
    """``x`` as one line: control characters and line breaks become a space.

    Examples
    --------
    >>> one_line("a\\n\\n````\\r\\nb")
    'a ```` b'
    """
    return _CONTROL.sub(" ", str(x))


def md_text(x, *, quotes: bool = False) -> str:
    r"""``x`` as literal pandoc-Markdown text: backslash before every character Markdown could read
    as syntax (emphasis, code, links, images, raw HTML and attributes, maths, citations and
    cross-references, headings, tables, sub/superscripts, entities); a leading ``-``, ``+``, ``=``
    or ``1.`` is escaped (no list, rule or heading underline), ``www.`` cannot become a link, line breaks become spaces. ``quotes`` escapes
    straight quotes too (no smart quotes; for GFM reports).

    Examples
    --------
    >>> print(md_text("<script>alert(1)</script> ![x](/etc/passwd)"))
    \<script\>alert(1)\</script\> \!\[x\](/etc/passwd)
    >>> print(md_text("- 1. item_a _b_ www.x.org"))
    \- 1. item_a \_b\_ www\.x.org
    >>> print(md_text("2020. A"), md_text("0.3"), md_text("-x"), md_text("---"))
    2020\. A 0.3 -x \---
    """
    s = one_line(x)
    s = _SPECIAL.sub(r"\\\1", s)
    if quotes:
        s = _QUOTES.sub(r"\\\1", s)
    s = _UNDERSCORE.sub(r"\\_", s)
    s = _LINE_START.sub(lambda m: m.group(1) + ("\\" + m.group(2) if len(m.group(2)) == 1 and not m.group(2).isdigit()
                                                else m.group(2)[:-1] + "\\."), s, count=1)
    return re.sub(r"(?i)\bwww\.", lambda m: m.group(0)[:-1] + "\\.", s)


def md_code(*parts) -> str:
    """A Markdown code span holding the concatenated ``parts`` literally: the fence is one backtick
    longer than the longest run of backticks inside; line breaks become spaces.

    Examples
    --------
    >>> md_code("score ~ x"), md_code("a", "``", "b"), md_code("`x`")
    ('`score ~ x`', '```a``b```', '`` `x` ``')
    """
    s = one_line("".join(str(p) for p in parts))
    if not s:
        return ""
    fence = "`" * (max((len(r) for r in re.findall(r"`+", s)), default=0) + 1)
    pad = " " if s.startswith("`") or s.endswith("`") or (s.startswith(" ") and s.endswith(" ") and s.strip()) else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def md_ident(x) -> str:
    """``x`` as part of a Markdown identifier or cross-reference (``{#fig-...}``, ``@tbl-...``):
    ASCII letters, digits, ``_`` and ``-``; a run of anything else becomes one ``-``, and runs of
    ``-`` one ``-`` (a citation key holds only single inner punctuation), none at the end.

    Examples
    --------
    >>> md_ident("fig-score-by-race"), md_ident("a b}{#x"), md_ident("g} ![](/etc/x) {")
    ('fig-score-by-race', 'a-b-x', 'g-etc-x')
    """
    return re.sub(r"-{2,}", "-", re.sub(r"[^A-Za-z0-9_-]+", "-", one_line(x))).strip("-")


def md_link_target(path) -> str:
    """A relative file path as a Markdown link or image target: every character but letters,
    digits and ``/ . _ -`` percent-encoded (no space, parenthesis or quote can end the target).

    Examples
    --------
    >>> md_link_target("../figures/a b(1).svg")
    '../figures/a%20b%281%29.svg'
    """
    from urllib.parse import quote

    return quote(one_line(path), safe="/._-")


def md_yaml(x) -> str:
    """A double-quoted YAML string whose value pandoc reads as literal text (:func:`md_text`).

    Examples
    --------
    >>> print(md_yaml('A "quoted" title: **not bold**'))
    "A \\"quoted\\" title\\\\: \\\\*\\\\*not bold\\\\*\\\\*"
    """
    return json.dumps(md_text(x), ensure_ascii=False)


def md_literal_block(text: str, at_line_start: bool = True) -> str:
    r"""Literal multi-line text (a template's own text that came from a configuration) as Markdown:
    each line :func:`md_text`, line breaks kept, the indentation of continuation lines removed (no
    code blocks). ``at_line_start=False``: the text continues a line (its start keeps its spaces).

    Examples
    --------
    >>> print(md_literal_block("A *b*\n    - c\n\n# d"))
    A \*b\*
    \- c
    <BLANKLINE>
    \# d
    """
    lines = str(text).replace("\r\n", "\n").replace("\r", "\n").split("\n")
    out = []
    for k, line in enumerate(lines):
        if k > 0 or at_line_start:
            line = line.lstrip(" \t")
        out.append(md_text(line) if line else "")
    return "\n".join(out)


#: Text characters and what pdflatex needs for them (the publication tables' LaTeX and captions).
LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}",
                  "\u2212": r"\ensuremath{-}", "\u2014": "---", "\u2013": "--", "\u00d7": r"\ensuremath{\times}",
                  "\u2264": r"\ensuremath{\leq}", "\u2265": r"\ensuremath{\geq}", "\u00b1": r"\ensuremath{\pm}",
                  "\u03c3": r"\ensuremath{\sigma}", "\u03bd": r"\ensuremath{\nu}", "\u0394": r"\ensuremath{\Delta}",
                  "\u03c1": r"\ensuremath{\rho}", "\u03b7": r"\ensuremath{\eta}", "\u03b1": r"\ensuremath{\alpha}",
                  "\u03c7": r"\ensuremath{\chi}", "\u03b2": r"\ensuremath{\beta}", "\u221e": r"\ensuremath{\infty}",
                  "\u00b2": r"\textsuperscript{2}", "\u207b": r"\textsuperscript{\ensuremath{-}}",
                  "\u2070": r"\textsuperscript{0}", "\u00b9": r"\textsuperscript{1}", "\u00b3": r"\textsuperscript{3}",
                  "\u2074": r"\textsuperscript{4}", "\u2075": r"\textsuperscript{5}", "\u2076": r"\textsuperscript{6}",
                  "\u2077": r"\textsuperscript{7}", "\u2078": r"\textsuperscript{8}", "\u2079": r"\textsuperscript{9}",
                  "\u2019": "'", "\u2018": "{`}", "\u201c": "{``}", "\u201d": "''",
                  "`": r"\textasciigrave{}", "\u2026": r"\ldots{}",
                  "\u2248": r"\ensuremath{\approx}", "\u2212": r"\ensuremath{-}", "\u00a0": "~",
                  "\u200b": r"\allowbreak{}"}


def latex_escape(s) -> str:
    """Escape text for LaTeX (special characters; minus, dashes, Greek and super-scripts to
    commands pdflatex knows; backticks and quotes so that no run of backticks can close a raw block),
    on one line.

    Examples
    --------
    >>> latex_escape("a_b & 50% − 1 < 2")
    'a\\\\_b \\\\& 50\\\\% \\\\ensuremath{-} 1 \\\\textless{} 2'
    """
    return "".join(LATEX_SPECIAL.get(ch, ch) for ch in one_line(s))


def latex_text(x) -> str:
    r"""Text for raw LaTeX (:func:`latex_escape`), on one line.

    Examples
    --------
    >>> print(latex_text("\\textbf{x} $y$ #z\n%w"))
    \textbackslash{}textbf\{x\} \$y\$ \#z \%w
    """
    return latex_escape(x)


def typst_str(x) -> str:
    """A Typst string literal (``"..."``) holding ``x``: backslashes and quotes escaped, on one line;
    Typst shows a string as text, never as markup (``#set``, ``$x$``, ``<label>`` stay literal).

    Examples
    --------
    >>> print(typst_str('#set text(red) "q" \\\\ x'))
    "#set text(red) \\"q\\" \\\\ x"
    """
    return '"' + one_line(x).replace("\\", "\\\\").replace('"', '\\"') + '"'


def html_text(x) -> str:
    """Text for raw HTML: ``& < > " '`` as entities, on one line.

    Examples
    --------
    >>> html_text('<img src=x onerror="alert(1)">')
    '&lt;img src=x onerror=&quot;alert(1)&quot;&gt;'
    """
    return _html.escape(one_line(x), quote=True)


_TOKEN = re.compile(r"(`+)|(\\[!-/:-@\[-`{-~])|(@(?:tbl|fig|sec)-[\w-]+)")


def split_markdown_subset(md: str) -> list[tuple[str, str]]:
    r"""Split a caption in the Markdown subset of the publication tables into ``(kind, text)`` parts:
    ``code`` (a code span of any fence), ``ref`` (``@tbl-x``, without the ``@``) and ``text``
    (literal, with backslash escapes resolved). Anything else is text: a caption never holds other
    Markdown, so a value written into it with :func:`md_text` / :func:`md_code` stays literal.

    Examples
    --------
    >>> split_markdown_subset(r"Model \*x\* (`a ~ b`; see @tbl-c) ``d`e``")
    [('text', 'Model *x* ('), ('code', 'a ~ b'), ('text', '; see '), ('ref', 'tbl-c'), ('text', ') '), ('code', 'd`e')]
    """
    out: list[tuple[str, str]] = []
    text = []
    pos = 0
    s = str(md)
    while pos < len(s):
        m = _TOKEN.search(s, pos)
        if m is None:
            text.append(s[pos:])
            break
        text.append(s[pos:m.start()])
        if m.group(1):
            fence = m.group(1)
            close = re.compile(r"(?<!`)" + fence + r"(?!`)")
            end = close.search(s, m.end())
            if end is None:  # an unclosed fence is text
                text.append(fence)
                pos = m.end()
                continue
            code = s[m.end():end.start()]
            if len(code) > 1 and code.startswith(" ") and code.endswith(" ") and code.strip():
                code = code[1:-1]
            if text:
                out.append(("text", "".join(text)))
                text = []
            out.append(("code", code))
            pos = end.end()
        elif m.group(2):
            text.append(m.group(2)[1])
            pos = m.end()
        else:
            if text:
                out.append(("text", "".join(text)))
                text = []
            out.append(("ref", m.group(3)[1:]))
            pos = m.end()
    if text and "".join(text):
        out.append(("text", "".join(text)))
    return [(k, v) for k, v in out if v or k != "text"]
