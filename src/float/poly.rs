//! Piecewise polynomials evaluated on bits with one truncation rule: the arithmetic that the
//! shared exp algorithm (`exp_poly`) and the approximation stages of the div, sqrt and rsqrt
//! circuits are made of. Pure integer arithmetic; nothing here knows about circuits, but the
//! definition is stated in terms of bit products so that a circuit can reproduce it exactly.
//!
//! # Definition
//!
//! A [`PiecewisePoly`] has coefficient tables `C_k[h]` (degree `k = 0..=d`, index `h`), stored
//! as integers in two's complement of a common width `w_k` per degree (plain binary when no
//! entry is negative), and a shift `s_k` per degree. For an index `h` and a low word `l` of
//! `low_bits` bits its value is the integer
//!
//! ```text
//! S(h, l) = sum_k sum_{a < w_k} c_{k,a} * sum_{(i_1..i_k) : a + i_1 + ... + i_k >= s_k}
//!               l_{i_1} ... l_{i_k} * 2^(a + i_1 + ... + i_k - s_k)
//! ```
//!
//! where `c_{k,a}` is bit `a` of `C_k[h]` weighted `+1` (or `-1` for the sign bit of a signed
//! table) and the inner sum runs over ordered k-tuples of bit positions of `l`. Without the
//! condition this is exactly `sum_k C_k[h] * l^k * 2^(-s_k)`; the condition drops every bit
//! product whose weight would be below one unit (a truncated multiplier), so that every kept
//! weight is an integer. Degree 0 has `s_0 = 0` (every bit kept).
//!
//! A circuit computes `S` as one linear form: every kept bit product is a monomial (an AND of a
//! table bit and the distinct bits of `l` in the tuple) with the summed weight of its ordered
//! tuples ([`PiecewisePoly::monomials`]); [`PiecewisePoly::eval`] computes the same integer
//! directly.

/// A piecewise polynomial on an integer grid (see the module docs).
///
/// Invariant: `coeffs[k].len()` is the same for every degree (the number of pieces), every
/// entry fits `widths[k]` bits (two's complement when `signed[k]`), `shifts[0] == 0`, and
/// `widths[k] <= 100`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PiecewisePoly {
    low_bits: u32,
    coeffs: Vec<Vec<i128>>,
    shifts: Vec<i32>,
    widths: Vec<u32>,
    signed: Vec<bool>,
}

/// Bits of the two's complement (or plain binary) width holding every value of `v`.
fn width_of(v: &[i128]) -> (u32, bool) {
    let signed = v.iter().any(|&c| c < 0);
    let w = v
        .iter()
        .map(|&c| {
            if c >= 0 {
                128 - c.leading_zeros()
            } else {
                128 - (!c).leading_zeros()
            }
        })
        .max()
        .unwrap_or(0);
    (w + signed as u32, signed)
}

/// `sum` over ordered k-tuples of set bits of `l` with `i_1 + ... + i_k >= m` of
/// `2^(i_1 + ... + i_k - m)`; every term is an integer (`m` may be negative: the tuples are
/// then all kept and scaled up).
fn tuple_sum(l: u128, k: u32, m: i64) -> i128 {
    match k {
        0 => {
            if m <= 0 {
                1i128 << (-m)
            } else {
                0
            }
        }
        1 => {
            if m >= 0 {
                if m >= 128 {
                    0
                } else {
                    (l >> m) as i128
                }
            } else {
                (l as i128) << (-m)
            }
        }
        _ => {
            let mut acc = 0i128;
            let mut bits = l;
            while bits != 0 {
                let i = bits.trailing_zeros() as i64;
                bits &= bits - 1;
                acc += tuple_sum(l, k - 1, m - i);
            }
            acc
        }
    }
}

impl PiecewisePoly {
    /// A piecewise polynomial with coefficient tables `coeffs[k][h]`, shifts `shifts[k]` and a
    /// low word of `low_bits` bits. `None` when the tables disagree in length, a shift of degree
    /// 0 is not 0, a width exceeds 100 bits, or `low_bits > 64`.
    pub fn new(low_bits: u32, coeffs: Vec<Vec<i128>>, shifts: Vec<i32>) -> Option<PiecewisePoly> {
        let pieces = coeffs.first()?.len();
        if coeffs.len() != shifts.len()
            || shifts[0] != 0
            || low_bits > 64
            || coeffs.iter().any(|c| c.len() != pieces)
        {
            return None;
        }
        let (widths, signed): (Vec<u32>, Vec<bool>) = coeffs.iter().map(|c| width_of(c)).unzip();
        if widths.iter().any(|&w| w > 100) {
            return None;
        }
        Some(PiecewisePoly {
            low_bits,
            coeffs,
            shifts,
            widths,
            signed,
        })
    }

