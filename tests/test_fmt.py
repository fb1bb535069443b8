"""The statistics formatting layer (discbias.report.fmt) and its use by the templates."""

import math

import jinja2
import pytest

from discbias.report import fmt
from discbias.report.render import KeepLineBreaks, RenderError, _finalize, make_environment


def test_inline_results_read_as_in_a_journal():
    assert fmt.estimate(-1.9149, -3.8032, 0.0771, kind="HDI", prob=0.9713) == \
        "b = \u22121.91, 95% HDI [\u22123.80, 0.08], P(b < 0) = .97"
    assert fmt.f_test(1.9512, 2, 527, 0.1431) == "F(2, 527) = 1.95, p = .143"
    assert fmt.t_test(2.5, 30.46, 0.018) == "t(30.5) = 2.50, p = .018"
    assert fmt.chi2_test(87.21, 5, 1e-12, n=2500) == "\u03c7\u00b2(5, N = 2,500) = 87.2, p < .001"
    assert fmt.correlation(0.4312, 0.381, 0.4712) == "r = 0.43, 95% CI [0.38, 0.47]"
    assert fmt.proportion(0.41, 0.352, 0.471, n=300) == "41.0% (95% CI [35.2%, 47.1%]; n = 300)"


def test_one_p_style_and_probabilities():
    assert [fmt.p_value(p) for p in (0.0, 0.0004, 0.001, 0.0345, 0.9996)] == \
        ["p < .001", "p < .001", "p = .001", "p = .035", "p > .999"]
    assert fmt.p_value(0.2, prefix=False) == ".200"
    with pytest.raises(fmt.FormatError):
        fmt.p_value(1.5)
    assert [fmt.prob(x) for x in (0.0, 0.004, 0.5, 0.996, 1.0)] == ["< .01", "< .01", ".50", "> .99", "> .99"]


def test_no_negative_zero_and_rounding_from_the_unrounded_value():
    assert fmt.number(-0.004, 2) == "0.00" and fmt.number(-0.0) == "0.00" and fmt.number(-0.006, 2) == "\u22120.01"
    # the interval ends are rounded from their own values, at the estimate's digits
    assert fmt.estimate(0.1249, 0.0451, 0.2049, digits=1) == "b = 0.1, 95% CI [0.0, 0.2]"
    assert fmt.interval(-0.00049, 0.0151, 3, level=None) == "[0.000, 0.015]"


def test_counts_are_plural_aware():
    assert fmt.count(1, "specification") == "1 specification"
    assert fmt.count(599, "issue") == "599 issues"
    assert fmt.count(2, "analysis") == "2 analyses" and fmt.count(3, "entry") == "3 entries"
    assert fmt.count(1, "divergent transition") == "1 divergent transition"
    assert fmt.plural(1, "was") == "was" and fmt.plural(2, "was") == "were"
    with pytest.raises(fmt.FormatError):
        fmt.count(2.5, "image")


def test_no_python_reprs():
    assert fmt.yes_no(True) == "yes" and fmt.yes_no(False) == "no" and fmt.yes_no("False") == "no"
    assert fmt.number(math.inf) == "infinite" and fmt.number(-math.inf) == "minus infinite"
    assert fmt.number(math.nan) == "not available"
    with pytest.raises(fmt.FormatError):
        fmt.number(None)
    with pytest.raises(fmt.FormatError):
        fmt.number(True)
    # what the template prints without a filter: words, not reprs
    assert _finalize(True) == "yes" and _finalize(math.inf) == "infinite" and _finalize(0.1 + 0.2) == "0.3"
    assert _finalize(1.01) == "1.01" and _finalize(-0.05) == "\u22120.05"
    with pytest.raises(RenderError):
        _finalize(None)


def test_a_line_ending_in_a_block_tag_keeps_its_line_break(tmp_path):
    # the root cause of "training.Without" and "rescore them.- Correlational": trim_blocks ate the
    # line break after an inline <% endif %>
    (tmp_path / "t.j2").write_text("- First item, in training.<% if x %> More.<% endif %>\n"
                                   "  <% if y %>Without the weights.<% endif %>\n"
                                   "- **Second item.**\n<% if x %>\nshown\n<% endif %>\nend\n")
    paths = type("P", (), {"cache": tmp_path / "cache"})()
    env = make_environment(tmp_path, paths)
    out = env.get_template("t.j2").render(x=False, y=True)
    assert out == "- First item, in training.\nWithout the weights.\n- **Second item.**\nend\n"
    assert KeepLineBreaks.mark("<% if a %>\n") == "<% if a %>\n"


def test_templates_use_the_filters_and_a_formatting_error_is_a_render_error(tmp_path):
    (tmp_path / "t.j2").write_text('<< n | count("issue") >>; << p | pval >>; << f_test(F, 2, 527, p) >>; '
                                   '<< ok | yesno >>; << b | num(1) >>\n')
    env = make_environment(tmp_path, type("P", (), {"cache": tmp_path / "cache"})())
    out = env.get_template("t.j2").render(n=1, p=0.1431, F=1.9512, ok=True, b=-0.04)
    assert out == "1 issue; p = .143; F(2, 527) = 1.95, p = .143; yes; 0.0\n"
    with pytest.raises(RenderError):
        env.get_template("t.j2").render(n=None, p=0.1, F=1, ok=True, b=1)
    with pytest.raises((RenderError, jinja2.UndefinedError)):
        env.from_string("<< missing | num >>").render()
