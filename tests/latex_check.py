"""Checks of exported LaTeX tables, shared by the table tests and the end-to-end test."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from discbias.report.render import LATEX_PREAMBLE

#: The article class at its own width (345 pt at 10 pt): the tables must fit it.
PREAMBLE = r"\documentclass{article}" + "\n" + LATEX_PREAMBLE.read_text() + "\n\\begin{document}\n"


def tex_engine() -> list[str] | None:
    """The command that compiles a .tex file here (pdflatex or tectonic), or None."""
    if shutil.which("pdflatex"):
        return ["pdflatex", "-interaction=nonstopmode", "-halt-on-error"]
    if shutil.which("tectonic"):
        return ["tectonic", "--keep-logs"]
    return None


def check_structure(tex: str) -> list[str]:
    """Problems of one exported table: column specification, caption, label, booktabs rules."""
    problems = []
    m = re.search(r"\\begin\{(?:tabular|longtable)\}\{([^\n]*)\}\n", tex)
    if not m:
        return ["no tabular/longtable environment with a column specification"]
    spec = re.sub(r"p\{[^}]*\}", "p", re.sub(r">\{\\raggedright\\arraybackslash\}", "", m[1]))
    spec = re.sub(r"S\[table-format=-?\d+\.\d+\]", "S", spec)  # decimal-aligned number columns
    if not re.fullmatch(r"[lrcpS]+", spec):
        problems.append(f"odd column specification {m[1]!r}")
    ncols = len(spec)
    body = tex[m.end():]
    rows = []
    for line in body.splitlines():
        if line.endswith(r"\\") and not line.startswith((r"\multicolumn", r"\caption")):
            cells = [c.strip() for c in re.split(r"(?<!\\)&", line[:-2])]
            if len(cells) != ncols:
                problems.append(f"a row has {len(cells)} cells for {ncols} columns: {line[:60]}")
                break
            rows.append(cells)
    # a column whose body cells are all numbers must be right- (or centre-) aligned
    sign = r"(?:\\ensuremath\{-\})?"
    num = sign + r"\d[\d,]*(?:\.\d+)?(?:\\%)?"  # one decimal point: "2.13.0" is a version, not a number
    number = re.compile(rf"^(?:\\textless\{{\}}\s*)?{num}(?:\s*[\[(]{num}(?:,\s*{num})?[\])])?$|^\[{num},\s*{num}\]$")
    for k in range(ncols):
        vals = [r[k] for r in rows[1:] if r[k] not in ("---", "")]  # rows[0] is the header
        if vals and all(number.fullmatch(v) for v in vals) and spec[k] not in "rcS":
            problems.append(f"column {k + 1} holds numbers but is aligned {spec[k]!r}")
    for need in (r"\caption{", r"\label{tbl-", r"\toprule", r"\midrule", r"\bottomrule"):
        if need not in tex:
            problems.append(f"missing {need}")
    # siunitx S columns read "-1.5" as a number and typeset a true minus sign; any other cell must not
    text_cells = "\n".join(c for r in rows for k, c in enumerate(r) if spec[k] != "S")
    if re.search(r"(?<![\w\\-])-\d", re.sub(r"\\ensuremath\{[^{}]*(?:\{[^{}]*\}[^{}]*)*\}", "", text_cells)):
        problems.append("ASCII hyphen used as a minus sign")
    return problems


def compile_tables(paths: list[Path], workdir: Path) -> subprocess.CompletedProcess | None:
    """Wrap every table in one minimal document and compile it (None when no engine exists)."""
    engine = tex_engine()
    if engine is None:
        return None
    doc = PREAMBLE + "\n".join(rf"\input{{{p.resolve().as_posix()}}}" + "\n\\clearpage" for p in paths)
    doc += "\n\\end{document}\n"
    (workdir / "tables.tex").write_text(doc)
    return subprocess.run([*engine, "tables.tex"], cwd=workdir, capture_output=True, text=True, errors="replace", timeout=240)


def overfull(log: str, limit_pt: float = 1.0) -> list[str]:
    """The overfull boxes of a LaTeX log wider than ``limit_pt``."""
    return [m.group(0) for m in re.finditer(r"Overfull \\[hv]box \(([\d.]+)pt too \w+\)[^\n]*", log)
            if float(m.group(1)) > limit_pt]
