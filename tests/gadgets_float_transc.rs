//! div, sqrt, rsqrt and exp at every format, F(24,9) included: the arithmetic constructions
//! (reciprocal or root seed plus exact check; exp's shared algorithm) evaluated by the CPU
//! evaluator in large batches and compared bit for bit:
//! - F(24,9) div and sqrt with hardware f32, F(11,6) with f16 (`half`), on >= 100,000 inputs
//!   with normal results each (random, exact quotients and squares, values next to rounding
//!   boundaries, near overflow and underflow), and always with the reference;
//! - rsqrt and exp with the reference (`Float::rsqrt`, correctly rounded; `Float::exp_shared`,
//!   the shared algorithm), exhaustively at small formats and on 100,000 random inputs at
//!   F(24,9);
//! - every construction, forced, exhaustively or on random inputs at small formats, and built and
//!   spot-checked at the extreme formats (p = 2 and 32, q = 2 and 16);
//! - depth depends on p only through the construction (checked across q).

mod common;

use half::f16;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tcvar::circuit::{Builder, Circuit};
use tcvar::float::{Float, Format};
use tcvar::gadgets::error::GadgetError;
use tcvar::gadgets::float::FloatWord;
use tcvar::gadgets::float::{div, exp_poly, root, table};

use common::float_gadgets::{self, all_singles, build, eval, fmt, random_cases};

type Gadget = fn(&mut Builder, &[FloatWord]) -> Result<FloatWord, GadgetError>;

/// Instances per CPU batch.
const CHUNK: usize = 1 << 16;

/// Circuit outputs equal the reference `r` on every case (first mismatches printed).
fn check_ref(
    name: &str,
    c: &Circuit,
    f: Format,
    cases: &[Vec<u64>],
    r: impl Fn(&[Float]) -> Float,
) {
    float_gadgets::check(name, c, f, cases, CHUNK, r)
}

// ------------------------------------------------------------------ IEEE references

/// An IEEE binary format: significand bits, smallest normal exponent, conversions.
struct Ieee {
    p: u32,
    e_lo: i32,
    e_hi: i32,
    /// Round an f64 result of an exact f32 operation on two values of this format.
    narrow: fn(f32) -> f64,
}

const F32: Ieee = Ieee {
    p: 24,
    e_lo: -126,
    e_hi: 127,
    narrow: |x| x as f64,
};

const F16: Ieee = Ieee {
    p: 11,
    e_lo: -14,
    e_hi: 15,
    narrow: |x| f16::from_f32(x).to_f64(),
};

/// A result counts as normal: finite, nonzero, magnitude in `[2^e_lo, 2^(e_hi + 1))`, and not
/// exactly the smallest normal (which may come from rounding a subnormal value up; see
/// float_hardware.rs).
fn is_counted_normal(ieee: &Ieee, v: f64) -> bool {
    let a = v.abs();
    a.is_finite() && a > (ieee.e_lo as f64).exp2() && a < ((ieee.e_hi + 1) as f64).exp2()
}

/// A random normal value of the IEEE format as f64 (exponent in `[lo, hi]`).
fn ieee_value(rng: &mut ChaCha8Rng, ieee: &Ieee, lo: i32, hi: i32) -> f64 {
    let m = (1u64 << (ieee.p - 1)) | rng.random_range(0..1u64 << (ieee.p - 1));
    let e = rng.random_range(lo.max(ieee.e_lo)..=hi.min(ieee.e_hi));
    let v = m as f64 * ((e - ieee.p as i32 + 1) as f64).exp2();
    if rng.random_bool(0.5) {
        -v
    } else {
        v
    }
}

/// `v` rounded to the IEEE format's precision (nearest even; v in its normal range).
fn to_ieee(ieee: &Ieee, v: f64) -> f64 {
    (ieee.narrow)(v as f32)
}

