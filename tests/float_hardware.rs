//! F(24,9), F(11,6) and F(8,9) against IEEE binary32, binary16 and bfloat16 (docs/float.md: for
//! inputs and results in the normal range, add, sub, mul, div and sqrt equal the IEEE result).
//!
//! References:
//! - f32: the hardware f32 operation.
//! - f16 / bf16 (the `half` crate): the operands are converted exactly to f32, the operation is
//!   done in hardware f32, and the result is rounded with `half`'s `from_f32` (round to nearest
//!   even with the full f32 significand as sticky). The double rounding is innocuous: for +, -,
//!   *, / and sqrt of p-bit operands, rounding first to p' >= 2p + 2 bits and then to p bits
//!   equals rounding once (Figueroa 1995), and 24 >= 2 * 11 + 2. As an independent check of
//!   that claim every compared reference value is also recomputed as the f64 operation rounded
//!   to p bits by code in this file, and the two must agree.
//!
//! A result counts when the reference is a normal number other than the smallest normal (a
//! result of exactly +-2^e_min may come from rounding up a value below the normal range, where
//! IEEE's gradual underflow and F(p,q)'s wider exponent range legitimately differ); exact zero
//! results of add and sub (exact cancellation) are compared too.

use half::{bf16, f16};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tcvar::float::{Float, Format};

#[derive(Clone, Copy, Debug)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Sqrt,
}
const OPS: [Op; 5] = [Op::Add, Op::Sub, Op::Mul, Op::Div, Op::Sqrt];

/// An IEEE binary format with `p` significand bits and normal exponents `[e_lo, e_hi]` (of the
/// value written as 1.f * 2^E), plus its reference arithmetic.
struct Ieee {
    name: &'static str,
    p: u32,
    e_lo: i32,
    e_hi: i32,
    /// The reference result of `op(a, b)` as an f64 (exact conversion of the IEEE result).
    reference: fn(Op, f64, f64) -> f64,
}

fn f32_ref(op: Op, a: f64, b: f64) -> f64 {
    let (a, b) = (a as f32, b as f32);
    (match op {
        Op::Add => a + b,
        Op::Sub => a - b,
        Op::Mul => a * b,
        Op::Div => a / b,
        Op::Sqrt => a.sqrt(),
    }) as f64
}

fn f16_ref(op: Op, a: f64, b: f64) -> f64 {
    f16::from_f32(f32_ref(op, a, b) as f32).to_f64()
}

fn bf16_ref(op: Op, a: f64, b: f64) -> f64 {
    bf16::from_f32(f32_ref(op, a, b) as f32).to_f64()
}

const F32: Ieee = Ieee {
    name: "f32",
    p: 24,
    e_lo: -126,
    e_hi: 127,
    reference: f32_ref,
};
const F16: Ieee = Ieee {
    name: "f16",
    p: 11,
    e_lo: -14,
    e_hi: 15,
    reference: f16_ref,
};
const BF16: Ieee = Ieee {
    name: "bf16",
    p: 8,
    e_lo: -126,
    e_hi: 127,
    reference: bf16_ref,
};

/// Round a finite f64 to `p` significant bits, nearest even (no exponent limits): the
/// independent recomputation of the f16 / bf16 references.
fn round_f64_to_p(v: f64, p: u32) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let bits = v.to_bits();
    let drop = 53 - p;
    let keep = bits >> drop;
    let rem = bits & ((1u64 << drop) - 1);
    let half = 1u64 << (drop - 1);
    let up = rem > half || (rem == half && keep & 1 == 1);
    f64::from_bits((keep + up as u64) << drop)
}

fn exact_f64(op: Op, a: f64, b: f64) -> f64 {
    match op {
        Op::Add => a + b,
        Op::Sub => a - b,
        Op::Mul => a * b,
        Op::Div => a / b,
        Op::Sqrt => a.sqrt(),
    }
}

impl Ieee {
    fn min_normal(&self) -> f64 {
        2f64.powi(self.e_lo)
    }

    fn max_normal(&self) -> f64 {
        (2.0 - 2f64.powi(1 - self.p as i32)) * 2f64.powi(self.e_hi)
    }

    /// `(-1)^neg * (1 + frac / 2^(p-1)) * 2^e`, exactly, as an f64.
    fn make(&self, neg: bool, e: i32, frac: u64) -> f64 {
        let e = e.clamp(self.e_lo, self.e_hi);
        let m = (1u64 << (self.p - 1)) | (frac & ((1u64 << (self.p - 1)) - 1));
        let v = m as f64 * 2f64.powi(e - (self.p as i32 - 1));
        if neg {
            -v
        } else {
            v
        }
    }

    fn random(&self, rng: &mut ChaCha8Rng, e: i32) -> f64 {
        let frac = rng.random::<u64>();
        self.make(rng.random(), e, frac)
    }

