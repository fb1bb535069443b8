"""Render the paper: Jinja2 fills ``report/paper.qmd.j2``, then pandoc + Typst (or Quarto).

The template reads only ``build/values.json``, ``build/results/``, ``build/figures/`` and
``build/tables/``. Jinja uses ``<< >>`` for values, ``<% %>`` for statements and ``<# #>`` for
comments (braces belong to pandoc and Quarto), with ``StrictUndefined``: a missing value is a
render error naming it, never a blank.
"""

from __future__ import annotations

import contextlib
import logging
import json
import math
import os
import re
import shutil
import subprocess
from pathlib import Path

import jinja2
import jinja2.ext
import jinja2.sandbox
import pandas as pd
from markupsafe import Markup

from ..results import atomic_write_text
from ..errors import UserError

log = logging.getLogger(__name__)

TEMPLATE_DIR_ENV = "DISCBIAS_TEMPLATES"
LUA_FILTER = Path(__file__).with_name("crossref.lua")
#: Every LaTeX package the paper and its tables need, in one file (``discbias render --to latex``).
LATEX_PREAMBLE = Path(__file__).with_name("latex-preamble.tex")
#: Run first: refuses any image, raw-HTML resource or link that the build did not make (see the file).
CONFINE_FILTER = Path(__file__).with_name("confine.lua")
#: Files copied from the template folder next to ``paper.qmd`` (the bibliography and CSL style
#: the front matter names), so that pandoc and ``quarto render`` find them.
SUPPORT_GLOBS = ("*.bib", "*.csl")
#: Page margins of the PDF (Typst lengths); the overflow check measures against them.
PAGE_MARGIN = {"x": "1.25in", "y": "1.25in"}


class RenderError(UserError, RuntimeError):
    """The paper could not be rendered (missing value, table, figure, or a renderer failed)."""


def _fail_undefined(msg):
    raise RenderError(msg)


class Removed(jinja2.ChainableUndefined):
    """A ``values.json`` section of an analysis that was removed because an input file had no usable
    rows (:func:`discbias.stages.removed_section`): everything the templates read from it prints
    ``[not available: analysis not run]``, as text (the reason, ``_undefined_hint``, is said once, in
    the note that opens the paper); tests on it are false, loops over it are empty, and
    formatting or arithmetic on it gives the same text. The paper says where each missing number
    would be, instead of failing to render.

    Examples
    --------
    >>> r = Removed(hint="x.csv has no usable data rows")
    >>> str(r.a.b["c"] + 1), bool(r.n), list(r.items), len(r)
    ('[not available: analysis not run]', False, [], 0)
    """

    __slots__ = ()

    def __str__(self) -> str:  # the reason is said once, in the paper's note on the analyses not run
        return "[not available: analysis not run]"

    def __html__(self) -> Markup:
        from .escape import md_text

        return Markup(md_text(str(self)))

    def _same(self, *args, **kwargs):
        return self

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __rtruediv__ = _same
    __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = __pow__ = __rpow__ = __neg__ = __pos__ = __abs__ = _same
    __call__ = _same

    def _false(self, other):
        return False

    __lt__ = __le__ = __gt__ = __ge__ = _false

    def __eq__(self, other):
        return other is self

    def __ne__(self, other):
        return other is not self

    __hash__ = object.__hash__


def _removed_passes(f):
    """A Jinja filter that gives a :class:`Removed` value back unchanged (``min``, ``sum``, ``join``
    of a removed analysis's numbers print its "not available" text, never an error)."""
    import functools

    skip = 1 if getattr(f, "jinja_pass_arg", None) is not None else 0

    @functools.wraps(f)
    def wrapped(*args, **kwargs):
        if len(args) > skip and isinstance(args[skip], Removed):
            return args[skip]
        return f(*args, **kwargs)

    return wrapped


def with_removed(values: dict) -> dict:
    """``values`` with each removed section (``available: false`` and a ``removed`` reason) as :class:`Removed`.

    Examples
    --------
    >>> v = with_removed({"a": {"available": False, "removed": "why"}, "b": {"x": 1}})
    >>> str(v["a"].x), v["a"]._undefined_hint, v["b"]
    ('[not available: analysis not run]', 'why', {'x': 1})
    """
    out = {k: Removed(hint=v["removed"]) if isinstance(v, dict) and v.get("available") is False and v.get("removed")
           else v for k, v in values.items()}
    gone = [g for g in ((values.get("meta") or {}).get("removed") or []) if isinstance(g, dict) and not g.get("partial")]
    if gone:  # a null elsewhere (a claim of a removed analysis, not estimated) reads "not available" too
        hint = "; ".join(sorted({str(g.get("reason")) for g in gone}))

        def fill(x):
            if x is None:
                return Removed(hint=hint)
            if isinstance(x, dict):
                return {k: fill(v) for k, v in x.items()}
            if isinstance(x, list):
                return [fill(v) for v in x]
            return x

        out = {k: v if isinstance(v, Removed) else fill(v) for k, v in out.items()}
    return out


MINUS = "\u2212"


def _formatting(fn):
    """A :mod:`discbias.report.fmt` function whose errors are render errors."""
    from . import fmt

    def wrapped(*args, **kwargs):
        gone = next((a for a in (*args, *kwargs.values()) if isinstance(a, Removed)), None)
        if gone is not None:  # a number of a removed analysis: its "not available" text
            return gone
        try:
            return fn(*args, **kwargs)
        except fmt.FormatError as exc:
            raise RenderError(str(exc)) from None

    wrapped.__name__ = getattr(fn, "__name__", "format")
    wrapped.__doc__ = fn.__doc__
    return wrapped


def num(x, digits: int = 2) -> str:
    """Format a number for prose (:func:`discbias.report.fmt.number`): a true minus sign, no
    negative zero; a missing (null) value is a render error.

    Examples
    --------
    >>> num(3.14159), num(2, 0), num(12345.6, 0), num(-0.5, 1), num(-0.001, 1)
    ('3.14', '2', '12,346', '−0.5', '0.0')
    """
    return _formatting(__import__("discbias.report.fmt", fromlist=["number"]).number)(x, digits)


