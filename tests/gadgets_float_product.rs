//! The iterated float product: bit-exact against
//! `Format::product` (exhaustive pairs at F(4,4); random operand lists of many shapes for
//! n = 2, 3, 8, 64, 256 at F(4,4) and F(8,5)), constant depth for n >= 8 and polynomial size
//! (fitted log-log slopes of gates and fan-in below 2.2) for n = 2..1024 at F(8,5), and errors
//! instead of panics.

mod common;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tcvar::circuit::{Builder, Circuit};
use tcvar::float::{Float, Format};
use tcvar::gadgets::error::GadgetError;
use tcvar::gadgets::float::product::{
    max_product_operands, product, product_logarithmic, uses_log_construction, LOG_DEPTH,
    LOG_MIN_OPERANDS,
};
use tcvar::gadgets::float::FloatWord;

use common::float_gadgets::{build as build_with, eval, fmt, rand_sig};

/// Build the product circuit of n inputs of format f.
fn build(f: Format, n: usize) -> Circuit {
    build_with(f, n, product)
}

/// Compare the circuit with `Format::product` on `cases`; report the first mismatches.
fn check(name: &str, c: &Circuit, f: Format, cases: &[Vec<u64>]) {
    let got = eval(c, f, cases, 1 << 12);
    let mut bad = 0usize;
    for (case, &g) in cases.iter().zip(&got) {
        let vals: Vec<Float> = case.iter().map(|&x| f.from_bits(x).unwrap()).collect();
        let want = f.product(&vals).unwrap().to_bits();
        if g != want {
            if bad < 3 {
                eprintln!(
                    "{name} {f}: inputs {:?} -> circuit {g:#x}, reference {want:#x} ({})",
                    case,
                    f.from_bits(want).unwrap()
                );
            }
            bad += 1;
        }
    }
    assert_eq!(bad, 0, "{name} {f}: {bad} of {} cases differ", cases.len());
}

/// A float with significand `sig` (leading one included), unbiased exponent `e` clamped to
/// the format's range, random sign.
fn val(rng: &mut ChaCha8Rng, f: Format, sig: u64, e: i32) -> u64 {
    let e = e.clamp(f.e_min(), f.e_max());
    f.from_parts(rng.random_bool(0.5), e, sig)
        .unwrap()
        .to_bits()
}

/// The exponent of 1: `2^(p-1) * 2^(1-p) = 1`.
fn unit_exp(f: Format) -> i32 {
    1 - f.p() as i32
}

/// A value with significand `sig` scaled into `[1/sqrt 2, sqrt 2)`.
fn near_one_with(rng: &mut ChaCha8Rng, f: Format, sig: u64) -> u64 {
    let half = 1u64 << (f.p() - 1);
    let e = if (sig as f64) < half as f64 * std::f64::consts::SQRT_2 {
        unit_exp(f)
    } else {
        unit_exp(f) - 1
    };
    val(rng, f, sig, e)
}

fn near_one(rng: &mut ChaCha8Rng, f: Format) -> u64 {
    let s = rand_sig(rng, f);
    near_one_with(rng, f, s)
}

fn log2_abs(f: Format, x: u64) -> f64 {
    let v = f.from_bits(x).unwrap();
    (v.sig() as f64).log2() + v.exp() as f64
}