    /// A random pair of normal operands, drawn from several regimes.
    fn random_pair(&self, rng: &mut ChaCha8Rng) -> (f64, f64) {
        let span = self.e_hi - self.e_lo;
        let ea = rng.random_range(self.e_lo..=self.e_hi);
        match rng.random_range(0..6) {
            // Independent operands over the whole normal range.
            0 => (self.random(rng, ea), {
                let eb = rng.random_range(self.e_lo..=self.e_hi);
                self.random(rng, eb)
            }),
            // Moderate exponents: products and quotients mostly stay in range.
            1 => {
                let r = (span / 4).min(20);
                let ea = rng.random_range(-r..=r);
                (self.random(rng, ea), {
                    let eb = rng.random_range(-r..=r);
                    self.random(rng, eb)
                })
            }
            // Exponent spread around the significand width (alignment and sticky bits).
            2 => {
                let d = rng.random_range(-(self.p as i32 + 6)..=(self.p as i32 + 6));
                (self.random(rng, ea), self.random(rng, ea + d))
            }
            // Near cancellation: b = -a with a few low bits changed.
            3 => {
                let a = self.random(rng, ea);
                let bits = a.to_bits() ^ (rng.random_range(0u64..16) << (53 - self.p));
                (a, -f64::from_bits(bits))
            }
            // Operands far apart (up to 2^40).
            4 => {
                let d = rng.random_range(-40..=40);
                (self.random(rng, ea), self.random(rng, ea + d))
            }
            // Significands with long runs of ones or zeros (carries, ties).
            _ => {
                let pat = |rng: &mut ChaCha8Rng| -> u64 {
                    let k = rng.random_range(0..self.p);
                    match rng.random_range(0..3) {
                        0 => (1u64 << k) - 1,
                        1 => !((1u64 << k) - 1),
                        _ => 1u64 << k,
                    }
                };
                let (fa, fb) = (pat(rng), pat(rng));
                let d = rng.random_range(-(self.p as i32 + 2)..=(self.p as i32 + 2));
                (
                    self.make(rng.random(), ea, fa),
                    self.make(rng.random(), ea + d, fb),
                )
            }
        }
    }
}

struct Tally {
    compared: [u64; 5],
    skipped: u64,
    bad: u64,
    mismatches: Vec<String>,
}

fn ours(f: Format, op: Op, a: Float, b: Float) -> Float {
    match op {
        Op::Add => a.add(b).unwrap(),
        Op::Sub => a.sub(b).unwrap(),
        Op::Mul => a.mul(b).unwrap(),
        Op::Div => a.div(b).unwrap(),
        Op::Sqrt => {
            let _ = f;
            a.sqrt()
        }
    }
}

fn check_pair(t: &Ieee, f: Format, a: f64, b: f64, tally: &mut Tally) {
    let fa = f.from_f64(a).unwrap();
    let fb = f.from_f64(b).unwrap();
    assert_eq!(
        fa.to_f64(),
        a,
        "{}: operand {a:e} must be exact in {f}",
        t.name
    );
    assert_eq!(
        fb.to_f64(),
        b,
        "{}: operand {b:e} must be exact in {f}",
        t.name
    );
    for (i, op) in OPS.into_iter().enumerate() {
        let a = if matches!(op, Op::Sqrt) { a.abs() } else { a };
        let fa = if matches!(op, Op::Sqrt) { fa.abs() } else { fa };
        let r = (t.reference)(op, a, b);
        let exact_zero = r == 0.0 && matches!(op, Op::Add | Op::Sub);
        let normal = r.is_finite() && r.abs() > t.min_normal() && r.abs() <= t.max_normal();
        if !(normal || exact_zero) {
            tally.skipped += 1;
            continue;
        }
        if t.p < 24 {
            let again = round_f64_to_p(exact_f64(op, a, b), t.p);
            assert_eq!(
                again.to_bits(),
                r.to_bits(),
                "{}: reference {op:?}({a:e}, {b:e})",
                t.name
            );
        }
        let got = ours(f, op, fa, fb);
        tally.compared[i] += 1;
        if got.to_f64().to_bits() != r.to_bits() || (r == 0.0) != got.is_zero() {
            if tally.mismatches.len() < 20 {
                tally.mismatches.push(format!(
                    "{} {op:?}({a:e}, {b:e}): reference {r:e}, {f} gives {got}",
                    t.name
                ));
            }
            tally.bad += 1;
        }
    }
}

