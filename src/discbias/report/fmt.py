"""Statistics as a reader sees them: one function per result type writes its inline text.

As papaja's ``apa_print`` and gtsummary's inline helpers do, every number the paper prints in
prose goes through this module (the templates call it through the Jinja filters and globals of
:func:`discbias.report.render.make_environment`), and the publication tables use the same rules
(:mod:`discbias.report.tables`):

- a true minus sign (U+2212) and no negative zero: a value that rounds to zero is ``0.00``;
- thousands separators from 1,000 on;
- every part of a result (estimate, interval ends) is rounded from its unrounded value to the
  same number of decimals;
- one p-value style everywhere, prose and tables: no leading zero, three decimals,
  ``p < .001`` below that (APA);
- probabilities (posterior probabilities) without a leading zero, ``> .99`` when they round to 1;
- counts with the noun in the right number: ``1 specification``, ``599 issues``;
- no Python representation in text: booleans are words (``yes``/``no``), a missing value is a
  :class:`FormatError` (a render error), an infinite value is written as a phrase.

Examples
--------
>>> estimate(-1.9149, -3.8032, 0.0771, kind="HDI", prob=0.9713, prob_side="<")
'b = −1.91, 95% HDI [−3.80, 0.08], P(b < 0) = .97'
>>> f_test(1.9512, 2, 527, 0.1431)
'F(2, 527) = 1.95, p = .143'
>>> count(1, "specification"), count(599, "issue")
('1 specification', '599 issues')
"""

from __future__ import annotations

import math
import numbers

MINUS = "\u2212"
#: How a non-finite value reads in text.
NONFINITE = {"inf": "infinite", "-inf": "minus infinite", "nan": "not available"}

__all__ = ["FormatError", "MINUS", "number", "integer", "p_value", "prob", "interval", "estimate",
           "f_test", "t_test", "chi2_test", "correlation", "proportion", "percent", "count", "plural",
           "yes_no", "is_number", "FILTERS"]


class FormatError(ValueError):
    """A value the paper prints is missing or has the wrong type."""


def _missing(x) -> bool:
    if x is None:
        return True
    try:
        import jinja2

        if isinstance(x, jinja2.Undefined):
            return True
    except ImportError:  # pragma: no cover - jinja2 is a dependency
        pass
    return False


def _float(x, what: str = "value") -> float:
    if _missing(x):
        raise FormatError(f"a {what} the paper prints is missing (null in values.json)")
    if isinstance(x, bool):
        raise FormatError(f"a {what} the paper prints is a boolean ({x}), not a number; use yes_no")
    try:
        return float(x)
    except (TypeError, ValueError):
        raise FormatError(f"a {what} the paper prints is not a number: {x!r}") from None


def is_number(x) -> bool:
    """Whether ``x`` is a finite number (not a boolean, not missing, not NaN or infinite).

    Examples
    --------
    >>> is_number(1.5), is_number(float("nan")), is_number(None), is_number(True)
    (True, False, False, False)
    """
    if x is None or isinstance(x, bool) or not isinstance(x, numbers.Real):
        return False
    return math.isfinite(float(x))


def _nonfinite(x: float) -> str:
    return NONFINITE["nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")]


def number(x, digits: int = 2, *, group: bool = True, leading_zero: bool = True) -> str:
    """A number rounded to ``digits`` decimals, with a true minus sign and no negative zero.

    Parameters
    ----------
    x : float
        The unrounded value.
    digits : int
        Decimals.
    group : bool
        Thousands separators (``12,346``).
    leading_zero : bool
        ``False`` drops the zero before the decimal point (``.97``), for quantities that cannot
        exceed 1 (APA style for p-values and probabilities).

    Returns
    -------
    str
        The formatted number; an infinite value is a phrase (``infinite``), NaN ``not available``.

    Raises
    ------
    FormatError
        ``x`` is missing (``None``) or not a number.

    Examples
    --------
    >>> number(3.14159), number(2, 0), number(12345.6, 0), number(-0.5, 1)
    ('3.14', '2', '12,346', '−0.5')
    >>> number(-0.0004, 2), number(-0.0, 1), number(float("inf")), number(0.97, 2, leading_zero=False)
    ('0.00', '0.0', 'infinite', '.97')
    """
    v = _float(x)
    if not math.isfinite(v):
        return _nonfinite(v)
    digits = max(int(digits), 0)
    s = f"{abs(v):,.{digits}f}" if group else f"{abs(v):.{digits}f}"
    if not leading_zero and s.startswith("0."):
        s = s[1:]
    negative = v < 0 and any(ch in "123456789" for ch in s)  # no "−0.00"
    return (MINUS if negative else "") + s


