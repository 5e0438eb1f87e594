//! Square root and reciprocal square root for wide formats: a polynomial seed of the root, then
//! an exact integer check that fixes the last bit and the rounding (correctly rounded, bit-exact
//! with `Float::sqrt` and `Float::rsqrt`). The lookup constructions of `super::table` serve the
//! narrow formats.
//!
//! # Construction
//!
//! For `x = m 2^e > 0` let `par` be the bit that makes `e - (p - 1 + par)` even (`par` is the
//! exponent's low bit or its complement: `e_min` is even), `M = m 2^par` and
//! `N = M 2^(p-1)` in `[2^(2p-2), 2^(2p))`, so that `sqrt(N)` lies in `[2^(p-1), 2^p)`.
//!
//! 1. **Seed.** `v = N / 2^(2p-2)` in `[1, 4)`; a piecewise polynomial of `v^(1/2)` (sqrt) or
//!    `v^(-1/2)` (rsqrt) indexed by `par` and the top bits of `m` (`approx::choose_seed`) gives
//!    `c = floor(S / 2^g)` with `|c + 1/2 - T| < 1/2 + delta`, `delta` below 1.4 (sqrt) or 0.45
//!    (rsqrt, whose checks are larger) checked at build time, where `T = sqrt(N)` (sqrt) or `T = 2^(2p-1) / sqrt(N)` (rsqrt) is the exact scaled
//!    result in `[2^(p-1), 2^p]`.
//! 2. **Exact check.** The rounded result `R = round(T)` satisfies `R >= c + j` exactly when
//!    `T > c + j - 1/2` (T is never a tie: a tie would make `N` an odd square over 4, resp.
//!    `N (2c + 2j - 1)^2` a power of two), i.e.
//!    - sqrt: `4N - (2c + 2j - 1)^2 >= 1`, a form over `m`, `m AND par` and the products
//!      `c_i AND c_k`;
//!    - rsqrt: `2^(3p+1) - M (2c + 2j - 1)^2 >= 1`, a form over the products `M_a AND c_i` and
//!      `M_a AND c_i AND c_k`, whose weights exceed one gate's bound: `approx::ge_big_weights` splits it
//!      (one bank on the low part, one gate on the high part).
//!
//!    `R = c - mm + sum_j [R >= c + j]` for `j` in `[1 - mm, 1 + mm]`, `mm = floor(delta + 1/2)`
//!    (three checks for sqrt, one for rsqrt).
//! 3. **Carry.** `R = 2^p` (significand `2^(p-1)`, exponent one up) is a comparison of `N` with a
//!    constant, independent of the seed.
//! 4. **Exponent.** sqrt: `(E - par - (p - 1) + 2^(q-1)) / 2 + carry`; rsqrt:
//!    `(-E + par + 1 - 3p + 3 2^(q-1)) / 2 + carry` (E the biased exponent); each bit a staircase
//!    on a small form; flush (and for rsqrt saturation) are single gates on the same form, folded
//!    into the output gates together with the `x <= 0` cases (sqrt: 0; rsqrt: the largest finite
//!    value).
//!
//! Depth: sqrt 9 (seed table 2, products 3, seed bits 5, `c_i c_k` 6, check 7, outputs 9);
//! rsqrt 10 (the wide check adds one level). Size: about `2^ti` table entries per seed and
//! `p^2` (sqrt) or `p^3 / 2` (rsqrt) check products.

use crate::circuit::{Builder, Lit};
use crate::gadgets::error::{GadgetError, Result};

use super::approx;
use super::mul::stair_fn;
use super::round::{gate_if, Cond};
use super::word::FloatWord;

/// Guard bits of the seed's grid below the result's unit that are tried.
const ROOT_GUARDS: std::ops::RangeInclusive<u32> = 3..=12;
/// sqrt's seed error target, in units of the result (checked at build time): three checks.
const SQRT_DELTA: f64 = 1.4;
/// rsqrt's target: one check (each check of rsqrt reads about `p^3 / 2` products).
const RSQRT_DELTA: f64 = 0.45;

/// The seed of `v^(alpha2/2)` read as `c = floor(S / 2^g)` (`p + 1` bits), with its `delta`
/// (module docs, step 1): `(c bits, delta)`.
fn root_seed(
    b: &mut Builder,
    op: &'static str,
    x: &FloatWord,
    par: Lit,
    alpha2: i32,
) -> Result<(Vec<Lit>, f64)> {
    let p = x.fmt.p();
    let m = x.sig();
    let frac = p - 1;
    // sqrt: S ~ sqrt(v) 2^(p-1+g); rsqrt: S ~ v^(-1/2) 2^(p+g).
    let scale = if alpha2 > 0 { p - 1 } else { p };
    let delta = if alpha2 > 0 { SQRT_DELTA } else { RSQRT_DELTA };
    let chosen = approx::choose_seed(alpha2, 2, frac, scale, delta, ROOT_GUARDS, p + 1)
        .ok_or_else(|| GadgetError::Unsupported {
            op,
            limit: format!("no root seed meets the error target at p = {p}"),
        })?;
    let guard = chosen.guard;
    let ti = chosen.domain.ti as usize;
    let low = &m[..frac as usize - ti];
    let mut index: Vec<Lit> = m[frac as usize - ti..frac as usize].to_vec();
    index.push(par);
    let s = approx::poly_form(b, op, &chosen.seed.poly, &index, low)?;
    let c = approx::form_bits(b, op, &s, guard, guard + p + 1)?;
    Ok((c, chosen.seed.bound / (guard as f64).exp2()))
}

