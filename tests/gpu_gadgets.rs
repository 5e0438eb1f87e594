//! Every gadget circuit on the GPU: the GPU evaluator's output batch must
//! equal the CPU evaluator's, bit for bit, for batch sizes 1, 31, 32, 33, 1000 and 4096, with an
//! all-zero and an all-one input row set among the instances (raw rows, canonical or not), and
//! on every canonical instance the decoded outputs must equal an independent reference: `u128`
//! / `num-bigint` arithmetic for the integer gadgets, the `float` module (`Float` / `Format`
//! ops) for the float gadgets. So a test fails if the GPU disagrees with the CPU, and also if
//! both agree on a wrong answer.
//!
//! Gadget circuits stress what random circuits do not: banks of hundreds of thresholds on one
//! form, weights up to about 2^44 (two-word sums), unit-weight forms above the 254-term
//! counter limit, depths up to about 14. A subset is also run with every form kernel forced
//! (`FormKernel::Sliced`, `FormKernel::PerLane`).
//!
//! One `GpuContext` is shared by all tests. Without an adapter every test fails when
//! `TCVAR_REQUIRE_GPU=1` and otherwise prints a loud skip (`context_for_tests`).

mod common;

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use num_bigint::BigUint;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tcvar::circuit::{Builder, Circuit, Lit};
use tcvar::eval::cpu::CpuEvaluator;
use tcvar::eval::gpu::{context_for_tests, FormKernel, GpuContext, GpuEvaluator, GpuOptions};
use tcvar::eval::{Batch, EvalError, Evaluator};
use tcvar::float::{Float, Format};
use tcvar::gadgets::float::{self as fg, FloatWord};
use tcvar::gadgets::int::{self, SumStrategy};

use common::int::{mask, tc};

// ------------------------------------------------------------------ shared GPU context

static CTX: OnceLock<Option<Arc<GpuContext>>> = OnceLock::new();

/// The shared context, or `None` after a loud skip message naming `test`.
fn context(test: &str) -> Option<Arc<GpuContext>> {
    let c = CTX
        .get_or_init(|| {
            context_for_tests("gpu_gadgets", &GpuOptions::default())
                .expect("a GPU adapter is required (TCVAR_REQUIRE_GPU=1)")
                .map(Arc::new)
        })
        .clone();
    if c.is_none() {
        eprintln!("\n*** SKIPPED GPU TEST {test}: no GPU adapter (see above)\n");
    }
    c
}

// ------------------------------------------------------------------ cases and packing

/// Generator of one random instance: one value per input word.
type Gen = Box<dyn Fn(&mut ChaCha8Rng) -> Vec<u128>>;
/// Reference: the output words of an instance, or `None` when the instance is not a valid
/// input of the gadget (a non-canonical float encoding), so only CPU == GPU is checked.
type Reference = Box<dyn Fn(&[u128]) -> Option<Vec<u128>>>;

/// A gadget circuit with its input generator and its independent reference.
struct Case {
    name: String,
    c: Circuit,
    ins: Vec<usize>,
    outs: Vec<usize>,
    gen: Gen,
    reference: Reference,
}

/// Build a circuit over input words of `widths`; `f` returns the output words.
fn build(widths: &[usize], f: impl FnOnce(&mut Builder, &[Vec<Lit>]) -> Vec<Vec<Lit>>) -> Circuit {
    let mut b = Builder::new();
    let ins: Vec<Vec<Lit>> = widths
        .iter()
        .enumerate()
        .map(|(i, &w)| b.input_word(&format!("x{i}"), w as u32).unwrap())
        .collect();
    let outs = f(&mut b, &ins);
    for (i, o) in outs.iter().enumerate() {
        b.output_word(&format!("y{i}"), o).unwrap();
    }
    b.finish()
}

/// Pack instances (one `u128` per input word) into a bit-sliced batch.
fn pack(widths: &[usize], insts: &[Vec<u128>]) -> Batch {
    let rows: usize = widths.iter().sum();
    let n = insts.len();
    let wpr = n.div_ceil(64);
    let mut words = vec![0u64; rows * wpr];
    for (i, inst) in insts.iter().enumerate() {
        let mut r = 0;
        for (k, &w) in widths.iter().enumerate() {
            let mut v = inst[k];
            for bit in 0..w {
                if v & 1 == 1 {
                    words[(r + bit) * wpr + i / 64] |= 1 << (i % 64);
                }
                v >>= 1;
            }
            r += w;
        }
    }
    Batch::from_words(rows as u32, n, words).unwrap()
}

