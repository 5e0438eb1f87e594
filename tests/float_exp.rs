//! exp against an independent high-precision evaluation of e^x.
//!
//! The oracle here shares nothing with the library's algorithm (range reduction by ln 2 and a
//! Taylor series on [0, ln 2)): it halves the argument s times until |x| / 2^s < 2^-8, bounds
//! e^(|x|/2^s) by a Taylor series in fixed point, squares the interval s times in a small
//! interval-float type with P-bit significands (rounding each bound outwards), inverts for
//! negative x, and rounds both ends with its own dyadic rounding; P doubles until both ends
//! round alike (Ziv). The library's result must equal it (correct rounding) and, unless
//! saturated or flushed, be within a relative error of 2^(1-p) of e^x.

use std::cmp::Ordering;
use std::time::Instant;

use num_bigint::BigUint;
use num_integer::Integer;
use num_traits::{One, Zero};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tcvar::float::exp_poly::EXP_CR_MAX_BITS;
use tcvar::float::{Float, Format};

/// (negative, exponent, significand) or None for zero.
type Parts = Option<(bool, i64, u64)>;

fn parts(x: Float) -> Parts {
    (!x.is_zero()).then(|| (x.is_negative(), x.exp() as i64, x.sig()))
}

/// Outcome of the oracle's rounding: the value, and whether it saturated or flushed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rounded {
    parts: Parts,
    clamped: bool,
}

/// Independent rounding of the positive dyadic `a * 2^e` to F(p, q).
fn round_dyadic(p: u32, q: u32, a: &BigUint, e: i64) -> Rounded {
    let (e_min, e_max) = (-(1i64 << (q - 1)), (1i64 << (q - 1)) - 1);
    let b = a.bits() as i64;
    let (mut m, mut ex) = if b <= p as i64 {
        (a << (p as i64 - b) as usize, e - (p as i64 - b))
    } else {
        let sh = (b - p as i64) as usize;
        let m = a >> sh;
        let rem = a - (&m << sh);
        let half = BigUint::one() << (sh - 1);
        let m = if rem > half || (rem == half && m.is_odd()) {
            m + 1u32
        } else {
            m
        };
        (m, e + sh as i64)
    };
    if m.bits() > p as u64 {
        m >>= 1;
        ex += 1;
    }
    if ex > e_max {
        return Rounded {
            parts: Some((false, e_max, (1u64 << p) - 1)),
            clamped: true,
        };
    }
    if ex < e_min {
        return Rounded {
            parts: None,
            clamped: true,
        };
    }
    Rounded {
        parts: Some((false, ex, m.to_u64_digits()[0])),
        clamped: false,
    }
}

/// A positive interval-float value `m * 2^e`.
#[derive(Clone, Debug)]
struct D {
    m: BigUint,
    e: i64,
}

/// Truncate to `prec` bits, rounding down (`up = false`) or up.
fn trunc(m: BigUint, e: i64, prec: u64, up: bool) -> D {
    let b = m.bits();
    if b <= prec {
        return D { m, e };
    }
    let sh = b - prec;
    let t = &m >> sh;
    let exact = (&t << sh) == m;
    D {
        m: if up && !exact { t + 1u32 } else { t },
        e: e + sh as i64,
    }
}