/// Division operands: random, exact quotients, quotients next to a rounding midpoint, results
/// near overflow and near underflow.
fn div_operands(ieee: &Ieee, n: usize, seed: u64) -> Vec<(f64, f64)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (lo, hi) = (ieee.e_lo, ieee.e_hi);
    let half_p = ieee.p / 2;
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let kind = out.len() % 5;
        let (a, b) = match kind {
            0 => (
                ieee_value(&mut rng, ieee, lo / 2, hi / 2),
                ieee_value(&mut rng, ieee, lo / 2, hi / 2),
            ),
            1 => {
                // Exact quotient: q and b with p/2-bit significands, a = q b exactly.
                let small = |rng: &mut ChaCha8Rng| {
                    let m = (1u64 << (half_p - 1)) | rng.random_range(0..1u64 << (half_p - 1));
                    m as f64 * (rng.random_range(-6..6) as f64).exp2()
                };
                let (q, b) = (small(&mut rng), small(&mut rng));
                (q * b, b)
            }
            2 => {
                // Next to a midpoint: q halfway between two neighbours, a = round(q b).
                let b = ieee_value(&mut rng, ieee, -4, 4);
                let q = ieee_value(&mut rng, ieee, -4, 4).abs();
                let e = q.log2().floor() as i32;
                let mid = q + ((e - ieee.p as i32) as f64).exp2();
                (to_ieee(ieee, mid * b), b)
            }
            3 => {
                // Near overflow.
                let a = ieee_value(&mut rng, ieee, hi - 2, hi);
                let b = ieee_value(&mut rng, ieee, -2, 1);
                (a, b)
            }
            _ => {
                // Near underflow.
                let a = ieee_value(&mut rng, ieee, lo, lo + 2);
                let b = ieee_value(&mut rng, ieee, -1, 2);
                (a, b)
            }
        };
        if a.is_finite() && b != 0.0 && a != 0.0 {
            out.push((a, b));
        }
    }
    out
}

/// sqrt operands: random positive, exact squares, squares of midpoints, extreme exponents.
fn sqrt_operands(ieee: &Ieee, n: usize, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (lo, hi) = (ieee.e_lo, ieee.e_hi);
    let half_p = ieee.p / 2;
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let v = match out.len() % 4 {
            0 => ieee_value(&mut rng, ieee, lo, hi).abs(),
            1 => {
                let m = (1u64 << (half_p - 1)) | rng.random_range(0..1u64 << (half_p - 1));
                let r = m as f64 * (rng.random_range(-8..8) as f64).exp2();
                r * r
            }
            2 => {
                let r = ieee_value(&mut rng, ieee, lo / 2 + 1, hi / 2 - 1).abs();
                let e = r.log2().floor() as i32;
                let mid = r + ((e - ieee.p as i32) as f64).exp2();
                to_ieee(ieee, mid * mid)
            }
            _ => {
                let e = if rng.random_bool(0.5) { lo } else { hi };
                ieee_value(&mut rng, ieee, e - 1, e + 1).abs()
            }
        };
        if v.is_finite() && v > 0.0 {
            out.push(v);
        }
    }
    out
}

/// Compare the circuit of a binary (or unary) op with the IEEE reference on every case whose
/// IEEE result is a counted normal, and with the library reference on every case; returns the
/// number of cases compared with the IEEE result.
fn check_ieee(
    name: &str,
    c: &Circuit,
    f: Format,
    ieee: &Ieee,
    cases: &[Vec<f64>],
    ieee_op: impl Fn(&[f64]) -> f64,
    lib_op: impl Fn(&[Float]) -> Float,
) -> usize {
    let enc: Vec<Vec<u64>> = cases
        .iter()
        .map(|cs| {
            cs.iter()
                .map(|&v| f.from_f64(v).unwrap().to_bits())
                .collect()
        })
        .collect();
    let got = eval(c, f, &enc, CHUNK);
    let mut compared = 0;
    let mut bad = 0;
    for ((cs, e), &g) in cases.iter().zip(&enc).zip(&got) {
        let vals: Vec<Float> = e.iter().map(|&x| f.from_bits(x).unwrap()).collect();
        // The operands are exact in the format.
        for (&v, x) in cs.iter().zip(&vals) {
            assert_eq!(x.to_f64(), v, "{name}: operand {v} not exact in {f}");
        }
        let lib = lib_op(&vals).to_bits();
        let hw = ieee_op(cs);
        let mut ok = g == lib;
        if is_counted_normal(ieee, hw) {
            compared += 1;
            ok &= f.from_bits(g).unwrap().to_f64() == hw;
        }
        if !ok {
            if bad < 5 {
                eprintln!(
                    "{name} {f}: {cs:?} -> circuit {}, reference {}, ieee {hw:e}",
                    f.from_bits(g).map(|v| v.to_string()).unwrap_or_default(),
                    f.from_bits(lib).unwrap()
                );
            }
            bad += 1;
        }
    }
    assert_eq!(bad, 0, "{name} {f}: {bad} of {} cases differ", cases.len());
    compared
}

