//! Bit-exactness of the multiplicative and table float gadgets: mul, mul by a
//! constant, div, the iterated product, exp, sqrt, rsqrt. Each circuit is evaluated by the CPU
//! evaluator and compared with the `float` reference: exhaustively for F(4,4), on >= 10^5
//! seeded random inputs (special values mixed in) for F(8,5) and F(11,6).

mod common;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tcvar::circuit::{Builder, Circuit};
use tcvar::float::{Float, Format};
use tcvar::gadgets::error::GadgetError;
use tcvar::gadgets::float::div::div;
use tcvar::gadgets::float::mul::mul;
use tcvar::gadgets::float::mul_const::mul_const;
use tcvar::gadgets::float::product::{product, uses_log_construction};
use tcvar::gadgets::float::table::{exp, rsqrt, sqrt, unary_table};
use tcvar::gadgets::float::FloatWord;

use common::float_gadgets::{self, all_singles, build, eval, fmt, random_cases, random_value};

/// Instances per CPU batch.
const CHUNK: usize = 1 << 14;

/// Compare circuit outputs with the reference `r` on `cases`, reporting the first mismatch.
fn check(name: &str, c: &Circuit, f: Format, cases: &[Vec<u64>], r: impl Fn(&[Float]) -> Float) {
    float_gadgets::check(name, c, f, cases, CHUNK, r)
}

fn all_pairs(f: Format) -> Vec<Vec<u64>> {
    let vals: Vec<u64> = f.all_values().map(|v| v.to_bits()).collect();
    let mut out = Vec::with_capacity(vals.len() * vals.len());
    for &a in &vals {
        for &b in &vals {
            out.push(vec![a, b]);
        }
    }
    out
}

const RANDOM_CASES: usize = 100_000;

fn binary_formats() -> Vec<(Format, u64)> {
    vec![(fmt(8, 5), 1), (fmt(11, 6), 2)]
}

#[test]
fn mul_exhaustive_f44() {
    let f = fmt(4, 4);
    let c = build(f, 2, |b, x| mul(b, &x[0], &x[1]));
    check("mul", &c, f, &all_pairs(f), |v| v[0].mul(v[1]).unwrap());
}

#[test]
fn mul_random_f85_f116() {
    for (f, seed) in binary_formats() {
        let c = build(f, 2, |b, x| mul(b, &x[0], &x[1]));
        check("mul", &c, f, &random_cases(f, 2, RANDOM_CASES, seed), |v| {
            v[0].mul(v[1]).unwrap()
        });
    }
}

#[test]
fn div_exhaustive_f44() {
    let f = fmt(4, 4);
    let c = build(f, 2, |b, x| div(b, &x[0], &x[1]));
    check("div", &c, f, &all_pairs(f), |v| v[0].div(v[1]).unwrap());
}

#[test]
fn div_random_f85_f116() {
    for (f, seed) in binary_formats() {
        let c = build(f, 2, |b, x| div(b, &x[0], &x[1]));
        check(
            "div",
            &c,
            f,
            &random_cases(f, 2, RANDOM_CASES, seed + 10),
            |v| v[0].div(v[1]).unwrap(),
        );
    }
}

#[test]
fn div_by_zero_rules() {
    let f = fmt(8, 5);
    let c = build(f, 2, |b, x| div(b, &x[0], &x[1]));
    let mut cases = Vec::new();
    for v in [
        f.max_finite(false),
        f.max_finite(true),
        f.min_positive(),
        f.zero(),
    ] {
        cases.push(vec![v.to_bits(), 0]);
        cases.push(vec![0, v.to_bits()]);
    }
    check("div", &c, f, &cases, |v| v[0].div(v[1]).unwrap());
    // The rules themselves, independently of the reference.
    let got = eval(&c, f, &cases, CHUNK);
    assert_eq!(got[0], f.max_finite(false).to_bits());
    assert_eq!(got[2], f.max_finite(true).to_bits());
    assert_eq!(got[6], 0); // 0 / 0
}

/// Constants for `mul_const`: zero, +-1, extremes, and random values.
fn constants(f: Format, n: usize, seed: u64) -> Vec<Float> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut cs = vec![
        f.zero(),
        f.max_finite(false),
        f.max_finite(true),
        f.min_positive(),
    ];
    if let Ok(one) = f.one() {
        cs.push(one);
        cs.push(one.neg());
    }
    while cs.len() < n {
        cs.push(f.from_bits(random_value(&mut rng, f)).unwrap());
    }
    cs
}

