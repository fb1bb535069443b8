"""Publication tables of the authors' analyses (:mod:`discbias.analyses.authors`)."""

from __future__ import annotations

import pandas as pd

from ...analyses.authors import LM_VARIANTS, ROLES


def figures(ctx):
    """Publication tables: the authors' ANOVAs (type I and II side by side), coefficients, ledger."""
    an = ctx.results.get("authors_anova")
    if an is not None and len(an):
        full = an[an["model"].isin(["men_anova_paper", "women_anova_paper"])]
        two = an[an["model"].isin(["men_anova_paper_type2", "women_anova_paper_type2"])]
        t = full[["lm_model", "term", "df", "sum_sq", "statistic", "p_value"]].merge(
            two[["lm_model", "term", "sum_sq", "statistic", "p_value"]], on=["lm_model", "term"], suffixes=("", "_2"))
        t["File"] = t["lm_model"].map(lambda m: "men (AtypicalFaceData)" if m.startswith("men") else "women (WomenFaceData)")
        t = t.rename(columns={"term": "Term", "df": "df", "sum_sq": "SS (I)", "statistic": "F (I)", "p_value": "p (I)",
                              "sum_sq_2": "SS (II)", "statistic_2": "F (II)", "p_value_2": "p (II)"})
        ctx.save_table(t[["File", "Term", "df", "SS (I)", "F (I)", "p (I)", "SS (II)", "F (II)", "p (II)"]],
                       "authors_anova", digits={"df": 0, "SS (I)": 0, "F (I)": 2, "p (I)": 4, "SS (II)": 0,
                                                "F (II)": 2, "p (II)": 4},
                       caption="The paper's ANOVAs of score on race × hair length + luminance, on the authors' "
                               "files: type I (sequential, R's term order, as `anova()` prints) and type II "
                               "(`car::Anova`).",
                       label="tbl-authors-anova")
    co = ctx.results.get("authors_lm")
    if co is not None and len(co):
        keep = co[co["model"].isin([f"{g}_{v}" for g in ROLES for v, _ in LM_VARIANTS])]
        t = pd.DataFrame({"Model": keep["model"], "Term": keep["r_term"], "Estimate": keep["estimate"],
                          "SE": keep["std_error"], "t": keep["statistic"], "p": keep["p_value"], "n": keep["n_obs"]})
        ctx.save_table(t, "authors_lm", digits={"Estimate": 2, "SE": 2, "t": 2, "p": 4, "n": 0},
                       caption="Coefficients of the authors' four `lm()` models per file, as R's `summary()` prints "
                               "them (R's coefficient names).",
                       label="tbl-authors-lm")
    led = ctx.results.get("authors_ledger")
    if led is not None and len(led):
        def breakable(col: pd.Series) -> pd.Series:
            # a zero-width space after each underscore lets long file names and ids wrap in a narrow column
            return col.fillna("").astype(str).str.replace("_", "_\u200b", regex=False)

        t = pd.DataFrame({"Script": breakable(led["script"]),
                          "Data": breakable(led["data_file"].astype(str).str.rsplit("/", n=1).str[-1]),
                          "n": led["n"],
                          "Status": led["status"],
                          "Our model": breakable(led["our_model"].fillna("").str.replace("; ", ", ")).replace("", "—")})
        ctx.save_table(t, "authors_ledger", digits={"n": 0},
                       caption="Ledger of the authors' analyses: script, the file it reads (n rows used), status "
                               "and our model ids.",
                       label="tbl-authors-ledger")



def steps(config, paths) -> list:
    """The figure step of :mod:`discbias.analyses.authors`: what :func:`figures` reads."""
    from ...analyses import authors as A
    from ...stages import figure_step

    return [figure_step("authors:figures", figures, optional_measures=["authors_men", "authors_women", "study2_images", "study2agg_images"], optional_results=A.FIT_TABLES)]
