"""Figures, publication tables and the rendering of report templates (pandoc + Typst).

Examples
--------
>>> import pandas as pd
>>> from discbias.report import PubTable, Col
>>> PubTable(pd.DataFrame({"estimate": [-1.234]}), [Col("estimate", digits=1)]).body()
[['−1.2']]
"""

from .render import RenderError, make_environment, render, render_html, render_pdf, render_qmd
from .tables import Col, PubTable, write_publication_table

__all__ = ["render", "render_qmd", "render_html", "render_pdf", "make_environment", "RenderError", "PubTable", "Col",
           "write_publication_table"]
