//! Exhaustive checks of every operation of small formats against an independent oracle.
//!
//! The oracle below never calls the library's rounding: it reads a value's parts into an exact
//! rational (num-rational), computes the exact result, and rounds it with its own code path
//! (find the binade by comparison, take floor and remainder, compare the remainder with 1/2).

use std::cmp::Ordering;

use num_bigint::BigInt;
use num_integer::Integer;
use num_rational::BigRational;
use num_traits::{One, Signed, Zero};
use tcvar::float::{Float, Format};

/// Oracle result: zero, or (negative, exponent, significand).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Exact {
    Zero,
    Val(bool, i64, u64),
}

struct Oracle {
    p: u32,
    e_min: i64,
    e_max: i64,
}

fn pow2(k: i64) -> BigRational {
    if k >= 0 {
        BigRational::from_integer(BigInt::one() << (k as usize))
    } else {
        BigRational::new(BigInt::one(), BigInt::one() << ((-k) as usize))
    }
}

impl Oracle {
    fn new(p: u32, q: u32) -> Oracle {
        Oracle {
            p,
            e_min: -(1i64 << (q - 1)),
            e_max: (1i64 << (q - 1)) - 1,
        }
    }

    /// Every value of the format, enumerated from (sign, exponent, significand) independently.
    fn values(&self) -> Vec<Exact> {
        let mut v = vec![Exact::Zero];
        for neg in [false, true] {
            for e in self.e_min..=self.e_max {
                for m in (1u64 << (self.p - 1))..(1u64 << self.p) {
                    v.push(Exact::Val(neg, e, m));
                }
            }
        }
        v
    }

    fn rat(&self, x: &Exact) -> BigRational {
        match *x {
            Exact::Zero => BigRational::zero(),
            Exact::Val(neg, e, m) => {
                let r = BigRational::from_integer(BigInt::from(m)) * pow2(e);
                if neg {
                    -r
                } else {
                    r
                }
            }
        }
    }

    /// round(x): nearest p-bit significand, ties to even; saturate above e_max, flush below.
    fn round(&self, x: &BigRational) -> Exact {
        if x.is_zero() {
            return Exact::Zero;
        }
        let neg = x.is_negative();
        let a = x.abs();
        let lo = BigRational::from_integer(BigInt::one() << (self.p - 1) as usize);
        let hi = BigRational::from_integer(BigInt::one() << self.p as usize);
        let mut e: i64 = a.numer().bits() as i64 - a.denom().bits() as i64 - self.p as i64;
        let mut scaled = &a / pow2(e);
        while scaled >= hi {
            e += 1;
            scaled = &a / pow2(e);
        }
        while scaled < lo {
            e -= 1;
            scaled = &a / pow2(e);
        }
        let n = scaled.floor();
        let frac = &scaled - &n;
        let half = BigRational::new(BigInt::one(), BigInt::from(2));
        let mut m = n.to_integer();
        match frac.cmp(&half) {
            Ordering::Greater => m += 1,
            Ordering::Equal => {
                if m.is_odd() {
                    m += 1
                }
            }
            Ordering::Less => {}
        }
        if m == BigInt::one() << self.p as usize {
            m = BigInt::one() << (self.p - 1) as usize;
            e += 1;
        }
        if e > self.e_max {
            return Exact::Val(neg, self.e_max, (1u64 << self.p) - 1);
        }
        if e < self.e_min {
            return Exact::Zero;
        }
        let (_, digits) = m.to_u64_digits();
        Exact::Val(neg, e, digits[0])
    }

    /// round(sqrt(y)) for y > 0: sqrt(y) lies in [s, s+1) * 2^-k with s = isqrt(floor(y 4^k));
    /// k is so large that no rounding boundary lies strictly inside such an interval.
    fn round_sqrt(&self, y: &BigRational) -> Exact {
        let k: i64 = 2 * (self.e_max - self.e_min) + 4 * self.p as i64 + 16;
        let scaled = y * pow2(2 * k);
        let fl = scaled.floor().to_integer();
        let s = fl.sqrt();
        let exact = scaled.is_integer() && &s * &s == fl;
        let mut r = BigRational::from_integer(s);
        if !exact {
            r += BigRational::new(BigInt::one(), BigInt::from(2));
        }
        self.round(&(r * pow2(-k)))
    }

    fn max_pos(&self) -> Exact {
        Exact::Val(false, self.e_max, (1u64 << self.p) - 1)
    }
}