/// Unpack a result batch into one `u128` per output word for every instance.
fn unpack(widths: &[usize], b: &Batch) -> Vec<Vec<u128>> {
    let wpr = b.words_per_row();
    let words = b.words();
    (0..b.instances())
        .map(|i| {
            let mut r = 0;
            widths
                .iter()
                .map(|&w| {
                    let mut v = 0u128;
                    for bit in 0..w {
                        if (words[(r + bit) * wpr + i / 64] >> (i % 64)) & 1 == 1 {
                            v |= 1 << bit;
                        }
                    }
                    r += w;
                    v
                })
                .collect()
        })
        .collect()
}

/// `n` instances: instance 0 has every input row 0, instance 1 (and the last, when n > 2)
/// every input row 1; every 8th instance has raw random rows (any encoding); the rest come
/// from the case's generator.
fn instances(case: &Case, n: usize, rng: &mut ChaCha8Rng) -> Vec<Vec<u128>> {
    (0..n)
        .map(|i| {
            if i == 0 {
                vec![0; case.ins.len()]
            } else if i == 1 || (n > 2 && i == n - 1) {
                case.ins.iter().map(|&w| mask(w)).collect()
            } else if i % 8 == 5 {
                case.ins
                    .iter()
                    .map(|&w| rng.random::<u128>() & mask(w))
                    .collect()
            } else {
                (case.gen)(rng)
            }
        })
        .collect()
}

/// Statistics of one run, for the summary line.
#[derive(Default)]
struct Tally {
    instances: usize,
    checked: usize,
}

/// Evaluate `case` on the CPU and on `gpu` for a batch of `n` instances; assert identical
/// batches and (on valid instances) equality with the reference.
fn check_once(
    case: &Case,
    cpu: &mut CpuEvaluator,
    gpu: &mut GpuEvaluator,
    n: usize,
    rng: &mut ChaCha8Rng,
    what: &str,
    tally: &mut Tally,
) {
    let insts = instances(case, n, rng);
    let batch = pack(&case.ins, &insts);
    let want = cpu.evaluate(&batch).expect("cpu evaluate");
    let got = gpu.evaluate(&batch).expect("gpu evaluate");
    assert_eq!(got.rows(), want.rows(), "{}: output rows", case.name);
    assert_eq!(got.instances(), n, "{}: instances", case.name);
    let outs_gpu = unpack(&case.outs, &got);
    if got != want {
        let outs_cpu = unpack(&case.outs, &want);
        let bad: Vec<usize> = (0..n).filter(|&i| outs_gpu[i] != outs_cpu[i]).collect();
        let i = bad[0];
        panic!(
            "{} ({what}, batch {n}): GPU and CPU differ on {} instances, first {i}: \
             inputs {:x?}, cpu {:x?}, gpu {:x?}",
            case.name,
            bad.len(),
            insts[i],
            outs_cpu[i],
            outs_gpu[i]
        );
    }
    for (i, inst) in insts.iter().enumerate() {
        if let Some(r) = (case.reference)(inst) {
            assert_eq!(
                outs_gpu[i], r,
                "{} ({what}, batch {n}): instance {i} (inputs {inst:x?}) differs from the \
                 reference",
                case.name
            );
            tally.checked += 1;
        }
    }
    tally.instances += n;
}

/// All batch sizes of the acceptance criterion.
const SIZES: [usize; 6] = [1, 31, 32, 33, 1000, 4096];

