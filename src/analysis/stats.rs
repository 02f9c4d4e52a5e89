//! Descriptive statistics and the two-sample Kolmogorov-Smirnov test.

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

/// The two-sample Kolmogorov-Smirnov statistic D = sup |F₁ − F₂| of two non-empty samples, and
/// its asymptotic p-value (Kolmogorov distribution with Stephens' small-sample correction, as in
/// Numerical Recipes' `kstwo`).
pub fn kolmogorov_smirnov(a: &[f64], b: &[f64]) -> Option<(f64, f64)> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
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
        d = d.max((i as f64 / n - j as f64 / m).abs());
    }
    let effective = (n * m / (n + m)).sqrt();
    let p = kolmogorov_survival((effective + 0.12 + 0.11 / effective) * d);
    Some((d, p))
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
