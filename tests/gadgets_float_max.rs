//! The blocked `max_n` / `argmax_n` circuits against the `float` reference, bit for bit:
//! exhaustive over tiny formats (every tuple), seeded random lists with many ties at several n
//! (odd block splits included), n = 4096 at F(11,6) (the released models' vocabulary), and
//! the structure: depth 5 (max) and 4 (argmax) for every n >= 2, and the work bound at
//! F(8,5), n = 256.

mod common;

use std::cmp::Ordering;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tcvar::circuit::{Builder, Circuit, Lit};
use tcvar::eval::cpu::CpuEvaluator;
use tcvar::eval::{Batch, Evaluator};
use tcvar::float::{Float, Format};
use tcvar::gadgets::float::{cmp, FloatWord};

use common::float_gadgets::fmt;

fn build(f: Format, n: usize) -> Circuit {
    let mut b = Builder::new();
    let xs: Vec<FloatWord> = (0..n)
        .map(|i| FloatWord::input(&mut b, &format!("x{i}"), f).unwrap())
        .collect();
    let m = cmp::max_n(&mut b, &xs).unwrap();
    let a = cmp::argmax_n(&mut b, &xs).unwrap();
    b.output_word("max", &m.bits).unwrap();
    b.output_word("argmax", &a).unwrap();
    b.finish()
}

/// The reference: `Float::max` folded left, and the first index of the maximum.
fn reference(xs: &[Float]) -> (u64, usize) {
    let mut best = 0;
    for i in 1..xs.len() {
        if xs[i].cmp_value(xs[best]).unwrap() == Ordering::Greater {
            best = i;
        }
    }
    let m = xs[1..].iter().fold(xs[0], |a, &x| a.max(x).unwrap());
    (m.to_bits(), best)
}

/// Evaluate `c` on lists of n values (CpuEvaluator, batches of 2^14) and compare with the
/// reference; the first lists are also checked with `Circuit::eval_single`.
fn check(c: &Circuit, f: Format, lists: &[Vec<Float>], what: &str) {
    let n = lists[0].len();
    assert!(n <= 64, "argmax word of n <= 64 bits");
    let widths = vec![f.width(); n];
    let mut ev = CpuEvaluator::new(&c.levelize()).unwrap();
    for (ci, chunk) in lists.chunks(1 << 14).enumerate() {
        let inst: Vec<Vec<u64>> = chunk
            .iter()
            .map(|l| l.iter().map(|x| x.to_bits()).collect())
            .collect();
        let batch = Batch::pack_fields(&widths, &inst).unwrap();
        let out = ev
            .evaluate(&batch)
            .unwrap()
            .unpack_fields(&[f.width(), n as u32])
            .unwrap();
        for (k, (l, o)) in chunk.iter().zip(&out).enumerate() {
            let (m, best) = reference(l);
            assert_eq!(o[0], m, "{what}: max of {l:?}");
            assert_eq!(o[1], 1u64 << best, "{what}: argmax of {l:?}");
            if ci == 0 && k < 4 {
                let bits: Vec<bool> = inst[k]
                    .iter()
                    .flat_map(|&v| (0..f.width()).map(move |j| (v >> j) & 1 == 1))
                    .collect();
                let single = c.eval_single(&bits).unwrap();
                let word = |r: std::ops::Range<usize>| {
                    r.enumerate()
                        .fold(0u64, |a, (j, i)| a | ((single[i] as u64) << j))
                };
                let w = f.width() as usize;
                assert_eq!(word(0..w), o[0], "{what}: eval_single max");
                assert_eq!(word(w..w + n), o[1], "{what}: eval_single argmax");
            }
        }
    }
}

/// Every n-tuple of values of `f`.
fn all_tuples(f: Format, n: usize) -> Vec<Vec<Float>> {
    let vals: Vec<Float> = f.all_values().collect();
    let mut out: Vec<Vec<Float>> = vec![Vec::new()];
    for _ in 0..n {
        out = out
            .into_iter()
            .flat_map(|t| {
                vals.iter().map(move |&v| {
                    let mut u = t.clone();
                    u.push(v);
                    u
                })
            })
            .collect();
    }
    out
}