/// Run `case` at `sizes` with the default kernels, and at one batch of 33 (with all-zero and
/// all-one instances) with every form kernel forced when `all_kernels`.
fn run_case(ctx: &Arc<GpuContext>, case: &Case, sizes: &[usize], all_kernels: bool, seed: u64) {
    let t0 = Instant::now();
    let lv = case.c.levelize();
    let mut cpu = CpuEvaluator::new(&lv).expect("cpu evaluator");
    let mut gpu =
        GpuEvaluator::with_context(ctx.clone(), &lv, &GpuOptions::default()).expect("gpu upload");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut tally = Tally::default();
    for &n in sizes {
        check_once(case, &mut cpu, &mut gpu, n, &mut rng, "auto", &mut tally);
    }
    // Batch size 1 with the all-one row set too (instance 0 of a batch is all-zero).
    if sizes.contains(&1) {
        let ones: Vec<u128> = case.ins.iter().map(|&w| mask(w)).collect();
        let batch = pack(&case.ins, &[ones]);
        assert!(
            gpu.evaluate(&batch).unwrap() == cpu.evaluate(&batch).unwrap(),
            "{}: batch of one all-one instance: GPU and CPU differ",
            case.name
        );
    }
    let plan = gpu.plan_summary();
    if all_kernels {
        for k in [FormKernel::Sliced, FormKernel::PerLane] {
            let opts = GpuOptions {
                form_kernel: k,
                ..Default::default()
            };
            let mut g = match GpuEvaluator::with_context(ctx.clone(), &lv, &opts) {
                // The forced general kernel may need more loop iterations than llvmpipe runs
                // (see `sliced_kernel_float_sum_banks_regression`): refused, never wrong.
                Err(EvalError::LimitExceeded { what, .. })
                    if k == FormKernel::Sliced && is_llvmpipe(ctx) =>
                {
                    eprintln!("{}: {k:?} kernel refused on llvmpipe: {what}", case.name);
                    continue;
                }
                r => r.expect("gpu upload"),
            };
            check_once(
                case,
                &mut cpu,
                &mut g,
                33,
                &mut rng,
                &format!("{k:?}"),
                &mut tally,
            );
        }
    }
    let maxw = lv.max_abs_weight();
    eprintln!(
        "{:<28} depth {:>2} gates {:>7} forms n/w/c {:>5}/{:>4}/{:>4} max|w| 2^{:<4.1} \
         {:>6} inst {:>6} vs ref  {:>6.2} s",
        case.name,
        lv.depth(),
        lv.num_gates(),
        plan.narrow_forms,
        plan.wide_forms,
        plan.count_forms,
        (maxw.max(1) as f64).log2(),
        tally.instances,
        tally.checked,
        t0.elapsed().as_secs_f64()
    );
    assert!(
        tally.checked > 0,
        "{}: nothing checked against the reference",
        case.name
    );
}

// ------------------------------------------------------------------ integer gadgets

fn sval(v: u128, w: usize) -> i128 {
    if w > 0 && (v >> (w - 1)) & 1 == 1 {
        v as i128 - (1i128 << w)
    } else {
        v as i128
    }
}

fn rand_words(widths: Vec<usize>) -> Gen {
    Box::new(move |r| {
        widths
            .iter()
            .map(|&w| r.random::<u128>() & mask(w))
            .collect()
    })
}

/// An integer case with inputs of `widths`: random words, reference `r` (always valid).
fn int_case(
    name: &str,
    widths: &[usize],
    f: impl FnOnce(&mut Builder, &[Vec<Lit>]) -> Vec<Vec<Lit>>,
    r: impl Fn(&[u128]) -> Vec<u128> + 'static,
) -> Case {
    let c = build(widths, f);
    let outs = c.outputs.iter().map(|w| w.bits.len()).collect();
    Case {
        name: name.to_string(),
        c,
        ins: widths.to_vec(),
        outs,
        gen: rand_words(widths.to_vec()),
        reference: Box::new(move |x| Some(r(x))),
    }
}

fn b(v: bool) -> u128 {
    v as u128
}

/// One-hot index of the first maximum (or minimum) under `key`.
fn onehot_first_best(xs: &[i128], max: bool) -> u128 {
    let mut best = 0;
    for i in 1..xs.len() {
        if (max && xs[i] > xs[best]) || (!max && xs[i] < xs[best]) {
            best = i;
        }
    }
    1 << best
}

