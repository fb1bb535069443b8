"""Render the paper: Jinja2 fills ``report/paper.qmd.j2``, then pandoc + Typst (or Quarto).

The template reads only ``build/values.json``, ``build/results/``, ``build/figures/`` and
``build/tables/``. Jinja uses ``<< >>`` for values, ``<% %>`` for statements and ``<# #>`` for
comments (braces belong to pandoc and Quarto), with ``StrictUndefined``: a missing value is a
render error naming it, never a blank.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jinja2
import pandas as pd

from ..results import atomic_write_text

TEMPLATE_DIR_ENV = "DISCBIAS_TEMPLATES"
LUA_FILTER = Path(__file__).with_name("crossref.lua")


class RenderError(RuntimeError):
    """The paper could not be rendered (missing value, table, figure, or a renderer failed)."""


def _fail_undefined(msg):
    raise RenderError(msg)


def num(x, digits: int = 2) -> str:
    """Format a number for prose; a missing (null) value is a render error.

    Examples
    --------
    >>> num(3.14159), num(2, 0), num(12345.6, 0), num(-0.5)
    ('3.14', '2', '12,346', '−0.50')
    """
    if x is None or isinstance(x, jinja2.Undefined):
        raise RenderError("a value used in the paper is missing (null in values.json)")
    x = float(x)
    s = f"{x:,.0f}" if digits == 0 else f"{x:,.{digits}f}"
    if float(s.replace(",", "")) == 0:
        s = s.lstrip("-")
    return s.replace("-", "\u2212")  # a true minus sign


def pval(p) -> str:
    """Format a p-value as in APA style: ``p < .001`` or ``p = .034``.

    Examples
    --------
    >>> pval(0.0000001), pval(0.0345)
    ('p < .001', 'p = .035')
    """
    if p is None:
        raise RenderError("a p-value used in the paper is missing")
    p = float(p)
    if p < 0.001:
        return "p < .001"
    return "p = " + f"{p:.3f}".lstrip("0")


def _finalize(value):
    """Every value the template prints: a hyphen used as a minus sign becomes U+2212.

    Examples
    --------
    >>> _finalize(-2.5), _finalize("paper: -2.6 [-3.4, -1.8]"), _finalize(True)
    ('−2.5', 'paper: −2.6 [−3.4, −1.8]', True)
    """
    from .tables import minus_signs

    if value is None or isinstance(value, bool) or isinstance(value, jinja2.Undefined):
        return value
    if isinstance(value, (int, float)):
        value = str(value)
    return minus_signs(value) if isinstance(value, str) else value


def make_environment(template_dir: str | Path, paths) -> jinja2.Environment:
    """The Jinja2 environment of the paper, with its helpers bound to ``paths``.

    Helpers: ``table(name)`` (``build/tables/<name>.md``: a captioned publication table), ``figure(name)``
    (path from the report folder to ``build/figures/<name>.svg``), ``result(name)`` (a results table as a list of
    row dicts); filters ``num``, ``pval``, ``int`` (thousands separators).
    """
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir)),
        undefined=jinja2.StrictUndefined,
        block_start_string="<%", block_end_string="%>",
        variable_start_string="<<", variable_end_string=">>",
        comment_start_string="<#", comment_end_string="#>",
        keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
        autoescape=False, finalize=_finalize,
    )

    def table(name: str) -> str:
        # a PubTable's .md: its caption, label, Typst and HTML blocks (or a pipe table without caption)
        p = paths.tables / f"{name}.md"
        if not p.exists():
            raise RenderError(f"table '{name}' is missing ({p}); run `discbias figures`")
        return p.read_text().rstrip("\n")

    def figure(name: str) -> str:
        # SVG: vector in the HTML and in Typst's PDF; PNG for figures saved before SVG existed
        p = paths.figures / f"{name}.svg"
        if not p.exists():
            p = paths.figures / f"{name}.png"
        if not p.exists():
            raise RenderError(f"figure '{name}' is missing ({p}); run `discbias figures`")
        return os.path.relpath(p, paths.report)

    def result(name: str) -> list[dict]:
        p = paths.results / f"{name}.csv"
        if not p.exists():
            raise RenderError(f"results table '{name}' is missing ({p}); run `discbias fit`")
        return pd.read_csv(p).to_dict("records")

    env.globals.update(table=table, figure=figure, result=result, section_files=lambda: sorted(
        t for t in env.list_templates() if t.startswith("sections/") and t.endswith(".qmd.j2")))
    env.filters.update(num=num, pval=pval, int=lambda x: num(x, 0))
    return env


def default_template_dir() -> Path:
    """``$DISCBIAS_TEMPLATES``, else ``report/`` in the project root (the cwd)."""
    return Path(os.environ.get(TEMPLATE_DIR_ENV) or Path.cwd() / "report")


def render_qmd(paths, template_dir: str | Path | None = None, template: str = "paper.qmd.j2") -> Path:
    """Fill the template from the build folder; write ``build/report/paper.qmd``.

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
    values = json.loads(paths.values.read_text())
    env = make_environment(template_dir, paths)
    try:
        text = env.get_template(template).render(values=values)
    except jinja2.UndefinedError as exc:
        raise RenderError(f"the paper template uses a value that does not exist: {exc.message}") from None
    glued = re.findall(r"[^\s\[(;>-]@(?:fig|tbl|sec)-[\w-]+", text)
    if glued:
        raise RenderError(f"cross-reference(s) glued to the preceding text, so pandoc would not see them: "
                          f"{sorted(set(glued))}; put a space before the '@' in the template")
    paths.report.mkdir(parents=True, exist_ok=True)
    out = paths.report / "paper.qmd"
    atomic_write_text(out, text)
    return out