#[test]
fn max_argmax_exhaustive_tiny_formats() {
    for (p, q, n) in [(2, 2, 2), (2, 2, 3), (2, 2, 4), (3, 2, 3), (2, 3, 3)] {
        let f = fmt(p, q);
        let c = build(f, n);
        let lists = all_tuples(f, n);
        println!("{f} n = {n}: {} tuples, depth {}", lists.len(), c.depth());
        check(&c, f, &lists, &format!("exhaustive {f} n = {n}"));
    }
}

/// A random list of n values of `f`, by `kind`: uniform encodings with zeros and extremes, a
/// small pool (many ties, repeated maxima), all equal, all negative, or maxima at both ends.
fn rand_list(rng: &mut ChaCha8Rng, f: Format, n: usize, kind: u32) -> Vec<Float> {
    let any = |rng: &mut ChaCha8Rng| -> Float {
        match rng.random_range(0..20) {
            0 => f.zero(),
            1 => f.max_finite(rng.random_bool(0.5)),
            2 => f.min_positive(),
            _ => {
                let e = rng.random_range(f.e_min()..=f.e_max());
                let sig = (1u64 << (f.p() - 1)) | rng.random_range(0..(1u64 << (f.p() - 1)));
                f.from_parts(rng.random_bool(0.5), e, sig).unwrap()
            }
        }
    };
    match kind % 5 {
        0 => (0..n).map(|_| any(rng)).collect(),
        1 => {
            let pool: Vec<Float> = (0..rng.random_range(1..4)).map(|_| any(rng)).collect();
            (0..n)
                .map(|_| pool[rng.random_range(0..pool.len())])
                .collect()
        }
        2 => vec![any(rng); n],
        3 => (0..n)
            .map(|_| {
                let x = any(rng);
                if x.is_negative() || x.is_zero() {
                    x
                } else {
                    x.neg()
                }
            })
            .collect(),
        _ => {
            let mut v: Vec<Float> = (0..n).map(|_| any(rng)).collect();
            let top = f.max_finite(false);
            v[0] = top;
            v[n - 1] = top;
            if rng.random_bool(0.5) {
                v[0] = top.neg();
            }
            v
        }
    }
}

#[test]
fn max_argmax_random() {
    let cases: &[(u32, u32, usize, usize)] = &[
        (4, 4, 4, 4000),
        (4, 4, 5, 4000),
        (4, 4, 9, 3000),
        (4, 4, 50, 1000),
        (8, 5, 6, 3000),
        (8, 5, 7, 3000),
        (8, 5, 16, 2000),
        (8, 5, 33, 1000),
        (8, 5, 64, 1000),
        (11, 6, 23, 1000),
        (11, 6, 64, 600),
    ];
    let mut rng = ChaCha8Rng::seed_from_u64(31);
    for &(p, q, n, count) in cases {
        let f = fmt(p, q);
        let c = build(f, n);
        let lists: Vec<Vec<Float>> = (0..count)
            .map(|k| rand_list(&mut rng, f, n, k as u32))
            .collect();
        check(&c, f, &lists, &format!("random {f} n = {n}"));
    }
}

/// Max and argmax (as a binary index) for n > 64, where the one-hot word does not fit a u64.
fn build_wide(f: Format, n: usize, max: bool) -> Circuit {
    let mut b = Builder::new();
    let xs: Vec<FloatWord> = (0..n)
        .map(|i| FloatWord::input(&mut b, &format!("x{i}"), f).unwrap())
        .collect();
    if max {
        let m = cmp::max_n(&mut b, &xs).unwrap();
        b.output_word("max", &m.bits).unwrap();
    } else {
        let a = cmp::argmax_n(&mut b, &xs).unwrap();
        // One-hot to binary: bit k is the OR of the literals whose index has bit k.
        let idx: Vec<Lit> = (0..usize::BITS - n.leading_zeros())
            .map(|k| {
                let ls: Vec<Lit> = (0..n).filter(|i| (i >> k) & 1 == 1).map(|i| a[i]).collect();
                b.or(&ls).unwrap()
            })
            .collect();
        // ... and the count of true literals must be exactly one.
        let one = b
            .threshold(&a.iter().map(|&l| (l, 1)).collect::<Vec<_>>(), 1)
            .unwrap();
        let two = b
            .threshold(&a.iter().map(|&l| (l, 1)).collect::<Vec<_>>(), 2)
            .unwrap();
        b.output_word("index", &idx).unwrap();
        b.output_word("count", &[one, two]).unwrap();
    }
    b.finish()
}