fn int_cases() -> Vec<Case> {
    let mut v = Vec::new();
    v.push(int_case(
        "int add/sub 8",
        &[8, 8],
        |bd, x| {
            let (d, bo) = int::sub(bd, &x[0], &x[1]).unwrap();
            vec![
                int::add(bd, &x[0], &x[1]).unwrap(),
                d,
                vec![bo],
                int::add_signed(bd, &x[0], &x[1]).unwrap(),
                int::sub_signed(bd, &x[0], &x[1]).unwrap(),
                int::neg(bd, &x[0]).unwrap(),
            ]
        },
        |x| {
            let (a, c) = (x[0], x[1]);
            vec![
                a + c,
                a.wrapping_sub(c) & 0xff,
                b(a < c),
                tc(sval(a, 8) + sval(c, 8), 9),
                tc(sval(a, 8) - sval(c, 8), 9),
                (0u128.wrapping_sub(a)) & 0xff,
            ]
        },
    ));
    // 70-bit words: blocked carry-lookahead (depth 5).
    v.push(int_case(
        "int add/sub 70 (blocked)",
        &[70, 70],
        |bd, x| {
            let (d, bo) = int::sub(bd, &x[0], &x[1]).unwrap();
            vec![int::add(bd, &x[0], &x[1]).unwrap(), d, vec![bo]]
        },
        |x| {
            vec![
                x[0] + x[1],
                x[0].wrapping_sub(x[1]) & mask(70),
                b(x[0] < x[1]),
            ]
        },
    ));
    for w in [12usize, 70] {
        v.push(int_case(
            &format!("int compare {w}"),
            &[w, w],
            |bd, x| {
                let (p, q) = (&x[0], &x[1]);
                vec![
                    vec![int::lt(bd, p, q).unwrap()],
                    vec![int::le(bd, p, q).unwrap()],
                    vec![int::gt(bd, p, q).unwrap()],
                    vec![int::ge(bd, p, q).unwrap()],
                    vec![int::eq(bd, p, q).unwrap()],
                    vec![int::ne(bd, p, q).unwrap()],
                    vec![int::lt_signed(bd, p, q).unwrap()],
                    vec![int::ge_signed(bd, p, q).unwrap()],
                    vec![int::is_zero(bd, p).unwrap()],
                ]
            },
            move |x| {
                let (a, c) = (x[0], x[1]);
                let (sa, sc) = (sval(a, w), sval(c, w));
                vec![
                    b(a < c),
                    b(a <= c),
                    b(a > c),
                    b(a >= c),
                    b(a == c),
                    b(a != c),
                    b(sa < sc),
                    b(sa >= sc),
                    b(a == 0),
                ]
            },
        ));
    }
    v.push(int_case(
        "int max/min/argmax n=5 w=10",
        &[10; 5],
        |bd, x| {
            vec![
                int::max_n(bd, x).unwrap(),
                int::min_n(bd, x).unwrap(),
                int::max_n_signed(bd, x).unwrap(),
                int::argmax(bd, x).unwrap(),
                int::argmin(bd, x).unwrap(),
                int::argmax_signed(bd, x).unwrap(),
            ]
        },
        |x| {
            let u: Vec<i128> = x.iter().map(|&a| a as i128).collect();
            let s: Vec<i128> = x.iter().map(|&a| sval(a, 10)).collect();
            vec![
                *x.iter().max().unwrap(),
                *x.iter().min().unwrap(),
                tc(*s.iter().max().unwrap(), 10),
                onehot_first_best(&u, true),
                onehot_first_best(&u, false),
                onehot_first_best(&s, true),
            ]
        },
    ));
    // Small words, so that ties (and the all-equal all-zero / all-one instances) are common.
    v.push(int_case(
        "int argmax n=16 w=3",
        &[3; 16],
        |bd, x| vec![int::argmax(bd, x).unwrap(), int::max_n(bd, x).unwrap()],
        |x| {
            let u: Vec<i128> = x.iter().map(|&a| a as i128).collect();
            vec![onehot_first_best(&u, true), *x.iter().max().unwrap()]
        },
    ));
    v.push(int_case(
        "int mul 8x8, signed, const",
        &[8, 8, 16],
        |bd, x| {
            vec![
                int::mul(bd, &x[0], &x[1]).unwrap(),
                int::mul_signed(bd, &x[0], &x[1]).unwrap(),
                int::mul_const(bd, &x[2], 0xb5a7).unwrap(),
            ]
        },
        |x| {
            vec![
                x[0] * x[1],
                tc(sval(x[0], 8) * sval(x[1], 8), 16),
                x[2] * 0xb5a7,
            ]
        },
    ));
    // 32 x 32: a 64-bit product, blocked column sum (depth 6).
    v.push(int_case(
        "int mul 32x32 (blocked)",
        &[32, 32],
        |bd, x| vec![int::mul(bd, &x[0], &x[1]).unwrap()],
        |x| vec![x[0] * x[1]],
    ));
    v.push(int_case(
        "int shifts w=16 a=5",
        &[16, 5],
        |bd, x| {
            let (s, st) = int::shr_sticky(bd, &x[0], &x[1], 16).unwrap();
            vec![
                int::shl(bd, &x[0], &x[1], 24).unwrap(),
                int::shr(bd, &x[0], &x[1], 12).unwrap(),
                s,
                vec![st],
            ]
        },
        |x| {
            let (v, a) = (x[0], x[1] as u32);
            vec![
                (v << a) & mask(24),
                (v >> a) & mask(12),
                v >> a,
                b(v & mask(a as usize) != 0),
            ]
        },
    ));
    v.push(int_case(
        "int leading one w=20",
        &[20],
        |bd, x| {
            vec![
                int::leading_one(bd, &x[0]).unwrap(),
                int::leading_one_index(bd, &x[0]).unwrap(),
                int::leading_zeros(bd, &x[0]).unwrap(),
            ]
        },
        |x| {
            let v = x[0];
            let lz = if v == 0 {
                20
            } else {
                19 - (127 - v.leading_zeros())
            };
            let idx = if v == 0 {
                0
            } else {
                127 - v.leading_zeros() as u128
            };
            vec![if v == 0 { 0 } else { 1 << idx }, idx, lz as u128]
        },
    ));
    // 200 literals: the unit-weight counter kernel; 300: above its 254-term limit.
    for words in [4usize, 6] {
        v.push(int_case(
            &format!("int popcount {}", 50 * words),
            &vec![50; words],
            |bd, x| {
                let lits: Vec<Lit> = x.iter().flatten().copied().collect();
                vec![int::popcount(bd, &lits).unwrap()]
            },
            |x| vec![x.iter().map(|v| v.count_ones() as u128).sum()],
        ));
    }
    v.push(int_case(
        "int sum n=5 w=8, signed, weighted",
        &[8; 5],
        |bd, x| {
            let terms: Vec<(Vec<Lit>, i64)> =
                x.iter().cloned().zip([3i64, -7, 100, -1, 12345]).collect();
            let shifted: Vec<(Vec<Lit>, usize)> = x.iter().cloned().zip([0, 3, 9, 1, 20]).collect();
            vec![
                int::sum(bd, x).unwrap(),
                int::sum_with(bd, x, SumStrategy::Blocked).unwrap(),
                int::sum_signed(bd, x).unwrap(),
                int::sum_weighted(bd, &terms).unwrap(),
                int::sum_shifted(bd, &shifted).unwrap(),
            ]
        },
        |x| {
            let s: u128 = x.iter().sum();
            let ss: i128 = x.iter().map(|&a| sval(a, 8)).sum();
            let sw: i128 = x
                .iter()
                .zip([3i128, -7, 100, -1, 12345])
                .map(|(&a, c)| a as i128 * c)
                .sum();
            let sh: u128 = x.iter().zip([0, 3, 9, 1, 20]).map(|(&a, k)| a << k).sum();
            // Widths: bitlen of the extreme sums (the gadgets' documented widths).
            vec![s, s, tc(ss, 11), tc(sw, 23), sh]
        },
    ));
    // 16 words of 32 bits: direct staircases with weights up to 2^35 (two-word sums), and
    // the blocked construction.
    v.push(int_case(
        "int sum n=16 w=32 direct+blocked",
        &[32; 16],
        |bd, x| {
            vec![
                int::sum_with(bd, x, SumStrategy::Direct).unwrap(),
                int::sum_with(bd, x, SumStrategy::Blocked).unwrap(),
            ]
        },
        |x| {
            let s: u128 = x.iter().sum();
            vec![s, s]
        },
    ));
    v
}

