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
    /// Rounds an `f64` to this type (used when loading weights stored in either precision).
    fn from_f64(value: f64) -> Self;

    /// Widens to `f64` for accumulation and output.
    fn as_f64(self) -> f64;

    /// The logistic function 1 / (1 + e^-x).
    fn sigmoid(self) -> Self;

    /// The hyperbolic tangent.
    fn tanh_act(self) -> Self;

    /// σ(a) and σ(b); types may share work between the two (one division instead of two).
    #[inline(always)]
    fn sigmoid_pair(a: Self, b: Self) -> (Self, Self) {
        (a.sigmoid(), b.sigmoid())
    }

    /// tanh(a) and tanh(b); types may share work between the two.
    #[inline(always)]
    fn tanh_pair(a: Self, b: Self) -> (Self, Self) {
        (a.tanh_act(), b.tanh_act())
    }

    /// e^x for |x| ≤ 2 · [`Self::EXP_SQUARE_LIMIT`] (beyond, the result may be wrong, never unsafe).
    fn exp_bounded(self) -> Self;

    /// A bound on |x| such that (1 + e^x)² is finite: the arguments of [`logistic_gap`] are clamped
    /// to it.
    const EXP_SQUARE_LIMIT: Self;

    /// A bound on |s| for [`logistic_gap`]'s anchor e^-s; the clamp of the other argument then
    /// changes the result by at most e^-(EXP_SQUARE_LIMIT − EXP_SUM_LIMIT): 3e-10 in f32, 2e-22 in
    /// f64.
    const EXP_SUM_LIMIT: Self;
}

/// σ(a) − σ(s − a) from u = e^-a and anchor = e^-s, with one exponential instead of two:
/// σ(s − a) = 1 / (1 + e^-s / e^-a) = u / (u + anchor), so the difference is
/// (anchor − u²) / ((1 + u)(u + anchor)), the denominator being u(u + 1 + anchor) + anchor. Exact
/// for any a whose clamp to ±EXP_SQUARE_LIMIT is a no-op; beyond it both logistic values are
/// saturated and the error stays below the bound given at [`Real::EXP_SUM_LIMIT`], provided |s|
/// is within that limit.
#[inline(always)]
pub fn logistic_gap<R: Real>(u: R, anchor: R) -> R {
    u.mul_add(-u, anchor) / u.mul_add(u + R::one() + anchor, anchor)
}

impl Real for f64 {
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

    #[inline(always)]
    fn exp_bounded(self) -> Self {
        self.exp()
    }

    const EXP_SQUARE_LIMIT: f64 = 350.0;
    const EXP_SUM_LIMIT: f64 = 300.0;
}

impl Real for f32 {
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
        let e = exp_f32_in_range((-2.0 * self.abs()).max(-87.0));
        ((1.0 - e) / (1.0 + e)).copysign(self)
    }

    /// One division for both: q = 1 / ((1 + e^-a)(1 + e^-b)), σ(a) = (1 + e^-b) q. Arguments are
    /// clamped to ±40 so the product cannot overflow; σ(-40) ≈ 4e-18 is within 5e-18 of the true value
    /// below it, and σ(40) rounds to 1 in f32. `max` and `min` compile to one instruction each, where
    /// `clamp`, which keeps NaN, adds a compare and a blend (weights are checked finite on loading).
    #[allow(clippy::manual_clamp)]
    #[inline(always)]
    fn sigmoid_pair(a: f32, b: f32) -> (f32, f32) {
        let one_plus_ea = 1.0 + exp_f32_in_range((-a).max(-40.0).min(40.0));
        let one_plus_eb = 1.0 + exp_f32_in_range((-b).max(-40.0).min(40.0));
        let q = 1.0 / (one_plus_ea * one_plus_eb);
        (one_plus_eb * q, one_plus_ea * q)
    }

    /// One division for both, with e = exp(-2|x|) in (0, 1]: tanh(|a|) = (1 - e_a)(1 + e_b) q.
    #[inline(always)]
    fn tanh_pair(a: f32, b: f32) -> (f32, f32) {
        let ea = exp_f32_in_range((-2.0 * a.abs()).max(-87.0));
        let eb = exp_f32_in_range((-2.0 * b.abs()).max(-87.0));
        let q = 1.0 / ((1.0 + ea) * (1.0 + eb));
        (
            ((1.0 - ea) * (1.0 + eb) * q).copysign(a),
            ((1.0 - eb) * (1.0 + ea) * q).copysign(b),
        )
    }

    #[inline(always)]
    fn exp_bounded(self) -> Self {
        exp_f32_in_range(self)
    }

    const EXP_SQUARE_LIMIT: f32 = 42.0;
    const EXP_SUM_LIMIT: f32 = 20.0;
}

/// Branch-free `exp` for `f32` (Cephes `expf` reduction and polynomial, relative error about 2e-7).
///
/// The argument is clamped to the range where the result is a normal float, so the function never
/// produces infinities or denormals; callers that already bound their arguments use
/// `exp_f32_in_range`.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    exp_f32_in_range(x.clamp(-87.0, 88.0))
}

