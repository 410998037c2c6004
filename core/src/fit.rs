//! Scalability models fitted to measured speedups — Amdahl's law and the Universal Scalability
//! Law (USL) — and the median and spread of repeated runs. Pure arithmetic, no I/O.
//!
//! - Amdahl: S(N) = 1 / (s + (1 − s) / N), with s the serial fraction.
//! - USL: S(N) = N / (1 + σ(N − 1) + κN(N − 1)), with σ the contention (queueing on a shared
//!   resource) and κ the coherency cost (units waiting on each other, growing with N²). When
//!   κ > 0 the speedup peaks at N* = √((1 − σ) / κ) and then falls: more units cost more than
//!   they save.
//!
//! Both are fitted by least squares on their linearised forms, weighted so every point counts
//! by its *relative* error (a 5 % miss at N = 64 weighs as much as one at N = 2), with the
//! coefficients kept in their meaningful ranges (0 ≤ s, σ ≤ 1, κ ≥ 0). The fits are closed
//! forms: no iteration, nothing to diverge.

use serde::{Deserialize, Serialize};

/// One measured cell of a series: parallel units (processes × concurrency) and the speedup
/// over the one-unit baseline.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Parallel units N (≥ 1).
    pub units: f64,
    /// Measured speedup S(N) over the single-unit baseline.
    pub speedup: f64,
}

/// Amdahl's law for `units` parallel units and a serial fraction `serial_fraction`.
pub fn amdahl_speedup(serial_fraction: f64, units: f64) -> f64 {
    1.0 / (serial_fraction + (1.0 - serial_fraction) / units)
}

/// The USL speedup for `units` parallel units.
pub fn usl_speedup(sigma: f64, kappa: f64, units: f64) -> f64 {
    units / (1.0 + sigma * (units - 1.0) + kappa * units * (units - 1.0))
}

/// Amdahl's law fitted to a series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AmdahlFit {
    /// Fraction of the one-unit time that does not parallelise, in 0..=1.
    pub serial_fraction: f64,
    /// Root-mean-square relative error of the fitted speedups against the measured ones.
    pub rms_relative_error: f64,
}

impl AmdahlFit {
    /// Predicted speedup at `units`.
    pub fn speedup(&self, units: f64) -> f64 {
        amdahl_speedup(self.serial_fraction, units)
    }
}

/// The Universal Scalability Law fitted to a series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct UslFit {
    /// Contention coefficient σ, in 0..=1.
    pub sigma: f64,
    /// Coherency coefficient κ, ≥ 0.
    pub kappa: f64,
    /// Root-mean-square relative error of the fitted speedups against the measured ones.
    pub rms_relative_error: f64,
}

/// κ below this is treated as zero: no peak within any realistic number of units.
const KAPPA_EPSILON: f64 = 1e-9;

impl UslFit {
    /// Predicted speedup at `units`.
    pub fn speedup(&self, units: f64) -> f64 {
        usl_speedup(self.sigma, self.kappa, units)
    }

    /// Units at which the predicted speedup peaks: √((1 − σ) / κ), at least 1. `None` when κ
    /// is zero: the curve keeps rising (towards 1/σ) and more units always help a little.
    pub fn optimum_units(&self) -> Option<f64> {
        if self.sigma >= 1.0 {
            // Contention alone eats every added unit: one is best.
            return Some(1.0);
        }
        (self.kappa > KAPPA_EPSILON).then(|| ((1.0 - self.sigma) / self.kappa).sqrt().max(1.0))
    }
}

/// Points usable for fitting: finite, positive speedup, N ≥ 1.
fn usable(points: &[Point]) -> impl Iterator<Item = Point> + '_ {
    points
        .iter()
        .copied()
        .filter(|p| p.units >= 1.0 && p.units.is_finite() && p.speedup.is_finite())
        .filter(|p| p.speedup > 0.0)
}