/// Bounds on e^x for x = (-1)^neg * m * 2^e at precision `prec`, as dyadic intervals.
fn exp_bounds(neg: bool, m: u64, e: i64, prec: u64) -> (D, D) {
    let bl = 64 - m.leading_zeros() as i64;
    // Halve until |x| / 2^s < 2^-8.
    let s = (e + bl + 8).max(0) as u64;
    let w = prec + s + 48; // fixed-point fraction bits of the series
    let shift = e - s as i64 + w as i64; // y = m * 2^(e - s) = m * 2^shift / 2^w
    let (y_lo, y_hi) = if shift >= 0 {
        let y = BigUint::from(m) << shift as u64;
        (y.clone(), y)
    } else {
        let sh = (-shift) as u64;
        let lo = BigUint::from(m) >> sh;
        let hi = if (&lo << sh) == BigUint::from(m) {
            lo.clone()
        } else {
            &lo + 1u32
        };
        (lo, hi)
    };
    let one = BigUint::one() << w;
    let (mut t_lo, mut t_hi) = (one.clone(), one.clone());
    let (mut s_lo, mut s_hi) = (BigUint::zero(), BigUint::zero());
    let mut i = 0u32;
    loop {
        s_lo += &t_lo;
        s_hi += &t_hi;
        i += 1;
        t_lo = ((&t_lo * &y_lo) >> w) / i;
        t_hi = (((&t_hi * &y_hi) >> w) + 1u32) / i + 1u32;
        if t_hi.bits() <= 1 {
            s_hi += 2u32 * &t_hi;
            break;
        }
    }
    let mut lo = trunc(s_lo, -(w as i64), prec, false);
    let mut hi = trunc(s_hi, -(w as i64), prec, true);
    for _ in 0..s {
        lo = trunc(&lo.m * &lo.m, 2 * lo.e, prec, false);
        hi = trunc(&hi.m * &hi.m, 2 * hi.e, prec, true);
    }
    if !neg {
        return (lo, hi);
    }
    // e^-|x| lies in [1/hi, 1/lo].
    let k = 2 * prec;
    let num = BigUint::one() << k;
    let inv_lo = D {
        m: &num / &hi.m,
        e: -(k as i64) - hi.e,
    };
    let (q, r) = num.div_rem(&lo.m);
    let inv_hi = D {
        m: if r.is_zero() { q } else { q + 1u32 },
        e: -(k as i64) - lo.e,
    };
    (inv_lo, inv_hi)
}

/// round(e^x) by the oracle, plus the final interval.
fn oracle_exp(x: Float) -> (Rounded, D, D) {
    let f = x.format();
    if x.is_zero() {
        let one = D {
            m: BigUint::one(),
            e: 0,
        };
        return (round_dyadic(f.p(), f.q(), &one.m, 0), one.clone(), one);
    }
    let mut prec = 128;
    loop {
        let (lo, hi) = exp_bounds(x.is_negative(), x.sig(), x.exp() as i64, prec);
        let a = round_dyadic(f.p(), f.q(), &lo.m, lo.e);
        let b = round_dyadic(f.p(), f.q(), &hi.m, hi.e);
        if a == b {
            return (a, lo, hi);
        }
        prec *= 2;
        assert!(prec <= 1 << 14, "oracle did not converge for {x}");
    }
}

/// Compare `a * 2^ea` with `b * 2^eb`.
fn cmp_dyadic(a: &BigUint, ea: i64, b: &BigUint, eb: i64) -> Ordering {
    let e = ea.min(eb);
    (a << (ea - e) as u64).cmp(&(b << (eb - e) as u64))
}

/// |r - v| <= 2^(1-p) v for every v in [lo, hi]: lo (1 + 2^(1-p)) >= r and hi (1 - 2^(1-p)) <= r.
fn within_one_ulp(p: u32, r: Float, lo: &D, hi: &D) -> bool {
    let rm = BigUint::from(r.sig());
    let re = r.exp() as i64;
    let k = p as i64 - 1;
    let lo_up = &lo.m * ((BigUint::one() << k as u64) + 1u32);
    let hi_dn = &hi.m * ((BigUint::one() << k as u64) - 1u32);
    cmp_dyadic(&lo_up, lo.e - k, &rm, re) != Ordering::Less
        && cmp_dyadic(&hi_dn, hi.e - k, &rm, re) != Ordering::Greater
}