def minus(text) -> str:
    """Replace ASCII hyphens used as minus signs before numbers with U+2212 (for text from results).

    One rule for the whole paper: :func:`discbias.report.tables.minus_signs`.

    Examples
    --------
    >>> minus("-2.6 [-3.4, -1.8] on a 1-7 scale")
    '\u22122.6 [\u22123.4, \u22121.8] on a 1-7 scale'
    """
    from .tables import minus_signs

    return minus_signs(text)


def pval(p) -> str:
    """Format a p-value in the paper's one style (:func:`discbias.report.fmt.p_value`):
    ``p < .001`` or ``p = .034``.

    Examples
    --------
    >>> pval(0.0000001), pval(0.0345)
    ('p < .001', 'p = .035')
    """
    from . import fmt

    return _formatting(fmt.p_value)(p)


def yaml_str(x) -> Markup:
    """Quote a string for YAML front matter (a JSON string is a valid YAML scalar) whose value pandoc
    reads as literal text, never Markdown (:func:`discbias.report.escape.md_yaml`).

    Examples
    --------
    >>> print(yaml_str('A: "quoted" *title*'))
    "A\\\\: \\"quoted\\" \\\\*title\\\\*"
    """
    from .escape import md_yaml

    if isinstance(x, Markup):  # already Markdown (the rendered abstract): quoted only
        return Markup(json.dumps(str(x), ensure_ascii=False))
    return Markup(md_yaml(_finalize_text(x)))


def _finalize(value):
    """Every value the template prints, as literal Markdown text: :func:`_finalize_text`, then
    :func:`discbias.report.escape.md_text` (no value becomes Markdown syntax, raw HTML/Typst/LaTeX,
    a citation or a cross-reference). :class:`markupsafe.Markup` (what the package's own helpers
    return: ``table()``, ``figure()``, code spans, the ``yaml`` filter) is printed as it is.

    Examples
    --------
    >>> print(_finalize("**x** <b>y</b> -2.5"), _finalize(Markup("**kept**")))
    \\*\\*x\\*\\* \\<b\\>y\\</b\\> −2.5 **kept**
    """
    from .escape import md_text

    if isinstance(value, (jinja2.Undefined, Markup)):
        return value
    return Markup(md_text(_finalize_text(value)))


def _finalize_text(value):
    """Every value the template prints, as text: a hyphen used as a minus sign becomes U+2212; a boolean
    is a word (``yes``/``no``), a float goes through :func:`discbias.report.fmt.number` with up to
    six significant decimals (no ``inf``, ``nan`` or ``0.30000000000000004``); ``None`` is a
    render error (a value printed as "None" would be a Python repr in the paper).

    Examples
    --------
    >>> _finalize_text(-2.5), _finalize_text("paper: -2.6 [-3.4, -1.8]"), _finalize_text(True), _finalize_text(float("inf"))
    ('−2.5', 'paper: −2.6 [−3.4, −1.8]', 'yes', 'infinite')
    >>> _finalize_text("Grissom et al.'s Figure 7")
    'Grissom et al.’s Figure 7'
    """
    from . import fmt
    from .tables import minus_signs

    if isinstance(value, jinja2.Undefined):
        return value
    if value is None:
        raise RenderError("the template prints a value that is null (None) in the results; "
                          "test it with `is none` or give it a value")
    if isinstance(value, bool):
        return fmt.yes_no(value)
    if isinstance(value, float):
        if not math.isfinite(value) or value == 0:
            return fmt.number(value, 0)
        digits = max(0, 6 - int(math.floor(math.log10(abs(value)))) - 1)
        text = f"{round(value, digits):.{min(digits, 12)}f}"
        text = text.rstrip("0").rstrip(".") if "." in text else text
        return fmt.number(float(text), len(text.partition(".")[2]), group=abs(value) >= 1000)
    if isinstance(value, int):
        value = str(value)
    return apostrophes(minus_signs(value)) if isinstance(value, str) else value


def apostrophes(text: str) -> str:
    """A straight quote used as an apostrophe (``Grissom et al.'s``, ``paper's``) becomes ’ (U+2019),
    in text from results files and configurations; pandoc would read ``al.'s`` as an opening quote.

    Examples
    --------
    >>> apostrophes("Grissom et al.'s Figure 7, the paper's model, c('a', 'b')")
    "Grissom et al.’s Figure 7, the paper’s model, c('a', 'b')"
    """
    from .tables import _APOSTROPHE

    return _APOSTROPHE.sub("\u2019", text)


_BLOCK_TAG = re.compile(r"<%.*?%>")


class KeepLineBreaks(jinja2.ext.Extension):
    r"""``trim_blocks`` only for a block tag on a line of its own.

    With ``trim_blocks`` Jinja removes the line break after *every* block tag, so a line of prose
    that ends in a tag (``... in training.<% endif %>``) was glued to the next line: a list item
    ran into the sentence before it (``rescore them.- Correlational``) and sentences joined
    (``training.Without``). This preprocessor marks a block tag that ends a line holding other
    text with Jinja's ``+%>`` (keep the line break); a line holding only tags (``<% if x %>``,
    ``<% endfor %>``) still disappears whole.

    Examples
    --------
    >>> KeepLineBreaks.mark("text.<% endif %>\n<% if x %>\n- item<% if y %>")
    'text.<% endif +%>\n<% if x %>\n- item<% if y +%>'
    """

    @staticmethod
    def mark(source: str) -> str:
        out = []
        for line in source.split("\n"):
            stripped = line.rstrip()
            if stripped.endswith("%>") and not stripped.endswith(("+%>", "-%>")) and "<%" in stripped:
                last = stripped.rfind("<%")
                closes = stripped.find("%>", last)
                rest = _BLOCK_TAG.sub("", stripped)
                if closes == len(stripped) - 2 and rest.strip():
                    line = stripped[:-2] + "+%>" + line[len(stripped):]
            out.append(line)
        return "\n".join(out)

    def preprocess(self, source, name, filename=None):  # noqa: D102
        return self.mark(source)


_CODE_SPAN = re.compile(r"(?<!`)`(?!`)([^`\n]*)(?<!`)`(?!`)")
_VALUE = re.compile(r"<<(.*?)>>", re.S)
_IDENT_VALUE = re.compile(r"(?<=[@#])((?:[A-Za-z][\w-]*-)?)<<(.*?)>>")