/// True when at least one point has N > 1: N = 1 carries no information about scaling.
fn has_scaling_point(points: &[Point]) -> bool {
    usable(points).any(|p| p.units > 1.0)
}

fn rms_relative_error(points: &[Point], model: impl Fn(f64) -> f64) -> f64 {
    let (sum, count) = usable(points).fold((0.0, 0usize), |(sum, count), p| {
        let relative = model(p.units) / p.speedup - 1.0;
        (sum + relative * relative, count + 1)
    });
    if count == 0 {
        0.0
    } else {
        (sum / count as f64).sqrt()
    }
}

/// Fits Amdahl's law. `None` without a usable point at N > 1.
///
/// Linearised: 1/S − 1/N = s · (1 − 1/N), a line through the origin. An error ε in S moves the
/// left side by about ε/S, so each point is weighted by S² to fit relative errors.
pub fn fit_amdahl(points: &[Point]) -> Option<AmdahlFit> {
    if !has_scaling_point(points) {
        return None;
    }
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for p in usable(points) {
        let x = 1.0 - 1.0 / p.units;
        let y = 1.0 / p.speedup - 1.0 / p.units;
        let w = p.speedup * p.speedup;
        sxy += w * x * y;
        sxx += w * x * x;
    }
    let serial_fraction = (sxy / sxx).clamp(0.0, 1.0);
    Some(AmdahlFit {
        serial_fraction,
        rms_relative_error: rms_relative_error(points, |n| amdahl_speedup(serial_fraction, n)),
    })
}

/// Weighted sums of the USL's linearised form y = σ·x1 + κ·x2 with x1 = N − 1,
/// x2 = N(N − 1), y = N/S − 1.
#[derive(Debug, Default)]
struct UslSums {
    x1x1: f64,
    x1x2: f64,
    x2x2: f64,
    x1y: f64,
    x2y: f64,
    yy: f64,
}

impl UslSums {
    fn new(points: &[Point]) -> Self {
        let mut sums = Self::default();
        for p in usable(points) {
            let (x1, x2) = (p.units - 1.0, p.units * (p.units - 1.0));
            let y = p.units / p.speedup - 1.0;
            // An error ε in S moves y by about (N/S)·ε: weight (S/N)² fits relative errors.
            let w = (p.speedup / p.units).powi(2);
            sums.x1x1 += w * x1 * x1;
            sums.x1x2 += w * x1 * x2;
            sums.x2x2 += w * x2 * x2;
            sums.x1y += w * x1 * y;
            sums.x2y += w * x2 * y;
            sums.yy += w * y * y;
        }
        sums
    }

    /// Weighted sum of squared residuals of (σ, κ) in the linearised space.
    fn residual(&self, sigma: f64, kappa: f64) -> f64 {
        self.yy - 2.0 * (sigma * self.x1y + kappa * self.x2y)
            + sigma * sigma * self.x1x1
            + 2.0 * sigma * kappa * self.x1x2
            + kappa * kappa * self.x2x2
    }

    /// Best κ ≥ 0 with σ held at `sigma`.
    fn kappa_given(&self, sigma: f64) -> f64 {
        if self.x2x2 > 0.0 {
            ((self.x2y - sigma * self.x1x2) / self.x2x2).max(0.0)
        } else {
            0.0
        }
    }
}

