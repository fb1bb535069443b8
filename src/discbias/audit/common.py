"""Names shared by the audit's steps, its input checks and its ratings reader (no imports among them,
so :mod:`discbias.audit.run`, :mod:`~discbias.audit.validate` and :mod:`~discbias.audit.ratings` form no
import cycle): the audit's error, the score columns of the ``images`` table and a formula's columns."""

from __future__ import annotations

import re

import pandas as pd

from ..errors import UserError

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_FORMULA_FUNCS = {"C", "np", "log", "exp", "sqrt", "I", "Q", "center", "scale", "standardize", "Treatment", "bs",
                  "cr", "poly", "abs"}


class AuditError(UserError):
    """The data do not fit the audit configuration (a missing column, a label out of range...)."""


def _score_column(net: str, proto: str, primary: str, n_protocols: int) -> str:
    """``score_<protocol>`` (one network), ``score_<network>`` (its primary protocol) or ``score_<network>_<protocol>``."""
    if not net:
        return f"score_{proto}"
    return f"score_{net}" if proto == primary and n_protocols == 1 else f"score_{net}_{proto}"


def score_columns(cfg) -> list[str]:
    """The score columns of the ``images`` table: ``score`` (the first network, primary protocol) and one per
    network and protocol.

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> one = NS(scoring=NS(protocols=["nvidia", "grissom2024"], network_list=lambda: [NS(id="")]))
    >>> score_columns(one)
    ['score', 'score_nvidia', 'score_grissom2024']
    >>> two = NS(scoring=NS(protocols=["nvidia"], network_list=lambda: [NS(id="skip512"), NS(id="cond128")]))
    >>> score_columns(two)
    ['score', 'score_skip512', 'score_cond128']
    """
    ps = cfg.scoring.protocols
    out = ["score"]
    for n in cfg.scoring.network_list():
        for p in ps:
            out.append(_score_column(n.id, p, ps[0], len(ps)))
        if n.id and len(ps) > 1:
            out.append(f"score_{n.id}")
    return list(dict.fromkeys(out))


def formula_columns(formula: str, data: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Names a formula uses that are columns of ``data`` and those that are not (functions excluded).

    Examples
    --------
    >>> formula_columns("score ~ C(group) + np.log(luma) + (1|rater)", pd.DataFrame(columns=["score", "group"]))
    (['score', 'group'], ['luma', 'rater'])
    """
    body = re.sub(r"'[^']*'|\"[^\"]*\"", "", formula)
    found, missing = [], []
    for m in _WORD.finditer(body):
        w = m.group(0)
        if w.split(".")[0] in _FORMULA_FUNCS or (body[m.end():m.end() + 1] == "(" and w not in data.columns):
            continue
        if w in data.columns:
            if w not in found:
                found.append(w)
        elif not re.fullmatch(r"\d+", w) and w not in missing and w not in _FORMULA_FUNCS:
            missing.append(w)
    return found, missing