/// One operand list of length n of the given shape (0..8).
fn case(rng: &mut ChaCha8Rng, f: Format, n: usize, shape: u32) -> Vec<u64> {
    let p = f.p();
    let e1 = unit_exp(f);
    let half = 1u64 << (p - 1);
    let mut v: Vec<u64> = match shape {
        // Values near 1 (rounding, ties, carries into a new binade).
        0 => (0..n).map(|_| near_one(rng, f)).collect(),
        // Powers of two and a few other values: exact products and ties.
        1 => (0..n)
            .map(|_| {
                if rng.random_range(0..4) == 0 {
                    near_one(rng, f)
                } else {
                    let e = e1 + rng.random_range(-1..=1);
                    val(rng, f, half, e)
                }
            })
            .collect(),
        // One significand repeated, compensated by halves so the product stays in range:
        // M = m^a 2^b, logarithms close to rounding boundaries.
        2 => {
            let m = rand_sig(rng, f);
            let x = val(rng, f, m, e1);
            let lx = log2_abs(f, x);
            let mut acc = 0.0;
            (0..n)
                .map(|_| {
                    if acc > 0.5 {
                        acc -= 1.0;
                        val(rng, f, half, e1 - 1)
                    } else {
                        acc += lx;
                        x
                    }
                })
                .collect()
        }
        // Significands just above and below a power of two.
        3 => (0..n)
            .map(|_| {
                let s = if rng.random_bool(0.5) {
                    half + rng.random_range(0..3)
                } else {
                    (1u64 << p) - 1 - rng.random_range(0..3)
                };
                near_one_with(rng, f, s.clamp(half, (1u64 << p) - 1))
            })
            .collect(),
        // Arbitrary encodings (saturation, flush).
        4 => (0..n)
            .map(|_| {
                let s = rand_sig(rng, f);
                let e = rng.random_range(f.e_min()..=f.e_max());
                val(rng, f, s, e)
            })
            .collect(),
        // Product placed around the top (5) or bottom (6) of the range by one operand's
        // exponent: results that saturate, flush, or just fit.
        5 | 6 => {
            let mut v: Vec<u64> = (0..n).map(|_| near_one(rng, f)).collect();
            let i = rng.random_range(0..n);
            let others: f64 = v
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(_, &x)| log2_abs(f, x))
                .sum();
            let target = if shape == 5 {
                (f.e_max() + p as i32) as f64
            } else {
                (f.e_min() + p as i32 - 1) as f64
            } + rng.random_range(-2..=1) as f64;
            let x = f.from_bits(v[i]).unwrap();
            let e = (target - others - (x.sig() as f64).log2()).round() as i32;
            v[i] = val(rng, f, x.sig(), e);
            v
        }
        // The largest significand (carries into a new binade), and max finite values.
        _ => (0..n)
            .map(|_| {
                if rng.random_range(0..8) == 0 {
                    f.max_finite(rng.random_bool(0.5)).to_bits()
                } else {
                    let s = ((1u64 << p) - 1 - rng.random_range(0..2)).max(half);
                    near_one_with(rng, f, s)
                }
            })
            .collect(),
    };
    // A zero now and then.
    if rng.random_range(0..16) == 0 {
        let i = rng.random_range(0..n);
        v[i] = 0;
    }
    v
}

fn random_cases(f: Format, n: usize, count: usize, seed: u64) -> Vec<Vec<u64>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..count)
        .map(|i| case(&mut rng, f, n, (i % 8) as u32))
        .collect()
}

/// All pairs of F(4,4) values.
#[test]
fn product_pairs_exhaustive_f44() {
    let f = fmt(4, 4);
    let vals: Vec<u64> = f.all_values().map(|v| v.to_bits()).collect();
    let cases: Vec<Vec<u64>> = vals
        .iter()
        .flat_map(|&a| vals.iter().map(move |&b| vec![a, b]))
        .collect();
    check("product n=2", &build(f, 2), f, &cases);
}

/// The logarithmic construction forced at n = 2: all F(4,4) pairs; and at n = 2..7 on random
/// lists at F(8,5) (where `product` itself uses the monomial form).
#[test]
fn product_logarithmic_small_n() {
    let f = fmt(4, 4);
    let vals: Vec<u64> = f.all_values().map(|v| v.to_bits()).collect();
    let cases: Vec<Vec<u64>> = vals
        .iter()
        .flat_map(|&a| vals.iter().map(move |&b| vec![a, b]))
        .collect();
    let c = build_with(f, 2, product_logarithmic);
    assert_eq!(c.depth(), LOG_DEPTH);
    check("product_logarithmic n=2", &c, f, &cases);
    let f = fmt(8, 5);
    for n in 2..8usize {
        let c = build_with(f, n, product_logarithmic);
        assert_eq!(c.depth(), LOG_DEPTH, "n = {n}");
        let cases = random_cases(f, n, 4_000, 500 + n as u64);
        check(&format!("product_logarithmic n={n}"), &c, f, &cases);
    }
}

