//! Descriptive statistics, the two-sample Kolmogorov-Smirnov tests (two-sided and one-sided),
//! Pearson's correlation and its bootstrap interval.

use crate::numeric::SplitMix64;

/// Count, mean, sample standard deviation and quantiles of a sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub count: usize,
    pub mean: f64,
    /// With n − 1 in the denominator; NaN for fewer than two values.
    pub std: f64,
    /// min, 5 %, 25 %, median, 75 %, 95 %, max.
    pub quantiles: [f64; 7],
}

/// The quantile levels of [`Summary::quantiles`].
pub const QUANTILE_LEVELS: [f64; 7] = [0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0];

/// Summarises a non-empty sample (sorted in place); `None` when empty.
pub fn summarize(values: &mut [f64]) -> Option<Summary> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable_by(f64::total_cmp);
    let n = values.len();
    let mean = values.iter().sum::<f64>() / n as f64;
    let std = if n > 1 {
        (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
    } else {
        f64::NAN
    };
    Some(Summary {
        count: n,
        mean,
        std,
        quantiles: QUANTILE_LEVELS.map(|q| quantile_sorted(values, q)),
    })
}

/// Linear interpolation between closest ranks (numpy's default, Hyndman & Fan type 7).
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let position = q * (sorted.len() - 1) as f64;
    let below = position.floor() as usize;
    let above = (below + 1).min(sorted.len() - 1);
    let fraction = position - below as f64;
    sorted[below] + fraction * (sorted[above] - sorted[below])
}

/// sup_x of `measure(F_a(x) − F_b(x))` over the pooled sample points (0 below both samples).
fn max_cdf_gap(a: &[f64], b: &[f64], measure: impl Fn(f64) -> f64) -> f64 {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort_unstable_by(f64::total_cmp);
    b.sort_unstable_by(f64::total_cmp);
    let (n, m) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j, mut d) = (0, 0, 0.0_f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max(measure(i as f64 / n - j as f64 / m));
    }
    d
}

/// The two-sample Kolmogorov-Smirnov statistic D = sup |F₁ − F₂| of two non-empty samples, and
/// its asymptotic p-value (Kolmogorov distribution with Stephens' small-sample correction, as in
/// Numerical Recipes' `kstwo`).
pub fn kolmogorov_smirnov(a: &[f64], b: &[f64]) -> Option<(f64, f64)> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let (n, m) = (a.len() as f64, b.len() as f64);
    let d = max_cdf_gap(a, b, |gap: f64| gap.abs());
    let effective = (n * m / (n + m)).sqrt();
    let p = kolmogorov_survival((effective + 0.12 + 0.11 / effective) * d);
    Some((d, p))
}

/// The one-sided two-sample statistic D⁺ = sup_x [F_b(x) − F_a(x)] of two non-empty samples,
/// large when `a` lies to the right of `b` (the paper's compositionality statistic with `a` the
/// positive and `b` the negative phrases), and its asymptotic p-value as SciPy's `ks_2samp`
/// computes it (`method="asymp"`): exp(−2z² − 2z(m + 2n) / (3√(mn(m + n)))) with
/// z = D √(mn / (m + n)), m ≥ n the two sizes.
pub fn kolmogorov_smirnov_greater(a: &[f64], b: &[f64]) -> Option<(f64, f64)> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let (n, m) = (a.len() as f64, b.len() as f64);
    let d = max_cdf_gap(a, b, |gap: f64| -gap);
    let (m, n) = (n.max(m), n.min(m));
    let z = d * (m * n / (m + n)).sqrt();
    let p = (-2.0 * z * z - 2.0 * z * (m + 2.0 * n) / (m * n * (m + n)).sqrt() / 3.0)
        .exp()
        .min(1.0);
    Some((d, p))
}

/// Pearson's correlation of paired values, accumulated in two passes (means first); `None` with
/// fewer than two points or no variance in either.
pub fn pearson(xs: &[f64], ys: &[f64]) -> Option<f64> {
    assert_eq!(xs.len(), ys.len(), "paired values");
    let n = xs.len();
    if n < 2 {
        return None;
    }
    let (mx, my) = (
        xs.iter().sum::<f64>() / n as f64,
        ys.iter().sum::<f64>() / n as f64,
    );
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in xs.iter().zip(ys) {
        let (dx, dy) = (x - mx, y - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx * syy).sqrt())
}

/// The percentile bootstrap interval of Pearson's r at `level` (for example 0.95): `resamples`
/// resamplings of the pairs with replacement from a seeded generator, so the interval is the same
/// on every run and machine.
pub fn pearson_bootstrap(
    xs: &[f64],
    ys: &[f64],
    resamples: usize,
    level: f64,
    seed: u64,
) -> Option<(f64, f64)> {
    pearson(xs, ys)?;
    let n = xs.len();
    let mut rng = SplitMix64(seed);
    let (mut bx, mut by) = (vec![0.0; n], vec![0.0; n]);
    let mut rs: Vec<f64> = (0..resamples)
        .filter_map(|_| {
            for k in 0..n {
                let i = rng.below(n);
                (bx[k], by[k]) = (xs[i], ys[i]);
            }
            pearson(&bx, &by)
        })
        .collect();
    if rs.is_empty() {
        return None;
    }
    rs.sort_unstable_by(f64::total_cmp);
    let tail = (1.0 - level) / 2.0;
    Some((quantile_sorted(&rs, tail), quantile_sorted(&rs, 1.0 - tail)))
}

