//! Iterated sum, iterated product and dot product against exact BigInt oracles (docs/float.md:
//! exact result, one rounding; dot = round(sum_i round(a_i * b_i))).
//!
//! The oracle keeps values as dyadic integers `N * 2^E` (BigInt) and rounds with its own code.

use num_bigint::{BigInt, BigUint, Sign};
use num_traits::{One, Zero};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tcvar::float::{Float, FloatError, Format};

/// (negative, exponent, significand) or None for zero.
type Parts = Option<(bool, i64, u64)>;

fn parts(x: Float) -> Parts {
    (!x.is_zero()).then(|| (x.is_negative(), x.exp() as i64, x.sig()))
}

/// Independent rounding of `n * 2^e` to F(p, q): nearest p-bit significand (ties to even),
/// saturation above e_max, zero below e_min.
fn oracle_round(p: u32, q: u32, n: &BigInt, e: i64) -> Parts {
    if n.is_zero() {
        return None;
    }
    let (e_min, e_max) = (-(1i64 << (q - 1)), (1i64 << (q - 1)) - 1);
    let neg = n.sign() == Sign::Minus;
    let a: BigUint = n.magnitude().clone();
    let b = a.bits() as i64;
    let (mut m, mut ex) = if b <= p as i64 {
        (a << (p as i64 - b) as usize, e - (p as i64 - b))
    } else {
        let sh = (b - p as i64) as usize;
        let m = &a >> sh;
        let rem = &a - (&m << sh);
        let half = BigUint::one() << (sh - 1);
        let odd = m.bit(0);
        let m = if rem > half || (rem == half && odd) {
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
        return Some((neg, e_max, (1u64 << p) - 1));
    }
    if ex < e_min {
        return None;
    }
    Some((neg, ex, m.to_u64_digits()[0]))
}

fn as_dyadic(x: Float) -> (BigInt, i64) {
    let m = BigInt::from(x.sig());
    (if x.is_negative() { -m } else { m }, x.exp() as i64)
}

/// Exact sum of the values as `N * 2^E`.
fn exact_sum(xs: &[(BigInt, i64)]) -> (BigInt, i64) {
    let nz: Vec<&(BigInt, i64)> = xs.iter().filter(|(n, _)| !n.is_zero()).collect();
    let Some(e0) = nz.iter().map(|(_, e)| *e).min() else {
        return (BigInt::zero(), 0);
    };
    let mut s = BigInt::zero();
    for (n, e) in nz {
        s += n << (e - e0) as usize;
    }
    (s, e0)
}

fn oracle_sum(f: Format, xs: &[Float]) -> Parts {
    let d: Vec<(BigInt, i64)> = xs.iter().map(|&x| as_dyadic(x)).collect();
    let (n, e) = exact_sum(&d);
    oracle_round(f.p(), f.q(), &n, e)
}

fn oracle_product(f: Format, xs: &[Float]) -> Parts {
    let mut n = BigInt::one();
    let mut e = 0i64;
    for &x in xs {
        let (m, ex) = as_dyadic(x);
        n *= m;
        e += ex;
    }
    oracle_round(f.p(), f.q(), &n, e)
}

fn oracle_dot(f: Format, a: &[Float], b: &[Float]) -> Parts {
    let rounded: Vec<(BigInt, i64)> = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| {
            let (mx, ex) = as_dyadic(x);
            let (my, ey) = as_dyadic(y);
            match oracle_round(f.p(), f.q(), &(mx * my), ex + ey) {
                None => (BigInt::zero(), 0),
                Some((neg, e, m)) => (
                    if neg {
                        -BigInt::from(m)
                    } else {
                        BigInt::from(m)
                    },
                    e,
                ),
            }
        })
        .collect();
    let (n, e) = exact_sum(&rounded);
    oracle_round(f.p(), f.q(), &n, e)
}

/// A random value with exponent in `[e_lo, e_hi]`.
fn random_value(f: Format, rng: &mut ChaCha8Rng, e_lo: i32, e_hi: i32) -> Float {
    let m = rng.random_range((1u64 << (f.p() - 1))..(1u64 << f.p()));
    let e = rng.random_range(e_lo.max(f.e_min())..=e_hi.min(f.e_max()));
    f.from_parts(rng.random(), e, m).unwrap()
}

const FORMATS: [(u32, u32); 6] = [(4, 4), (8, 5), (11, 6), (24, 9), (32, 16), (16, 12)];
const LENGTHS: [usize; 8] = [0, 1, 2, 3, 17, 256, 1000, 4096];

