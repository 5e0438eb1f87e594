//! Float gadget circuits: building them over float input words, evaluating them on the CPU and
//! comparing their outputs with the library's `Float` arithmetic, and random operands.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tcvar::circuit::{Builder, Circuit};
use tcvar::eval::cpu::CpuEvaluator;
use tcvar::eval::{Batch, Evaluator};
use tcvar::float::{Float, Format};
use tcvar::gadgets::error::GadgetError;
use tcvar::gadgets::float::FloatWord;

/// The format F(p, q) (panics on an invalid one).
pub fn fmt(p: u32, q: u32) -> Format {
    Format::new(p, q).unwrap()
}

/// A circuit of `arity` float inputs `x0, x1, ...` of format `f` and one output word `y`, the
/// result of the gadget `g` on them.
pub fn build(
    f: Format,
    arity: usize,
    g: impl Fn(&mut Builder, &[FloatWord]) -> Result<FloatWord, GadgetError>,
) -> Circuit {
    let mut b = Builder::new();
    let xs: Vec<FloatWord> = (0..arity)
        .map(|i| FloatWord::input(&mut b, &format!("x{i}"), f).unwrap())
        .collect();
    let y = g(&mut b, &xs).unwrap();
    b.output_word("y", &y.bits).unwrap();
    b.finish()
}

/// Evaluates `c` (inputs: as many words of `f`'s width as each case has encodings; one output
/// word) on `cases` with the CPU evaluator, `chunk` instances per batch; returns the output
/// encodings.
pub fn eval(c: &Circuit, f: Format, cases: &[Vec<u64>], chunk: usize) -> Vec<u64> {
    let lv = c.levelize();
    let mut ev = CpuEvaluator::new(&lv).unwrap();
    let widths = vec![f.width(); cases[0].len()];
    let mut out = Vec::with_capacity(cases.len());
    for chunk in cases.chunks(chunk) {
        let batch = Batch::pack_fields(&widths, chunk).unwrap();
        let r = ev.evaluate(&batch).unwrap();
        out.extend(
            r.unpack_fields(&[f.width()])
                .unwrap()
                .into_iter()
                .map(|v| v[0]),
        );
    }
    out
}

/// Asserts that the outputs of `c` (evaluated by [`eval`] in batches of `chunk`) equal the
/// reference `r` on every case; the first five mismatches are printed.
pub fn check(
    name: &str,
    c: &Circuit,
    f: Format,
    cases: &[Vec<u64>],
    chunk: usize,
    r: impl Fn(&[Float]) -> Float,
) {
    let got = eval(c, f, cases, chunk);
    let mut bad = 0usize;
    for (case, &g) in cases.iter().zip(&got) {
        let vals: Vec<Float> = case.iter().map(|&x| f.from_bits(x).unwrap()).collect();
        let want = r(&vals).to_bits();
        if g != want {
            if bad < 5 {
                eprintln!(
                    "{name} {f}: inputs {:?} -> circuit {g:#x} ({}), reference {want:#x} ({})",
                    vals.iter().map(|v| v.to_string()).collect::<Vec<_>>(),
                    f.from_bits(g).map(|v| v.to_string()).unwrap_or_default(),
                    f.from_bits(want).unwrap()
                );
            }
            bad += 1;
        }
    }
    assert_eq!(bad, 0, "{name} {f}: {bad} of {} cases differ", cases.len());
}

/// Every encoding of `f`, each as a one-operand case.
pub fn all_singles(f: Format) -> Vec<Vec<u64>> {
    f.all_values().map(|v| vec![v.to_bits()]).collect()
}

/// A random encoding: zero, the largest or smallest magnitude, or uniform significand and
/// exponent bits; random sign.
pub fn random_value(rng: &mut ChaCha8Rng, f: Format) -> u64 {
    let neg = rng.random_bool(0.5);
    match rng.random_range(0..16) {
        0 => 0,
        1 => f.max_finite(neg).to_bits(),
        2 => {
            let v = f.min_positive();
            if neg {
                v.neg().to_bits()
            } else {
                v.to_bits()
            }
        }
        _ => {
            let p = f.p();
            let sig = (1u64 << (p - 1)) | rng.random_range(0..1u64 << (p - 1));
            let e = rng.random_range(0..1u64 << f.q());
            sig | (e << p) | ((neg as u64) << (p + f.q()))
        }
    }
}

/// A random significand of `f`: the leading one and `p - 1` uniform fraction bits.
pub fn rand_sig(rng: &mut ChaCha8Rng, f: Format) -> u64 {
    (1u64 << (f.p() - 1)) | rng.random_range(0..(1u64 << (f.p() - 1)))
}

/// `n` cases of `arity` encodings from [`random_value`], seeded with `seed`.
pub fn random_cases(f: Format, arity: usize, n: usize, seed: u64) -> Vec<Vec<u64>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| (0..arity).map(|_| random_value(&mut rng, f)).collect())
        .collect()
}

/// Evaluates `c` with the CPU evaluator on instances (input-word values in input-word order),
/// `1 << 14` instances per batch; returns every instance's output-word values.
pub fn eval_words(c: &Circuit, instances: &[Vec<u64>]) -> Vec<Vec<u64>> {
    let in_widths: Vec<u32> = c.inputs.iter().map(|w| w.bits.len() as u32).collect();
    let out_widths: Vec<u32> = c.outputs.iter().map(|w| w.bits.len() as u32).collect();
    let mut ev = CpuEvaluator::new(&c.levelize()).unwrap();
    let mut got = Vec::with_capacity(instances.len());
    for chunk in instances.chunks(1 << 14) {
        let batch = Batch::pack_fields(&in_widths, chunk).unwrap();
        let out = ev.evaluate(&batch).unwrap();
        got.extend(out.unpack_fields(&out_widths).unwrap());
    }
    got
}