/// Directed rounding of the positive dyadic `a * 2^e` to F(p, q): the largest value `<=` it
/// (`up = false`; zero below the smallest positive value) or the smallest value `>=` it
/// (`up = true`; the smallest positive value below it); both saturate to the largest finite
/// value above the range.
fn round_dir(p: u32, q: u32, a: &BigUint, e: i64, up: bool) -> Parts {
    let (e_min, e_max) = (-(1i64 << (q - 1)), (1i64 << (q - 1)) - 1);
    let b = a.bits() as i64;
    let (mut m, mut ex) = if b <= p as i64 {
        (a << (p as i64 - b) as usize, e - (p as i64 - b))
    } else {
        let sh = (b - p as i64) as usize;
        let m = a >> sh;
        let exact = (&m << sh) == *a;
        (if up && !exact { m + 1u32 } else { m }, e + sh as i64)
    };
    if m.bits() > p as u64 {
        m >>= 1;
        ex += 1;
    }
    if ex > e_max {
        return Some((false, e_max, (1u64 << p) - 1));
    }
    if ex < e_min {
        return up.then_some((false, e_min, 1u64 << (p - 1)));
    }
    Some((false, ex, m.to_u64_digits()[0]))
}

/// Order of nonnegative parts: zero first, then by (exponent, significand).
fn key(x: &Parts) -> (bool, i64, u64) {
    match *x {
        None => (false, 0, 0),
        Some((_, e, m)) => (true, e, m),
    }
}

/// `r` lies between the oracle's lower bound rounded down and its upper bound rounded up: it is
/// one of the two values around e^x (faithful).
fn faithful(f: Format, r: Float, lo: &D, hi: &D) -> bool {
    let down = round_dir(f.p(), f.q(), &lo.m, lo.e, false);
    let up = round_dir(f.p(), f.q(), &hi.m, hi.e, true);
    let k = key(&parts(r));
    key(&down) <= k && k <= key(&up)
}

struct Stats {
    inputs: u64,
    correctly_rounded: u64,
    in_range: u64,
}

/// `exp_fn`: correctly rounded where the format says so, faithful elsewhere.
fn check(x: Float, st: &mut Stats) {
    let f = x.format();
    check_result(x, x.exp_fn(), f.p() + f.q() <= EXP_CR_MAX_BITS, st);
}

/// `exp_shared` (the shared algorithm, in any format): faithful.
fn check_shared(x: Float, st: &mut Stats) {
    check_result(x, x.exp_shared(), false, st);
}

fn check_result(x: Float, got: Float, correctly_rounded: bool, st: &mut Stats) {
    let f = x.format();
    let (want, lo, hi) = oracle_exp(x);
    st.inputs += 1;
    if parts(got) == want.parts {
        st.correctly_rounded += 1;
    }
    if !want.clamped {
        st.in_range += 1;
        assert!(
            !got.is_zero() && within_one_ulp(f.p(), got, &lo, &hi),
            "exp({x}) = {got}: relative error above 2^(1-p)"
        );
    }
    if correctly_rounded {
        assert_eq!(parts(got), want.parts, "exp({x}) = {got} is not round(e^x)");
    } else {
        assert!(
            faithful(f, got, &lo, &hi),
            "exp({x}) = {got} is not faithful"
        );
    }
}

fn new_stats() -> Stats {
    Stats {
        inputs: 0,
        correctly_rounded: 0,
        in_range: 0,
    }
}

fn report(name: &str, st: &Stats) {
    println!(
        "{name}: {} inputs ({} with an unclamped result), fraction correctly rounded = {}/{} = {:.6}",
        st.inputs,
        st.in_range,
        st.correctly_rounded,
        st.inputs,
        st.correctly_rounded as f64 / st.inputs as f64
    );
}

#[test]
fn exp_every_input_of_small_formats() {
    for (p, q) in [(2, 2), (3, 3), (4, 4), (5, 5), (8, 5)] {
        let f = Format::new(p, q).unwrap();
        let mut st = Stats {
            inputs: 0,
            correctly_rounded: 0,
            in_range: 0,
        };
        for x in f.all_values() {
            check(x, &mut st);
        }
        report(&format!("exp {f}"), &st);
        assert_eq!(st.inputs, f.num_values());
    }
}

#[test]
fn exp_every_input_of_f11_6() {
    let f = Format::new(11, 6).unwrap();
    let mut st = Stats {
        inputs: 0,
        correctly_rounded: 0,
        in_range: 0,
    };
    for x in f.all_values() {
        check(x, &mut st);
    }
    report("exp F(11,6) (every value)", &st);
}