#[test]
fn sum_matches_exact_oracle() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut checked = 0;
    for (p, q) in FORMATS {
        let f = Format::new(p, q).unwrap();
        for n in LENGTHS {
            // Full exponent range, a narrow range (exact i128 path), and a mid range.
            for (lo, hi) in [
                (f.e_min(), f.e_max()),
                (-3, 3),
                (-40, 40),
                (f.e_max() - 5, f.e_max()),
            ] {
                let xs: Vec<Float> = (0..n).map(|_| random_value(f, &mut rng, lo, hi)).collect();
                assert_eq!(
                    parts(f.sum(&xs).unwrap()),
                    oracle_sum(f, &xs),
                    "{f} n={n} [{lo},{hi}]"
                );
                checked += 1;
            }
        }
    }
    println!("{checked} random sums checked");
}

#[test]
fn sum_cancellation_and_range_ends() {
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    for (p, q) in FORMATS {
        let f = Format::new(p, q).unwrap();
        let max = f.max_finite(false);
        let min = f.min_positive();
        let one_ulp_below_max = f.from_parts(false, f.e_max(), max.sig() - 1).unwrap();
        let cases: Vec<Vec<Float>> = vec![
            // large + (-large) + tiny = tiny exactly.
            vec![max, max.neg(), min],
            vec![min, max, max.neg()],
            vec![max, min, max.neg(), min.neg(), min],
            // Saturation: the sum exceeds the range; and it comes back after cancellation.
            vec![max, max],
            vec![max, max, max.neg()],
            vec![max.neg(), max.neg(), min],
            vec![one_ulp_below_max, min],
            // Flush: the smallest values cancel to below e_min (or to zero).
            vec![min, min.neg()],
            vec![min; 4096],
            vec![max; 4096],
            // Alternating huge values cancel; a tiny one survives.
            (0..4096)
                .map(|i| {
                    if i == 1000 {
                        min
                    } else if i % 2 == 0 {
                        max
                    } else {
                        max.neg()
                    }
                })
                .collect(),
            (0..4095)
                .map(|i| if i % 2 == 0 { max } else { max.neg() })
                .collect(),
        ];
        for xs in cases {
            assert_eq!(
                parts(f.sum(&xs).unwrap()),
                oracle_sum(f, &xs),
                "{f} {:?}",
                &xs[..3.min(xs.len())]
            );
        }
        // Random cancellations: a random vector, its negation shuffled in, and a few tiny terms.
        for n in [2, 64, 2048] {
            let mut xs: Vec<Float> = (0..n)
                .map(|_| random_value(f, &mut rng, f.e_min(), f.e_max()))
                .collect();
            let neg: Vec<Float> = xs.iter().map(|x| x.neg()).collect();
            xs.extend(neg);
            xs.push(random_value(f, &mut rng, f.e_min(), f.e_min() + 2));
            for i in (1..xs.len()).rev() {
                let j = rng.random_range(0..=i);
                xs.swap(i, j);
            }
            let got = f.sum(&xs).unwrap();
            assert_eq!(parts(got), oracle_sum(f, &xs), "{f} cancellation n={n}");
            assert!(!got.is_zero());
        }
    }
    // Specific values: 2^30 + 1 - 2^30 = 1 in F(24, 9) (a left-to-right f32 loop would give 0).
    let f = Format::new(24, 9).unwrap();
    let big = f.from_f64(2f64.powi(30)).unwrap();
    let one = f.one().unwrap();
    assert_eq!(f.sum(&[big, one, big.neg()]).unwrap(), one);
    assert_eq!(f.sum(&[]).unwrap(), f.zero());
}

#[test]
fn product_matches_exact_oracle() {
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let mut checked = 0;
    for (p, q) in FORMATS {
        let f = Format::new(p, q).unwrap();
        for n in LENGTHS {
            // Values near 1 (the product stays in range for long), values anywhere (the product
            // saturates or flushes), and values at both exponent ends.
            let near_one = 1 - p as i32;
            for (lo, hi) in [
                (near_one, near_one),
                (near_one - 1, near_one),
                (f.e_min(), f.e_max()),
                (f.e_min(), f.e_min()),
                (f.e_max(), f.e_max()),
            ] {
                let xs: Vec<Float> = (0..n).map(|_| random_value(f, &mut rng, lo, hi)).collect();
                let want = if n == 0 {
                    oracle_round(p, q, &BigInt::one(), 0)
                } else {
                    oracle_product(f, &xs)
                };
                match f.product(&xs) {
                    Ok(got) => assert_eq!(parts(got), want, "{f} n={n} [{lo},{hi}]"),
                    Err(e) => {
                        assert_eq!(n, 0);
                        assert!(matches!(e, FloatError::NotRepresentable { .. }), "{e}");
                    }
                }
                checked += 1;
            }
        }
        // Exact cases: max * min, a zero factor, signs.
        let max = f.max_finite(false);
        let min = f.min_positive();
        for xs in [
            vec![max, min],
            vec![max, max.neg(), min],
            vec![min, min],
            vec![max, f.zero(), max],
        ] {
            assert_eq!(
                parts(f.product(&xs).unwrap()),
                oracle_product(f, &xs),
                "{f}"
            );
        }
    }
    println!("{checked} random products checked");
    // The empty product is 1 where 1 is representable, an error where it is not.
    assert_eq!(
        Format::new(8, 5).unwrap().product(&[]).unwrap(),
        Format::new(8, 5).unwrap().one().unwrap()
    );
    let no_one = Format::new(32, 2).unwrap(); // e_min = -2 > 1 - 32
    assert!(matches!(
        no_one.product(&[]),
        Err(FloatError::NotRepresentable { .. })
    ));
}

