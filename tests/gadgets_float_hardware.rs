//! The add, sub and mul *circuits* against IEEE hardware: F(24,9) against f32 and F(11,6)
//! against f16 (docs/float.md: for inputs and results in the normal range they must agree bit for
//! bit), on seeded random operands drawn from regimes that stress alignment and rounding:
//! independent exponents, exponent differences around p, far-apart operands (sticky only),
//! near cancellation, exact ties (half-ulp addends, odd products), long runs of ones (carries
//! into the next binade) and operands near the largest finite value. Every output is also
//! compared with the `float` reference, whatever the range.
//!
//! The f16 reference is the f32 operation rounded with `half`'s `from_f32`: double rounding is
//! innocuous for +, - and * since 24 >= 2 * 11 + 2 (see `tests/float_hardware.rs`, which also
//! recomputes it independently from f64).
//!
//! A result counts for the hardware comparison when the IEEE result is normal and not the
//! smallest normal (that value may come from rounding up a subnormal-range result, where IEEE's
//! gradual underflow and the format's wider exponent range differ) or is an exact zero of
//! add/sub. Circuits are evaluated with the crate's `CpuEvaluator` in batches.

use half::f16;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tcvar::circuit::{Builder, Circuit};
use tcvar::eval::cpu::CpuEvaluator;
use tcvar::eval::{Batch, Evaluator};
use tcvar::float::{Float, Format};
use tcvar::gadgets::float::{add, mul, FloatWord};

/// An IEEE binary format: `p` significand bits, normal exponents `[e_lo, e_hi]` (value
/// `1.f * 2^E`) and its hardware (or hardware-derived) add, sub and mul.
struct Ieee {
    name: &'static str,
    p: u32,
    q: u32,
    e_lo: i32,
    e_hi: i32,
    op: fn(usize, f64, f64) -> f64,
}

fn f32_op(op: usize, a: f64, b: f64) -> f64 {
    let (a, b) = (a as f32, b as f32);
    (match op {
        0 => a + b,
        1 => a - b,
        _ => a * b,
    }) as f64
}

fn f16_op(op: usize, a: f64, b: f64) -> f64 {
    // The operands are f16 normals, hence exact in f32.
    f16::from_f32(f32_op(op, a, b) as f32).to_f64()
}

const F32: Ieee = Ieee {
    name: "f32",
    p: 24,
    q: 9,
    e_lo: -126,
    e_hi: 127,
    op: f32_op,
};
const F16: Ieee = Ieee {
    name: "f16",
    p: 11,
    q: 6,
    e_lo: -14,
    e_hi: 15,
    op: f16_op,
};

const OPS: [&str; 3] = ["add", "sub", "mul"];

impl Ieee {
    fn min_normal(&self) -> f64 {
        2f64.powi(self.e_lo)
    }

    fn max_normal(&self) -> f64 {
        (2.0 - 2f64.powi(1 - self.p as i32)) * 2f64.powi(self.e_hi)
    }

    /// `(-1)^neg * m * 2^(e - p + 1)` for the significand `m = 2^(p-1) | frac` (exponent
    /// clamped to the normal range).
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

    /// A pair of normal operands from one of the regimes of the module docs.
    fn pair(&self, rng: &mut ChaCha8Rng) -> (f64, f64) {
        let normal = |x: f64| x.abs() >= self.min_normal() && x.abs() <= self.max_normal();
        loop {
            let (a, b) = self.draw(rng);
            if normal(a) && normal(b) {
                return (a, b);
            }
        }
    }