#[test]
fn mul_const_exhaustive_f44() {
    let f = fmt(4, 4);
    let xs = all_singles(f);
    for c in f.all_values() {
        let circ = build(f, 1, |b, x| mul_const(b, &x[0], c));
        check("mul_const", &circ, f, &xs, |v| v[0].mul(c).unwrap());
    }
}

#[test]
fn mul_const_random_f85_f116() {
    for (f, seed) in binary_formats() {
        let xs = random_cases(f, 1, RANDOM_CASES / 20, seed + 20);
        for c in constants(f, 20, seed + 30) {
            let circ = build(f, 1, |b, x| mul_const(b, &x[0], c));
            check("mul_const", &circ, f, &xs, |v| v[0].mul(c).unwrap());
        }
    }
}

/// exp, sqrt, rsqrt: every input of F(4,4) and F(8,5); F(11,6): every input for sqrt and
/// rsqrt, 10^5 seeded random inputs (special values included) for exp.
#[test]
fn tables_exhaustive() {
    for f in [fmt(4, 4), fmt(8, 5), fmt(11, 6)] {
        let xs = all_singles(f);
        let exp_cases = if f.p() == 11 {
            random_cases(f, 1, RANDOM_CASES, 50)
        } else {
            xs.clone()
        };
        let c = build(f, 1, |b, x| exp(b, &x[0]));
        check("exp", &c, f, &exp_cases, |v| v[0].exp_fn());
        let c = build(f, 1, |b, x| sqrt(b, &x[0]));
        check("sqrt", &c, f, &xs, |v| v[0].sqrt());
        let c = build(f, 1, |b, x| rsqrt(b, &x[0]));
        check("rsqrt", &c, f, &xs, |v| v[0].rsqrt());
    }
}

/// The generic rank table agrees with the reference too (it is the fallback of sqrt/rsqrt).
#[test]
fn rank_table_exhaustive_f44_f85() {
    for f in [fmt(4, 4), fmt(8, 5)] {
        let xs = all_singles(f);
        let c = build(f, 1, |b, x| unary_table(b, "sqrt", &x[0], |v| v.sqrt()));
        check("rank sqrt", &c, f, &xs, |v| v[0].sqrt());
        let c = build(f, 1, |b, x| unary_table(b, "rsqrt", &x[0], |v| v.rsqrt()));
        check("rank rsqrt", &c, f, &xs, |v| v[0].rsqrt());
    }
}

/// A value near 1 (exponent within +-2 binades of 1), so that products of several stay in range
/// and exercise rounding rather than saturation; zero with probability 1/32.
fn centered_value(rng: &mut ChaCha8Rng, f: Format) -> u64 {
    if rng.random_range(0..32) == 0 {
        return 0;
    }
    let p = f.p();
    let e = 1 - p as i32 + rng.random_range(-2..=2);
    let sig = (1u64 << (p - 1)) | rng.random_range(0..1u64 << (p - 1));
    f.from_parts(rng.random_bool(0.5), e, sig)
        .unwrap()
        .to_bits()
}

#[test]
fn product_n2_exhaustive_f44() {
    let f = fmt(4, 4);
    let c = build(f, 2, product);
    check("product", &c, f, &all_pairs(f), |v| f.product(v).unwrap());
}

/// Random operand lists for every supported n: half near 1 (rounding, ties, carries), half
/// arbitrary encodings (saturation, flush, zero).
#[test]
fn product_random_all_n() {
    for (f, seed) in [(fmt(4, 4), 40u64), (fmt(8, 5), 41), (fmt(11, 6), 42)] {
        // The monomial (depth-4) range; larger n: tests/gadgets_float_product.rs.
        for n in (2..8).filter(|&n| !uses_log_construction(f.p(), n)) {
            let c = build(f, n, product);
            let terms = (f.p() as u64).pow(n as u32);
            let count = ((1u64 << 24) / terms).clamp(256, 20_000) as usize;
            let mut rng = ChaCha8Rng::seed_from_u64(seed * 100 + n as u64);
            let cases: Vec<Vec<u64>> = (0..count)
                .map(|i| {
                    (0..n)
                        .map(|_| {
                            if i % 2 == 0 {
                                centered_value(&mut rng, f)
                            } else {
                                random_value(&mut rng, f)
                            }
                        })
                        .collect()
                })
                .collect();
            check(&format!("product n={n}"), &c, f, &cases, |v| {
                f.product(v).unwrap()
            });
        }
    }
}