class ValueContexts(jinja2.ext.Extension):
    r"""Values printed where Markdown escaping would be wrong get the escaping of their context.

    Every value is escaped as Markdown text (:func:`_finalize`); two contexts in a template need
    another rule, and this preprocessor rewrites them (so templates stay plain Markdown):

    - a code span holding values, `` `<< x >>` `` or `` `<< x >>…` ``, becomes one
      ``<< md_code(x, "…") >>``: the value is shown literally in code, with a fence longer than any
      backticks it holds (a backslash would be shown inside code);
    - a value inside an identifier or a cross-reference, ``{#<< g.fig_label >>}``,
      ``@fig-<< x >>``, becomes ``<< md_ident(x) >>`` (letters, digits, ``_`` and ``-``).

    A code span that holds a block tag (``<% %>``) is left alone: its values are escaped as text.

    Examples
    --------
    >>> print(ValueContexts.rewrite("see `<< a.b | lower >>…` and @fig-<< c >>, {#<< d >> width=1}"))
    see << md_code((a.b | lower), '…') >> and @fig-<< md_ident((c)) >>, {#<< md_ident((d)) >> width=1}
    """

    @staticmethod
    def rewrite(source: str) -> str:
        def code(m: re.Match) -> str:
            body = m.group(1)
            if "<<" not in body or "<%" in body or "%>" in body or "<#" in body:
                return m.group(0)
            parts, pos = [], 0
            for v in _VALUE.finditer(body):
                if v.start() > pos:
                    parts.append(repr(body[pos:v.start()]))
                parts.append(f"({v.group(1).strip()})")
                pos = v.end()
            if pos < len(body):
                parts.append(repr(body[pos:]))
            return "<< md_code(" + ", ".join(parts) + ") >>"

        source = _CODE_SPAN.sub(code, source)
        return _IDENT_VALUE.sub(lambda m: f"{m.group(1)}<< md_ident(({m.group(2).strip()})) >>", source)

    def preprocess(self, source, name, filename=None):  # noqa: D102
        return self.rewrite(source)


class EscapeTemplateText(jinja2.ext.Extension):
    """The literal text of a template that is itself configuration (the ``[paper] abstract``) is
    escaped as Markdown too (:func:`discbias.report.escape.md_literal_block`): only its ``<< >>``
    values and ``<% %>`` statements are template; its words are text."""

    def filter_stream(self, stream):  # noqa: D102
        from .escape import md_literal_block

        line_start = True
        for token in stream:
            if token.type == "data":
                text = md_literal_block(token.value, at_line_start=line_start)
                line_start = token.value.endswith("\n")
                yield jinja2.lexer.Token(token.lineno, token.type, text)
            else:
                if token.type in ("variable_end",):
                    line_start = False
                yield token


class _MacBytecodeCache(jinja2.FileSystemBytecodeCache):
    """Compiled templates, each file prefixed with a keyed MAC (:mod:`discbias.integrity`).

    Compiled templates are code (marshalled Python), so one read from a build folder copied from
    elsewhere, or rewritten by someone else, would run whatever it holds: a file whose MAC does not
    verify under this user's key is ignored and the template compiled from its source.
    """

    def load_bytecode(self, bucket) -> None:
        from ..integrity import verify

        try:
            with open(self._get_cache_filename(bucket), "rb") as f:
                blob = f.read(64 * 1024 * 1024)
        except OSError:
            return
        tag, body = blob[:64].decode("ascii", "replace"), blob[64:]
        if verify(body, tag, purpose="jinja-bytecode"):
            bucket.bytecode_from_string(body)

    def dump_bytecode(self, bucket) -> None:
        import tempfile

        from ..integrity import mac

        body = bucket.bytecode_to_string()
        path = Path(self._get_cache_filename(bucket))
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
            with os.fdopen(fd, "wb") as f:
                f.write(mac(body, purpose="jinja-bytecode").encode() + body)
            os.replace(tmp, path)
        except OSError:  # a read-only or full build folder: the template is compiled again next time
            pass


def _bytecode_cache(paths) -> jinja2.BytecodeCache | None:
    """Compiled templates under ``build/cache/jinja-mac`` (keyed by each template's source, MAC-checked):
    a template edit recompiles that template only, not the twenty others (half a second a render)."""
    folder = paths.cache / "jinja-mac"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:  # a read-only build folder: compile every time
        return None
    return _MacBytecodeCache(str(folder))