/// Fits the USL. `None` without a usable point at N > 1.
///
/// With one distinct N > 1 the two coefficients cannot be told apart; the fit then explains
/// the point by contention alone (κ = 0). The coefficients are constrained to 0 ≤ σ ≤ 1 and
/// κ ≥ 0: for two variables in a box the constrained least-squares optimum lies in the
/// interior or on one edge, so the candidates below are exhaustive.
pub fn fit_usl(points: &[Point]) -> Option<UslFit> {
    if !has_scaling_point(points) {
        return None;
    }
    let sums = UslSums::new(points);
    let mut candidates = Vec::with_capacity(4);
    let det = sums.x1x1 * sums.x2x2 - sums.x1x2 * sums.x1x2;
    // Relative threshold: a single distinct N gives a determinant that is zero up to rounding.
    if det > 1e-12 * sums.x1x1 * sums.x2x2 {
        let sigma = (sums.x1y * sums.x2x2 - sums.x2y * sums.x1x2) / det;
        let kappa = (sums.x2y * sums.x1x1 - sums.x1y * sums.x1x2) / det;
        if (0.0..=1.0).contains(&sigma) && kappa >= 0.0 {
            candidates.push((sigma, kappa));
        }
    }
    // The edges: κ = 0, σ = 0, σ = 1.
    candidates.push(((sums.x1y / sums.x1x1).clamp(0.0, 1.0), 0.0));
    candidates.push((0.0, sums.kappa_given(0.0)));
    candidates.push((1.0, sums.kappa_given(1.0)));
    let (sigma, kappa) = candidates.into_iter().fold((0.0, 0.0), |best, c| {
        if sums.residual(c.0, c.1) < sums.residual(best.0, best.1) {
            c
        } else {
            best
        }
    });
    Some(UslFit {
        sigma,
        kappa,
        rms_relative_error: rms_relative_error(points, |n| usl_speedup(sigma, kappa, n)),
    })
}

/// Median and range of repeated measurements of one cell.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// Middle value (mean of the two middle ones for an even count).
    pub median: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

impl Spread {
    /// The median and range of `samples`; `None` when there are none (NaNs are ignored).
    pub fn of(samples: &[f64]) -> Option<Self> {
        let mut sorted: Vec<f64> = samples.iter().copied().filter(|v| !v.is_nan()).collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let mid = sorted.len() / 2;
        let median = if sorted.len() % 2 == 1 {
            sorted[mid]
        } else {
            (sorted[mid - 1] + sorted[mid]) / 2.0
        };
        Some(Self {
            median,
            min: sorted[0],
            max: sorted[sorted.len() - 1],
        })
    }

    /// (max − min) / median: the spread as a fraction of the typical value.
    pub fn relative_range(&self) -> f64 {
        crate::report::ratio(self.max - self.min, self.median)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNITS: [f64; 7] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];

    fn series(model: impl Fn(f64) -> f64) -> Vec<Point> {
        UNITS
            .iter()
            .map(|&units| Point {
                units,
                speedup: model(units),
            })
            .collect()
    }

    /// Deterministic multiplicative noise of up to ±`amplitude`, alternating in sign.
    fn noisy(points: &[Point], amplitude: f64) -> Vec<Point> {
        let pattern = [1.0, -0.6, 0.8, -1.0, 0.4, -0.8, 0.9];
        points
            .iter()
            .zip(pattern.iter().cycle())
            .map(|(p, f)| Point {
                units: p.units,
                speedup: p.speedup * (1.0 + amplitude * f),
            })
            .collect()
    }

    // Tolerances: exact synthetic data must come back to 1e-9 (rounding only); with ±2 %
    // noise, σ and s within 0.01 absolute and κ within 25 % relative, N* within 15 %.

    #[test]
    fn amdahl_recovers_the_serial_fraction_from_exact_data() {
        for s in [0.0, 0.05, 0.2, 0.5, 1.0] {
            let fit = fit_amdahl(&series(|n| amdahl_speedup(s, n))).unwrap();
            assert!((fit.serial_fraction - s).abs() < 1e-9, "s = {s}: {fit:?}");
            assert!(fit.rms_relative_error < 1e-9);
        }
    }

    #[test]
    fn amdahl_tolerates_noise() {
        let fit = fit_amdahl(&noisy(&series(|n| amdahl_speedup(0.1, n)), 0.02)).unwrap();
        assert!((fit.serial_fraction - 0.1).abs() < 0.01, "{fit:?}");
        assert!(fit.rms_relative_error > 0.0 && fit.rms_relative_error < 0.03);
    }