/// [`exp_f32`] for arguments already in [-87, 88] (outside it the result is wrong, not unsafe).
///
/// e^x = 2^n · e^r with n = round(x / ln 2) and |r| ≤ ln 2 / 2 (Cody-Waite reduction), e^r from a
/// degree-6 minimax polynomial (relative error 3e-9 before rounding, so the result is within about
/// 2 ulp). Fused multiply-adds throughout: one instruction each in code compiled for FMA (see
/// [`simd_dispatch`]), a correctly rounded `fmaf` call elsewhere, so every path gives the same bits.
/// Rounding to an integer uses a shifter constant instead of a float-to-int cast, which compilers
/// do not vectorise, and the same constant leaves n + 127, the biased exponent of 2^n, in the low
/// bits: one shift turns it into 2^n. The caller's loop stays SIMD throughout.
#[inline(always)]
fn exp_f32_in_range(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    const LN2_HIGH: f32 = 0.693_359_4;
    const LN2_LOW: f32 = -2.121_944_4e-4;
    // 1.5·2²³ + 127: adding it rounds x·log2(e) to the nearest integer n and leaves 0x4B40_0000 +
    // 127 + n as the float's bits (every float in [2²³, 2²⁴) is an integer).
    const SHIFTER: f32 = 12_583_039.0;
    let shifted = x.mul_add(LOG2_E, SHIFTER);
    let n = shifted - SHIFTER;
    let r = n.mul_add(-LN2_LOW, n.mul_add(-LN2_HIGH, x));
    // Minimax coefficients for e^r on [-ln 2 / 2, ln 2 / 2] with the first two fixed at 1.
    let mut p = 1.381_461_3e-3_f32;
    p = p.mul_add(r, 8.368_71e-3);
    p = p.mul_add(r, 4.166_839e-2);
    p = p.mul_add(r, 1.666_652_1e-1);
    p = p.mul_add(r, 4.999_999_4e-1);
    p = p.mul_add(r, 1.0);
    p = p.mul_add(r, 1.0);
    // The shifter's own bits are all above bit 22, so shifting left by 23 drops them and moves
    // 127 + n (in [1, 254] for x in [-87, 88]) into the exponent field: the bits of 2^n.
    let scale = f32::from_bits(shifted.to_bits() << 23);
    p * scale
}