def make_environment(template_dir: str | Path, paths, labels: dict | None = None) -> jinja2.Environment:
    """The Jinja2 environment of the paper, with its helpers bound to ``paths``.

    Helpers: ``table(name)`` (``build/tables/<name>.md``: a captioned publication table),
    ``figure(name)`` (path from the report folder to ``build/figures/<name>.svg``), ``result(name)`` (a results table as a list of
    row dicts), ``has_table(name)`` (whether ``build/tables/<name>.md`` exists), ``label(key)`` (the readable label of an identifier:
    :func:`discbias.report.labels.label` over the package defaults and the study configuration's
    ``[labels]``). The statistics formatting layer :mod:`discbias.report.fmt` is exposed whole:
    filters ``num``, ``int``, ``pval``, ``prob``, ``pct``, ``count`` (``<< n | count("issue") >>``:
    "1 issue", "599 issues"), ``plural``, ``yesno``, and globals ``estimate``, ``interval``,
    ``f_test``, ``t_test``, ``chi2_test``, ``correlation``, ``proportion``, ``is_number``; no
    template formats a number itself. Also filters ``yaml`` (a quoted YAML string), ``codeids``
    (label-dictionary identifiers in a text set as code), ``minus`` (true minus signs in text from
    a results file).
    """
    # Sandboxed: templates and the values they print may come from someone else (a study's
    # template folder, the [paper] abstract, which is itself a template): no attribute that starts
    # with "_", no unsafe callables, so `lipsum.__globals__` and the like fail with a SecurityError.
    env = jinja2.sandbox.SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(str(template_dir)),
        undefined=jinja2.StrictUndefined,
        block_start_string="<%", block_end_string="%>",
        variable_start_string="<<", variable_end_string=">>",
        comment_start_string="<#", comment_end_string="#>",
        keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
        # every value is literal Markdown text (escape.md_text via _finalize); only Markup, which
        # the helpers below return, is printed as it is
        autoescape=True, finalize=_finalize,
        bytecode_cache=_bytecode_cache(paths), extensions=[KeepLineBreaks, ValueContexts],
    )

    def table(name: str) -> str:
        # a PubTable's .md: its caption, label, Typst and HTML blocks (or a pipe table without caption)
        p = paths.tables / f"{safe_name(name)}.md"  # as PubTable.write names it
        if not p.exists() and removed_analyses(paths.values):
            return Markup(md_text(f"[Table {name} not available: an analysis it needs was not run "
                                  f"(a data issue; see the note at the start)]"))
        if not p.exists():
            raise RenderError(f"table '{name}' is missing ({p}); run `discbias figures`")
        return Markup(minus(p.read_text().rstrip("\n")))

    def figure(name: str) -> str:
        # SVG: vector in the HTML and in Typst's PDF; PNG for figures saved before SVG existed
        p = paths.figures / f"{safe_name(name)}.svg"  # as save_figure names it
        if not p.exists():
            p = paths.figures / f"{safe_name(name)}.png"
        if not p.exists() and removed_analyses(paths.values):
            p = _removed_figure(paths, removed_analyses(paths.values))
        if not p.exists():
            raise RenderError(f"figure '{name}' is missing ({p}); run `discbias figures`")
        return Markup(md_link_target(os.path.relpath(p, paths.report)))

    def result(name: str) -> list[dict]:
        p = paths.results / f"{name}.csv"
        if not p.exists():
            raise RenderError(f"results table '{name}' is missing ({p}); run `discbias fit`")
        return pd.read_csv(p).to_dict("records")

    from ..safeio import safe_name
    from .escape import md_code, md_ident, md_link_target, md_text
    from .labels import DEFAULT_LABELS
    from .labels import label as _label

    merged = {**DEFAULT_LABELS, **(labels or {})}

    def label(key: str) -> str:
        return _label(str(key), merged)

    def has_table(name: str) -> bool:
        return (paths.tables / f"{safe_name(name)}.md").exists()

    env.globals.update(table=table, figure=figure, result=result, label=label, page_margin=PAGE_MARGIN, has_table=has_table,
                       section_files=lambda: sorted(
        t for t in env.list_templates() if t.startswith("sections/") and t.endswith(".qmd.j2")))
    id_pattern = re.compile(r"(?<![\w./`-])(" + "|".join(
        re.escape(k) for k in sorted((k for k in merged if "_" in k), key=len, reverse=True)) + r")(?![\w`-])")

    def codeids(text) -> Markup:
        # identifiers a reader looks up in the results files stay, as code (the raw-identifier check
        # skips code); the rest of the text is literal Markdown text
        text, out, pos = _finalize_text(text), [], 0
        for m in id_pattern.finditer(text):
            out += [md_text(text[pos:m.start()]), md_code(m.group(1))]
            pos = m.end()
        return Markup("".join(out + [md_text(text[pos:])]))

    def code_span(*parts) -> Markup:  # `<< x >>` in a template (ValueContexts): the value literally, in code
        return Markup(md_code(*(_finalize_text(p) for p in parts)))

    from . import fmt

    env.filters.update({name: _formatting(fn) for name, fn in fmt.FILTERS.items()})
    env.globals.update({name: _formatting(fn) for name, fn in fmt.GLOBALS.items()})
    env.filters.update(codeids=codeids, yaml=yaml_str, minus=minus)
    env.filters.update({name: _removed_passes(f) for name, f in env.filters.items()})
    env.globals.update(md_code=code_span, md_ident=lambda x: Markup(md_ident(_finalize_text(x))))
    return env


def removed_analyses(values_json) -> str:
    """The analyses of a build removed for a data issue (``values.json``'s ``meta.removed``), in
    words; ``""`` when none was."""
    try:
        meta = json.loads(Path(values_json).read_text()).get("meta", {})
    except (OSError, ValueError, AttributeError):
        return ""
    gone = meta.get("removed") or [] if isinstance(meta, dict) else []
    return "; ".join(f"{g.get('section')} removed ({g.get('reason')})" for g in gone if isinstance(g, dict))


def _removed_figure(paths, why: str) -> Path:
    """A placeholder SVG (in ``build/figures``) for a figure of a removed analysis (``why``: the note
    at the start of the paper says it)."""
    p = Path(paths.figures) / "_removed-analysis.svg"
    p.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(p, '<svg xmlns="http://www.w3.org/2000/svg" width="480" height="60"><text x="10" y="35" '
                      'font-size="12">Figure not available: an analysis it needs was not run (a data issue)</text></svg>')
    return p


def paper_metadata(config) -> dict:
    """The ``[paper]`` table of a study configuration, with defaults.

    Keys: ``title`` (default: the study's title), ``subtitle``, ``authors`` (a list of tables with
    ``name``, ``affiliation``, ``email``), ``keywords``, ``abstract`` (a template: ``<< >>`` values
    are filled from ``values.json``), ``bibliography`` and ``csl`` (files in the template folder).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> cfg = SimpleNamespace(title="A study", raw={"paper": {"keywords": ["GAN"]}})
    >>> m = paper_metadata(cfg)
    >>> m["title"], m["keywords"], m["authors"]
    ('A study', ['GAN'], [])
    """
    raw = dict((getattr(config, "raw", None) or {}).get("paper", {}))
    out = dict(title=getattr(config, "title", "") or "", subtitle="", authors=[], keywords=[], abstract="",
               bibliography="references.bib", csl="chicago-author-date.csl")
    out.update(raw)
    return out


def default_template_dir() -> Path:
    """``$DISCBIAS_TEMPLATES``, else ``report/`` in the project root (:attr:`discbias.paths.ProjectPaths.templates`)."""
    from ..paths import project_paths

    return project_paths().templates


