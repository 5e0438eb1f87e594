//! Edge cases of docs/float.md: saturation, flush to zero, x/0, 0/0, sqrt and rsqrt of non-positive
//! values, floor in odd formats, format errors, and the bit encoding's canonical form.

use std::cmp::Ordering;

use num_bigint::BigUint;
use num_traits::One;
use tcvar::float::{Float, FloatError, Format};

fn fm(p: u32, q: u32) -> Format {
    Format::new(p, q).unwrap()
}

fn v(f: Format, x: f64) -> Float {
    let r = f.from_f64(x).unwrap();
    assert_eq!(r.to_f64(), x, "{x} not exact in {f}");
    r
}

#[test]
fn invalid_formats_name_the_bound() {
    for (p, q, needle) in [
        (0, 5, "p = 0 is below the minimum 2"),
        (1, 5, "p = 1 is below the minimum 2"),
        (33, 5, "p = 33 is above the maximum 32"),
        (8, 1, "q = 1 is below the minimum 2"),
        (8, 17, "q = 17 is above the maximum 16"),
    ] {
        let e = Format::new(p, q).unwrap_err();
        assert!(matches!(e, FloatError::InvalidFormat { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(msg.contains(needle), "{msg}");
        assert!(msg.contains(&format!("F({p},{q})")), "{msg}");
    }
    for (p, q) in [(2, 2), (32, 16), (2, 16), (32, 2), (24, 9)] {
        let f = fm(p, q);
        assert_eq!((f.p(), f.q(), f.width()), (p, q, p + q + 1));
        assert_eq!(f.e_min(), -(1i32 << (q - 1)));
        assert_eq!(f.e_max(), (1i32 << (q - 1)) - 1);
    }
    assert_eq!(fm(24, 9).to_string(), "F(24,9)");
    assert_eq!(fm(24, 9).e_min(), -256);
    assert_eq!(fm(11, 6).e_max(), 31);
}

#[test]
fn format_mismatch_is_an_error_for_every_binary_operation() {
    let (f, g) = (fm(8, 5), fm(8, 6));
    let (a, b) = (v(f, 1.5), v(g, 1.5));
    let mismatch = |r: Result<Float, FloatError>| {
        assert_eq!(r, Err(FloatError::FormatMismatch { left: f, right: g }));
    };
    mismatch(a.add(b));
    mismatch(a.sub(b));
    mismatch(a.mul(b));
    mismatch(a.div(b));
    mismatch(a.max(b));
    mismatch(a.min(b));
    mismatch(f.sum(&[a, b]));
    mismatch(f.product(&[a, b]));
    mismatch(f.dot(&[a, a], &[a, b]));
    assert_eq!(
        a.cmp_value(b),
        Err(FloatError::FormatMismatch { left: f, right: g })
    );
    assert!(a
        .add(b)
        .unwrap_err()
        .to_string()
        .contains("F(8,5) vs F(8,6)"));
    // Same value, different formats: still unequal as Floats.
    assert_ne!(a, b);
}

#[test]
fn saturation() {
    for (p, q) in [(2, 2), (4, 4), (8, 5), (11, 6), (24, 9), (32, 16)] {
        let f = fm(p, q);
        let max = f.max_finite(false);
        let nmax = f.max_finite(true);
        assert_eq!(max.sig(), (1u64 << p) - 1);
        assert_eq!(max.exp(), f.e_max());
        assert_eq!(nmax, max.neg());
        assert_eq!(max.add(max).unwrap(), max);
        assert_eq!(nmax.sub(max).unwrap(), nmax);
        assert_eq!(max.mul(max).unwrap(), max);
        assert_eq!(max.mul(nmax).unwrap(), nmax);
        assert_eq!(max.div(f.min_positive()).unwrap(), max);
        assert_eq!(f.from_f64(f64::INFINITY).unwrap(), max);
        assert_eq!(f.from_f64(f64::NEG_INFINITY).unwrap(), nmax);
        if q <= 10 {
            assert_eq!(f.from_f64(f64::MAX).unwrap(), max);
        }
        // (2^p - 1/2) * 2^e_max rounds up to 2^p * 2^e_max: exponent e_max + 1, saturates.
        let tie = BigUint::from((1u64 << (p + 1)) - 1);
        assert_eq!(f.round_exact(false, &tie, f.e_max() as i64 - 1), max);
        assert_eq!(f.round_exact(true, &tie, f.e_max() as i64 - 1), nmax);
        // Far beyond: huge magnitudes and exponents.
        let huge = BigUint::one() << 100_000u32;
        assert_eq!(f.round_exact(false, &huge, 0), max);
        assert_eq!(f.round_exact(false, &BigUint::one(), i64::MAX), max);
        assert_eq!(f.round_exact(true, &huge, i64::MAX), nmax);
        // max + (a value below half an ulp of max) stays max; no overflow to anything else.
        assert_eq!(max.add(f.min_positive()).unwrap(), max);
    }
}

#[test]
fn flush_to_zero() {
    for (p, q) in [(2, 2), (4, 4), (8, 5), (11, 6), (24, 9), (32, 16)] {
        let f = fm(p, q);
        let min = f.min_positive();
        assert_eq!((min.sig(), min.exp()), (1u64 << (p - 1), f.e_min()));
        let two = f.from_i64(2);
        if two.exp() >= f.e_min() && !two.is_zero() && two != f.max_finite(false) {
            assert_eq!(min.div(two).unwrap(), f.zero());
        }
        assert_eq!(
            min.mul(min).unwrap(),
            if f.e_min() + (p as i32 - 1) < 0 {
                f.zero()
            } else {
                min.mul(min).unwrap()
            }
        );
        assert_eq!(min.sub(min).unwrap(), f.zero());
        assert_eq!(
            f.from_f64(f64::MIN_POSITIVE / 1e10).unwrap().is_zero(),
            q <= 10
        );
        assert_eq!(f.round_exact(false, &BigUint::one(), i64::MIN), f.zero());
        // (2^(p+1) - 1) * 2^(e_min - 2) = (2^(p-1) - 1/4) * 2^e_min: a tie between
        // (2^p - 1) * 2^(e_min-1) (odd) and 2^p * 2^(e_min-1) = min_positive: rounds up to min.
        let below = BigUint::from((1u64 << (p + 1)) - 1);
        assert_eq!(f.round_exact(false, &below, f.e_min() as i64 - 2), min);
        // (2^(p+1) - 3) * 2^(e_min - 2): a tie that goes to the even (2^p - 2) * 2^(e_min-1),
        // whose exponent is below e_min: zero.
        let below = BigUint::from((1u64 << (p + 1)) - 3);
        assert_eq!(f.round_exact(false, &below, f.e_min() as i64 - 2), f.zero());
        assert_eq!(f.round_exact(true, &below, f.e_min() as i64 - 2), f.zero());
    }
    // Concrete: F(24,9) smallest positive is 2^23 * 2^-256 = 2^-233.
    let f = fm(24, 9);
    assert_eq!(f.min_positive().to_f64(), 2f64.powi(-233));
    assert_eq!(f.from_f64(2f64.powi(-234)).unwrap(), f.zero()); // tie with zero? below: flush
    assert_eq!(
        f.from_f64(2f64.powi(-233) * (1.0 - 2f64.powi(-25)))
            .unwrap(),
        f.min_positive()
    );
}

#[test]
fn no_negative_zero() {
    for (p, q) in [(4, 4), (24, 9)] {
        let f = fm(p, q);
        let x = v(f, 1.5);
        for z in [
            x.sub(x).unwrap(),
            x.neg().add(x).unwrap(),
            x.neg().mul(f.zero()).unwrap(),
            f.zero().neg(),
            f.zero().div(x.neg()).unwrap(),
            f.from_f64(-0.0).unwrap(),
            f.from_f64(-1e-300).unwrap(),
            f.from_parts(true, 3, 0).unwrap(),
            x.neg().sqrt(),
            f.sum(&[x, x.neg()]).unwrap(),
        ] {
            assert!(z.is_zero() && !z.is_negative(), "{z:?}");
            assert_eq!(z.to_bits(), 0);
            assert_eq!(z, f.zero());
            assert_eq!(z.to_f64().to_bits(), 0.0f64.to_bits());
        }
    }
}

#[test]
fn division_by_zero() {
    let f = fm(8, 5);
    let z = f.zero();
    assert_eq!(v(f, 3.0).div(z).unwrap(), f.max_finite(false));
    assert_eq!(v(f, -3.0).div(z).unwrap(), f.max_finite(true));
    assert_eq!(f.min_positive().div(z).unwrap(), f.max_finite(false));
    assert_eq!(z.div(z).unwrap(), z);
    assert_eq!(z.div(v(f, -3.0)).unwrap(), z);
    assert_eq!(v(f, 3.0).div(v(f, 4.0)).unwrap(), v(f, 0.75));
}

#[test]
fn sqrt_and_rsqrt_edges() {
    for (p, q) in [(2, 2), (4, 4), (8, 5), (24, 9), (32, 16), (32, 2)] {
        let f = fm(p, q);
        let max = f.max_finite(false);
        assert_eq!(f.zero().sqrt(), f.zero());
        assert_eq!(max.neg().sqrt(), f.zero());
        assert_eq!(f.min_positive().neg().sqrt(), f.zero());
        assert_eq!(f.zero().rsqrt(), max);
        assert_eq!(max.neg().rsqrt(), max);
        assert_eq!(f.min_positive().neg().rsqrt(), max);
        if let Ok(one) = f.one() {
            assert_eq!(one.sqrt(), one);
            assert_eq!(one.rsqrt(), one);
        }
        // sqrt(max) is in range except where sqrt(2^33) < min_positive (F(32,2)).
        assert_eq!(max.sqrt().is_zero(), (p, q) == (32, 2));
        assert_eq!(max.sqrt().cmp_value(max).unwrap(), Ordering::Less);
    }
    let f = fm(24, 9);
    assert_eq!(v(f, 4.0).sqrt(), v(f, 2.0));
    assert_eq!(v(f, 4.0).rsqrt(), v(f, 0.5));
    assert_eq!(v(f, 0.25).rsqrt(), v(f, 2.0));
    assert_eq!(
        v(f, 2.0).rsqrt().to_f64(),
        (1.0 / 2f64.sqrt()) as f32 as f64
    );
    assert_eq!(
        v(f, 3.0).rsqrt().to_f64(),
        (1.0 / 3f64.sqrt()) as f32 as f64
    );
    // rsqrt of the smallest positive value saturates where 1/sqrt(min) exceeds the range.
    let g = fm(4, 2); // values in [8 * 2^-2, 15 * 2^1] = [2, 30]
    assert_eq!(g.min_positive().rsqrt(), g.zero()); // 1/sqrt(2) < 2: flushes
    let h = fm(4, 6); // e in [-32, 31]: 1/sqrt(2^-29) = 2^14.5 is in range
    assert_eq!(
        h.min_positive().rsqrt().to_f64(),
        (2f64.powf(14.5) / 2048.0).round() * 2048.0 // p = 4: ulp 2^11 in [2^14, 2^15)
    );
}

#[test]
fn floor_edges() {
    let f = fm(4, 4);
    for (x, want) in [
        (2.5, 2.0),
        (-2.5, -3.0),
        (0.375, 0.0),
        (-0.375, -1.0),
        (7.5, 7.0),
        (-7.5, -8.0),
        (15.0, 15.0),
        (-0.0, 0.0),
    ] {
        assert_eq!(v(f, x).floor(), v(f, want), "floor({x})");
    }
    // F(32, 2): e in [-2, 1]; 1 is not representable (the smallest value is 2^31 * 2^-2).
    let f = fm(32, 2);
    assert!(f.one().is_err());
    let x = f.from_parts(false, -2, (1 << 31) + 1).unwrap(); // 2^29 + 0.25
    assert_eq!(x.floor(), f.from_parts(false, -2, 1 << 31).unwrap());
    assert_eq!(
        x.neg().floor(),
        f.from_parts(true, -2, (1 << 31) + 4).unwrap()
    ); // -(2^29 + 1)
    let y = f.from_parts(false, -1, (1u64 << 32) - 1).unwrap(); // 2^31 - 0.5
    assert_eq!(
        y.floor(),
        f.from_parts(false, -1, (1u64 << 32) - 2).unwrap() // 2^31 - 1
    );
    assert_eq!(y.neg().floor(), f.from_parts(true, 0, 1 << 31).unwrap()); // -2^31
                                                                          // F(2,2): values {2,3} * 2^e, e in [-2, 1], i.e. 0.5 .. 6.
    let f = fm(2, 2);
    assert_eq!(v(f, 0.75).floor(), f.zero());
    assert_eq!(v(f, -0.75).floor(), v(f, -1.0));
    assert_eq!(v(f, 1.5).floor(), v(f, 1.0));
    assert_eq!(v(f, -1.5).floor(), v(f, -2.0));
}

#[test]
fn encoding_rejects_non_canonical_words() {
    let f = fm(8, 5); // width 14: sig bits 0..8, exponent 8..13, sign 13
    let bad = |w: u64| {
        let e = f.from_bits(w).unwrap_err();
        assert!(matches!(e, FloatError::InvalidBits { .. }), "{w:#x}: {e:?}");
    };
    bad(1 << 14); // above the width
    bad(u64::MAX);
    bad(1 << 13); // "negative zero"
    bad(1 << 8); // zero significand with an exponent
    bad(0x7f); // significand without its leading one
    bad((1 << 13) | 0x7f);
    assert_eq!(f.from_bits(0).unwrap(), f.zero());
    assert_eq!(f.from_bits(0x80).unwrap(), f.min_positive());
    assert_eq!(f.from_bits((1 << 13) - 1).unwrap(), f.max_finite(false));
    assert_eq!(f.from_bits((1 << 14) - 1).unwrap(), f.max_finite(true));
    // 1.0 = 128 * 2^-7: biased exponent -7 - (-16) = 9.
    assert_eq!(f.one().unwrap().to_bits(), 128 | (9 << 8));
    // Round trip on the widest format, through all_values from both ends.
    let g = fm(32, 16);
    for x in g
        .all_values()
        .take(1000)
        .chain(g.all_values().rev().take(1000))
    {
        assert_eq!(g.from_bits(x.to_bits()).unwrap(), x);
        assert!(x.to_bits() >> g.width() == 0);
    }
    assert_eq!(g.all_values().next(), Some(g.max_finite(true)));
    assert_eq!(g.all_values().next_back(), Some(g.max_finite(false)));
    assert_eq!(g.num_values(), (1u64 << 48) + 1);
}

#[test]
fn from_parts_validation_and_conversions() {
    let f = fm(8, 5);
    assert!(matches!(
        f.from_parts(false, 0, 127),
        Err(FloatError::InvalidParts { .. })
    ));
    assert!(matches!(
        f.from_parts(false, 0, 256),
        Err(FloatError::InvalidParts { .. })
    ));
    assert!(matches!(
        f.from_parts(false, 16, 128),
        Err(FloatError::InvalidParts { .. })
    ));
    assert!(matches!(
        f.from_parts(true, -17, 128),
        Err(FloatError::InvalidParts { .. })
    ));
    assert_eq!(
        f.from_parts(true, -16, 128).unwrap(),
        f.min_positive().neg()
    );
    assert!(matches!(
        f.from_f64(f64::NAN),
        Err(FloatError::NotANumber { .. })
    ));
    assert!(matches!(
        f.from_f32(f32::NAN),
        Err(FloatError::NotANumber { .. })
    ));
    // f64 conversion of a wide format: out of the f64 range goes to inf / 0.
    let g = fm(32, 16);
    assert_eq!(g.max_finite(false).to_f64(), f64::INFINITY);
    assert_eq!(g.max_finite(true).to_f32(), f32::NEG_INFINITY);
    assert_eq!(g.min_positive().to_f64(), 0.0);
    // to_f32 rounds correctly: 1 + 2^-24 is a tie (to even: 1), 1 + 3*2^-25 rounds up.
    let h = fm(32, 8);
    let one_tie = h.from_parts(false, -31, (1u64 << 31) + (1 << 7)).unwrap();
    assert_eq!(one_tie.to_f32(), 1.0);
    let above = h
        .from_parts(false, -31, (1u64 << 31) + (1 << 7) + 1)
        .unwrap();
    assert_eq!(above.to_f32(), 1.0 + f32::EPSILON);
    // f32 subnormal results of to_f32 are correctly rounded too.
    let h = fm(32, 9);
    let tiny = h.from_parts(false, -180, (1u64 << 31) + (1 << 30)).unwrap(); // 1.5 * 2^-149
    assert_eq!(tiny.to_f32(), f32::from_bits(2)); // tie between 1 and 2 subnormal units: even
                                                  // Display shows an approximation and the exact parts.
    let s = v(f, -1.5).to_string();
    assert!(
        s.contains("-1.5") && s.contains("-192*2^-7") && s.contains("F(8,5)"),
        "{s}"
    );
    assert!(f.zero().to_string().contains("zero"));
    assert!(g.max_finite(false).to_string().contains("2^"));
}

#[test]
fn compare_max_min() {
    let f = fm(8, 5);
    let vals: Vec<Float> = f.all_values().collect();
    for w in vals.windows(2).step_by(7) {
        assert_eq!(w[0].cmp_value(w[1]).unwrap(), Ordering::Less);
        assert_eq!(w[1].cmp_value(w[0]).unwrap(), Ordering::Greater);
        assert_eq!(w[0].max(w[1]).unwrap(), w[1]);
        assert_eq!(w[0].min(w[1]).unwrap(), w[0]);
        assert_eq!(w[0].cmp_value(w[0]).unwrap(), Ordering::Equal);
    }
    assert_eq!(v(f, -1.0).abs(), v(f, 1.0));
    assert_eq!(v(f, 1.0).neg(), v(f, -1.0));
}

/// Addends more than 90 binades apart (the library's sticky-only path): the smaller one is far
/// below half an ulp of the larger, so the sum and difference round to the larger one, including
/// at binade boundaries where a borrow would cross into the lower binade.
#[test]
fn add_far_apart_operands() {
    for (p, q) in [(24, 9), (32, 16), (8, 9)] {
        let f = fm(p, q);
        let sigs = [1u64 << (p - 1), (1u64 << (p - 1)) + 1, (1u64 << p) - 1];
        for &sa in &sigs {
            for &sb in &sigs {
                for gap in [89, 90, 91, 92, 150, 255, 400] {
                    let ea = f.e_max() - 3;
                    let eb = ea - gap;
                    if eb < f.e_min() {
                        continue;
                    }
                    for (na, nb) in [(false, false), (false, true), (true, false), (true, true)] {
                        let a = f.from_parts(na, ea, sa).unwrap();
                        let b = f.from_parts(nb, eb, sb).unwrap();
                        assert_eq!(a.add(b).unwrap(), a, "{a} + {b}");
                        assert_eq!(b.add(a).unwrap(), a, "{b} + {a}");
                        assert_eq!(a.sub(b).unwrap(), a, "{a} - {b}");
                        assert_eq!(b.sub(a).unwrap(), a.neg(), "{b} - {a}");
                    }
                }
            }
        }
    }
}