fn check_wide(f: Format, n: usize, count: usize, seed: u64, which: &[bool]) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let lists: Vec<Vec<Float>> = (0..count)
        .map(|k| rand_list(&mut rng, f, n, k as u32))
        .collect();
    let inst: Vec<Vec<u64>> = lists
        .iter()
        .map(|l| l.iter().map(|x| x.to_bits()).collect())
        .collect();
    let batch = Batch::pack_fields(&vec![f.width(); n], &inst).unwrap();
    for &max in which {
        let c = build_wide(f, n, max);
        let s = c.stats();
        println!(
            "{f} n = {n} {}: depth {}, gates {}, terms {}",
            if max { "max" } else { "argmax" },
            s.depth,
            s.gates,
            s.form_terms
        );
        // argmax 4, plus one level for the one-hot-to-binary ORs and the count
        assert_eq!(s.depth, 5, "{f} n = {n}");
        let mut ev = CpuEvaluator::new(&c.levelize()).unwrap();
        let widths: Vec<u32> = c.outputs.iter().map(|w| w.bits.len() as u32).collect();
        let out = ev.evaluate(&batch).unwrap().unpack_fields(&widths).unwrap();
        for (l, o) in lists.iter().zip(&out) {
            let (m, best) = reference(l);
            if max {
                assert_eq!(o[0], m, "max of {n} in {f}");
            } else {
                assert_eq!(o[0], best as u64, "argmax of {n} in {f}");
                assert_eq!(o[1], 1, "argmax of {n} in {f}: not one-hot");
            }
        }
    }
}

#[test]
fn max_argmax_random_large_n() {
    let both = [true, false];
    check_wide(fmt(8, 5), 256, 640, 32, &both);
    check_wide(fmt(8, 5), 1000, 128, 33, &both);
    check_wide(fmt(4, 4), 129, 640, 34, &both);
}

#[test]
fn argmax_n4096_f116() {
    // The released models' vocabulary: sampling by argmax over 4096 logits.
    check_wide(fmt(11, 6), 4096, 128, 35, &[false]);
}

#[test]
fn max_argmax_depth_and_work() {
    let f = fmt(8, 5);
    for n in [1, 2, 3, 4, 5, 8, 17, 64, 256, 700] {
        let mut b = Builder::new();
        let xs: Vec<FloatWord> = (0..n)
            .map(|i| FloatWord::input(&mut b, &format!("x{i}"), f).unwrap())
            .collect();
        let m = cmp::max_n(&mut b, &xs).unwrap();
        b.output_word("max", &m.bits).unwrap();
        let cm = b.finish().stats();
        let mut b = Builder::new();
        let xs: Vec<FloatWord> = (0..n)
            .map(|i| FloatWord::input(&mut b, &format!("x{i}"), f).unwrap())
            .collect();
        let a = cmp::argmax_n(&mut b, &xs).unwrap();
        b.output_word("argmax", &a).unwrap();
        let ca = b.finish().stats();
        println!(
            "{f} n = {n}: max depth {} terms {}, argmax depth {} terms {}",
            cm.depth, cm.form_terms, ca.depth, ca.form_terms
        );
        if n >= 2 {
            assert_eq!((cm.depth, ca.depth), (5, 4), "n = {n}");
        } else {
            assert_eq!((cm.depth, ca.depth), (0, 0), "n = {n}");
        }
        // O(n^1.5 (p + q)) work: 4 sqrt(2) n^1.5 (p + q + 1) bounds the construction.
        let bound = 5.7 * (n as f64).powf(1.5) * 14.0 + 1000.0;
        assert!(
            (cm.form_terms as f64) < bound,
            "max n = {n}: {}",
            cm.form_terms
        );
        assert!(
            (ca.form_terms as f64) < bound,
            "argmax n = {n}: {}",
            ca.form_terms
        );
        if n == 256 {
            assert!(cm.form_terms <= 1_000_000 && ca.form_terms <= 1_000_000);
        }
    }
}