def render_qmd(paths, template_dir: str | Path | None = None, template: str = "paper.qmd.j2",
               paper: dict | None = None, labels: dict | None = None) -> Path:
    """Fill the template from the build folder; write ``build/report/paper.qmd``.

    ``paper`` is :func:`paper_metadata` of the study configuration (title, authors, keywords,
    abstract); its ``abstract`` is itself filled from ``values.json``. The bibliography and CSL
    files of the template folder are copied next to ``paper.qmd``.

    Raises
    ------
    RenderError
        A value, table or figure the template uses is missing.
    """
    template_dir = Path(template_dir or default_template_dir())
    if not (template_dir / template).exists():
        raise RenderError(f"no template {template} in {template_dir}")
    if not paths.values.exists():
        raise RenderError(f"{paths.values} is missing; run `discbias fit` first")
    values = with_removed(json.loads(paths.values.read_text()))
    env = make_environment(template_dir, paths, labels)
    paper = dict(paper or {})
    try:
        if paper.get("abstract"):
            # the abstract is a template from the configuration: its values and its own words are
            # literal text (EscapeTemplateText), so the result is Markdown printed as it is
            abstract_env = env.overlay(extensions=[EscapeTemplateText])
            paper["abstract"] = Markup(abstract_env.from_string(str(paper["abstract"])).render(values=values).strip())
        text = env.get_template(template).render(values=values, paper=paper)
    except jinja2.UndefinedError as exc:
        raise RenderError(f"the paper template uses a value that does not exist: {exc.message}") from None
    except jinja2.exceptions.SecurityError as exc:
        raise RenderError(f"the paper template or the [paper] abstract does something templates may not do "
                          f"(refused by the sandbox): {exc}") from None
    except jinja2.TemplateSyntaxError as exc:
        raise RenderError(f"template syntax error in {exc.name or 'the [paper] abstract'}, line {exc.lineno}: "
                          f"{exc.message}") from None
    # (an escaped \@ is text; "@..." is a string of a raw Typst table)
    glued = re.findall(r"[^\s\[(;>\\\"-]@(?:fig|tbl|sec)-[\w-]+", text)
    if glued:
        raise RenderError(f"cross-reference(s) glued to the preceding text, so pandoc would not see them: "
                          f"{sorted(set(glued))}; put a space before the '@' in the template")
    paths.report.mkdir(parents=True, exist_ok=True)
    for pattern in SUPPORT_GLOBS:
        for f in sorted(template_dir.glob(pattern)):
            shutil.copyfile(f, paths.report / f.name)
    out = paths.report / "paper.qmd"
    atomic_write_text(out, text)
    return out


_CITEPROC_MISSING = re.compile(r"Citeproc: citation (\S+) not found")


def pandoc_path() -> str:
    """The pandoc that ``pypandoc-binary`` ships (3.9: it writes Typst), pinned for this process.

    pypandoc takes the newest pandoc it can run among the one on the PATH and its own; a Debian
    ``pandoc`` 2.17 (pulled in by R packages, say) is chosen whenever the bundled binary's version
    check fails once, e.g. under load, and it cannot write Typst ("Unknown output format typst").
    ``PYPANDOC_PANDOC`` set by the user wins.

    Examples
    --------
    >>> Path(pandoc_path()).name
    'pandoc'
    """
    import pypandoc

    bundled = Path(pypandoc.__file__).with_name("files") / "pandoc"
    if not os.environ.get("PYPANDOC_PANDOC") and bundled.is_file():
        os.environ["PYPANDOC_PANDOC"] = str(bundled)
    return pypandoc.get_pandoc_path()



def _render_failure(qmd: Path, proc, otherwise: str) -> "RenderError":
    """The error of a failed pandoc or Quarto run: the confinement filter's refusal when it refused
    (it prints "discbias: refused ..."), else ``otherwise``."""
    refused = [line for line in proc.stderr.splitlines() if "discbias: refused" in line]
    if refused:
        return RenderError(f"{qmd}: {refused[0].split('discbias: ', 1)[1]}")
    return RenderError(otherwise)

def _pandoc(qmd: Path, to: str, output: Path, extra: list[str], root: Path | None = None) -> list[str]:
    """Run pandoc (the confinement filter, the cross-reference filter, then citeproc); return its warnings.

    Images and raw-HTML resources must be files inside ``root`` (default: the folder above the
    report folder, i.e. the build folder): anything else, or a URL, is a :class:`RenderError`
    (``confine.lua``), so text that reached the Markdown can never embed a local file. A citation
    key that is not in the bibliography is a :class:`RenderError`.
    """
    root = Path(root or qmd.resolve().parent.parent).resolve()
    cmd = [pandoc_path(), str(qmd), "--from=markdown", f"--to={to}", f"--output={output}",
           "--standalone", f"--lua-filter={CONFINE_FILTER}", f"--lua-filter={LUA_FILTER}", "--citeproc",
           f"--resource-path={qmd.parent}", *extra]
    env = dict(os.environ, DISCBIAS_RESOURCE_ROOT=str(root), DISCBIAS_RESOURCE_BASE=str(qmd.resolve().parent))
    if removed_analyses(root / "values.json"):
        env["DISCBIAS_REMOVED_ANALYSES"] = "1"  # their tables' and figures' references read "(not available)"
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=qmd.parent, env=env)
    if proc.returncode:
        raise _render_failure(qmd, proc, f"pandoc failed converting {qmd.name} to {to}: {proc.stderr.strip()[-4000:]}")
    warnings = [line.strip() for line in proc.stderr.splitlines() if line.strip()]
    missing = sorted({m.group(1) for w in warnings for m in _CITEPROC_MISSING.finditer(w)})
    if missing:
        raise RenderError(f"unknown citation key(s) {missing}: not in the bibliography "
                          f"({', '.join(sorted(str(p.name) for p in qmd.parent.glob('*.bib')))})")
    return [f"pandoc ({to}): {w}" for w in warnings]


def render_html(qmd: Path, warnings: list[str] | None = None) -> Path:
    """Self-contained HTML (embedded images, MathML; no network); pandoc's warnings go to ``warnings``."""
    out = qmd.with_suffix(".html")
    css = Path(__file__).with_name("paper.css")
    after = Path(__file__).with_name("paper-after.html")  # "Contents" link and click-to-zoom figures
    w = _pandoc(qmd, "html5", out, ["--embed-resources", "--mathml", f"--css={css}", "--toc", "--number-sections",
                                    f"--include-after-body={after}"])
    if warnings is not None:
        warnings.extend(w)
    return out