    /// A pair from one of the regimes (an operand may leave the normal range).
    fn draw(&self, rng: &mut ChaCha8Rng) -> (f64, f64) {
        let p = self.p as i32;
        let ea = rng.random_range(self.e_lo..=self.e_hi);
        match rng.random_range(0..9) {
            // Independent operands over the whole normal range.
            0 => {
                let eb = rng.random_range(self.e_lo..=self.e_hi);
                (self.random(rng, ea), self.random(rng, eb))
            }
            // Exponent difference around the significand width (alignment, guard, sticky).
            1 => {
                let d = rng.random_range(-(p + 6)..=(p + 6));
                (self.random(rng, ea), self.random(rng, ea + d))
            }
            // Far apart: only a sticky bit survives.
            2 => {
                let d = rng.random_range(p + 2..=2 * p + 20);
                let d = if rng.random_bool(0.5) { d } else { -d };
                (self.random(rng, ea), self.random(rng, ea + d))
            }
            // Near cancellation: b = -a with a few low bits changed, or a neighbouring binade.
            3 => {
                let a = self.random(rng, ea);
                let flip = rng.random_range(0u64..64) << (53 - self.p);
                let b = -f64::from_bits(a.to_bits() ^ flip);
                let b = if rng.random_bool(0.3) { b * 2.0 } else { b };
                (a, b)
            }
            // Exact ties: the addend is half an ulp of a (single bit or an odd significand one
            // binade down), either sign.
            4 => {
                let a = self.random(rng, ea);
                let half_ulp = 2f64.powi(ea - p);
                let b = match rng.random_range(0..3) {
                    0 => half_ulp,
                    1 => self.make(false, ea - 1, rng.random::<u64>() | 1),
                    _ => half_ulp * (2 * rng.random_range(1..8) + 1) as f64,
                };
                let b = if rng.random_bool(0.5) { -b } else { b };
                (a, b)
            }
            // Long runs of ones or zeros: carries into the next binade, borrows.
            5 => {
                let pat = |rng: &mut ChaCha8Rng| -> u64 {
                    let k = rng.random_range(0..self.p);
                    match rng.random_range(0..3) {
                        0 => (1u64 << k) - 1,
                        1 => !((1u64 << k) - 1),
                        _ => 1u64 << k,
                    }
                };
                let (fa, fb) = (pat(rng), pat(rng));
                let d = rng.random_range(-(p + 2)..=(p + 2));
                (
                    self.make(rng.random(), ea, fa),
                    self.make(rng.random(), ea + d, fb),
                )
            }
            // Near the largest finite value (sums that round to it or overflow).
            6 => {
                let a = if rng.random_bool(0.3) {
                    self.max_normal()
                } else {
                    self.random(rng, self.e_hi).abs()
                };
                let d = rng.random_range(0..=p + 2);
                let b = self.random(rng, self.e_hi - d);
                let a = if rng.random_bool(0.5) { -a } else { a };
                (a, b)
            }
            // Products: moderate exponents, and ties (1.5 * 2^k times an odd significand).
            7 => {
                let r = (self.e_hi - 2).min(40);
                let e1 = rng.random_range(-r / 2..=r / 2);
                let e2 = rng.random_range(-r / 2..=r / 2);
                (self.random(rng, e1), self.random(rng, e2))
            }
            _ => {
                let r = (self.e_hi - 2).min(40);
                let e1 = rng.random_range(-r / 2..=r / 2);
                let e2 = rng.random_range(-r / 2..=r / 2);
                let a = self.make(rng.random(), e1, 1u64 << (self.p - 2)); // 1.5 * 2^e1
                let b = self.make(rng.random(), e2, rng.random::<u64>() | 1);
                (a, b)
            }
        }
    }
}

/// One circuit with outputs add, sub and mul of the inputs x, y.
fn build(f: Format) -> Circuit {
    let mut b = Builder::new();
    let x = FloatWord::input(&mut b, "x", f).unwrap();
    let y = FloatWord::input(&mut b, "y", f).unwrap();
    let s = add::add(&mut b, &x, &y).unwrap();
    let d = add::sub(&mut b, &x, &y).unwrap();
    let m = mul::mul(&mut b, &x, &y).unwrap();
    b.output_word("add", &s.bits).unwrap();
    b.output_word("sub", &d.bits).unwrap();
    b.output_word("mul", &m.bits).unwrap();
    b.finish()
}