#[test]
fn exp_random_inputs() {
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    for (p, q, n, e_spread) in [
        (8, 5, 100_000, 0),
        (11, 6, 100_000, 0),
        (16, 7, 20_000, 0),
        (24, 8, 20_000, 4),
        (32, 16, 5_000, 6),
    ] {
        let f = Format::new(p, q).unwrap();
        let mut st = Stats {
            inputs: 0,
            correctly_rounded: 0,
            in_range: 0,
        };
        for _ in 0..n {
            // Exponents chosen so |x| spreads over [2^-(p+e_spread+8), 2^17): the region where
            // e^x is neither trivially 1 nor beyond saturation, plus some of both.
            let top = rng.random_range(-(p as i32) - 8 - e_spread..=17);
            let e = (top - p as i32).clamp(f.e_min(), f.e_max());
            let m = rng.random_range((1u64 << (p - 1))..(1u64 << p));
            check(f.from_parts(rng.random(), e, m).unwrap(), &mut st);
        }
        report(&format!("exp {f} ({n} random)"), &st);
    }
}

/// The shared algorithm (the exp of formats with p + q > 20) is faithful in every format:
/// every input of F(4,4), F(8,5) and F(11,6), and random inputs of F(24,9) concentrated where
/// e^x is neither 1 nor clamped; the fraction of correctly rounded results is printed.
#[test]
fn exp_shared_is_faithful() {
    for (p, q) in [(4, 4), (8, 5), (11, 6)] {
        let f = Format::new(p, q).unwrap();
        let mut st = new_stats();
        for x in f.all_values() {
            check_shared(x, &mut st);
        }
        report(&format!("exp_shared {f} (every value)"), &st);
        assert!(st.correctly_rounded * 100 >= st.inputs * 95);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(22);
    let f = Format::new(24, 9).unwrap();
    let mut st = new_stats();
    for _ in 0..20_000 {
        let top = rng.random_range(-34..=9);
        let m = rng.random_range((1u64 << 23)..(1u64 << 24));
        check_shared(f.from_parts(rng.random(), top - 24, m).unwrap(), &mut st);
    }
    report("exp_shared F(24,9) (20000 random)", &st);
    assert!(st.correctly_rounded * 100 >= st.inputs * 95);
}

/// The documented cost bound: every encoding of F(11,6) (2^18 words) in a few seconds.
#[test]
fn exp_speed_all_encodings_f11_6() {
    let f = Format::new(11, 6).unwrap();
    let t = Instant::now();
    let mut n = 0u64;
    let mut acc = 0u64;
    for w in 0..(1u64 << f.width()) {
        if let Ok(x) = f.from_bits(w) {
            acc = acc.wrapping_add(x.exp_fn().to_bits());
            n += 1;
        }
    }
    let dt = t.elapsed().as_secs_f64();
    println!("exp over all {n} values of {f} (2^18 encodings): {dt:.3} s (checksum {acc:#x})");
    assert_eq!(n, f.num_values());
    assert!(dt < 30.0, "exp too slow: {dt} s");
}

/// Anchors: exp(0) = 1, monotonicity over a whole format, saturation and flush.
#[test]
fn exp_anchors() {
    for (p, q) in [(4, 4), (11, 6), (24, 9)] {
        let f = Format::new(p, q).unwrap();
        assert_eq!(f.zero().exp_fn(), f.one().unwrap());
        assert_eq!(f.max_finite(false).exp_fn(), f.max_finite(false));
        assert_eq!(f.max_finite(true).exp_fn(), f.zero());
        assert_eq!(f.min_positive().exp_fn(), f.one().unwrap());
    }
    let f = Format::new(11, 6).unwrap();
    let mut prev = f.zero();
    for x in f.all_values() {
        let y = x.exp_fn();
        assert_ne!(
            y.cmp_value(prev).unwrap(),
            Ordering::Less,
            "exp not monotone at {x}"
        );
        prev = y;
    }
    let f = Format::new(24, 9).unwrap();
    let one = f.from_f64(1.0).unwrap().exp_fn();
    assert_eq!(one.to_f32(), std::f32::consts::E);
}