    /// Number of pieces (index values `h` in `[0, pieces)`).
    pub fn pieces(&self) -> usize {
        self.coeffs[0].len()
    }

    /// The degree d.
    pub fn degree(&self) -> u32 {
        self.coeffs.len() as u32 - 1
    }

    /// Bits of the low word `l`.
    pub fn low_bits(&self) -> u32 {
        self.low_bits
    }

    /// `C_k[h]`.
    pub fn coeff(&self, k: u32, h: usize) -> i128 {
        self.coeffs[k as usize][h]
    }

    /// The width `w_k` of the degree-k table.
    pub fn width(&self, k: u32) -> u32 {
        self.widths[k as usize]
    }

    /// The shift `s_k`.
    pub fn shift(&self, k: u32) -> i32 {
        self.shifts[k as usize]
    }

    /// Bit `a` of `C_k[h]` in its table's encoding (two's complement of width `w_k` when
    /// signed).
    pub fn table_bit(&self, k: u32, h: usize, a: u32) -> bool {
        let c = self.coeffs[k as usize][h];
        (c >> a.min(127)) & 1 == 1
    }

    /// The weight of table bit `a` of degree k: `-1` for the sign bit of a signed table, else 1.
    pub fn bit_sign(&self, k: u32, a: u32) -> i128 {
        if self.signed[k as usize] && a + 1 == self.widths[k as usize] {
            -1
        } else {
            1
        }
    }

    /// `S(h, l)` (module docs). `l` must be below `2^low_bits` and `h < pieces()`.
    pub fn eval(&self, h: usize, l: u64) -> i128 {
        let l = l as u128;
        let mut acc = 0i128;
        for k in 0..=self.degree() {
            let s = self.shift(k) as i64;
            for a in 0..self.width(k) {
                if self.table_bit(k, h, a) {
                    acc += self.bit_sign(k, a) * tuple_sum(l, k, s - a as i64);
                }
            }
        }
        acc
    }

    /// The kept bit products of table bit `a` of degree `k >= 1`, merged by the set of distinct
    /// positions of `l` they read: `(positions, weight)` with the weight the sum of
    /// `2^(a + sum i - s_k)` over the kept ordered tuples with that set (the table bit's sign
    /// not applied). Degree 0 is the single product `([], 2^a)`.
    pub fn monomials(&self, k: u32, a: u32) -> Vec<(Vec<u32>, i128)> {
        let s = self.shift(k) as i64;
        let mut out: Vec<(Vec<u32>, i128)> = Vec::new();
        let mut tuple: Vec<u32> = Vec::with_capacity(k as usize);
        // Enumerate multisets i_1 <= ... <= i_k and count their orderings.
        fn rec(
            lb: u32,
            k: u32,
            start: u32,
            tuple: &mut Vec<u32>,
            a: i64,
            s: i64,
            out: &mut Vec<(Vec<u32>, i128)>,
        ) {
            if tuple.len() as u32 == k {
                let sum: i64 = tuple.iter().map(|&i| i as i64).sum();
                let e = a + sum - s;
                if e < 0 {
                    return;
                }
                // Orderings: k! / prod(multiplicity!).
                let mut count: i128 = (1..=k as i128).product();
                let mut j = 0;
                while j < tuple.len() {
                    let mut r = 1;
                    while j + r < tuple.len() && tuple[j + r] == tuple[j] {
                        r += 1;
                    }
                    count /= (1..=r as i128).product::<i128>();
                    j += r;
                }
                let mut set = tuple.clone();
                set.dedup();
                out.push((set, count << e));
                return;
            }
            // Prune: even the largest remaining positions cannot reach the threshold.
            let left = k as i64 - tuple.len() as i64;
            let sum: i64 = tuple.iter().map(|&i| i as i64).sum();
            if a + sum + left * (lb as i64 - 1) < s {
                return;
            }
            for i in start..lb {
                tuple.push(i);
                rec(lb, k, i, tuple, a, s, out);
                tuple.pop();
            }
        }
        if k == 0 {
            return vec![(Vec::new(), 1i128 << a)];
        }
        rec(self.low_bits, k, 0, &mut tuple, a as i64, s, &mut out);
        out.sort();
        let mut merged: Vec<(Vec<u32>, i128)> = Vec::with_capacity(out.len());
        for (set, w) in out {
            match merged.last_mut() {
                Some(last) if last.0 == set => last.1 += w,
                _ => merged.push((set, w)),
            }
        }
        merged
    }