/// The wide blocked sum: 64 words of 80 bits (auto picks the blocked construction), against
/// num-bigint. Separate because its input rows (5120) make it the heaviest integer case.
fn int_wide_sum_case() -> Case {
    let (n, w) = (64usize, 80usize);
    let c = build(&vec![w; n], |bd, x| vec![int::sum(bd, x).unwrap()]);
    assert_eq!(c.outputs[0].bits.len(), 86);
    Case {
        name: "int sum n=64 w=80 (blocked)".into(),
        c,
        ins: vec![w; n],
        outs: vec![86],
        gen: rand_words(vec![w; n]),
        reference: Box::new(|x| {
            let s: BigUint = x.iter().map(|&v| BigUint::from(v)).sum();
            let d = s.to_u64_digits();
            let v = d.first().copied().unwrap_or(0) as u128
                | (d.get(1).copied().unwrap_or(0) as u128) << 64;
            Some(vec![v])
        }),
    }
}

// ------------------------------------------------------------------ float gadgets

fn fmt(p: u32, q: u32) -> Format {
    Format::new(p, q).unwrap()
}

/// A random canonical encoding: special values (zero, extremes, one) mixed with random
/// values whose exponent lies in `[lo, hi]` (biased).
fn rand_float(r: &mut ChaCha8Rng, f: Format, lo: u64, hi: u64) -> u64 {
    let neg = r.random::<bool>();
    let x = match r.random_range(0..16) {
        0 => f.zero(),
        1 => f.max_finite(neg),
        2 => {
            let m = f.min_positive();
            if neg {
                m.neg()
            } else {
                m
            }
        }
        3 => f.one().unwrap_or(f.zero()),
        _ => {
            let e = f.e_min() + r.random_range(lo..=hi) as i32;
            let sig = (1u64 << (f.p() - 1)) | (r.random::<u64>() & ((1u64 << (f.p() - 1)) - 1));
            f.from_parts(neg, e, sig).unwrap()
        }
    };
    x.to_bits()
}

/// Generator of `k` float operands: half of the instances draw all exponents from a narrow
/// common window (cancellation, ties and rounding boundaries in sums), the others anywhere.
fn float_gen(f: Format, k: usize) -> Gen {
    Box::new(move |r| {
        let top = (1u64 << f.q()) - 1;
        let (lo, hi) = if r.random::<bool>() {
            let c = r.random_range(0..=top);
            (c.saturating_sub(1), (c + 1).min(top))
        } else {
            (0, top)
        };
        (0..k).map(|_| rand_float(r, f, lo, hi) as u128).collect()
    })
}

