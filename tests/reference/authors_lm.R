# Reference values for the authors' linear models (discbias.analyses.authors).
#
# Re-runs, in R, the lm()/anova() calls of the authors' released scripts
# (acgrissom/projects @ a70c5f054122cc8819c149a5c4c237cd440a0c4d, ganfaces/scripts/):
#   AtypicalFacePlotCode.R     on AtypicalFaceData.csv (600 men)
#   woman_atypical_dist_plot.R on WomenFaceData.csv  (3,295 women)
# each: lm(discriminator_score ~ race), ~ race + luminance, ~ race * hair_length,
# ~ race * hair_length + luminance, with summary() coefficients, anova() (type I, R's term order)
# and car::Anova(type = 2) beside it; plus the OLS analogue of atypical_robust_linreg.R's
# stan_glm(discriminator_score ~ red_mean + green_mean + blue_mean + race + hair_length).
#
# Usage:  Rscript tests/reference/authors_lm.R <data folder> > tests/reference/authors_lm_output.csv
# (R >= 4 with the car package; on Debian: apt-get install r-base-core r-cran-car)
# The output (checked in next to this script) holds derived model outputs only, never data rows.

suppressPackageStartupMessages(library(car))
args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 1) stop("usage: Rscript authors_lm.R <folder with AtypicalFaceData.csv and WomenFaceData.csv>")
folder <- args[1]

models <- list(
  lm_race = discriminator_score ~ race,
  lm_race_lum = discriminator_score ~ race + luminance,
  lm_race_hair = discriminator_score ~ race * hair_length,
  lm_race_hair_lum = discriminator_score ~ race * hair_length + luminance
)
files <- c(men = "AtypicalFaceData.csv", women = "WomenFaceData.csv")
rows <- list()
add <- function(...) rows[[length(rows) + 1]] <<- data.frame(..., stringsAsFactors = FALSE)
fmt <- function(x) trimws(formatC(x, digits = 12, format = "g"))

for (g in names(files)) {
  path <- file.path(folder, files[[g]])
  sha <- strsplit(system2("sha256sum", shQuote(path), stdout = TRUE), " ")[[1]][1]
  d <- read.csv(path)
  fits <- lapply(models, function(f) lm(f, data = d))
  if (g == "men") {
    fits$lm_rgb_race_hair <- lm(discriminator_score ~ red_mean + green_mean + blue_mean + race + hair_length, data = d)
  }
  for (m in names(fits)) {
    fit <- fits[[m]]
    id <- paste(g, m, sep = "_")
    co <- summary(fit)$coefficients
    for (t in rownames(co)) {
      add(file = files[[g]], data_sha256 = sha, model = id, table = "coef", term = t,
          estimate = fmt(co[t, 1]), std_error = fmt(co[t, 2]), statistic = fmt(co[t, 3]), p_value = fmt(co[t, 4]),
          df = fmt(fit$df.residual), sum_sq = NA, n_obs = nobs(fit))
    }
    a1 <- anova(fit)
    for (t in rownames(a1)) {
      add(file = files[[g]], data_sha256 = sha, model = id, table = "anova_type1", term = t,
          estimate = NA, std_error = NA, statistic = fmt(a1[t, "F value"]), p_value = fmt(a1[t, "Pr(>F)"]),
          df = fmt(a1[t, "Df"]), sum_sq = fmt(a1[t, "Sum Sq"]), n_obs = nobs(fit))
    }
    a2 <- car::Anova(fit, type = 2)
    for (t in rownames(a2)) {
      add(file = files[[g]], data_sha256 = sha, model = id, table = "anova_type2", term = t,
          estimate = NA, std_error = NA, statistic = fmt(a2[t, "F value"]), p_value = fmt(a2[t, "Pr(>F)"]),
          df = fmt(a2[t, "Df"]), sum_sq = fmt(a2[t, "Sum Sq"]), n_obs = nobs(fit))
    }
  }
}
out <- do.call(rbind, rows)
out$r_version <- paste(R.version$major, R.version$minor, sep = ".")
out$car_version <- as.character(packageVersion("car"))
write.csv(out, stdout(), row.names = FALSE, na = "")