/// The parity bit `par` (module docs) of `x`'s exponent.
fn parity(x: &FloatWord) -> Lit {
    let e0 = x.exp()[0];
    if (x.fmt.p() - 1) % 2 == 0 {
        e0
    } else {
        !e0
    }
}

/// `round(sqrt(x))` for wide formats (module docs); `sqrt` of a negative value is 0.
/// Bit-exact with `Float::sqrt` (correctly rounded). Depth 9.
///
/// Errors: `Unsupported` if no seed meets the error target (not the case for any supported
/// format) or a weight bound is exceeded.
pub fn sqrt_checked(b: &mut Builder, x: &FloatWord) -> Result<FloatWord> {
    const OP: &str = "float::sqrt";
    let fmt = x.fmt;
    let (p, q) = (fmt.p(), fmt.q());
    let m = x.sig();
    let (s, nz) = (x.sign(), x.nonzero());
    let par = parity(x);
    let (c, delta) = root_seed(b, OP, x, par, 1)?;
    let mm = (delta + 0.5).floor() as i64;
    // 4N = m 2^(p+1) (1 + par).
    let mut four_n: Vec<(Lit, i128)> = Vec::with_capacity(2 * p as usize);
    for (i, &mi) in m.iter().enumerate() {
        four_n.push((mi, 1i128 << (p as usize + 1 + i)));
        let mp = b.and2(mi, par)?;
        four_n.push((mp, 1i128 << (p as usize + 1 + i)));
    }
    // -4 c^2 as products.
    let mut csq: Vec<(Lit, i128)> = Vec::new();
    for i in 0..c.len() {
        csq.push((c[i], -(4i128 << (2 * i))));
        for k in i + 1..c.len() {
            let g = b.and2(c[i], c[k])?;
            csq.push((g, -(1i128 << (i + k + 3))));
        }
    }
    let mut passes = Vec::new();
    for j in 1 - mm..=1 + mm {
        let d = 2 * j as i128 - 1;
        let mut t = four_n.clone();
        t.extend_from_slice(&csq);
        t.extend(c.iter().enumerate().map(|(i, &l)| (l, -(4 * d) << i)));
        passes.push(approx::ge_big_weights(b, OP, &t, 1 + d * d)?);
    }
    let k2 = (1i128 << (p + 1)) - 1;
    let carry = approx::ge_big_weights(b, OP, &four_n, k2 * k2)?;
    // Exponent (E - par - (p - 1) + 2^(q-1)) / 2 + carry = (V + c0) / 2.
    let c0 = (1i64 << (q - 1)) - (p as i64 - 1);
    let mut v_terms: Vec<(Lit, i64)> = x
        .exp()
        .iter()
        .enumerate()
        .map(|(i, &l)| (l, 1i64 << i))
        .collect();
    v_terms.push((par, -1));
    v_terms.push((carry, 2));
    // Flush: (V + c0) / 2 < 0; saturation is impossible (checked here).
    let vmax = (1i64 << q) - 1 + 2 + c0;
    if vmax / 2 >= 1i64 << q {
        return Err(GadgetError::Unsupported {
            op: OP,
            limit: format!("sqrt exponent range of F({p},{q})"),
        });
    }
    let neg: Vec<(Lit, i64)> = v_terms.iter().map(|&(l, w)| (l, -w)).collect();
    let fl = b.threshold(&neg, c0 + 1)?;
    let extra = [(nz, 2), (s, -2), (fl, -2)];
    let need = 2;
    let mut word = vec![Lit::FALSE; fmt.width() as usize];
    for k in 0..p - 1 {
        word[k as usize] = approx::offset_bit(b, &c, -mm, &passes, k, &extra, need)?;
    }
    word[p as usize - 1] = b.threshold(&[(nz, 1), (s, -1), (fl, -1)], 1)?;
    for j in 0..q {
        let modulus = 1i128 << (j + 2);
        let trunc = truncate(&v_terms, modulus);
        let f = |v: i128| ((v + c0 as i128).rem_euclid(modulus) >> (j + 1)) & 1 == 1;
        word[(p + j) as usize] = stair_fn(b, OP, &trunc, f, &extra, need)?;
    }
    FloatWord::new(fmt, word)
}