/// Decode an instance of float encodings; `None` if any is not canonical.
fn decode(f: Format, x: &[u128]) -> Option<Vec<Float>> {
    x.iter().map(|&v| f.from_bits(v as u64).ok()).collect()
}

/// A float case with `k` operands of format `f`; `g` builds the outputs (words of any
/// width), `r` computes them from the decoded operands.
fn float_case(
    name: &str,
    f: Format,
    k: usize,
    g: impl FnOnce(&mut Builder, &[FloatWord]) -> Vec<Vec<Lit>>,
    r: impl Fn(&[Float]) -> Vec<u128> + 'static,
) -> Case {
    let mut bd = Builder::new();
    let xs: Vec<FloatWord> = (0..k)
        .map(|i| FloatWord::input(&mut bd, &format!("x{i}"), f).unwrap())
        .collect();
    let outs = g(&mut bd, &xs);
    for (i, o) in outs.iter().enumerate() {
        bd.output_word(&format!("y{i}"), o).unwrap();
    }
    let c = bd.finish();
    Case {
        name: format!("{name} {f}"),
        c,
        ins: vec![f.width() as usize; k],
        outs: outs.iter().map(|o| o.len()).collect(),
        gen: float_gen(f, k),
        reference: Box::new(move |x| decode(f, x).map(|v| r(&v))),
    }
}

fn bits(x: Float) -> u128 {
    x.to_bits() as u128
}

fn fw(w: FloatWord) -> Vec<Lit> {
    w.bits
}

/// One-hot index of the first maximum value.
fn float_argmax(xs: &[Float]) -> u128 {
    let mut best = 0;
    for i in 1..xs.len() {
        if xs[i].cmp_value(xs[best]).unwrap().is_gt() {
            best = i;
        }
    }
    1 << best
}

/// The float cases at format `f` with n-ary operations at `ns`.
fn float_cases(f: Format, ns: &[usize], heavy: bool) -> Vec<Case> {
    let mut v = Vec::new();
    v.push(float_case(
        "float add/sub/cmp",
        f,
        2,
        |bd, x| {
            let c = fg::cmp::compare(bd, &x[0], &x[1]).unwrap();
            vec![
                fw(fg::add::add(bd, &x[0], &x[1]).unwrap()),
                fw(fg::add::sub(bd, &x[0], &x[1]).unwrap()),
                vec![fg::cmp::lt(bd, &x[0], &x[1]).unwrap()],
                vec![fg::cmp::le(bd, &x[0], &x[1]).unwrap()],
                vec![fg::cmp::eq(bd, &x[0], &x[1]).unwrap()],
                vec![c.lt, c.eq, c.gt],
            ]
        },
        |x| {
            let o = x[0].cmp_value(x[1]).unwrap();
            vec![
                bits(x[0].add(x[1]).unwrap()),
                bits(x[0].sub(x[1]).unwrap()),
                b(o.is_lt()),
                b(o.is_le()),
                b(o.is_eq()),
                b(o.is_lt()) | b(o.is_eq()) << 1 | b(o.is_gt()) << 2,
            ]
        },
    ));
    v.push(float_case(
        "float mul/div",
        f,
        2,
        |bd, x| {
            vec![
                fw(fg::mul::mul(bd, &x[0], &x[1]).unwrap()),
                fw(fg::div::div(bd, &x[0], &x[1]).unwrap()),
            ]
        },
        |x| vec![bits(x[0].mul(x[1]).unwrap()), bits(x[0].div(x[1]).unwrap())],
    ));
    // A constant with a full significand, so the constant-weighted form has many terms.
    let c = f
        .from_parts(true, 1 - f.p() as i32, (1u64 << f.p()) - 3)
        .unwrap_or(f.max_finite(true));
    v.push(float_case(
        "float unary (floor, mul_const, exp, sqrt, rsqrt, unary_table)",
        f,
        1,
        move |bd, x| {
            vec![
                fw(fg::round::floor(bd, &x[0]).unwrap()),
                fw(fg::mul_const::mul_const(bd, &x[0], c).unwrap()),
                fw(fg::table::exp(bd, &x[0]).unwrap()),
                fw(fg::table::sqrt(bd, &x[0]).unwrap()),
                fw(fg::table::rsqrt(bd, &x[0]).unwrap()),
                fw(
                    fg::table::unary_table(bd, "neg_square", &x[0], |y| y.mul(y).unwrap().neg())
                        .unwrap(),
                ),
            ]
        },
        move |x| {
            let y = x[0];
            vec![
                bits(y.floor()),
                bits(y.mul(c).unwrap()),
                bits(y.exp_fn()),
                bits(y.sqrt()),
                bits(y.rsqrt()),
                bits(y.mul(y).unwrap().neg()),
            ]
        },
    ));
    for &n in ns {
        v.push(float_case(
            &format!("float max/argmax/sum n={n}"),
            f,
            n,
            |bd, x| {
                vec![
                    fw(fg::cmp::max_n(bd, x).unwrap()),
                    fg::cmp::argmax_n(bd, x).unwrap(),
                    fw(fg::sum::sum(bd, x).unwrap()),
                ]
            },
            move |x| {
                let m = x.iter().copied().reduce(|a, c| a.max(c).unwrap()).unwrap();
                vec![bits(m), float_argmax(x), bits(f.sum(x).unwrap())]
            },
        ));
        v.push(float_case(
            &format!("float dot n={n}"),
            f,
            2 * n,
            move |bd, x| vec![fw(fg::sum::dot(bd, &x[..n], &x[n..]).unwrap())],
            move |x| vec![bits(f.dot(&x[..n], &x[n..]).unwrap())],
        ));
        if heavy || n <= 5 {
            v.push(float_case(
                &format!("float product n={n}"),
                f,
                n,
                |bd, x| vec![fw(fg::product::product(bd, x).unwrap())],
                move |x| vec![bits(f.product(x).unwrap())],
            ));
        }
    }
    v
}