    #[test]
    fn usl_recovers_both_coefficients_from_exact_data() {
        for (sigma, kappa) in [(0.03, 0.0005), (0.1, 0.0), (0.0, 0.002), (0.25, 0.01)] {
            let fit = fit_usl(&series(|n| usl_speedup(sigma, kappa, n))).unwrap();
            assert!((fit.sigma - sigma).abs() < 1e-9, "{sigma},{kappa}: {fit:?}");
            assert!((fit.kappa - kappa).abs() < 1e-9, "{sigma},{kappa}: {fit:?}");
        }
    }

    #[test]
    fn usl_tolerates_noise_and_finds_the_peak() {
        let (sigma, kappa) = (0.05, 0.001);
        let fit = fit_usl(&noisy(&series(|n| usl_speedup(sigma, kappa, n)), 0.02)).unwrap();
        assert!((fit.sigma - sigma).abs() < 0.01, "{fit:?}");
        assert!((fit.kappa - kappa).abs() / kappa < 0.25, "{fit:?}");
        let expected = ((1.0 - sigma) / kappa).sqrt(); // ≈ 30.8
        let found = fit.optimum_units().unwrap();
        assert!(
            (found - expected).abs() / expected < 0.15,
            "{found} vs {expected}"
        );
    }

    #[test]
    fn linear_scaling_has_no_peak_and_flat_speedup_peaks_at_one() {
        let linear = fit_usl(&series(|n| n)).unwrap();
        assert!(linear.sigma.abs() < 1e-12 && linear.kappa.abs() < 1e-12);
        assert_eq!(linear.optimum_units(), None);
        let flat = fit_usl(&series(|_| 1.0)).unwrap();
        assert!((flat.sigma - 1.0).abs() < 1e-9, "{flat:?}");
        assert_eq!(flat.optimum_units(), Some(1.0));
        assert_eq!(fit_amdahl(&series(|_| 1.0)).unwrap().serial_fraction, 1.0);
    }

    #[test]
    fn superlinear_and_retrograde_data_stay_in_range() {
        // Faster than linear (caches): no negative contention.
        let fit = fit_usl(&series(|n| n * 1.1)).unwrap();
        assert!(fit.sigma >= 0.0 && fit.kappa >= 0.0);
        assert_eq!(
            fit_amdahl(&series(|n| n * 1.1)).unwrap().serial_fraction,
            0.0
        );
        // Slower with every unit: σ capped at 1, the rest explained by κ.
        let fit = fit_usl(&series(|n| 1.0 / n.sqrt())).unwrap();
        assert_eq!(fit.sigma, 1.0);
        assert!(fit.kappa > 0.0);
    }

    #[test]
    fn one_distinct_size_is_explained_by_contention_alone() {
        let points = [
            Point {
                units: 1.0,
                speedup: 1.0,
            },
            Point {
                units: 4.0,
                speedup: 2.0,
            },
        ];
        let fit = fit_usl(&points).unwrap();
        assert_eq!(fit.kappa, 0.0);
        assert!((fit.speedup(4.0) - 2.0).abs() < 1e-9, "{fit:?}");
    }

    #[test]
    fn no_scaling_point_no_fit() {
        let only_one = [Point {
            units: 1.0,
            speedup: 1.0,
        }];
        assert_eq!(fit_usl(&only_one), None);
        assert_eq!(fit_amdahl(&[]), None);
        let broken = [Point {
            units: 4.0,
            speedup: f64::NAN,
        }];
        assert_eq!(fit_usl(&broken), None);
    }

    #[test]
    fn spread_of_repeats() {
        let odd = Spread::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((odd.median, odd.min, odd.max), (2.0, 1.0, 3.0));
        let even = Spread::of(&[4.0, 1.0, 2.0, 3.0]).unwrap();
        assert_eq!(even.median, 2.5);
        assert_eq!(even.relative_range(), 3.0 / 2.5);
        assert_eq!(Spread::of(&[]), None);
        assert_eq!(Spread::of(&[f64::NAN, 5.0]).unwrap().median, 5.0);
    }
}