/// `round(1 / sqrt(x))` for wide formats (module docs); the largest finite positive value for
/// `x <= 0`. Bit-exact with `Float::rsqrt` (correctly rounded). Depth 10.
///
/// Errors: `Unsupported` if no seed meets the error target (not the case for any supported
/// format) or a weight bound is exceeded.
pub fn rsqrt_checked(b: &mut Builder, x: &FloatWord) -> Result<FloatWord> {
    const OP: &str = "float::rsqrt";
    let fmt = x.fmt;
    let (p, q) = (fmt.p(), fmt.q());
    let m = x.sig();
    let (s, nz) = (x.sign(), x.nonzero());
    let par = parity(x);
    let (c, delta) = root_seed(b, OP, x, par, -1)?;
    let mm = (delta + 0.5).floor() as i64;
    // M = m 2^par, p + 1 bits.
    let mut mw = Vec::with_capacity(p as usize + 1);
    for a in 0..=p as usize {
        let keep = m.get(a).copied().unwrap_or(Lit::FALSE);
        let shifted = if a >= 1 { m[a - 1] } else { Lit::FALSE };
        mw.push(b.mux(par, shifted, keep)?);
    }
    // Products M_a c_i (weight 2^(a+i)) and M_a c_i c_k (i < k).
    let mut mc: Vec<Vec<Lit>> = Vec::with_capacity(mw.len());
    for &ma in &mw {
        let mut row = Vec::with_capacity(c.len());
        for &ci in &c {
            row.push(b.and2(ma, ci)?);
        }
        mc.push(row);
    }
    let mut sq: Vec<(Lit, i128)> = Vec::new(); // -M 4 c^2
    for (a, &ma) in mw.iter().enumerate() {
        for i in 0..c.len() {
            sq.push((mc[a][i], -(4i128 << (a + 2 * i))));
            for k in i + 1..c.len() {
                let g = b.and(&[ma, c[i], c[k]])?;
                sq.push((g, -(1i128 << (a + i + k + 3))));
            }
        }
    }
    let lim = 1i128 << (3 * p + 1);
    let mut passes = Vec::new();
    for j in 1 - mm..=1 + mm {
        let d = 2 * j as i128 - 1;
        let mut t = sq.clone();
        for (a, row) in mc.iter().enumerate() {
            for (i, &l) in row.iter().enumerate() {
                t.push((l, -(4 * d) << (a + i)));
            }
        }
        t.extend(mw.iter().enumerate().map(|(a, &l)| (l, -(d * d) << a)));
        passes.push(approx::ge_big_weights(b, OP, &t, 1 - lim)?);
    }
    // Carry: M (2^(p+1) - 1)^2 <= 2^(3p+1), M = m (1 + par).
    let k2 = (1i128 << (p + 1)) - 1;
    let mut ct: Vec<(Lit, i128)> = Vec::new();
    for (i, &mi) in m.iter().enumerate() {
        ct.push((mi, -(k2 * k2) << i));
        let mp = b.and2(mi, par)?;
        ct.push((mp, -(k2 * k2) << i));
    }
    let carry = approx::ge_big_weights(b, OP, &ct, -lim)?;
    // Exponent (-E + par + 2 carry + c1) / 2.
    let c1 = 1 - 3 * p as i64 + 3 * (1i64 << (q - 1));
    let mut v_terms: Vec<(Lit, i64)> = x
        .exp()
        .iter()
        .enumerate()
        .map(|(i, &l)| (l, -(1i64 << i)))
        .collect();
    v_terms.push((par, 1));
    v_terms.push((carry, 2));
    let ok = [Cond::lit(nz), Cond::not(s)];
    let ok_refs: Vec<&Cond> = ok.iter().collect();
    // ov: (V + c1) / 2 >= 2^q; fl: (V + c1) / 2 < 0, both only for x > 0.
    let ov = gate_if(b, &v_terms, (2i64 << q) - c1, &ok_refs)?;
    let neg: Vec<(Lit, i64)> = v_terms.iter().map(|&(l, w)| (l, -w)).collect();
    let fl = gate_if(b, &neg, c1 + 1, &ok_refs)?;
    let extra = [(ov, 2), (!nz, 2), (s, 2), (fl, -2)];
    let mut word = vec![Lit::FALSE; fmt.width() as usize];
    for k in 0..p - 1 {
        word[k as usize] = approx::offset_bit(b, &c, -mm, &passes, k, &extra, 0)?;
    }
    word[p as usize - 1] = !fl;
    for j in 0..q {
        let modulus = 1i128 << (j + 2);
        let trunc = truncate(&v_terms, modulus);
        let f = |v: i128| ((v + c1 as i128).rem_euclid(modulus) >> (j + 1)) & 1 == 1;
        word[(p + j) as usize] = stair_fn(b, OP, &trunc, f, &extra, 0)?;
    }
    FloatWord::new(fmt, word)
}

/// The form with every weight reduced modulo `modulus` (zero weights dropped).
fn truncate(terms: &[(Lit, i64)], modulus: i128) -> Vec<(Lit, i64)> {
    terms
        .iter()
        .filter_map(|&(l, w)| {
            let r = (w as i128).rem_euclid(modulus);
            (r != 0).then_some((l, r as i64))
        })
        .collect()
}