// ------------------------------------------------------------------ tests

#[test]
fn integer_gadgets_gpu_equals_cpu_and_reference() {
    let Some(ctx) = context("integer_gadgets_gpu_equals_cpu_and_reference") else {
        return;
    };
    for (i, case) in int_cases().iter().enumerate() {
        run_case(&ctx, case, &SIZES, true, 100 + i as u64);
    }
    run_case(&ctx, &int_wide_sum_case(), &SIZES, false, 99);
}

#[test]
fn float_gadgets_f44_gpu_equals_cpu_and_reference() {
    let Some(ctx) = context("float_gadgets_f44_gpu_equals_cpu_and_reference") else {
        return;
    };
    for (i, case) in float_cases(fmt(4, 4), &[2, 5, 16], true).iter().enumerate() {
        run_case(&ctx, case, &SIZES, true, 200 + i as u64);
    }
}

#[test]
fn float_gadgets_f54_gpu_equals_cpu_and_reference() {
    let Some(ctx) = context("float_gadgets_f54_gpu_equals_cpu_and_reference") else {
        return;
    };
    for (i, case) in float_cases(fmt(5, 4), &[2, 5, 16], true).iter().enumerate() {
        run_case(&ctx, case, &SIZES, false, 300 + i as u64);
    }
}

/// F(8,5), including the dot product at n = 16 that an earlier GPU evaluator got wrong.
#[test]
fn float_gadgets_f85_gpu_equals_cpu_and_reference() {
    let Some(ctx) = context("float_gadgets_f85_gpu_equals_cpu_and_reference") else {
        return;
    };
    for (i, case) in float_cases(fmt(8, 5), &[2, 16], false).iter().enumerate() {
        run_case(&ctx, case, &SIZES, true, 400 + i as u64);
    }
}

fn is_llvmpipe(ctx: &GpuContext) -> bool {
    ctx.adapter().name.to_lowercase().contains("llvmpipe")
}