    /// The smallest position of `l` read by a kept bit product (`low_bits` when none is): the
    /// bits of `l` below it never matter.
    pub fn min_low_bit(&self) -> u32 {
        let lb = self.low_bits as i64;
        let mut lo = lb;
        for k in 1..=self.degree() {
            let amax = self.width(k) as i64 - 1;
            // a + i + (k - 1)(lb - 1) >= s_k for some kept tuple containing position i.
            let i = self.shift(k) as i64 - amax - (k as i64 - 1) * (lb - 1);
            lo = lo.min(i.max(0));
        }
        lo.clamp(0, lb) as u32
    }

    /// An upper bound on `|sum_k C_k[h] l^k 2^(-s_k) - S(h, l)|` over all `h` and `l`: the total
    /// weight of the dropped bit products, every table bit and every bit of `l` taken as set.
    pub fn truncation_bound(&self) -> f64 {
        let lb = self.low_bits as i64;
        let mut total = 0.0f64;
        for k in 1..=self.degree() {
            let s = self.shift(k) as i64;
            // Number of ordered k-tuples of positions in [0, lb) per sum: a convolution.
            let mut ways: Vec<f64> = vec![1.0];
            for _ in 0..k {
                let mut next = vec![0.0; ways.len() + lb as usize];
                for (sum, &w) in ways.iter().enumerate() {
                    for i in 0..lb as usize {
                        next[sum + i] += w;
                    }
                }
                ways = next;
            }
            for a in 0..self.width(k) as i64 {
                for (sum, &w) in ways.iter().enumerate() {
                    let e = a + sum as i64 - s;
                    if e < 0 {
                        total += w * (e as f64).exp2();
                    }
                }
            }
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `eval` equals the sum of the monomials whose positions are all set, for every input of a
    /// small polynomial with signed tables and several shifts.
    #[test]
    fn eval_matches_monomials() {
        let coeffs = vec![
            vec![1000, 1200, 1400, 1900],
            vec![-300, -250, 17, 40],
            vec![31, 7, -5, 12],
        ];
        for shifts in [vec![0, 2, 5], vec![0, 0, 3], vec![0, 4, 9], vec![0, -1, 2]] {
            let poly = PiecewisePoly::new(6, coeffs.clone(), shifts.clone()).unwrap();
            for h in 0..4 {
                for l in 0..64u64 {
                    let mut want = 0i128;
                    for k in 0..=poly.degree() {
                        for a in 0..poly.width(k) {
                            if !poly.table_bit(k, h, a) {
                                continue;
                            }
                            for (set, w) in poly.monomials(k, a) {
                                if set.iter().all(|&i| (l >> i) & 1 == 1) {
                                    want += poly.bit_sign(k, a) * w;
                                }
                            }
                        }
                    }
                    assert_eq!(poly.eval(h, l), want, "h={h} l={l} shifts={shifts:?}");
                }
            }
        }
    }

    /// With nothing dropped (all shifts <= 0) `eval` is the exact polynomial; with drops the
    /// difference stays within `truncation_bound`.
    #[test]
    fn exact_and_truncation_bound() {
        let coeffs = vec![
            vec![5000, -7000],
            vec![-300, 250],
            vec![31, -17],
            vec![3, 9],
        ];
        let exact = |h: usize, l: u64, s: &[i32]| -> f64 {
            (0..4)
                .map(|k| coeffs[k][h] as f64 * (l as f64).powi(k as i32) * (-s[k] as f64).exp2())
                .sum()
        };
        let s0 = vec![0, 0, 0, 0];
        let p0 = PiecewisePoly::new(5, coeffs.clone(), s0.clone()).unwrap();
        assert_eq!(p0.truncation_bound(), 0.0);
        for h in 0..2 {
            for l in 0..32 {
                assert_eq!(p0.eval(h, l) as f64, exact(h, l, &s0));
            }
        }
        let s1 = vec![0, 3, 6, 8];
        let p1 = PiecewisePoly::new(5, coeffs.clone(), s1.clone()).unwrap();
        let bound = p1.truncation_bound();
        assert!(bound > 0.0);
        for h in 0..2 {
            for l in 0..32 {
                let d = (p1.eval(h, l) as f64 - exact(h, l, &s1)).abs();
                assert!(d <= bound + 1e-9, "h={h} l={l}: {d} > {bound}");
            }
        }
    }
}