/// The iterated product's depth is 4 over the monomial range (n < 8 where `p^n` fits), and
/// n = 0 is an error, not a panic. (Larger n use the logarithmic construction: depth, size
/// and limits are tested in tests/gadgets_float_product.rs.)
#[test]
fn product_depth_constant_and_limits() {
    for f in [fmt(4, 4), fmt(8, 5), fmt(11, 6)] {
        let mono: Vec<usize> = (2..8)
            .filter(|&n| !uses_log_construction(f.p(), n))
            .collect();
        assert!(mono.len() >= 3, "{f}: monomial range {mono:?}");
        for n in mono {
            let c = build(f, n, product);
            assert_eq!(c.depth(), 4, "{f} n={n}");
        }
        let mut b = Builder::new();
        assert!(matches!(
            product(&mut b, &[]),
            Err(GadgetError::TooFewOperands { .. })
        ));
    }
}

#[test]
fn depths() {
    for f in [fmt(4, 4), fmt(8, 5), fmt(11, 6)] {
        let d = |c: Circuit| c.depth();
        let dm = d(build(f, 2, |b, x| mul(b, &x[0], &x[1])));
        let one = f.one().unwrap();
        let dc = d(build(f, 1, |b, x| mul_const(b, &x[0], one)));
        let dd = d(build(f, 2, |b, x| div(b, &x[0], &x[1])));
        let de = d(build(f, 1, |b, x| exp(b, &x[0])));
        let ds = d(build(f, 1, |b, x| sqrt(b, &x[0])));
        let dr = d(build(f, 1, |b, x| rsqrt(b, &x[0])));
        println!("{f}: mul {dm} mul_const {dc} div {dd} exp {de} sqrt {ds} rsqrt {dr}");
        assert!(dm <= 4 && dc <= 3 && dd <= 3 && de <= 2 && ds <= 2 && dr <= 2);
    }
}

#[test]
fn errors_not_panics() {
    let (f, g) = (fmt(8, 5), fmt(8, 6));
    let mut b = Builder::new();
    let x = FloatWord::input(&mut b, "x", f).unwrap();
    let y = FloatWord::input(&mut b, "y", g).unwrap();
    assert!(matches!(
        mul(&mut b, &x, &y),
        Err(GadgetError::FormatMismatch { .. })
    ));
    assert!(matches!(
        div(&mut b, &x, &y),
        Err(GadgetError::FormatMismatch { .. })
    ));
    assert!(matches!(
        mul_const(&mut b, &x, g.zero()),
        Err(GadgetError::FormatMismatch { .. })
    ));
    assert!(matches!(
        product(&mut b, &[x.clone(), y.clone()]),
        Err(GadgetError::FormatMismatch { .. })
    ));
    // Construction limits name themselves.
    let big = fmt(13, 5);
    let z = FloatWord::input(&mut b, "z", big).unwrap();
    match tcvar::gadgets::float::div::div_candidates(&mut b, &z, &z) {
        Err(GadgetError::Unsupported { limit, .. }) => assert!(limit.contains("p = 13")),
        other => panic!("div_candidates at p = 13: {other:?}"),
    }
    let wide = fmt(16, 8);
    let w = FloatWord::input(&mut b, "w", wide).unwrap();
    assert!(matches!(
        unary_table(&mut b, "exp", &w, |v| v.exp_fn()),
        Err(GadgetError::Unsupported { .. })
    ));
    // div and exp themselves switch to their arithmetic constructions there.
    assert!(div(&mut b, &z, &z).is_ok());
    assert!(exp(&mut b, &w).is_ok());
    let huge = fmt(32, 8);
    let h = FloatWord::input(&mut b, "h", huge).unwrap();
    assert!(matches!(
        mul(&mut b, &h, &h),
        Err(GadgetError::Unsupported { .. })
    ));
}