def integer(x) -> str:
    """A whole number with thousands separators (``12,345``).

    Examples
    --------
    >>> integer(12345.0), integer(-3), integer(7)
    ('12,345', '−3', '7')
    """
    return number(x, 0)


def p_value(p, *, prefix: bool = True, digits: int = 3) -> str:
    """A p-value in the one style of the paper: ``p = .034``, ``p < .001`` (``prefix=False``: ``.034``, ``< .001``).

    A p-value of 1 reads ``p > .999``; ``digits`` decimals, no leading zero.

    Examples
    --------
    >>> p_value(0.0000001), p_value(0.0345), p_value(0.5, prefix=False), p_value(1.0)
    ('p < .001', 'p = .035', '.500', 'p > .999')
    """
    v = _float(p, "p-value")
    if math.isnan(v):
        return "p not available" if prefix else "not available"
    if v < 0 or v > 1:
        raise FormatError(f"a p-value the paper prints is outside [0, 1]: {v}")
    lo = 10.0 ** -digits
    if v < lo:
        body = "< " + number(lo, digits, leading_zero=False)
    elif round(v, digits) >= 1:
        body = "> " + number(1 - lo, digits, leading_zero=False)
    else:
        body = ("= " if prefix else "") + number(v, digits, leading_zero=False)
    return ("p " + body) if prefix else body


def prob(x, digits: int = 2) -> str:
    """A probability (posterior probability, share of draws) without a leading zero: ``.97``;
    ``> .99`` / ``< .01`` when it would round to 1 or 0.

    Examples
    --------
    >>> prob(0.9713), prob(0.99999), prob(0.0)
    ('.97', '> .99', '< .01')
    """
    v = _float(x, "probability")
    if not math.isfinite(v) or v < 0 or v > 1:
        raise FormatError(f"a probability the paper prints is outside [0, 1]: {v}")
    lo = 10.0 ** -digits
    if v < lo / 2:
        return "< " + number(lo, digits, leading_zero=False)
    if v >= 1 - lo / 2:
        return "> " + number(1 - lo, digits, leading_zero=False)
    return number(v, digits, leading_zero=False)


def interval(low, high, digits: int = 2, *, level: float | None = 95, kind: str = "CI",
             scale: float = 1.0, suffix: str = "") -> str:
    """An interval: ``95% CI [−3.80, 0.08]`` (``level=None``: ``[−3.80, 0.08]``), both ends rounded
    from their unrounded values; ``scale`` multiplies both (100 for percentage points).

    Examples
    --------
    >>> interval(-3.8032, 0.0771), interval(0.1, 0.25, 1, level=None, scale=100, suffix="%")
    ('95% CI [−3.80, 0.08]', '[10.0%, 25.0%]')
    """
    lo = number(_float(low, "interval end") * scale, digits) + suffix
    hi = number(_float(high, "interval end") * scale, digits) + suffix
    text = f"[{lo}, {hi}]"
    if level is None:
        return text
    return f"{number(level, 0)}% {kind} {text}"