fn parts(x: Float) -> Exact {
    if x.is_zero() {
        Exact::Zero
    } else {
        Exact::Val(x.is_negative(), x.exp() as i64, x.sig())
    }
}

fn lib_value(f: Format, x: &Exact) -> Float {
    match *x {
        Exact::Zero => f.zero(),
        Exact::Val(neg, e, m) => f.from_parts(neg, e as i32, m).unwrap(),
    }
}

fn check_format(p: u32, q: u32) {
    let f = Format::new(p, q).unwrap();
    let o = Oracle::new(p, q);
    let vals = o.values();
    let rats: Vec<BigRational> = vals.iter().map(|v| o.rat(v)).collect();
    let lib: Vec<Float> = vals.iter().map(|v| lib_value(f, v)).collect();
    let mut checked = 0u64;

    // Unary operations.
    for ((x, r), &l) in vals.iter().zip(&rats).zip(&lib) {
        assert_eq!(parts(l), *x, "from_parts/accessors {x:?}");
        assert_eq!(parts(l.neg()), o.round(&-r), "neg {x:?}");
        assert_eq!(parts(l.abs()), o.round(&r.abs()), "abs {x:?}");
        // floor: largest representable integer-valued value <= x, found by search.
        let want_floor = vals
            .iter()
            .zip(&rats)
            .filter(|(_, v)| v.is_integer() && *v <= r)
            .max_by(|a, b| a.1.cmp(b.1))
            .map(|(v, _)| v.clone())
            .unwrap();
        assert_eq!(parts(l.floor()), want_floor, "floor {x:?}");
        let want_sqrt = if r.is_positive() {
            o.round_sqrt(r)
        } else {
            Exact::Zero
        };
        assert_eq!(parts(l.sqrt()), want_sqrt, "sqrt {x:?}");
        let want_rsqrt = if r.is_positive() {
            o.round_sqrt(&r.recip())
        } else {
            o.max_pos()
        };
        assert_eq!(parts(l.rsqrt()), want_rsqrt, "rsqrt {x:?}");
        checked += 5;
    }

    // Binary operations over all pairs.
    for (i, (x, rx)) in vals.iter().zip(&rats).enumerate() {
        for (j, (y, ry)) in vals.iter().zip(&rats).enumerate() {
            let (a, b) = (lib[i], lib[j]);
            assert_eq!(
                parts(a.add(b).unwrap()),
                o.round(&(rx + ry)),
                "{x:?} + {y:?}"
            );
            assert_eq!(
                parts(a.sub(b).unwrap()),
                o.round(&(rx - ry)),
                "{x:?} - {y:?}"
            );
            assert_eq!(
                parts(a.mul(b).unwrap()),
                o.round(&(rx * ry)),
                "{x:?} * {y:?}"
            );
            let want_div = if ry.is_zero() {
                match x {
                    Exact::Zero => Exact::Zero,
                    Exact::Val(neg, _, _) => Exact::Val(*neg, o.e_max, (1u64 << p) - 1),
                }
            } else {
                o.round(&(rx / ry))
            };
            assert_eq!(parts(a.div(b).unwrap()), want_div, "{x:?} / {y:?}");
            assert_eq!(a.cmp_value(b).unwrap(), rx.cmp(ry), "cmp {x:?} {y:?}");
            let (mx, mn) = if rx >= ry { (x, y) } else { (y, x) };
            assert_eq!(parts(a.max(b).unwrap()), *mx, "max {x:?} {y:?}");
            assert_eq!(parts(a.min(b).unwrap()), *mn, "min {x:?} {y:?}");
            checked += 7;
        }
    }
    println!("{}: {} values, {checked} results checked", f, vals.len());
}

#[test]
fn exhaustive_f4_4() {
    check_format(4, 4);
}

#[test]
fn exhaustive_f3_3() {
    check_format(3, 3);
}

#[test]
fn exhaustive_f2_2_and_f3_2() {
    check_format(2, 2);
    check_format(3, 2);
    check_format(2, 3);
}

