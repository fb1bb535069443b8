"""Figures, publication tables and the rendering of the paper templates in ``report/``."""
