# Reference values for discbias.stats.cr2, generated once with R's clubSandwich:
#   Rscript tests/reference/cr2_clubsandwich.R   (from the repository root)
# Input: tests/reference/cr2_data.csv (synthetic: 12 clusters of unequal size).
# Output: tests/reference/cr2_clubsandwich.csv (CR2 SEs, naive-t(G-1) p-values and 95% intervals).
# The Python tests read the output only; they never need R.
suppressPackageStartupMessages(library(clubSandwich))
d <- read.csv("tests/reference/cr2_data.csv")
d$f <- factor(d$f)
fit <- lm(y ~ x1 + x2 + f, data = d)
V <- vcovCR(fit, cluster = d$cluster, type = "CR2")
ct <- coef_test(fit, vcov = V, test = "naive-t")
ci <- conf_int(fit, vcov = V, test = "naive-t", level = 0.95)
sat <- coef_test(fit, vcov = V, test = "Satterthwaite")
out <- data.frame(term = ct$Coef, estimate = ct$beta, std_error = ct$SE, df_naive = ct$df_t,
                  p_naive = ct$p_t, conf_low = ci$CI_L, conf_high = ci$CI_U, df_satterthwaite = sat$df_Satt,
                  p_satterthwaite = sat$p_Satt)
write.csv(format(out, digits = 15), "tests/reference/cr2_clubsandwich.csv", row.names = FALSE)
cat(sprintf("clubSandwich %s, R %s\n", packageVersion("clubSandwich"), getRversion()))