def _for_print(qmd: Path, suffix: str) -> Path:
    """A copy of ``paper.qmd`` whose figures are the PDF versions (LaTeX and Word cannot embed SVG)."""
    text = re.sub(r"(\]\()([^)\s]+)\.svg\)", lambda m: m.group(1) + m.group(2) + (
        ".pdf)" if suffix == "latex" and (qmd.parent / (m.group(2) + ".pdf")).exists() else ".png)"), qmd.read_text())
    out = qmd.with_name(f"{qmd.stem}-{suffix}.qmd")
    atomic_write_text(out, text)
    return out


def render_latex(qmd: Path, warnings: list[str] | None = None) -> Path:
    """A standalone ``build/report/latex/paper.tex`` (pdflatex, Debian TeX Live): pandoc's LaTeX
    writer with the packages of ``latex-preamble.tex``; tables are the fitted LaTeX of
    :meth:`discbias.report.tables.PubTable.to_latex`, figures their PDF versions. It has a folder
    of its own so that ``latexmk -pdf paper.tex`` there does not overwrite the Typst ``paper.pdf``.

    Examples
    --------
    >>> render_latex(Path("build/report/paper.qmd"))  # doctest: +SKIP
    PosixPath('build/report/latex/paper.tex')
    """
    src = _for_print(qmd, "latex")
    folder = qmd.parent / "latex"
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / qmd.with_suffix(".tex").name
    try:
        w = _pandoc(src, "latex", out, ["--number-sections", f"--include-in-header={LATEX_PREAMBLE}",
                                        "-V", "documentclass=article", "-V", "fontsize=10pt", "-V", "papersize=a4"])
        # figure paths are relative to the report folder, one up from this one
        text = out.read_text().replace("\\begin{document}", "\\graphicspath{{../}}\n\\begin{document}", 1)
        atomic_write_text(out, text)
    finally:
        src.unlink(missing_ok=True)
    if warnings is not None:
        warnings.extend(w)
    return out


def render_pandoc(qmd: Path, to: str, warnings: list[str] | None = None) -> Path:
    """``paper.docx`` (Word) or ``paper.xml`` (JATS) through pandoc; tables and figures as the
    HTML and print paths give them where the format can hold them.

    Examples
    --------
    >>> render_pandoc(Path("build/report/paper.qmd"), "jats")  # doctest: +SKIP
    PosixPath('build/report/paper.xml')
    """
    if to not in ("docx", "jats"):
        raise RenderError(f"unknown output format {to!r}; one of docx, jats")
    src = _for_print(qmd, to)
    out = qmd.with_suffix(".docx" if to == "docx" else ".xml")
    try:
        w = _pandoc(src, "docx" if to == "docx" else "jats_articleauthoring", out, ["--number-sections"] if to == "docx" else [])
    finally:
        src.unlink(missing_ok=True)
    if warnings is not None:
        warnings.extend(w)
    return out


@contextlib.contextmanager
def outputs_removed_on_failure(qmd: Path):
    """Remove ``qmd``'s HTML and PDF when rendering fails part-way.

    A paper whose PDF could not be made (or whose HTML failed) is not left behind as though it
    were finished: a reader would take an HTML file next to a failed PDF for the result.
    """
    try:
        yield
    except BaseException:
        for suffix in (".html", ".pdf"):
            qmd.with_suffix(suffix).unlink(missing_ok=True)
        raise


#: Typst files prepended to the pandoc output, in this order: the table style, the rule that keeps
#: a table with its caption, and the markers the render checks read back with ``typst.query``
#: (caption and table pages, numbering).
TYPST_PRELUDES = ("typst-header.typ", "typst-keep.typ", "typst-checks.typ")


def typst_apostrophes(text: str) -> str:
    """An apostrophe after a full stop (``Grissom et al.'s``) as ’ in pandoc's Typst output:
    pandoc writes apostrophes as ``'`` and leaves them to Typst's smart quotes, which read a
    quote after a full stop as an opening quote (‘).

    Examples
    --------
    >>> typst_apostrophes("Grissom et al.'s Figure 7; the paper's")
    "Grissom et al.’s Figure 7; the paper's"
    """
    return re.sub(r"(?<=\w\.)'(?=[a-z])", "\u2019", text)


def render_pdf(qmd: Path, root: Path, warnings: list[str] | None = None) -> Path:
    """PDF through pandoc's Typst writer and the ``typst`` package; warnings go to ``warnings``."""
    import typst

    typ = qmd.with_suffix(".typ")
    # --columns=10000: no Markdown line is "too long", so pandoc leaves table column widths to
    # Typst (sized to their content and shrunk to the text width) instead of fixing them from the
    # dash counts, which made numbers and identifiers run into the next column.
    w = _pandoc(qmd, "typst-citations", typ, ["-V", "papersize=a4", "-V", "fontsize=10pt", "--number-sections", "--columns=10000",
                                              "-V", "section-numbering=1.1", "--toc"])
    # Our preludes go first in the file (show rules apply to everything after them); passing
    # them with --include-in-header would replace a template's own `header-includes` metadata.
    style = "\n".join(Path(__file__).with_name(n).read_text() for n in TYPST_PRELUDES)
    typ.write_text(style + "\n" + typst_apostrophes(typ.read_text()))
    out = qmd.with_suffix(".pdf")
    try:
        _, tw = typst.compile_with_warnings(str(typ), output=str(out), root=str(root))
    except Exception as exc:  # typst raises its own error type with the compiler's message
        raise RenderError(f"typst failed compiling {typ}: {exc}") from None
    w += [f"typst: {getattr(x, 'message', x)}" for x in (tw or [])]
    if warnings is not None:
        warnings.extend(w)
    return out


