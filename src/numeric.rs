//! Floating-point types the models and attributions run in, and their activations.
//!
//! `f32` is the hot-path type: its activations are branch-free polynomial evaluations so that
//! loops over them vectorise. `f64` uses the standard library and serves as the precise path that
//! tests compare against the authors' float64 reference values.

use std::fmt::Debug;

use std::ops::{AddAssign, MulAssign, SubAssign};

use ndarray::{LinalgScalar, ScalarOperand};

/// A floating-point type usable for weights, states and decompositions.
pub trait Real:
    LinalgScalar
    + ScalarOperand
    + num_traits::Float
    + AddAssign
    + SubAssign
    + MulAssign
    + Debug
    + Default
    + Send
    + Sync
    + 'static
{
    /// Name used in logs and error messages.
    const NAME: &'static str;

    /// Rounds an `f64` to this type (used when loading weights stored in either precision).
    fn from_f64(value: f64) -> Self;

    /// Widens to `f64` for accumulation and output.
    fn as_f64(self) -> f64;

    /// The logistic function 1 / (1 + e^-x).
    fn sigmoid(self) -> Self;

    /// The hyperbolic tangent.
    fn tanh_act(self) -> Self;
}

impl Real for f64 {
    const NAME: &'static str = "f64";

    #[inline(always)]
    fn from_f64(value: f64) -> Self {
        value
    }

    #[inline(always)]
    fn as_f64(self) -> f64 {
        self
    }

    #[inline(always)]
    fn sigmoid(self) -> Self {
        1.0 / (1.0 + (-self).exp())
    }

    #[inline(always)]
    fn tanh_act(self) -> Self {
        self.tanh()
    }
}

impl Real for f32 {
    const NAME: &'static str = "f32";

    #[inline(always)]
    fn from_f64(value: f64) -> Self {
        value as f32
    }

    #[inline(always)]
    fn as_f64(self) -> f64 {
        f64::from(self)
    }

    #[inline(always)]
    fn sigmoid(self) -> Self {
        1.0 / (1.0 + exp_f32(-self))
    }

    #[inline(always)]
    fn tanh_act(self) -> Self {
        // tanh(|x|) = (1 - e) / (1 + e) with e = exp(-2|x|) never overflows; the sign is restored after.
        let e = exp_f32(-2.0 * self.abs());
        ((1.0 - e) / (1.0 + e)).copysign(self)
    }
}

/// Branch-free `exp` for `f32` (Cephes `expf` reduction and polynomial, relative error about 2e-7).
///
/// The argument is clamped to the range where the result is a normal float, so the function never
/// produces infinities or denormals. Rounding to an integer uses the 1.5·2²³ shifter instead of a
/// float-to-int cast, which compilers do not vectorise; the caller's loop stays SIMD throughout.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    const LN2_HIGH: f32 = 0.693_359_4;
    const LN2_LOW: f32 = -2.121_944_4e-4;
    const SHIFTER: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    // Adding 1.5·2²³ rounds x·log2(e) to the nearest integer n (ties to even) and leaves n in the
    // low mantissa bits.
    let shifted = x.mul_add(LOG2_E, SHIFTER);
    let n = shifted - SHIFTER;
    let r = n.mul_add(-LN2_LOW, n.mul_add(-LN2_HIGH, x));
    let mut p = 1.987_569_1e-4_f32;
    p = p.mul_add(r, 1.398_199_9e-3);
    p = p.mul_add(r, 8.333_452e-3);
    p = p.mul_add(r, 4.166_579_6e-2);
    p = p.mul_add(r, 1.666_666_5e-1);
    p = p.mul_add(r, 0.5);
    let y = (p * r).mul_add(r, r + 1.0);
    let n_int = shifted.to_bits().wrapping_sub(SHIFTER.to_bits()) as i32;
    let scale = f32::from_bits(((n_int + 127) as u32) << 23);
    y * scale
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The f32 activations against the float64 standard library over a dense grid, including the
    /// saturated tails where CD's differences of activations are most sensitive.
    #[test]
    fn f32_activations_match_f64_reference() {
        let mut worst_exp_rel = 0.0_f64;
        let mut worst_sigmoid = 0.0_f64;
        let mut worst_tanh = 0.0_f64;
        for k in -200_000..=200_000 {
            let x = k as f32 * 1e-4 * 3.0;
            let xd = f64::from(x);
            let e = f64::from(exp_f32(x));
            worst_exp_rel = worst_exp_rel.max(((e - xd.exp()) / xd.exp()).abs());
            worst_sigmoid = worst_sigmoid.max((f64::from(x.sigmoid()) - xd.sigmoid()).abs());
            worst_tanh = worst_tanh.max((f64::from(x.tanh_act()) - xd.tanh()).abs());
        }
        assert!(worst_exp_rel < 3e-7, "exp relative error {worst_exp_rel}");
        assert!(
            worst_sigmoid < 1.5e-7,
            "sigmoid absolute error {worst_sigmoid}"
        );
        assert!(worst_tanh < 2.5e-7, "tanh absolute error {worst_tanh}");
    }

    #[test]
    fn f32_activations_saturate_without_overflow() {
        for x in [-1e30_f32, -500.0, -88.5, 88.5, 500.0, 1e30] {
            let s = x.sigmoid();
            let t = x.tanh_act();
            assert!(
                s.is_finite() && (0.0..=1.0).contains(&s),
                "sigmoid({x}) = {s}"
            );
            assert!(
                t.is_finite() && (-1.0..=1.0).contains(&t),
                "tanh({x}) = {t}"
            );
            assert_eq!(t, x.signum());
        }
        assert_eq!(0.0_f32.tanh_act(), 0.0);
        assert_eq!(0.0_f32.sigmoid(), 0.5);
    }
}