/// The logarithmic construction itself on all F(4,4) pairs and triples' shapes: n = 8 lists
/// whose first two operands run over all pairs and the rest are 1 or random.
#[test]
fn product_log_all_pairs_f44() {
    let f = fmt(4, 4);
    let n = LOG_MIN_OPERANDS;
    assert!(uses_log_construction(f.p(), n));
    let c = build(f, n);
    let vals: Vec<u64> = f.all_values().map(|v| v.to_bits()).collect();
    let one = f.one().unwrap().to_bits();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut cases = Vec::new();
    for &a in &vals {
        for &b in &vals {
            let mut v = vec![a, b];
            if rng.random_bool(0.5) {
                v.extend(std::iter::repeat_n(one, n - 2));
            } else {
                v.extend((0..n - 2).map(|_| case(&mut rng, f, 1, 0)[0]));
            }
            cases.push(v);
        }
    }
    check("product n=8 pairs", &c, f, &cases);
}

/// Random operand lists of many shapes for n = 2, 3, 8, 64, 256 at F(4,4) and F(8,5).
#[test]
fn product_random_lists() {
    for (f, seed) in [(fmt(4, 4), 100u64), (fmt(8, 5), 200)] {
        for (n, count) in [
            (2usize, 20_000usize),
            (3, 20_000),
            (8, 20_000),
            (64, 4_000),
            (256, 1_000),
        ] {
            let c = build(f, n);
            let cases = random_cases(f, n, count, seed + n as u64);
            check(&format!("product n={n}"), &c, f, &cases);
        }
    }
}

/// Every n from 2 to 20 at F(8,5), and the switch between constructions.
#[test]
fn product_every_small_n_f85() {
    let f = fmt(8, 5);
    for n in 2..=20usize {
        let c = build(f, n);
        let cases = random_cases(f, n, 2_000, 300 + n as u64);
        check(&format!("product n={n}"), &c, f, &cases);
    }
}

/// Least-squares slope of log(y) against log(x).
fn slope(xs: &[f64], ys: &[f64]) -> f64 {
    let lx: Vec<f64> = xs.iter().map(|x| x.ln()).collect();
    let ly: Vec<f64> = ys.iter().map(|y| y.ln()).collect();
    let m = lx.len() as f64;
    let (sx, sy) = (lx.iter().sum::<f64>() / m, ly.iter().sum::<f64>() / m);
    let num: f64 = lx.iter().zip(&ly).map(|(a, b)| (a - sx) * (b - sy)).sum();
    let den: f64 = lx.iter().map(|a| (a - sx) * (a - sx)).sum();
    num / den
}

/// Constant depth for n >= 8 and polynomial size: n = 2, 4, ..., 1024 at F(8,5); the fitted
/// log-log slopes of gates and fan-in over n >= 8 stay below 2.2.
#[test]
fn product_depth_constant_and_size_slope_f85() {
    let f = fmt(8, 5);
    let mut ns = Vec::new();
    let (mut gates, mut fan_in) = (Vec::new(), Vec::new());
    let mut n = 2usize;
    while n <= 1024 {
        let c = build(f, n);
        let st = c.stats();
        println!(
            "n={n:5} depth {} gates {} fan-in {} forms {} form_terms {}",
            st.depth, st.gates, st.fan_in, st.forms, st.form_terms
        );
        if n >= LOG_MIN_OPERANDS {
            assert_eq!(st.depth, LOG_DEPTH, "n = {n}");
            ns.push(n as f64);
            gates.push(st.gates as f64);
            fan_in.push(st.fan_in as f64);
        } else {
            assert!(st.depth <= LOG_DEPTH, "n = {n}: depth {}", st.depth);
        }
        n *= 2;
    }
    let (sg, sw) = (slope(&ns, &gates), slope(&ns, &fan_in));
    println!("fitted slopes: gates {sg:.3}, fan-in {sw:.3}");
    assert!(sg < 2.2 && sw < 2.2, "slopes gates {sg}, fan-in {sw}");
}