#[test]
fn dot_matches_exact_oracle() {
    let mut rng = ChaCha8Rng::seed_from_u64(14);
    for (p, q) in FORMATS {
        let f = Format::new(p, q).unwrap();
        for n in LENGTHS {
            for (lo, hi) in [
                (f.e_min(), f.e_max()),
                (-(p as i32) - 4, 2 - p as i32),
                (f.e_min(), f.e_min() + 3),
            ] {
                let a: Vec<Float> = (0..n).map(|_| random_value(f, &mut rng, lo, hi)).collect();
                let b: Vec<Float> = (0..n).map(|_| random_value(f, &mut rng, lo, hi)).collect();
                assert_eq!(
                    parts(f.dot(&a, &b).unwrap()),
                    oracle_dot(f, &a, &b),
                    "{f} n={n}"
                );
            }
        }
        // dot rounds each product: 3 products that each round, summed exactly.
        let x = f.max_finite(false);
        let y = f.min_positive();
        let a = [x, x, y];
        let b = [x, x.neg(), y];
        assert_eq!(parts(f.dot(&a, &b).unwrap()), oracle_dot(f, &a, &b));
    }
    let f = Format::new(8, 5).unwrap();
    let g = Format::new(8, 6).unwrap();
    assert!(matches!(
        f.dot(&[f.zero()], &[f.zero(), f.zero()]),
        Err(FloatError::LengthMismatch { left: 1, right: 2 })
    ));
    assert!(matches!(
        f.dot(&[f.zero()], &[g.zero()]),
        Err(FloatError::FormatMismatch { .. })
    ));
    assert!(matches!(
        f.sum(&[f.zero(), g.zero()]),
        Err(FloatError::FormatMismatch { .. })
    ));
    assert!(matches!(
        f.product(&[g.zero()]),
        Err(FloatError::FormatMismatch { .. })
    ));
}

/// A tie broken only by a term far below it: x + ulp/2 + tiny rounds up, x + ulp/2 - tiny rounds
/// down, for tiny at many depths (inside and far below any fixed-width window of the sum).
#[test]
fn sum_tie_broken_by_far_tiny_term() {
    for (p, q) in [(8, 9), (24, 9), (11, 12), (32, 16)] {
        let f = Format::new(p, q).unwrap();
        let x = f.from_parts(false, 0, 1u64 << (p - 1)).unwrap(); // 2^(p-1), ulp 1
        let x1 = f.from_parts(false, 0, (1u64 << (p - 1)) + 1).unwrap(); // odd significand
        let half = f.from_parts(false, -(p as i32), 1u64 << (p - 1)).unwrap(); // 1/2
        let mut depths = vec![10, 60, 100, 126, 127, 128, 129, 130, 190, 200, 250];
        depths.retain(|&d| -d - (p as i32) >= f.e_min());
        assert!(depths.len() >= 5, "{f}");
        for d in depths {
            let tiny = f
                .from_parts(false, -d - (p as i32), 1u64 << (p - 1))
                .unwrap(); // 2^-d
            let up = f.from_parts(false, 0, (1u64 << (p - 1)) + 1).unwrap();
            let two_up = f.from_parts(false, 0, (1u64 << (p - 1)) + 2).unwrap();
            // Plain ties go to even.
            assert_eq!(f.sum(&[x, half]).unwrap(), x, "{f}");
            assert_eq!(f.sum(&[x1, half]).unwrap(), two_up, "{f}");
            // Broken ties.
            for xs in [
                vec![x, half, tiny],
                vec![tiny, x, half],
                vec![half, tiny, x],
            ] {
                assert_eq!(f.sum(&xs).unwrap(), up, "{f} d={d}");
                assert_eq!(parts(f.sum(&xs).unwrap()), oracle_sum(f, &xs));
            }
            for xs in [vec![x1, half, tiny.neg()], vec![tiny.neg(), half, x1]] {
                assert_eq!(f.sum(&xs).unwrap(), up, "{f} d={d}");
                assert_eq!(parts(f.sum(&xs).unwrap()), oracle_sum(f, &xs));
            }
            // Negative mirror.
            let neg: Vec<Float> = [x, half, tiny].iter().map(|v| v.neg()).collect();
            assert_eq!(f.sum(&neg).unwrap(), up.neg(), "{f} d={d}");
            // The same through dot (products by one where 1 is representable).
            if let Ok(one) = f.one() {
                assert_eq!(f.dot(&[x, half, tiny], &[one, one, one]).unwrap(), up);
            }
        }
    }
}