fn f32_div(v: &[f64]) -> f64 {
    (v[0] as f32 / v[1] as f32) as f64
}

fn f32_sqrt(v: &[f64]) -> f64 {
    (v[0] as f32).sqrt() as f64
}

fn f16_div(v: &[f64]) -> f64 {
    f16::from_f32(v[0] as f32 / v[1] as f32).to_f64()
}

fn f16_sqrt(v: &[f64]) -> f64 {
    f16::from_f32((v[0] as f32).sqrt()).to_f64()
}

const N_IEEE: usize = 120_000;

#[test]
fn div_f24_9_equals_f32() {
    let f = fmt(24, 9);
    let c = build(f, 2, |b, x| div::div(b, &x[0], &x[1]));
    let cases: Vec<Vec<f64>> = div_operands(&F32, N_IEEE, 1)
        .into_iter()
        .map(|(a, b)| vec![a, b])
        .collect();
    let n = check_ieee("div", &c, f, &F32, &cases, f32_div, |v| {
        v[0].div(v[1]).unwrap()
    });
    println!("div F(24,9): {n} normal results equal hardware f32");
    assert!(n >= 100_000, "only {n} normal results");
}

#[test]
fn sqrt_f24_9_equals_f32() {
    let f = fmt(24, 9);
    let c = build(f, 1, |b, x| table::sqrt(b, &x[0]));
    let cases: Vec<Vec<f64>> = sqrt_operands(&F32, N_IEEE, 2)
        .into_iter()
        .map(|a| vec![a])
        .collect();
    let n = check_ieee("sqrt", &c, f, &F32, &cases, f32_sqrt, |v| v[0].sqrt());
    println!("sqrt F(24,9): {n} normal results equal hardware f32");
    assert!(n >= 100_000, "only {n} normal results");
    // Zero and negative inputs give zero (reference only: IEEE gives -0 and NaN).
    check_ref("sqrt", &c, f, &random_cases(f, 1, 20_000, 3), |v| {
        v[0].sqrt()
    });
}

/// F(11,6): the dispatching gadgets (candidate quotients, parity table) and the seed-and-check
/// constructions forced, all against f16.
#[test]
fn div_sqrt_f11_6_equal_f16() {
    let f = fmt(11, 6);
    let div_cases: Vec<Vec<f64>> = div_operands(&F16, N_IEEE, 4)
        .into_iter()
        .map(|(a, b)| vec![a, b])
        .collect();
    let sqrt_cases: Vec<Vec<f64>> = sqrt_operands(&F16, N_IEEE, 5)
        .into_iter()
        .map(|a| vec![a])
        .collect();
    let divs: [(&str, Gadget); 2] = [
        ("div", |b, x| div::div(b, &x[0], &x[1])),
        ("div_reciprocal", |b, x| {
            div::div_reciprocal(b, &x[0], &x[1])
        }),
    ];
    for (name, g) in divs {
        let c = build(f, 2, g);
        let n = check_ieee(name, &c, f, &F16, &div_cases, f16_div, |v| {
            v[0].div(v[1]).unwrap()
        });
        println!("{name} F(11,6): {n} normal results equal f16");
        assert!(n >= 100_000, "{name}: only {n} normal results");
    }
    let sqrts: [(&str, Gadget); 2] = [
        ("sqrt", |b, x| table::sqrt(b, &x[0])),
        ("sqrt_checked", |b, x| root::sqrt_checked(b, &x[0])),
    ];
    for (name, g) in sqrts {
        let c = build(f, 1, g);
        let n = check_ieee(name, &c, f, &F16, &sqrt_cases, f16_sqrt, |v| v[0].sqrt());
        println!("{name} F(11,6): {n} normal results equal f16");
        assert!(n >= 100_000, "{name}: only {n} normal results");
    }
}

/// Random inputs at F(24,9) (special values mixed in) against the reference for all four.
#[test]
fn f24_9_random_against_reference() {
    let f = fmt(24, 9);
    let c = build(f, 2, |b, x| div::div(b, &x[0], &x[1]));
    check_ref("div", &c, f, &random_cases(f, 2, 100_000, 6), |v| {
        v[0].div(v[1]).unwrap()
    });
    let c = build(f, 1, |b, x| table::rsqrt(b, &x[0]));
    check_ref("rsqrt", &c, f, &random_cases(f, 1, 100_000, 7), |v| {
        v[0].rsqrt()
    });
    // exp: exponents spread over the whole range where e^x is neither 1 nor clamped, plus
    // random encodings.
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let mut cases = random_cases(f, 1, 20_000, 9);
    while cases.len() < 120_000 {
        let top = rng.random_range(-34..=9);
        let e = top - 24;
        let m = rng.random_range(1u64 << 23..1u64 << 24);
        cases.push(vec![f.from_parts(rng.random(), e, m).unwrap().to_bits()]);
    }
    let c = build(f, 1, |b, x| table::exp(b, &x[0]));
    check_ref("exp", &c, f, &cases, |v| v[0].exp_fn());
}