/// Runs `body` through a copy of it compiled for AVX-512 or for AVX2 + FMA when the CPU has them,
/// so loops over the activations run 16 or 8 lanes wide with fused multiply-adds; the results are
/// the same bits on every path.
///
/// `simd_dispatch!(fn name<generics>(args) -> ret { body })` defines `name` and its copies.
macro_rules! simd_dispatch {
    (
        $(#[$meta:meta])*
        $vis:vis fn $name:ident<$($g:ident: $bound:path),*>($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block
    ) => {
        $(#[$meta])*
        $vis fn $name<$($g: $bound),*>($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn portable<$($g: $bound),*>($($arg: $ty),*) $(-> $ret)? $body

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,fma")]
            fn avx512<$($g: $bound),*>($($arg: $ty),*) $(-> $ret)? {
                portable($($arg),*)
            }

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            fn avx2<$($g: $bound),*>($($arg: $ty),*) $(-> $ret)? {
                portable($($arg),*)
            }

            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU supports AVX-512F and FMA, checked just above.
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU supports AVX2 and FMA, checked just above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            portable($($arg),*)
        }
    };
}
pub(crate) use simd_dispatch;

/// Partial sums of [`dot_f64`]: two AVX-512 vectors of f64, enough to hide the addition latency.
const DOT_PARTIALS: usize = 16;

simd_dispatch! {
    /// Σ a_j b_j accumulated in f64 over interleaved partial sums, which lets the compiler
    /// vectorise it (a single running sum would fix the order of every addition).
    pub fn dot_f64<R: Real>(a: &[R], b: &[R]) -> f64 {
        let mut partial = [0.0_f64; DOT_PARTIALS];
        let (a_blocks, b_blocks) = (a.chunks_exact(DOT_PARTIALS), b.chunks_exact(DOT_PARTIALS));
        let tail: f64 = a_blocks
            .remainder()
            .iter()
            .zip(b_blocks.remainder())
            .map(|(&x, &y)| x.as_f64() * y.as_f64())
            .sum();
        for (x, y) in a_blocks.zip(b_blocks) {
            for k in 0..DOT_PARTIALS {
                partial[k] += x[k].as_f64() * y[k].as_f64();
            }
        }
        let mut width = DOT_PARTIALS;
        while width > 1 {
            width /= 2;
            for k in 0..width {
                partial[k] += partial[k + width];
            }
        }
        partial[0] + tail
    }
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

    /// The paired forms share one division; each value stays within the single forms' accuracy.
    #[test]
    fn f32_activation_pairs_match_f64_reference() {
        let mut worst_sigmoid = 0.0_f64;
        let mut worst_tanh = 0.0_f64;
        for k in -3000..=3000 {
            let a = k as f32 * 0.013;
            let b = (k as f32 * 0.71).sin() * 60.0;
            let (sa, sb) = f32::sigmoid_pair(a, b);
            let (ta, tb) = f32::tanh_pair(a, b);
            for (got, x) in [(sa, a), (sb, b)] {
                worst_sigmoid = worst_sigmoid.max((f64::from(got) - f64::from(x).sigmoid()).abs());
            }
            for (got, x) in [(ta, a), (tb, b)] {
                worst_tanh = worst_tanh.max((f64::from(got) - f64::from(x).tanh()).abs());
            }
        }
        assert!(
            worst_sigmoid < 1.5e-7,
            "sigmoid pair absolute error {worst_sigmoid}"
        );
        assert!(worst_tanh < 2.5e-7, "tanh pair absolute error {worst_tanh}");
    }

    /// Plain and transposed operands against a naive product, with and without accumulation.
    #[test]
    fn matmul_matches_a_naive_product() {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f64> = (0..m * k).map(|i| (i as f64 * 0.37).sin()).collect();
        // b is used as (k × n) through two layouts holding the same values.
        let b_at = |l: usize, j: usize| ((l * n + j) as f64 * 0.11).cos();
        let plain: Vec<f64> = (0..k * n).map(|i| b_at(i / n, i % n)).collect();
        let transposed: Vec<f64> = (0..n * k).map(|i| b_at(i % k, i / k)).collect();
        let want = |i: usize, j: usize| (0..k).map(|l| a[i * k + l] * b_at(l, j)).sum::<f64>();
        for b in [Mat::new(&plain, k, n), Mat::new(&transposed, n, k).t()] {
            let mut out = vec![f64::NAN; m * n];
            matmul(Mat::new(&a, m, k), b, &mut out, false);
            let mut twice = out.clone();
            matmul(Mat::new(&a, m, k), b, &mut twice, true);
            for i in 0..m {
                for j in 0..n {
                    assert!((out[i * n + j] - want(i, j)).abs() < 1e-12);
                    assert!((twice[i * n + j] - 2.0 * want(i, j)).abs() < 1e-12);
                }
            }
        }
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

/// SplitMix64: a tiny, well-mixed generator, enough for reproducible initialisation and shuffling.
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal by Box-Muller.
    pub fn normal(&mut self) -> f64 {
        let u = 1.0 - self.unit();
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

impl SplitMix64 {
    /// Uniform in `0..n` (n > 0), by rejection so that every value is equally likely.
    pub fn below(&mut self, n: usize) -> usize {
        let n = n as u64;
        let zone = u64::MAX - u64::MAX % n;
        loop {
            let x = self.next_u64();
            if x < zone {
                return (x % n) as usize;
            }
        }
    }

    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// A row-major matrix seen as itself or as its transpose, for [`matmul`].
#[derive(Debug, Clone, Copy)]
pub struct Mat<'a, R> {
    data: &'a [R],
    /// Shape as stored.
    rows: usize,
    cols: usize,
    transposed: bool,
}

impl<'a, R: Real> Mat<'a, R> {
    /// `data` holds `rows × cols` values row after row.
    pub fn new(data: &'a [R], rows: usize, cols: usize) -> Self {
        assert!(data.len() >= rows * cols, "matrix data too short");
        Self {
            data,
            rows,
            cols,
            transposed: false,
        }
    }

    /// The transpose, without copying.
    pub fn t(self) -> Self {
        Self {
            transposed: !self.transposed,
            ..self
        }
    }

    /// Logical (rows, cols).
    fn shape(&self) -> (usize, usize) {
        if self.transposed {
            (self.cols, self.rows)
        } else {
            (self.rows, self.cols)
        }
    }

    /// Logical (row stride, column stride).
    fn strides(&self) -> (isize, isize) {
        let stride = self.cols as isize;
        if self.transposed {
            (1, stride)
        } else {
            (stride, 1)
        }
    }
}

/// `out (m × n, row-major) = a · b`, or `out += a · b` with `accumulate`, on the calling thread.
///
/// Uses the `gemm` crate's kernels (AVX-512 where available, measured about twice ndarray's
/// matrixmultiply at the CD engine's shapes); parallelism comes from the callers, never from
/// inside, so results do not depend on the number of threads. The backend reads a row-major `b`
/// with vector loads and gathers a transposed one element by element on every call, so weights
/// used in many products are kept in the row-major layout.
pub fn matmul<R: Real>(a: Mat<'_, R>, b: Mat<'_, R>, out: &mut [R], accumulate: bool) {
    let (m, k) = a.shape();
    let (k_b, n) = b.shape();
    assert!(k == k_b && out.len() >= m * n, "matmul operand sizes");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            out[..m * n].fill(R::zero());
        }
        return;
    }
    let (a_rs, a_cs) = a.strides();
    let (b_rs, b_cs) = b.strides();
    // SAFETY: `Mat::new` checked that each operand's storage holds its stored shape, the strides
    // address exactly that storage (transposed or not), `out` holds m × n and, being a distinct
    // `&mut`, aliases neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a_cs,
            a_rs,
            b.data.as_ptr(),
            b_cs,
            b_rs,
            R::one(),
            R::one(),
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}