/// P(K > λ) for the Kolmogorov distribution: 2 Σ (−1)^(j−1) exp(−2 j² λ²).
pub fn kolmogorov_survival(lambda: f64) -> f64 {
    if lambda < 1e-3 {
        return 1.0;
    }
    let mut sum = 0.0;
    let mut sign = 1.0;
    for j in 1..=100 {
        let term = sign * (-2.0 * (j * j) as f64 * lambda * lambda).exp();
        sum += term;
        if term.abs() < 1e-16 {
            break;
        }
        sign = -sign;
    }
    (2.0 * sum).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_matches_closed_forms() {
        let mut values = [4.0, 1.0, 3.0, 2.0, 5.0];
        let s = summarize(&mut values).unwrap();
        assert_eq!(s.count, 5);
        assert_eq!(s.mean, 3.0);
        assert!((s.std - 2.5_f64.sqrt()).abs() < 1e-15);
        // numpy.quantile([1, 2, 3, 4, 5], [0, .05, .25, .5, .75, .95, 1])
        assert_eq!(s.quantiles, [1.0, 1.2, 2.0, 3.0, 4.0, 4.8, 5.0]);
        assert!(summarize(&mut [7.0]).unwrap().std.is_nan());
        assert!(summarize(&mut []).is_none());
    }

    /// The one-sided statistic and p-value against SciPy 1.17 on fixed samples:
    /// `ks_2samp(b, a, alternative="greater", method="asymp")` is sup (F_b − F_a) with p-value
    /// exp(−2 nm/(n+m) D²).
    #[test]
    fn one_sided_ks_against_closed_forms() {
        let a = [0.5, 1.5, 2.5, 3.5, 4.5];
        let b = [0.0, 1.0, 2.0];
        // F_b − F_a peaks at x = 2 with 3/3 − 2/5.
        let (d, p) = kolmogorov_smirnov_greater(&a, &b).unwrap();
        assert!((d - 0.6).abs() < 1e-15);
        assert!((p - 0.149_568_619_222_635_06).abs() < 1e-15, "{p}");
        // `a` entirely to the left of `b`: F_b never exceeds F_a.
        assert_eq!(
            kolmogorov_smirnov_greater(&[1.0, 2.0], &[3.0, 4.0]).unwrap(),
            (0.0, 1.0)
        );
        // `a` entirely to the right: D⁺ = 1 (SciPy: p 0.049787068367863944).
        let (d, p) = kolmogorov_smirnov_greater(&[3.0, 4.0], &[1.0, 2.0]).unwrap();
        assert_eq!(d, 1.0);
        assert!((p - 0.049_787_068_367_863_944).abs() < 1e-15, "{p}");
    }

    #[test]
    fn pearson_matches_closed_forms() {
        // numpy.corrcoef([1, 2, 3], [2, 4, 6.5])[0, 1]
        assert!(
            (pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.5]).unwrap() - 0.997_948_715_788_673_3).abs()
                < 1e-15
        );
        assert_eq!(pearson(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), Some(-1.0));
        assert_eq!(pearson(&[1.0, 1.0], &[2.0, 3.0]), None);
        assert_eq!(pearson(&[1.0], &[2.0]), None);
    }

    /// On a large sample the bootstrap interval of r agrees with Fisher's z interval,
    /// tanh(atanh(r) ± 1.96 / √(n − 3)), to within the bootstrap's own noise; it is the same on
    /// every run (seeded) and holds r.
    #[test]
    fn bootstrap_interval_agrees_with_fisher() {
        let mut rng = SplitMix64(7);
        let n = 2000;
        let xs: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        let ys: Vec<f64> = xs.iter().map(|x| 0.5 * x + 0.8 * rng.normal()).collect();
        let r = pearson(&xs, &ys).unwrap();
        let (low, high) = pearson_bootstrap(&xs, &ys, 2000, 0.95, 1).unwrap();
        let z = r.atanh();
        let half = 1.96 / ((n - 3) as f64).sqrt();
        let (fisher_low, fisher_high) = ((z - half).tanh(), (z + half).tanh());
        assert!(low < r && r < high);
        assert!((low - fisher_low).abs() < 0.01, "{low} vs {fisher_low}");
        assert!((high - fisher_high).abs() < 0.01, "{high} vs {fisher_high}");
        assert_eq!(
            pearson_bootstrap(&xs, &ys, 2000, 0.95, 1),
            Some((low, high))
        );
        // A perfect correlation has the degenerate interval.
        let line: Vec<f64> = xs.iter().map(|x| 2.0 * x + 1.0).collect();
        let (low, high) = pearson_bootstrap(&xs, &line, 50, 0.95, 3).unwrap();
        assert!((low - 1.0).abs() < 1e-12 && (high - 1.0).abs() < 1e-12);
    }

    #[test]
    fn ks_statistic_and_p_value() {
        // Disjoint samples: D = 1; identical samples: D = 0, p = 1.
        assert_eq!(
            kolmogorov_smirnov(&[1.0, 2.0], &[3.0, 4.0, 5.0]).unwrap().0,
            1.0
        );
        let (d, p) = kolmogorov_smirnov(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]).unwrap();
        assert_eq!((d, p), (0.0, 1.0));
        // By hand: F_a − F_b peaks at x = 2 with 3/4 − 1/4 (ties are stepped over together).
        let (d, _) = kolmogorov_smirnov(&[1.0, 2.0, 2.0, 5.0], &[2.0, 3.0, 4.0, 6.0]).unwrap();
        assert_eq!(d, 0.5);
        // Kolmogorov's distribution: P(K <= 1) = 0.730000 (tabulated), P(K <= 1.36) = 0.9505.
        assert!((kolmogorov_survival(1.0) - 0.270000).abs() < 1e-5);
        assert!((kolmogorov_survival(1.36) - 0.0495).abs() < 5e-4);
        assert!(kolmogorov_smirnov(&[], &[1.0]).is_none());
    }
}