/// Unary operations over every value of a larger format (8193 values).
#[test]
fn exhaustive_unary_f8_5() {
    let (p, q) = (8, 5);
    let f = Format::new(p, q).unwrap();
    let o = Oracle::new(p, q);
    for x in o.values() {
        let l = lib_value(f, &x);
        let r = o.rat(&x);
        let want_sqrt = if r.is_positive() {
            o.round_sqrt(&r)
        } else {
            Exact::Zero
        };
        assert_eq!(parts(l.sqrt()), want_sqrt, "sqrt {x:?}");
        let want_rsqrt = if r.is_positive() {
            o.round_sqrt(&r.recip())
        } else {
            o.max_pos()
        };
        assert_eq!(parts(l.rsqrt()), want_rsqrt, "rsqrt {x:?}");
        // floor: floor(r) rounded down to the format (integers here have at most p bits or
        // are already integer-valued), checked through the oracle's rounding of floor(r) when
        // it is representable, else by direct search downwards.
        let fl = r.floor();
        let want = o.round(&fl);
        assert_eq!(
            o.rat(&want),
            fl,
            "floor({x:?}) must be representable in F(8,5)"
        );
        assert_eq!(parts(l.floor()), want, "floor {x:?}");
    }
}

/// Every word of the encoding width: from_bits accepts exactly the canonical encodings, and
/// to_bits / from_bits / to_f64 round-trip for every value; all_values is increasing.
#[test]
fn encoding_round_trip_small_formats() {
    for (p, q) in [(2, 2), (3, 3), (4, 4), (5, 3), (8, 5), (6, 8)] {
        let f = Format::new(p, q).unwrap();
        let o = Oracle::new(p, q);
        let mut accepted = 0u64;
        for w in 0..(1u64 << f.width()) {
            if let Ok(x) = f.from_bits(w) {
                accepted += 1;
                assert_eq!(x.to_bits(), w);
                // The word layout, independently: significand, biased exponent, sign.
                let m = w & ((1 << p) - 1);
                let be = (w >> p) & ((1 << q) - 1);
                let s = w >> (p + q) == 1;
                if w == 0 {
                    assert!(x.is_zero());
                } else {
                    assert_eq!(parts(x), Exact::Val(s, be as i64 + o.e_min, m));
                }
            } else {
                // Rejected words: nonzero with the significand's top bit clear.
                assert!(
                    w != 0 && w & (1 << (p - 1)) == 0,
                    "{f} rejected canonical word {w:#x}"
                );
            }
        }
        assert_eq!(accepted, f.num_values());
        assert!(f.from_bits(1u64 << f.width()).is_err());
        let all: Vec<Float> = f.all_values().collect();
        assert_eq!(all.len() as u64, f.num_values());
        for w in all.windows(2) {
            assert_eq!(w[0].cmp_value(w[1]).unwrap(), Ordering::Less);
        }
        for x in &all {
            assert_eq!(f.from_bits(x.to_bits()).unwrap(), *x);
            let exact = o.rat(&parts(*x));
            let back = BigRational::from_float(x.to_f64()).unwrap();
            assert_eq!(back, exact, "to_f64 of {x}");
            assert_eq!(f.from_f64(x.to_f64()).unwrap(), *x);
            if x.to_f32() as f64 == x.to_f64() {
                assert_eq!(f.from_f32(x.to_f32()).unwrap(), *x);
            }
        }
        let rev: Vec<Float> = f.all_values().rev().collect();
        assert_eq!(rev.len(), all.len());
        assert_eq!(rev[0], *all.last().unwrap());
        assert_eq!(
            f.all_values().nth(f.num_values() as usize / 2),
            Some(f.zero())
        );
    }
}

/// from_f64 against the oracle on many f64 inputs (random bits plus neighbours of every value's
/// rounding boundaries), for small formats where saturation and flush are common.
#[test]
fn from_f64_matches_oracle() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    for (p, q) in [(3, 3), (4, 4), (8, 5), (11, 6)] {
        let f = Format::new(p, q).unwrap();
        let o = Oracle::new(p, q);
        let mut inputs: Vec<f64> = Vec::new();
        let step = if p > 8 { 13 } else { 1 };
        for x in f.all_values().step_by(step) {
            let v = x.to_f64();
            // Midpoints to both neighbours (ties) and their f64 neighbours.
            let ulp = 2f64.powi(x.exp());
            for mid in [v + ulp / 2.0, v - ulp / 2.0, v - ulp / 4.0] {
                inputs.push(mid);
                inputs.push(f64::from_bits(mid.to_bits() + 1));
                inputs.push(f64::from_bits(mid.to_bits().saturating_sub(1)));
            }
        }
        for _ in 0..20_000 {
            let e = rng.random_range(-80..80);
            inputs.push(rng.random_range(-1.0..1.0) * 2f64.powi(e));
        }
        for v in inputs {
            if !v.is_finite() {
                continue;
            }
            let want = o.round(&BigRational::from_float(v).unwrap());
            assert_eq!(parts(f.from_f64(v).unwrap()), want, "{f}: from_f64({v:e})");
        }
    }
}