fn hand_made(t: &Ieee) -> Vec<(f64, f64)> {
    let p = t.p as i32;
    let ulp1 = 2f64.powi(1 - p); // ulp of 1
    let mut v = vec![
        // Exact ties: 1 + ulp/2 (to even: down), (1 + ulp) + ulp/2 (to even: up).
        (1.0, ulp1 / 2.0),
        (1.0 + ulp1, ulp1 / 2.0),
        (-1.0, -ulp1 / 2.0),
        (1.5, 1.0 + ulp1),              // 1.5 * (1 + ulp): a product tie
        (1.0 + 3.0 * ulp1, 1.0 + ulp1), // product with sticky bits
        // Carry into a new binade.
        (2.0 - ulp1, ulp1 / 2.0),
        (2.0 - ulp1, ulp1),
        (2.0 - ulp1, 1.0 + ulp1),
        (4.0 - 2.0 * ulp1, 2.0 - ulp1),
        // Massive cancellation.
        (1.0 + ulp1, -1.0),
        (2.0 - ulp1, -(2.0 - 2.0 * ulp1)),
        (1.0, -(1.0 - ulp1 / 2.0)),
        (3.0, 3.0),
        // Division ties cannot happen; quotients near 1 and exact quotients.
        (1.0, 3.0),
        (2.0 - ulp1, 1.0 + ulp1),
        (9.0, 3.0),
        (2.0, 2.0 - ulp1),
    ];
    // Operands 2^30 (and more) apart, with and without sticky / borrow effects.
    for d in [p - 1, p, p + 1, p + 2, 30, 31, 40] {
        let s = 2f64.powi(-d);
        if -d < t.e_lo {
            continue;
        }
        for (a, b) in [
            (1.0, s),
            (1.0, -s),
            (1.0 + ulp1, -s),
            (2.0 - ulp1, s * 1.5),
            (1.0, -s * 1.5),
        ] {
            v.push((a, b));
            v.push((b, a));
        }
    }
    // Scale every case across the exponent range.
    let mut out = Vec::new();
    for &(a, b) in &v {
        for k in [0, t.e_lo + 2, t.e_hi - 2, -7, 9] {
            let s = 2f64.powi(k);
            out.push((a * s, b * s));
            out.push((a * s, b));
        }
    }
    out.retain(|&(a, b)| {
        let ok = |x: f64| x.abs() >= t.min_normal() && x.abs() <= t.max_normal();
        ok(a) && ok(b)
    });
    out
}

fn run(t: &Ieee, q: u32, pairs: usize, seed: u64) {
    let f = Format::new(t.p, q).unwrap();
    let mut tally = Tally {
        compared: [0; 5],
        skipped: 0,
        bad: 0,
        mismatches: Vec::new(),
    };
    let cases = hand_made(t);
    assert!(cases.len() > 100);
    for &(a, b) in &cases {
        check_pair(t, f, a, b, &mut tally);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for _ in 0..pairs {
        let (a, b) = t.random_pair(&mut rng);
        check_pair(t, f, a, b, &mut tally);
    }
    let bad = tally.bad;
    println!(
        "{} vs {f}: {} hand-made + {pairs} random pairs; compared add/sub/mul/div/sqrt = {:?}, \
         skipped (outside the normal range) {}, mismatches {bad}",
        t.name,
        cases.len(),
        tally.compared,
        tally.skipped
    );
    assert_eq!(bad, 0, "mismatches:\n{:#?}", tally.mismatches);
    for (i, &c) in tally.compared.iter().enumerate() {
        assert!(
            c as usize >= pairs / 2,
            "{:?}: only {c} results compared",
            OPS[i]
        );
    }
}

#[test]
fn f24_9_equals_hardware_f32() {
    run(&F32, 9, 1_000_000, 1);
}

#[test]
fn f24_9_hand_made_expectations() {
    // A few results stated outright, so the test does not only trust the hardware.
    let f = Format::new(24, 9).unwrap();
    let x = |v: f64| f.from_f64(v).unwrap();
    let u = 2f64.powi(-23);
    assert_eq!(x(1.0).add(x(u / 2.0)).unwrap(), x(1.0)); // tie to even: down
    assert_eq!(x(1.0 + u).add(x(u / 2.0)).unwrap(), x(1.0 + 2.0 * u)); // tie to even: up
    assert_eq!(x(2.0 - u).add(x(u)).unwrap(), x(2.0)); // carry into the next binade
    assert_eq!(x(2.0 - u).add(x(u / 2.0)).unwrap(), x(2.0)); // tie, carry
    assert_eq!(x(1.0 + u).sub(x(1.0)).unwrap(), x(u)); // cancellation is exact
    assert_eq!(x(1.0).sub(x(2f64.powi(-30))).unwrap(), x(1.0)); // 2^30 apart, below half ulp
    assert_eq!(
        x(1.0).sub(x(2f64.powi(-25) * 1.5)).unwrap(),
        x(1.0 - u / 2.0)
    );
    assert_eq!(x(1.0).div(x(3.0)).unwrap().to_f32(), 1.0f32 / 3.0);
    assert_eq!(x(2.0).sqrt().to_f32(), 2f32.sqrt());
}

#[test]
fn f11_6_equals_f16() {
    run(&F16, 6, 200_000, 2);
}

#[test]
fn f8_9_equals_bf16() {
    run(&BF16, 9, 200_000, 3);
}