def estimate(b, low=None, high=None, *, digits: int = 2, symbol: str = "b", kind: str = "CI",
             level: float = 95, p=None, prob=None, prob_side: str = "<") -> str:
    """An estimate with its interval and test: ``b = −1.91, 95% HDI [−3.80, 0.08], P(b < 0) = .97``.

    Parameters
    ----------
    b, low, high : float
        The unrounded estimate and interval ends (``low``/``high`` optional, both or neither).
    digits : int
        Decimals of the estimate and the interval (the same for all three).
    symbol : str
        The estimate's symbol (``b``, ``β``, ``d``, ``ΔR²``).
    kind : str
        ``CI`` or ``HDI``; ``level`` its coverage in percent.
    p : float, optional
        A p-value, appended as ``p = .034``.
    prob : float, optional
        A posterior probability that the estimate is on ``prob_side`` of 0 (``P(b < 0) = .97``).

    Examples
    --------
    >>> estimate(0.5, 0.1, 0.9, p=0.012)
    'b = 0.50, 95% CI [0.10, 0.90], p = .012'
    >>> estimate(-0.00049, digits=3, symbol="d")
    'd = 0.000'
    """
    parts = [f"{symbol} = {number(b, digits)}"]
    if (low is None) != (high is None):
        raise FormatError("an estimate's interval needs both ends (low and high)")
    if low is not None:
        parts.append(interval(low, high, digits, level=level, kind=kind))
    if p is not None:
        parts.append(p_value(p))
    if prob is not None:
        if prob_side not in ("<", ">"):
            raise FormatError(f"prob_side must be '<' or '>', got {prob_side!r}")
        parts.append(f"P({symbol} {prob_side} 0) = {globals()['prob'](prob)}")
    return ", ".join(parts)


def _df(df) -> str:
    v = _float(df, "degrees of freedom")
    return number(v, 0) if math.isfinite(v) and abs(v - round(v)) < 1e-9 else number(v, 1)


def f_test(F, df1, df2, p, digits: int = 2) -> str:
    """An F test: ``F(2, 527) = 1.95, p = .143`` (fractional df to one decimal).

    Examples
    --------
    >>> f_test(1.9512, 2, 527, 0.1431), f_test(10.0, 1, 30.46, 0.00001)
    ('F(2, 527) = 1.95, p = .143', 'F(1, 30.5) = 10.00, p < .001')
    """
    return f"F({_df(df1)}, {_df(df2)}) = {number(F, digits)}, {p_value(p)}"


def t_test(t, df, p, digits: int = 2) -> str:
    """A t test: ``t(12.3) = −2.10, p = .051``.

    Examples
    --------
    >>> t_test(-2.1034, 12.31, 0.0512)
    't(12.3) = −2.10, p = .051'
    """
    return f"t({_df(df)}) = {number(t, digits)}, {p_value(p)}"


def chi2_test(stat, df, p, n=None, digits: int = 1) -> str:
    """A chi-square test: ``χ²(3, N = 1,000) = 12.3, p < .001``.

    Examples
    --------
    >>> chi2_test(12.34, 3, 0.0001), chi2_test(2.5, 1, 0.114, n=1000)
    ('χ²(3) = 12.3, p < .001', 'χ²(1, N = 1,000) = 2.5, p = .114')
    """
    inside = _df(df) + (f", N = {integer(n)}" if n is not None else "")
    return f"\u03c7\u00b2({inside}) = {number(stat, digits)}, {p_value(p)}"


def correlation(r, low=None, high=None, p=None, *, symbol: str = "r", digits: int = 2) -> str:
    """A correlation with its interval: ``r = 0.43, 95% CI [0.38, 0.47]``.

    Examples
    --------
    >>> correlation(0.4312, 0.381, 0.4712), correlation(-0.2, p=0.03, symbol="ρ")
    ('r = 0.43, 95% CI [0.38, 0.47]', 'ρ = −0.20, p = .030')
    """
    return estimate(r, low, high, digits=digits, symbol=symbol, p=p)


def percent(x, digits: int = 1) -> str:
    """A share as a percentage: ``41.0%`` (from 0.41).

    Examples
    --------
    >>> percent(0.41), percent(0.12345, 2)
    ('41.0%', '12.35%')
    """
    return number(100 * _float(x, "share"), digits) + "%"