def _pandoc(qmd: Path, to: str, output: Path, extra: list[str]) -> None:
    import pypandoc

    args = ["--standalone", f"--lua-filter={LUA_FILTER}", f"--resource-path={qmd.parent}", *extra]
    try:
        pypandoc.convert_file(str(qmd), to, format="markdown", outputfile=str(output), extra_args=args)
    except RuntimeError as exc:
        raise RenderError(f"pandoc failed converting {qmd.name} to {to}: {exc}") from None


def render_html(qmd: Path) -> Path:
    """Self-contained HTML (embedded images, MathML; no network)."""
    out = qmd.with_suffix(".html")
    css = Path(__file__).with_name("paper.css")
    after = Path(__file__).with_name("paper-after.html")  # "Contents" link and click-to-zoom figures
    _pandoc(qmd, "html5", out, ["--embed-resources", "--mathml", f"--css={css}", "--toc", "--number-sections",
                                f"--include-after-body={after}"])
    return out


def render_pdf(qmd: Path, root: Path) -> Path:
    """PDF through pandoc's Typst writer and the ``typst`` package."""
    import typst

    typ = qmd.with_suffix(".typ")
    _pandoc(qmd, "typst", typ, ["-V", "papersize=a4", "-V", "fontsize=10pt", "--number-sections",
                                "-V", "section-numbering=1.1", "--toc"])
    # Our table style goes first in the file (show rules apply to everything after them); passing
    # it with --include-in-header would replace a template's own `header-includes` metadata.
    style = Path(__file__).with_name("typst-header.typ").read_text()
    typ.write_text(style + "\n" + typ.read_text())
    out = qmd.with_suffix(".pdf")
    try:
        typst.compile(str(typ), output=str(out), root=str(root))
    except Exception as exc:  # typst raises its own error type with the compiler's message
        raise RenderError(f"typst failed compiling {typ}: {exc}") from None
    return out


def render(config, paths, formats=("html", "pdf"), template_dir=None, use_quarto: bool | None = None) -> list[Path]:
    """Render ``build/report/paper.{qmd,html,pdf}``.

    Uses ``quarto render`` when ``quarto`` is on the PATH (unless ``use_quarto=False`` or
    ``DISCBIAS_NO_QUARTO`` is set), else pandoc and Typst.

    Examples
    --------
    >>> from discbias.config import load_config
    >>> from discbias.paths import project_paths
    >>> render(load_config("analysis/grissom2024.toml"), project_paths())  # doctest: +SKIP
    """
    qmd = render_qmd(paths, template_dir)
    if use_quarto is None:
        use_quarto = shutil.which("quarto") is not None and not os.environ.get("DISCBIAS_NO_QUARTO")
    outs = [qmd]
    if use_quarto:
        for fmt in formats:
            to = "typst" if fmt == "pdf" else "html"
            proc = subprocess.run(["quarto", "render", str(qmd), "--to", to], capture_output=True, text=True)
            if proc.returncode:
                raise RenderError(f"quarto render --to {to} failed:\n{proc.stderr[-4000:]}")
            outs.append(qmd.with_suffix(".pdf" if fmt == "pdf" else ".html"))
        return outs
    if "html" in formats:
        outs.append(render_html(qmd))
    if "pdf" in formats:
        outs.append(render_pdf(qmd, paths.build))
    for o in outs:
        print(f"[discbias] wrote {o}", file=sys.stderr)
    return outs