/// Regression: on lavapipe (Mesa llvmpipe) the general bit-sliced kernel
/// (`FormKernel::Sliced`) gave wrong float sums at F(8,5), n = 16 (all-zero inputs summed to
/// -max_finite, 0x3fff): its level-2 banks (forms of up to 8192 terms, weights up to 2^27, 126
/// thresholds each) need more than 65535 loop iterations per shader invocation, and llvmpipe
/// silently ends all loops of an invocation after 65535 back-edges in total (gallivm
/// `LP_MAX_TGSI_LOOP_ITERATIONS`), so later thresholds were never stored. The evaluator now
/// refuses such plans on llvmpipe with `LimitExceeded`; other adapters must compute them
/// exactly.
#[test]
fn sliced_kernel_float_sum_banks_regression() {
    let Some(ctx) = context("sliced_kernel_float_sum_banks_regression") else {
        return;
    };
    let f = fmt(8, 5);
    let mut bd = Builder::new();
    let xs: Vec<FloatWord> = (0..16)
        .map(|i| FloatWord::input(&mut bd, &format!("x{i}"), f).unwrap())
        .collect();
    let y = fg::sum::sum(&mut bd, &xs).unwrap();
    bd.output_word("y", &y.bits).unwrap();
    let lv = bd.finish().levelize();
    let opts = GpuOptions {
        form_kernel: FormKernel::Sliced,
        ..Default::default()
    };
    let mut gpu = match GpuEvaluator::with_context(ctx.clone(), &lv, &opts) {
        Err(EvalError::LimitExceeded {
            what,
            needed,
            limit,
        }) if is_llvmpipe(&ctx) => {
            assert!(what.contains("llvmpipe") && needed > limit, "{what}");
            eprintln!("sliced kernel refused on llvmpipe as expected: {what}");
            return;
        }
        r => r.expect("gpu upload"),
    };
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let gen = float_gen(f, 16);
    let mut insts = vec![vec![0u128; 16]; 33];
    for inst in insts.iter_mut().skip(17) {
        *inst = gen(&mut rng);
    }
    let batch = pack(&[f.width() as usize; 16], &insts);
    let got = unpack(&[f.width() as usize], &gpu.evaluate(&batch).unwrap());
    for (i, inst) in insts.iter().enumerate() {
        let r = f.sum(&decode(f, inst).unwrap()).unwrap().to_bits() as u128;
        assert_eq!(
            got[i][0], r,
            "gpu (sliced kernel) vs reference, instance {i}"
        );
    }
}

/// One threshold gate `[sum x_i >= n]` (per-lane narrow kernel) over `n` inputs, evaluated on
/// all-zero, all-one and one-zero instances: any term the GPU drops turns the all-one result
/// false. 60000 terms stay under llvmpipe's 65535 loop back-edges (so the 32-lane inner loop
/// must be unrolled, as `Plan::loop_bound` assumes); 70000 terms exceed it and must be refused
/// on llvmpipe (formerly a silently wrong `false`), and computed exactly elsewhere.
#[test]
fn llvmpipe_loop_limit_is_enforced() {
    let Some(ctx) = context("llvmpipe_loop_limit_is_enforced") else {
        return;
    };
    for n in [60_000usize, 70_000] {
        let mut bd = Builder::new();
        let x = bd.input_word("x", n as u32).unwrap();
        let terms: Vec<(Lit, i64)> = x.iter().map(|&l| (l, 1)).collect();
        let g = bd.threshold(&terms, n as i64).unwrap();
        let h = bd.threshold(&terms, 1).unwrap();
        bd.output_word("y", &[g, h]).unwrap();
        let lv = bd.finish().levelize();
        let mut gpu = match GpuEvaluator::with_context(ctx.clone(), &lv, &GpuOptions::default()) {
            Err(EvalError::LimitExceeded { what, .. }) if is_llvmpipe(&ctx) && n > 65535 => {
                assert!(what.contains("llvmpipe"), "{what}");
                continue;
            }
            r => r.expect("gpu upload"),
        };
        assert!(!is_llvmpipe(&ctx) || n < 65535);
        let mut b = Batch::zeros(n as u32, 3);
        for r in 0..n as u32 {
            b.set(r, 1, true);
            b.set(r, 2, r != n as u32 / 2);
        }
        let out = gpu.evaluate(&b).unwrap();
        let want = [[false, false], [true, true], [false, true]];
        for (i, w) in want.iter().enumerate() {
            assert_eq!([out.get(0, i), out.get(1, i)], *w, "n {n}, instance {i}");
        }
    }
    // A bank of 4000 thresholds on one 12-term form: 4000 x 33 back-edges if the 32-lane
    // comparison loop were not unrolled, so this checks the other assumption of the bound.
    let mut bd = Builder::new();
    let x = bd.input_word("x", 12).unwrap();
    let terms: Vec<(Lit, i64)> = x.iter().enumerate().map(|(i, &l)| (l, 1 << i)).collect();
    let outs: Vec<Lit> = (1..=4000)
        .map(|t| bd.threshold(&terms, t).unwrap())
        .collect();
    bd.output_word("y", &outs).unwrap();
    let lv = bd.finish().levelize();
    assert_eq!(lv.bank_offsets.len(), 2, "one bank");
    let mut gpu = GpuEvaluator::with_context(ctx, &lv, &GpuOptions::default()).unwrap();
    let insts: Vec<Vec<u128>> = (0..64u128).map(|i| vec![(i * 67) % 4096]).collect();
    let out = unpack(&vec![1; 4000], &gpu.evaluate(&pack(&[12], &insts)).unwrap());
    for (inst, o) in insts.iter().zip(&out) {
        for (k, &bit) in o.iter().enumerate() {
            assert_eq!(bit, b(inst[0] > k as u128), "x {} >= {}", inst[0], k + 1);
        }
    }
}