def proportion(x, low=None, high=None, *, n=None, digits: int = 1, level: float = 95) -> str:
    """A share as a percentage with its interval and base: ``41.0% (95% CI [35.2%, 47.1%]; n = 300)``.

    Examples
    --------
    >>> proportion(0.41, 0.352, 0.471, n=300)
    '41.0% (95% CI [35.2%, 47.1%]; n = 300)'
    >>> proportion(0.5)
    '50.0%'
    """
    extra = []
    if low is not None or high is not None:
        extra.append(interval(low, high, digits, level=level, scale=100, suffix="%"))
    if n is not None:
        extra.append(f"n = {integer(n)}")
    return percent(x, digits) + (f" ({'; '.join(extra)})" if extra else "")


_IRREGULAR = {"analysis": "analyses", "child": "children", "person": "people", "matrix": "matrices",
              "is": "are", "was": "were", "has": "have", "does": "do", "criterion": "criteria",
              "datum": "data", "hypothesis": "hypotheses"}


def plural(n, singular: str, plural_form: str | None = None) -> str:
    """The noun in the number ``n`` asks for: ``plural(1, "issue") == "issue"``, else ``issues``.

    English rules for the regular cases (``-s``, ``-es`` after s/x/z/ch/sh, ``-ies`` after a
    consonant + y) and a few irregular nouns; ``plural_form`` overrides. Of a phrase
    (``"divergent transition"``) the last word is inflected.

    Examples
    --------
    >>> plural(1, "specification"), plural(3, "analysis"), plural(0, "cell"), plural(2, "entry")
    ('specification', 'analyses', 'cells', 'entries')
    >>> plural(2, "divergent transition"), plural(2, "is")
    ('divergent transitions', 'are')
    """
    v = _float(n, "count")
    if v == 1:
        return singular
    if plural_form is not None:
        return plural_form
    head, _, last = singular.rpartition(" ")
    if last in _IRREGULAR:
        word = _IRREGULAR[last]
    elif last.endswith(("s", "x", "z", "ch", "sh")):
        word = last + "es"
    elif len(last) > 1 and last.endswith("y") and last[-2] not in "aeiou":
        word = last[:-1] + "ies"
    else:
        word = last + "s"
    return (head + " " if head else "") + word


def count(n, singular: str, plural_form: str | None = None) -> str:
    """A count with its noun: ``1 specification``, ``599 issues``, ``12,000 images``.

    Examples
    --------
    >>> count(1, "specification"), count(599, "issue"), count(12000, "image"), count(0, "issue")
    ('1 specification', '599 issues', '12,000 images', '0 issues')
    """
    v = _float(n, "count")
    if not math.isfinite(v) or v != round(v):
        raise FormatError(f"a count the paper prints is not a whole number: {n!r}")
    return f"{integer(v)} {plural(v, singular, plural_form)}"


def yes_no(x) -> str:
    """A boolean as a word: ``yes`` / ``no`` (never ``True``); a missing value is an error.

    Strings that a CSV round trip makes of booleans (``"True"``, ``"false"``) are read as such.

    Examples
    --------
    >>> yes_no(True), yes_no(False), yes_no("True")
    ('yes', 'no', 'yes')
    """
    if _missing(x):
        raise FormatError("a yes/no value the paper prints is missing")
    if isinstance(x, str):
        s = x.strip().lower()
        if s in ("true", "yes", "1"):
            return "yes"
        if s in ("false", "no", "0"):
            return "no"
        raise FormatError(f"not a yes/no value: {x!r}")
    return "yes" if bool(x) else "no"


#: The Jinja filters the paper's templates use (``<< x | num(2) >>``, ``<< n | count("issue") >>``).
FILTERS = {
    "num": number, "int": integer, "pval": p_value, "prob": prob, "pct": percent, "count": count,
    "plural": lambda n, singular, plural_form=None: plural(n, singular, plural_form), "yesno": yes_no,
}
#: The Jinja globals (``<< f_test(a.F, a.df, a.df_resid, a.p) >>``).
GLOBALS = {
    "interval": interval, "estimate": estimate, "f_test": f_test, "t_test": t_test, "chi2_test": chi2_test,
    "correlation": correlation, "proportion": proportion, "is_number": is_number,
}
