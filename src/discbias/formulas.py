"""A whitelist grammar for model formulas: checked before patsy, statsmodels or Bambi see them.

patsy evaluates every name and call in a formula as Python (``I(__import__('os').system(...))``
runs), so a formula from a configuration file written by someone else is code unless it is
checked first. :func:`check_formula` accepts only

* column names (identifiers; a name with other characters is written ``Q("skin tone")``);
* numbers, the operators ``+ - * / : ** ~ |`` and parentheses (``(1|rater)`` random intercepts);
* the transforms in :data:`FUNCTIONS` (``C()``, ``Q()``, contrasts, logs, powers, centring,
  splines); inside ``I()`` only arithmetic on names and numbers (and the numeric transforms);
* string literals and ``name=`` keywords only as arguments of those functions
  (``C(race, Treatment("White"))``, ``cr(x, df=4)``),

and raises :class:`FormulaError` naming the formula and the first offending token otherwise:
no attribute access, no subscripts, no dunder names, no other calls, no lambdas or comprehensions.
Every package entry point that hands a formula to a formula engine calls it
(:func:`discbias.stats.regression.ols`, :func:`discbias.stats.mixed.mixedlm`,
:func:`discbias.stats.crossed.crossed_mixed`, :func:`discbias.stats.quantile.quantreg`, the audit
configuration's ``[[models]] formula``).
"""

from __future__ import annotations

import keyword
import re

from .errors import UserError

__all__ = ["FormulaError", "check_formula", "FUNCTIONS"]

#: Numeric transforms: allowed anywhere, including inside ``I()``.
NUMERIC = frozenset({"np.log", "np.log1p", "np.log2", "np.log10", "np.exp", "np.sqrt", "np.abs", "np.square",
                     "log", "exp", "sqrt", "abs", "center", "scale", "standardize"})
#: Every function a formula may call.
FUNCTIONS = NUMERIC | frozenset({"C", "I", "Q", "Treatment", "Sum", "Diff", "Helmert", "Poly", "bs", "cr", "cc"})
#: Functions whose arguments may be string literals (a quoted column name, a reference level, a spline option).
_STRING_ARGS = frozenset({"Q", "C", "Treatment", "cr", "bs", "cc"})

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<string>"[^"\\\n]*"|'[^'\\\n]*')
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op>\*\*|[-+*/:~|(),=])
""", re.VERBOSE)
_ARITH = frozenset({"+", "-", "*", "/", "**", "(", ")"})


class FormulaError(UserError, ValueError):
    """A formula uses something the whitelist grammar does not allow (:func:`check_formula`)."""


def _allowed() -> str:
    return (f"a formula may use column names (Q(\"name with spaces\")), numbers, + - * / : ** ~ | and parentheses, "
            f"and the functions {', '.join(sorted(FUNCTIONS))}()")


def check_formula(formula, *, what: str = "formula") -> str:
    """Return ``formula`` if the whitelist grammar accepts it; raise :class:`FormulaError` otherwise.

    Nothing is evaluated: the formula is only tokenised and checked.

    Parameters
    ----------
    formula : str
        An R/patsy/lme4-style formula such as ``"score ~ C(group) + np.log(luma) + (1|rater)"``.
    what : str
        How the error names the formula (e.g. ``"model 'm1': formula"``).

    Raises
    ------
    FormulaError
        One line naming the formula and the offending token.

    Examples
    --------
    >>> check_formula("score ~ C(group, Treatment('b')) + I(luma ** 2) + np.log(x) + (1|rater)")
    "score ~ C(group, Treatment('b')) + I(luma ** 2) + np.log(x) + (1|rater)"
    >>> check_formula("score ~ x + I(__import__('os').system('id'))")
    Traceback (most recent call last):
    ...
    discbias.formulas.FormulaError: formula "score ~ x + I(__import__('os').system('id'))": '__import__' is not allowed (a function that is not in the whitelist); ...
    """
    if not isinstance(formula, str):
        raise FormulaError(f"{what} must be a string, got {type(formula).__name__}")
    shown = formula if len(formula) <= 200 else formula[:200] + "..."

    def bad(token: str, why: str):
        raise FormulaError(f"{what} {shown!r}: {token!r} is not allowed ({why}); {_allowed()}")

    if len(formula) > 10_000:
        raise FormulaError(f"{what} is {len(formula):,} characters long; the limit is 10,000")
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(formula):
        m = _TOKEN.match(formula, pos)
        if m is None:  # reported when the check reaches it, so the first offending token is named
            tokens.append(("bad", formula[pos]))
            pos += 1
            continue
        pos = m.end()
        if m.lastgroup != "ws":
            tokens.append((m.lastgroup, m.group(0)))
    # the stack of open parentheses: the function each belongs to ("" for plain grouping)
    stack: list[str] = []
    tildes = 0
    for i, (kind, tok) in enumerate(tokens):
        nxt = tokens[i + 1][1] if i + 1 < len(tokens) else ""
        in_call = bool(stack) and stack[-1] != ""
        in_i = "I" in stack or any(f in NUMERIC for f in stack)
        if kind == "bad":
            bad(tok, "a character formulas do not use")
        if kind == "name":
            if keyword.iskeyword(tok):
                bad(tok, "a Python keyword")
            if "__" in tok:
                bad(tok, "a name with a double underscore" if nxt != "(" else "a function that is not in the whitelist")
            if nxt == "(":
                if tok not in FUNCTIONS:
                    bad(tok, "a function that is not in the whitelist")
                if in_i and tok not in NUMERIC:
                    bad(tok, "only arithmetic and numeric transforms inside I()")
            elif nxt == "=":
                if not in_call:
                    bad(tok + "=", "a keyword outside a function's arguments")
            elif "." in tok:
                bad(tok, "attribute access")
        elif kind == "string":
            if not (in_call and stack[-1] in _STRING_ARGS) or in_i:
                bad(tok, "a string outside the arguments of Q(), C(), a contrast or a spline")
        elif kind == "op":
            if tok == "(":
                prev = tokens[i - 1] if i else ("", "")
                if prev[0] in ("number", "string") or prev[1] == ")":
                    bad(tok, "a call of something that is not a whitelisted function")
                stack.append(prev[1] if prev[0] == "name" else "")
            elif tok == ")":
                if not stack:
                    bad(tok, "a closing parenthesis without an opening one")
                stack.pop()
            elif tok in (",", "="):
                if not in_call:
                    bad(tok, "outside a function's arguments")
                if in_i:
                    bad(tok, "only arithmetic inside I()")
            elif tok == "~":
                if stack:
                    bad(tok, "inside parentheses")
                tildes += 1
                if tildes > 1:
                    bad(tok, "a second '~'")
            elif in_i and tok not in _ARITH:
                bad(tok, "only arithmetic inside I()")
    if stack:
        raise FormulaError(f"{what} {shown!r}: unbalanced parentheses ({len(stack)} not closed)")
    return formula