fn run(t: &Ieee, pairs: usize, seed: u64) {
    let f = Format::new(t.p, t.q).unwrap();
    let c = build(f);
    let lv = c.levelize();
    println!(
        "{f}: add + sub + mul circuit: depth {}, {} gates",
        lv.depth(),
        lv.num_gates()
    );
    let mut ev = CpuEvaluator::new(&lv).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let ops: Vec<(f64, f64)> = (0..pairs).map(|_| t.pair(&mut rng)).collect();
    let w = f.width();
    let mut compared = [0usize; 3];
    let mut ties = 0usize;
    let mut bad = Vec::new();
    for chunk in ops.chunks(1 << 15) {
        let inst: Vec<Vec<u64>> = chunk
            .iter()
            .map(|&(a, b)| {
                let (fa, fb) = (f.from_f64(a).unwrap(), f.from_f64(b).unwrap());
                assert_eq!((fa.to_f64(), fb.to_f64()), (a, b), "operands exact in {f}");
                vec![fa.to_bits(), fb.to_bits()]
            })
            .collect();
        let batch = Batch::pack_fields(&[w, w], &inst).unwrap();
        let out = ev
            .evaluate(&batch)
            .unwrap()
            .unpack_fields(&[w, w, w])
            .unwrap();
        for ((&(a, b), i), o) in chunk.iter().zip(&inst).zip(&out) {
            let (fa, fb) = (f.from_bits(i[0]).unwrap(), f.from_bits(i[1]).unwrap());
            let refs: [Float; 3] = [
                fa.add(fb).unwrap(),
                fa.sub(fb).unwrap(),
                fa.mul(fb).unwrap(),
            ];
            for k in 0..3 {
                assert_eq!(
                    o[k],
                    refs[k].to_bits(),
                    "{f} circuit {} ({a:e}, {b:e}) differs from the reference {}",
                    OPS[k],
                    refs[k]
                );
                let r = (t.op)(k, a, b);
                let exact_zero = r == 0.0 && k < 2;
                let normal = r.is_finite() && r.abs() > t.min_normal() && r.abs() <= t.max_normal();
                if !(normal || exact_zero) {
                    continue;
                }
                compared[k] += 1;
                let exact = match k {
                    0 => a + b,
                    1 => a - b,
                    _ => a * b,
                };
                // a tie: the exact f64 result is halfway between two p-bit neighbours
                if exact != r && (exact - r).abs() * 2.0 == ulp(r, t.p) {
                    ties += 1;
                }
                let got = f.from_bits(o[k]).unwrap();
                if got.to_f64().to_bits() != r.to_bits() && !(r == 0.0 && got.is_zero()) {
                    bad.push(format!(
                        "{} {}({a:e}, {b:e}): hardware {r:e}, circuit {got}",
                        t.name, OPS[k]
                    ));
                }
            }
        }
    }
    println!(
        "{} vs {f} circuits: {pairs} pairs, compared add/sub/mul = {compared:?} (ties {ties}), \
         mismatches {}",
        t.name,
        bad.len()
    );
    assert!(
        bad.is_empty(),
        "mismatches:\n{:#?}",
        &bad[..bad.len().min(20)]
    );
    for (k, &n) in compared.iter().enumerate() {
        assert!(n >= 100_000, "{}: only {n} results compared", OPS[k]);
    }
    assert!(ties >= 1000, "only {ties} exact ties met");
}

/// The ulp of a p-bit value at `r` (r nonzero, finite).
fn ulp(r: f64, p: u32) -> f64 {
    let e = r.abs().log2().floor() as i32;
    2f64.powi(e - p as i32 + 1)
}

#[test]
fn f24_9_circuits_equal_f32() {
    run(&F32, 200_000, 21);
}

#[test]
fn f11_6_circuits_equal_f16() {
    run(&F16, 200_000, 22);
}
