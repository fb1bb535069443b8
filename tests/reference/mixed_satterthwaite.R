# Reference values for discbias.stats.mixed.mixedlm / satterthwaite: lme4 + lmerTest.
#
# Builds a small synthetic data set (set.seed below; unbalanced groups, a within-group predictor x,
# a group-level predictor w and a 3-level factor f), writes it to
# tests/reference/mixed_satterthwaite_data.csv, fits random-intercept models by REML with lme4 and
# prints lmerTest's summary() coefficients (estimate, SE, Satterthwaite df, t, p) and, for the
# same models, pbkrtest's Kenward-Roger df (not used by the tests; for comparison), as CSV.
#
# Usage (from the repository root):
#   Rscript tests/reference/mixed_satterthwaite.R > tests/reference/mixed_satterthwaite_output.csv
# (Debian: apt-get install r-base-core r-cran-lme4 r-cran-lmertest r-cran-pbkrtest)
# The tests compare to 4 significant digits and do not need R.

suppressPackageStartupMessages({library(lme4); library(lmerTest); library(pbkrtest)})
set.seed(20240215)
G <- 12
sizes <- c(5, 8, 12, 20, 6, 15, 9, 11, 18, 7, 14, 10)
g <- rep(sprintf("g%02d", 1:G), times = sizes)
u <- rnorm(G, 0, 0.8)
wg <- rnorm(G)
n <- length(g)
x <- rnorm(n)
f <- sample(c("a", "b", "c"), n, replace = TRUE)
gi <- match(g, sprintf("g%02d", 1:G))
w <- wg[gi]
y <- 1 + 0.5 * x + 0.3 * w + 0.4 * (f == "b") - 0.2 * (f == "c") + u[gi] + rnorm(n)
d <- data.frame(y = signif(y, 10), x = signif(x, 10), w = signif(w, 10), f = f, g = g)
write.csv(d, "tests/reference/mixed_satterthwaite_data.csv", row.names = FALSE)
d <- read.csv("tests/reference/mixed_satterthwaite_data.csv")

models <- list(full = y ~ x + w + f + (1 | g), small = y ~ x + (1 | g), between = y ~ w + (1 | g))
fmt <- function(x) trimws(formatC(x, digits = 12, format = "g"))
out <- list()
for (m in names(models)) {
  fit <- lmer(models[[m]], data = d, REML = TRUE)
  co <- summary(fit)$coefficients          # lmerTest: Satterthwaite by default
  kr <- summary(fit, ddf = "Kenward-Roger")$coefficients
  vc <- as.data.frame(VarCorr(fit))
  for (i in seq_len(nrow(co))) {
    out[[length(out) + 1]] <- data.frame(model = m, term = rownames(co)[i], estimate = fmt(co[i, "Estimate"]),
      std_error = fmt(co[i, "Std. Error"]), df = fmt(co[i, "df"]), statistic = fmt(co[i, "t value"]),
      p_value = fmt(co[i, "Pr(>|t|)"]), df_kenward_roger = fmt(kr[i, "df"]),
      re_var = fmt(vc$vcov[vc$grp == "g"]), residual_var = fmt(vc$vcov[vc$grp == "Residual"]))
  }
}
write.csv(do.call(rbind, out), stdout(), row.names = FALSE, quote = FALSE)