/// Depth is the same (LOG_DEPTH) for every n >= 8 at other formats with p >= 3 (a sample of
/// n). At p = 2 (significands 2 and 3 only) one-bit minterms and some block levels fold
/// away: the depth is bounded by LOG_DEPTH - 1 but not always attained.
#[test]
fn product_depth_other_formats() {
    for f in [fmt(3, 3), fmt(4, 4), fmt(11, 6)] {
        for n in [8usize, 9, 10, 16, 33] {
            assert_eq!(build(f, n).depth(), LOG_DEPTH, "{f} n = {n}");
        }
    }
    for n in [8usize, 9, 16, 64] {
        assert!(build(fmt(2, 3), n).depth() < LOG_DEPTH, "F(2,3) n = {n}");
    }
}

/// F(11,6) and F(2,3) spot checks of the logarithmic construction.
#[test]
fn product_random_other_formats() {
    for (f, n, count) in [
        (fmt(11, 6), 9usize, 1_000usize),
        (fmt(2, 3), 8, 4_000),
        (fmt(2, 3), 40, 4_000),
    ] {
        let c = build(f, n);
        let cases = random_cases(f, n, count, 400 + n as u64);
        check(&format!("product n={n}"), &c, f, &cases);
    }
}

/// Bad input is an error, not a panic.
#[test]
fn product_errors() {
    let f = fmt(8, 5);
    let mut b = Builder::new();
    assert!(matches!(
        product(&mut b, &[]),
        Err(GadgetError::TooFewOperands { .. })
    ));
    let x = FloatWord::input(&mut b, "x", f).unwrap();
    let y = FloatWord::input(&mut b, "y", fmt(8, 6)).unwrap();
    assert!(matches!(
        product(&mut b, &[x.clone(), y]),
        Err(GadgetError::FormatMismatch { .. })
    ));
    // One operand is its own product.
    assert_eq!(product(&mut b, std::slice::from_ref(&x)).unwrap(), x);
    // Beyond the monomial form's limit at p > 12 the error names the limit.
    let big = fmt(16, 5);
    let limit = max_product_operands(16);
    let zs: Vec<FloatWord> = (0..=limit)
        .map(|i| FloatWord::input(&mut b, &format!("z{i}"), big).unwrap())
        .collect();
    match product(&mut b, &zs) {
        Err(GadgetError::Unsupported { limit, .. }) => assert!(limit.contains("p = 16")),
        other => panic!("p = 16, n = {}: {other:?}", zs.len()),
    }
    assert!(product(&mut b, &zs[..limit]).is_ok());
}

/// Size table (not run by default): `PRODUCT_TABLE="p q n1 n2 ..." cargo test --test
/// gadgets_float_product -- --ignored --nocapture product_size_table`.
#[test]
#[ignore = "size table report, not a check"]
fn product_size_table() {
    let spec = std::env::var("PRODUCT_TABLE").unwrap_or_else(|_| "8 5 8 64 256".into());
    let v: Vec<usize> = spec
        .split_whitespace()
        .map(|s| s.parse().unwrap())
        .collect();
    let f = fmt(v[0] as u32, v[1] as u32);
    for &n in &v[2..] {
        let t = std::time::Instant::now();
        let c = build(f, n);
        let st = c.stats();
        println!(
            "{f} n={n:5} depth {} gates {} fan-in {} forms {} form_terms {} build {:.2}s",
            st.depth,
            st.gates,
            st.fan_in,
            st.forms,
            st.form_terms,
            t.elapsed().as_secs_f64()
        );
    }
}