def provenance_table(records, paths) -> Path | None:
    """Write ``build/tables/figure_provenance.*``: for every figure and publication table, the
    step that made it, the code file of that step and the results files it read (the records the
    figure steps keep, :func:`discbias.stages.figure_step`); ``None`` when there are none.

    Examples
    --------
    >>> rec = [dict(saved=["figure:s1_hist", "table:s1_tests"], provenance=dict(step="study1:figures",
    ...        code="src/discbias/report/figures/study1.py", reads=["results/study1_tests.csv", "values.json"]))]
    >>> from discbias.paths import project_paths
    >>> provenance_table(rec, project_paths())  # doctest: +SKIP
    PosixPath('build/tables/figure_provenance.md')
    """
    from .tables import Col, PubTable

    rows = []
    for rec in records or ():
        prov = (rec or {}).get("provenance")
        if not prov or not rec.get("saved"):
            continue
        made = [f"figures/{name}.svg" if kind == "figure" else f"tables/{name}.csv"
                for kind, _, name in (str(item).partition(":") for item in rec["saved"])]
        rows.append({"step": prov["step"], "code": prov["code"], "made": ", ".join(made),
                     "reads": ", ".join(prov.get("reads", ()))})
    if not rows:
        return None
    df = pd.DataFrame(rows).sort_values("step", kind="stable").reset_index(drop=True)
    PubTable(df, [Col("step", "Step", fmt="code"), Col("code", "Code", fmt="code"),
                  Col("made", "Figures and tables it made", fmt="code"), Col("reads", "Results it read", fmt="code")],
             caption="Where each figure and table comes from: the pipeline step that made it (its files in `build/`), "
                     "the code of that step and the results files it read (`discbias report` reruns a step when one "
                     "of them changes).",
             label="tbl-figure-provenance", breakable=True).write(paths.tables, "figure_provenance")
    return paths.tables / "figure_provenance.md"


def html_provenance(html: Path, records, tables_dir: Path) -> int:
    """Under every figure and publication table of the HTML whose step is known, a collapsed
    "Provenance" note naming the step that made it, the step's code file and the results files it
    read (the provenance table of Appendix A lists the same, by step); returns how many were added.

    Figures are found through the ``paper.qmd`` next to the HTML (the image file
    ``figures/<name>.svg`` beside its ``#fig-`` label), tables by the label in their ``.md`` file.

    Examples
    --------
    >>> html_provenance(Path("build/report/paper.html"), [], Path("build/tables"))  # doctest: +SKIP
    0
    """
    import html as _html

    by_item = {}
    for rec in records or ():
        prov = (rec or {}).get("provenance")
        for item in (rec or {}).get("saved", ()) if prov else ():
            by_item[str(item)] = prov
    if not by_item:
        return 0
    qmd = html.with_suffix(".qmd").read_text() if html.with_suffix(".qmd").exists() else ""
    ids = {}
    for m in re.finditer(r"\]\([^)\s]*?figures/([^/)\s]+)\.(?:svg|png)\)\{#(fig-[\w-]+)", qmd):
        if f"figure:{m.group(1)}" in by_item:
            ids[m.group(2)] = by_item[f"figure:{m.group(1)}"]
    for item, prov in by_item.items():
        kind, _, name = item.partition(":")
        md = tables_dir / f"{name}.md"
        if kind == "table" and md.exists():
            m = re.match(r"::: \{#(tbl-[\w-]+) ", md.read_text())
            if m:
                ids[m.group(1)] = prov
    text, added = html.read_text(), 0
    code = lambda s: f"<code>{_html.escape(str(s))}</code>"  # noqa: E731
    for ident, prov in ids.items():
        start = text.find(f'id="{ident}"')
        end = text.find("</figure>", start) if start >= 0 else -1
        if end < 0:
            continue
        note = (f'<details class="provenance"><summary>Provenance</summary>Made by the step {code(prov["step"])} '
                f'({code(prov["code"])}) from {", ".join(code(r) for r in prov.get("reads", ()))}; all steps: '
                f'<a href="#tbl-figure-provenance">the provenance table</a>.</details>\n')
        text = text[:end] + note + text[end:]
        added += 1
    atomic_write_text(html, text)
    return added


#: Quarto features that would run code or read files that pandoc alone never would: shortcodes
#: (``{{< include /etc/passwd >}}``, ``{{< env >}}``), executable code cells and front-matter keys
#: that add filters or an engine. The paper's Markdown never holds them (values are escaped); a
#: template that does is refused on the Quarto path.
_QUARTO_REFUSED = (
    (re.compile(r"\{\{<|\{\{%"), "a Quarto shortcode ({{< >}})"),
    (re.compile(r"^\s*(`{3,}|~{3,})\s*\{\s*[A-Za-z]", re.M), "an executable code cell (```{lang})"),
)
_QUARTO_FRONT_KEYS = re.compile(r"^\s*(filters|execute|engine|jupyter|knitr|shortcodes|include-in-header|"
                                r"include-before-body|include-after-body|metadata-files|resource-path)\s*:", re.M)


def quarto_input(qmd: Path, root: Path) -> Path:
    """The copy of ``qmd`` that ``quarto render`` gets: the same confinement as the pandoc path.

    Before Quarto runs, pandoc reads ``qmd`` through ``confine.lua`` (a resource outside ``root``
    is a :class:`RenderError` naming it, exactly as on the pandoc path); Quarto shortcodes,
    executable code cells and front-matter keys that add filters, an engine or includes are
    refused. The copy's front matter names ``confine.lua`` as the first of its ``filters`` (so the
    filter also runs inside Quarto's own pandoc) and turns code execution off.

    Examples
    --------
    >>> quarto_input(Path("build/report/paper.qmd"), Path("build"))  # doctest: +SKIP
    PosixPath('build/report/paper.quarto.qmd')
    """
    _pandoc(qmd, "native", Path(os.devnull), [], root=root)  # confine.lua over the whole document
    text = qmd.read_text()
    front, body = "", text
    m = re.match(r"---\n(.*?\n)(---|\.\.\.)\n", text, re.S)
    if m:
        front, body = m.group(1), text[m.end():]
        bad = _QUARTO_FRONT_KEYS.search(front)
        if bad:
            raise RenderError(f"{qmd}: the front matter sets '{bad.group(1)}', which the Quarto render does not allow "
                              f"(it could run code or read files outside the build); render with pandoc "
                              f"(DISCBIAS_NO_QUARTO=1) or remove it from the template")
    for pattern, what in _QUARTO_REFUSED:
        hit = pattern.search(body)
        if hit:
            line = text.count("\n", 0, len(text) - len(body) + hit.start()) + 1
            raise RenderError(f"{qmd} line {line}: {what} is not allowed in a paper rendered with Quarto "
                              f"(it could run code or read files outside the build)")
    confine = json.dumps(str(CONFINE_FILTER))
    header = f"filters:\n  - {confine}\nexecute:\n  enabled: false\n"
    out = qmd.with_name(f"{qmd.stem}.quarto.qmd")
    atomic_write_text(out, f"---\n{header}{front}---\n{body}")
    return out


