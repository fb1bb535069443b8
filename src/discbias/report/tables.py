"""Publication tables: unrounded CSV, LaTeX (booktabs) and a Markdown pipe table for the paper."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..results import atomic_write_text, write_table


def format_value(x, digits: int = 2) -> str:
    """Format one cell for display: integers plainly, floats to ``digits``, p-like tiny values as
    ``<0.0001``, missing as an em dash.

    Examples
    --------
    >>> format_value(3), format_value(1.23456, 3), format_value(float("nan")), format_value(1e-9, 4)
    ('3', '1.235', '—', '<0.0001')
    """
    if x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA:
        return "—"
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, (int, np.integer)):
        return f"{int(x):,}" if abs(int(x)) >= 10000 else str(int(x))
    if isinstance(x, (float, np.floating)):
        x = float(x)
        if x != 0 and abs(x) < 10 ** (-digits) and digits >= 3:
            return f"<{10 ** (-digits):.{digits}f}" if x > 0 else f"{x:.1e}"
        if digits == 0:
            return f"{x:,.0f}"
        return f"{x:.{digits}f}"
    return str(x)


def is_p_column(name: str) -> bool:
    """Whether a display column holds p-values (``p``, ``Holm p``, ``p (Holm)``, ``p_value``...).

    Examples
    --------
    >>> is_p_column("Holm p"), is_p_column("p_value"), is_p_column("Partial eta sq")
    (True, True, False)
    """
    n = str(name).strip().lower().replace("_", " ")
    return n in ("p", "p value", "pr(>f)") or n.endswith(" p") or n.startswith("p ")


def format_p(x, digits: int = 4) -> str:
    """A p-value for a table: ``<0.0001`` below the display precision (0 included).

    Examples
    --------
    >>> format_p(0.0), format_p(0.01234), format_p(float("nan"))
    ('<0.0001', '0.0123', '—')
    """
    if x is None or x is pd.NA or (isinstance(x, float) and math.isnan(x)):
        return "—"
    x = float(x)
    return f"<{10 ** -digits:.{digits}f}" if x < 10 ** -digits else f"{x:.{digits}f}"


def format_frame(df: pd.DataFrame, digits: dict[str, int] | int = 2) -> pd.DataFrame:
    """Format every cell of ``df`` as text (see :func:`format_value`; p-value columns by
    :func:`format_p`, at least 4 decimals)."""
    out = pd.DataFrame(index=df.index)
    for c in df.columns:
        d = digits.get(c, 2) if isinstance(digits, dict) else digits
        col = df[c]
        if is_p_column(c) and pd.api.types.is_numeric_dtype(col):
            out[c] = [format_p(v, max(d, 4)) for v in col]
            continue
        if pd.api.types.is_float_dtype(col) and col.dropna().apply(float.is_integer).all() and c not in (digits if isinstance(digits, dict) else {}):
            out[c] = [format_value(int(v) if pd.notna(v) else v) for v in col]
        else:
            out[c] = [format_value(v, d) for v in col]
    return out


def _md_escape(s: str) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def to_markdown(df_text: pd.DataFrame) -> str:
    """A pandoc/Quarto pipe table from an all-text frame (numbers right-aligned).

    Examples
    --------
    >>> print(to_markdown(pd.DataFrame({"a": ["x"], "b": ["1.0"]})))
    | a | b |
    |:--|--:|
    | x | 1.0 |
    """
    def is_num(c):
        vals = [v for v in df_text[c] if v not in ("—", "")]
        return bool(vals) and all(v.replace(",", "").replace(".", "", 1).replace("-", "", 1).replace("<", "")
                                  .replace("e", "", 1).replace("+", "").isdigit() for v in vals)
    head = "| " + " | ".join(_md_escape(c) for c in df_text.columns) + " |"
    # Dash counts set pandoc's relative column widths when a table is wider than the page.
    width = {c: max([len(str(c))] + [len(str(v)) for v in df_text[c]]) for c in df_text.columns}
    dashes = {c: "-" * max(2, min(40, width[c]) - 1) for c in df_text.columns}
    align = "|" + "|".join(dashes[c] + ":" if is_num(c) else ":" + dashes[c] for c in df_text.columns) + "|"
    body = ["| " + " | ".join(_md_escape(v) for v in r) + " |" for r in df_text.itertuples(index=False)]
    return "\n".join([head, align, *body])


def to_latex(df_text: pd.DataFrame) -> str:
    """A booktabs LaTeX tabular from an all-text frame."""
    def esc(s):
        s = str(s)
        for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
                     ("<", r"\textless{}"), ("—", "---")):
            s = s.replace(a, b)
        return s
    cols = "l" * len(df_text.columns)
    lines = [rf"\begin{{tabular}}{{{cols}}}", r"\toprule", " & ".join(esc(c) for c in df_text.columns) + r" \\",
             r"\midrule"]
    lines += [" & ".join(esc(v) for v in r) + r" \\" for r in df_text.itertuples(index=False)]
    lines += [r"\bottomrule", r"\end{tabular}", ""]
    return "\n".join(lines)


def write_publication_table(df: pd.DataFrame, out_dir: str | Path, name: str, *,
                            digits: dict[str, int] | int = 2, rename: dict[str, str] | None = None) -> None:
    """Write ``<name>.csv`` (unrounded), ``<name>.tex`` (booktabs) and ``<name>.md`` (pipe table).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> write_publication_table(pd.DataFrame({"x": [1.23456]}), d, "t", digits=2)
    >>> (d / "t.md").read_text().splitlines()[-1]
    '| 1.23 |'
    """
    out_dir = Path(out_dir)
    if rename:
        df = df.rename(columns=rename)
    write_table(df, out_dir / f"{name}.csv")
    text = format_frame(df.reset_index(drop=True), digits)
    atomic_write_text(out_dir / f"{name}.tex", to_latex(text))
    atomic_write_text(out_dir / f"{name}.md", to_markdown(text))


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


def claims_long_table(claims: pd.DataFrame, specs: pd.DataFrame | None) -> pd.DataFrame:
    """The claims table as printed: one row per claim x specification (claim and verdict on its
    first row), estimate and 95% interval, and what the specification says; a claim without
    specifications (``not tested``) gets one row saying what it needs.

    Examples
    --------
    >>> c = pd.DataFrame(dict(claim_id=["A", "B"], verdict=["fragile", "not tested"], needs=["", "weights"]))
    >>> s = pd.DataFrame(dict(claim_id=["A", "A"], label=["paper", "OLS"], role=["paper", "robustness"],
    ...                       estimate=[1.0, 0.5], conf_low=[0.5, -0.1], conf_high=[1.5, 1.1],
    ...                       outcome=["supports", "includes 0"]))
    >>> claims_long_table(c, s)["Claim"].tolist()
    ['A', '', 'B']
    """
    rows = []
    for _, c in claims.iterrows():
        sub = specs[specs["claim_id"] == c["claim_id"]] if specs is not None and len(specs) else specs
        if sub is None or not len(sub):
            needs = c.get("needs", "")
            rows.append({"Claim": c["claim_id"], "Verdict": c["verdict"],
                         "Specification": f"needs {needs}" if isinstance(needs, str) and needs else "none estimated",
                         "Estimate": float("nan"), "95% low": float("nan"), "95% high": float("nan"), "Outcome": "—"})
            continue
        for k, (_, s) in enumerate(sub.iterrows()):
            lab = s["label"] + (" [paper]" if s["role"] == "paper" else "")
            out = s["outcome"]
            if out == "missing" and not _true(s.get("required", True)):
                out = "not available (optional)"
            elif s["role"] == "description":
                out = f"{out} (not used)"
            rows.append({"Claim": c["claim_id"] if k == 0 else "", "Verdict": c["verdict"] if k == 0 else "",
                         "Specification": lab, "Estimate": s["estimate"], "95% low": s["conf_low"],
                         "95% high": s["conf_high"],
                         "Outcome": out})
    return pd.DataFrame(rows)


def common_tables(ctx) -> None:
    """Tables every paper has: claims, provenance, models, data issues, software versions."""
    claims = ctx.results["claims"]
    specs = ctx.results.get("claims_specifications")
    ctx.save_table(claims_long_table(claims, specs), "claims",
                   digits={"Estimate": 3, "95% low": 3, "95% high": 3})
    rules = pd.DataFrame({"Claim": claims["claim_id"], "Statement": claims["description"],
                          "Paper": claims["paper_value"], "Reason for the verdict": claims["reason"].fillna("")})
    ctx.save_table(rules, "claim_rules")
    prov = ctx.results["provenance"]
    ctx.save_table(pd.DataFrame({"File": prov["file"], "Rows": prov["rows_expected"],
                                 "sha256": prov["sha256"]}), "provenance")
    models = ctx.results["models"]
    cols = [c for c in ("model", "formula", "method", "n_obs", "converged", "warnings") if c in models]
    m = models[cols].copy()
    if "warnings" in m:
        m["warnings"] = [w if isinstance(w, str) and w else "none" for w in m["warnings"]]
    ctx.save_table(m.rename(columns={"model": "Model", "formula": "Formula", "method": "Method", "n_obs": "n",
                                     "converged": "Converged", "warnings": "Warnings"}), "models", digits=0)
    ctx.save_table(issue_summary(ctx.results["data_issues"]), "data_issues")
    sw = ctx.values["meta"]["software"]
    ctx.save_table(pd.DataFrame({"Package": list(sw), "Version": list(sw.values())}), "software")