/// Every input of small formats, the arithmetic constructions forced (they serve p > 12 in
/// `div`/`sqrt`/`rsqrt`/`exp`, but must be exact in every format).
#[test]
fn forced_constructions_exhaustive_small() {
    for f in [fmt(4, 4), fmt(8, 5), fmt(11, 6)] {
        let xs = all_singles(f);
        let c = build(f, 1, |b, x| root::sqrt_checked(b, &x[0]));
        check_ref("sqrt_checked", &c, f, &xs, |v| v[0].sqrt());
        let c = build(f, 1, |b, x| root::rsqrt_checked(b, &x[0]));
        check_ref("rsqrt_checked", &c, f, &xs, |v| v[0].rsqrt());
        let c = build(f, 1, |b, x| exp_poly::exp_poly(b, &x[0]));
        check_ref("exp_poly", &c, f, &xs, |v| v[0].exp_shared());
    }
    // Division: every pair of F(5,3), 10^5 random pairs of F(8,5).
    let f = fmt(5, 3);
    let vals: Vec<u64> = f.all_values().map(|v| v.to_bits()).collect();
    let pairs: Vec<Vec<u64>> = vals
        .iter()
        .flat_map(|&a| vals.iter().map(move |&b| vec![a, b]))
        .collect();
    let c = build(f, 2, |b, x| div::div_reciprocal(b, &x[0], &x[1]));
    check_ref("div_reciprocal", &c, f, &pairs, |v| v[0].div(v[1]).unwrap());
    let f = fmt(8, 5);
    let c = build(f, 2, |b, x| div::div_reciprocal(b, &x[0], &x[1]));
    check_ref(
        "div_reciprocal",
        &c,
        f,
        &random_cases(f, 2, 100_000, 10),
        |v| v[0].div(v[1]).unwrap(),
    );
}

/// Every supported corner of the format space builds, and agrees with the reference on
/// random inputs.
#[test]
fn extreme_formats_build_and_agree() {
    for (p, q) in [
        (2, 2),
        (2, 16),
        (3, 9),
        (5, 16),
        (13, 2),
        (13, 8),
        (16, 12),
        (32, 2),
        (32, 16),
    ] {
        let f = fmt(p, q);
        let c = build(f, 2, |b, x| div::div(b, &x[0], &x[1]));
        check_ref("div", &c, f, &random_cases(f, 2, 3000, 11), |v| {
            v[0].div(v[1]).unwrap()
        });
        let c = build(f, 1, |b, x| table::sqrt(b, &x[0]));
        check_ref("sqrt", &c, f, &random_cases(f, 1, 3000, 12), |v| {
            v[0].sqrt()
        });
        let c = build(f, 1, |b, x| table::rsqrt(b, &x[0]));
        check_ref("rsqrt", &c, f, &random_cases(f, 1, 3000, 13), |v| {
            v[0].rsqrt()
        });
        let c = build(f, 1, |b, x| table::exp(b, &x[0]));
        check_ref("exp", &c, f, &random_cases(f, 1, 3000, 14), |v| {
            v[0].exp_fn()
        });
    }
}

/// The depth of each wide construction is one constant per construction (constant folding may
/// only lower it, e.g. in F(24,5) every nonzero input of exp is clamped).
#[test]
fn depths_of_the_wide_constructions() {
    for q in [8, 9, 12, 16] {
        let f = fmt(24, q);
        let d = |g: Gadget, arity| build(f, arity, g).depth();
        let dd = d(|b, x| div::div(b, &x[0], &x[1]), 2);
        let ds = d(|b, x| table::sqrt(b, &x[0]), 1);
        let dr = d(|b, x| table::rsqrt(b, &x[0]), 1);
        let de = d(|b, x| table::exp(b, &x[0]), 1);
        println!("{f}: div {dd} sqrt {ds} rsqrt {dr} exp {de}");
        assert_eq!((dd, ds, dr, de), (12, 9, 10, 10), "{f}");
    }
}