def render_quarto(qmd: Path, root: Path, formats, warnings: list[str] | None = None) -> list[Path]:
    """``quarto render`` of :func:`quarto_input` (confinement filter first, no code execution) to
    ``paper.html`` / ``paper.pdf`` (Typst) next to ``qmd``; returns the outputs.

    The filter reads the build folder from ``DISCBIAS_RESOURCE_ROOT`` (set for Quarto's pandoc).
    """
    src = quarto_input(qmd, root)
    env = dict(os.environ, DISCBIAS_RESOURCE_ROOT=str(Path(root).resolve()),
               DISCBIAS_RESOURCE_BASE=str(qmd.resolve().parent))
    outs = []
    try:
        for fmt in formats:
            to = "typst" if fmt == "pdf" else "html"
            out = qmd.with_suffix(".pdf" if fmt == "pdf" else ".html")
            cmd = ["quarto", "render", src.name, "--to", to, "--output", out.name, "--no-execute"]
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=qmd.parent, env=env)
            if proc.returncode:
                raise _render_failure(qmd, proc, f"quarto render --to {to} failed:\n{proc.stderr[-4000:]}")
            if warnings is not None:
                warnings += [f"quarto ({to}): {line}" for line in proc.stderr.splitlines() if "WARN" in line]
            outs.append(out)
    finally:
        src.unlink(missing_ok=True)
    return outs


def render(config, paths, formats=("html", "pdf"), template_dir=None, use_quarto: bool | None = None,
           draft: bool = False, provenance: list | None = None) -> list[Path]:
    """Render ``build/report/paper.{qmd,html,pdf}`` and run the render checks.

    Uses ``quarto render`` when ``quarto`` is on the PATH (unless ``use_quarto=False`` or
    ``DISCBIAS_NO_QUARTO`` is set), else pandoc and Typst. The checks of
    :mod:`discbias.report.checks` (warnings, overflow, split captions, raw identifiers, hyphen
    minus, unreferenced or unresolved references) then fail the render with a
    :class:`RenderError` listing every finding, or, with ``draft=True``, print them as warnings.
    The findings are also written to ``build/report/render_checks.txt``.

    Examples
    --------
    >>> from discbias.config import load_config
    >>> from discbias.paths import project_paths
    >>> render(load_config("analysis/grissom2024.toml"), project_paths())  # doctest: +SKIP
    """
    from .checks import ADVISORY, checks_report, format_findings, layout_limits, run_checks

    from .labels import DEFAULT_LABELS, known_ids, labels_from_config

    from ..progress import progress

    labels = labels_from_config(config)
    # count, rate and ETA over the render's parts (template, HTML and PDF, checks); silent with -q
    bar = progress(total=3, desc="render", unit="part")
    if provenance:
        provenance_table(provenance, paths)
    paper = paper_metadata(config)
    limits = layout_limits(paper)
    qmd = render_qmd(paths, template_dir, paper=paper, labels=labels)
    bar.update(1)
    if use_quarto is None:
        use_quarto = shutil.which("quarto") is not None and not os.environ.get("DISCBIAS_NO_QUARTO")
    outs = [qmd]
    warnings: list[str] = []
    if use_quarto:
        with outputs_removed_on_failure(qmd):
            outs += render_quarto(qmd, paths.build, [f for f in formats if f in ("html", "pdf")], warnings)
    else:
        # The HTML (one pandoc process) is written while the PDF is made (pandoc, then the Typst
        # compile, the longest part): on two or more CPUs the render takes the time of the PDF.
        from concurrent.futures import ThreadPoolExecutor

        html_warnings: list[str] = []
        with ThreadPoolExecutor(max_workers=1) as pool, outputs_removed_on_failure(qmd):
            html_job = pool.submit(render_html, qmd, html_warnings) if "html" in formats else None
            pdf_warnings: list[str] = []
            try:
                pdf_out = render_pdf(qmd, paths.build, pdf_warnings) if "pdf" in formats else None
            finally:
                if html_job is not None:
                    html_job.exception()  # wait for the HTML before anything is removed
            if html_job is not None:
                outs.append(html_job.result())
        if pdf_out is not None:
            outs.append(pdf_out)
        warnings += html_warnings + pdf_warnings
    if provenance and "html" in formats and qmd.with_suffix(".html").exists():
        html_provenance(qmd.with_suffix(".html"), provenance, paths.tables)
    extra_warnings: list[str] = []  # LaTeX, Word and JATS: reported, not checked as the PDF and HTML are
    if "latex" in formats:
        outs.append(render_latex(qmd, extra_warnings))
    for fmt in ("docx", "jats"):
        if fmt in formats:
            outs.append(render_pandoc(qmd, fmt, extra_warnings))
    for w in extra_warnings:
        log.info("%s", w)
    bar.update(1)
    html = qmd.with_suffix(".html") if "html" in formats else None
    pdf = qmd.with_suffix(".pdf") if "pdf" in formats else None
    typ = qmd.with_suffix(".typ") if "pdf" in formats and not use_quarto else None
    findings = run_checks(qmd=qmd, html=html, pdf=pdf, typ=typ, root=paths.build, warnings=warnings,
                          label_keys=known_ids({**DEFAULT_LABELS, **labels}), margin=PAGE_MARGIN,
                          figures=sorted(paths.figures.glob("*.pdf")) if paths.figures.exists() else (), **limits)
    bar.update(1)
    bar.close()
    if html is not None or pdf is not None:  # a LaTeX/Word/JATS-only run checks nothing: keep the last report
        atomic_write_text(paths.report / "render_checks.txt", checks_report(findings, limits=limits))
    for f in findings:
        if f.check in ADVISORY:
            log.warning("render check (advisory): %s", f)
    findings = [f for f in findings if f.check not in ADVISORY]
    report = format_findings(findings)
    for o in outs:
        log.info("wrote %s", o)
    if findings:
        if not draft:
            raise RenderError(f"{len(findings)} render check(s) failed (see {paths.report / 'render_checks.txt'}; "
                              f"`discbias render --draft` downgrades them to warnings while drafting):\n{report}")
        log.warning("%d render check(s) failed (draft mode):\n%s", len(findings), report)
    return outs
