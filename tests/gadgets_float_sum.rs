//! The iterated float sum and the dot product (the grid placed in two stages and
//! summed by column counts) against the `float` reference, bit for bit: exhaustive at tiny
//! formats, seeded random with heavy cancellation, ties, saturation and flush at F(8,5) (n up
//! to 16384) and F(11,6), the exact partial sums of `fixed`, and depth independent of n.

mod common;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tcvar::circuit::{Builder, Circuit, Lit};
use tcvar::float::{Float, Format};
use tcvar::gadgets::float::{fixed, sum, FloatWord};

use common::float_gadgets::{eval_words, fmt, rand_sig};

/// Cross-check the evaluator against `Circuit::eval_single` on the first `k` instances
/// (`eval_single` sums every gate's form separately: only for circuits of < 20M wires).
fn check_single(c: &Circuit, instances: &[Vec<u64>], got: &[Vec<u64>], k: usize) {
    if c.stats().fan_in >= 20_000_000 {
        return;
    }
    let in_widths: Vec<usize> = c.inputs.iter().map(|w| w.bits.len()).collect();
    for (inst, g) in instances.iter().zip(got).take(k) {
        let mut bits = Vec::new();
        for (wi, &w) in in_widths.iter().enumerate() {
            for bit in 0..w {
                bits.push((inst[wi] >> bit) & 1 == 1);
            }
        }
        let o = c.eval_single(&bits).unwrap();
        let mut at = 0;
        for (oi, ow) in c.outputs.iter().enumerate() {
            let mut v = 0u64;
            for bit in 0..ow.bits.len() {
                if o[at] {
                    v |= 1 << bit;
                }
                at += 1;
            }
            assert_eq!(v, g[oi], "CpuEvaluator disagrees with eval_single");
        }
    }
}

/// A circuit over `m` float inputs of `f` whose outputs are `g`'s words.
fn build(
    f: Format,
    m: usize,
    g: impl FnOnce(&mut Builder, &[FloatWord]) -> Vec<Vec<Lit>>,
) -> Circuit {
    let mut b = Builder::new();
    let xs: Vec<FloatWord> = (0..m)
        .map(|i| FloatWord::input(&mut b, &format!("x{i}"), f).unwrap())
        .collect();
    for (k, w) in g(&mut b, &xs).iter().enumerate() {
        b.output_word(&format!("o{k}"), w).unwrap();
    }
    b.finish()
}

fn sum_circuit(f: Format, n: usize) -> Circuit {
    build(f, n, |b, xs| vec![sum::sum(b, xs).unwrap().bits])
}

fn dot_circuit(f: Format, n: usize) -> Circuit {
    build(f, 2 * n, |b, xs| {
        vec![sum::dot(b, &xs[..n], &xs[n..]).unwrap().bits]
    })
}

/// Every valid encoding of `f` (one zero).
fn all_values(f: Format) -> Vec<Float> {
    (0..1u64 << f.width())
        .filter_map(|w| f.from_bits(w).ok())
        .collect()
}

fn words(l: &[Float]) -> Vec<u64> {
    l.iter().map(|x| x.to_bits()).collect()
}

/// Check `circuit(list) == reference(list)` for every list.
fn check(c: &Circuit, lists: &[Vec<Float>], reference: impl Fn(&[Float]) -> Float, what: &str) {
    let inst: Vec<Vec<u64>> = lists.iter().map(|l| words(l)).collect();
    let got = eval_words(c, &inst);
    check_single(c, &inst, &got, 4);
    for (l, g) in lists.iter().zip(&got) {
        let want = reference(l).to_bits();
        assert_eq!(g[0], want, "{what}: {l:?}");
    }
}

// ------------------------------------------------------------------ exhaustive

#[test]
fn sum_exhaustive_tiny_formats() {
    for (p, q, n) in [
        (2, 2, 2),
        (2, 2, 3),
        (2, 2, 4),
        (3, 3, 2),
        (3, 3, 3),
        (4, 2, 3),
    ] {
        let f = fmt(p, q);
        let vals = all_values(f);
        let k = vals.len();
        let mut lists = Vec::new();
        for mut idx in 0..k.pow(n as u32) {
            let mut l = Vec::with_capacity(n);
            for _ in 0..n {
                l.push(vals[idx % k]);
                idx /= k;
            }
            lists.push(l);
        }
        let c = sum_circuit(f, n);
        check(
            &c,
            &lists,
            |l| f.sum(l).unwrap(),
            &format!("sum of {n} in {f}"),
        );
    }
}

#[test]
fn dot_exhaustive_tiny_format() {
    let f = fmt(3, 3);
    let vals = all_values(f);
    let k = vals.len();
    let mut lists = Vec::new();
    for idx in 0..k * k * k * k {
        let (a, b2, c2, d) = (idx % k, idx / k % k, idx / (k * k) % k, idx / (k * k * k));
        lists.push(vec![vals[a], vals[b2], vals[c2], vals[d]]);
    }
    let c = dot_circuit(f, 2);
    check(
        &c,
        &lists,
        |l| f.dot(&l[..2], &l[2..]).unwrap(),
        "dot of 2 in F(3,3)",
    );
}

// ------------------------------------------------------------------ random with cancellation

fn rand_val(rng: &mut ChaCha8Rng, f: Format) -> Float {
    match rng.random_range(0..100) {
        0..=4 => f.zero(),
        5..=6 => f.max_finite(rng.random_bool(0.5)),
        _ => {
            let e = f.e_min() + rng.random_range(0..(1i32 << f.q()));
            f.from_parts(rng.random_bool(0.5), e, rand_sig(rng, f))
                .unwrap()
        }
    }
}

/// A random list of `n` values of one of several kinds: uniform; exact cancellation of pairs
/// plus small remainders; a near-tie (one large value plus small ones summing to about half a
/// unit of it); clustered exponents near the top (saturation) or the bottom (flush).
fn rand_list(rng: &mut ChaCha8Rng, f: Format, n: usize, kind: u32) -> Vec<Float> {
    let p = f.p() as i32;
    let mut v: Vec<Float> = (0..n).map(|_| rand_val(rng, f)).collect();
    match kind % 6 {
        0 => {}
        1 | 2 => {
            // pairs x, -x; a few survivors at lower exponents
            for i in (0..n.saturating_sub(1)).step_by(2) {
                v[i + 1] = v[i].neg();
            }
            let survivors = rng.random_range(1..=3.min(n));
            for x in v.iter_mut().take(survivors) {
                let e = f.e_min() + rng.random_range(0..(1i32 << f.q()));
                *x = f
                    .from_parts(rng.random_bool(0.5), e, rand_sig(rng, f))
                    .unwrap();
            }
            if kind % 6 == 2 && n >= 3 {
                // x, -x with x = max: the rest decides
                v[0] = f.max_finite(false);
                v[1] = f.max_finite(true);
            }
        }
        3 => {
            // one large value, the rest tiny: near a rounding tie of the large value
            let e0 = f.e_min() + rng.random_range(p + 2..(1i32 << f.q()).max(p + 3));
            let e0 = e0.min(f.e_max());
            v[0] = f
                .from_parts(rng.random_bool(0.5), e0, rand_sig(rng, f))
                .unwrap();
            let half = e0 - p; // weight of half a unit of v[0] (its significand has p bits)
            for x in v.iter_mut().skip(1) {
                let e = (half - rng.random_range(0..p + 4)).max(f.e_min());
                let sig = if rng.random_bool(0.5) {
                    1u64 << (p - 1)
                } else {
                    rand_sig(rng, f)
                };
                *x = f.from_parts(rng.random_bool(0.3), e, sig).unwrap();
            }
            if n >= 2 && rng.random_bool(0.5) {
                // an exact tie
                v[1] = f.from_parts(false, half, 1u64 << (p - 1)).unwrap();
                for x in v.iter_mut().skip(2) {
                    *x = f.zero();
                }
            }
        }
        4 => {
            let neg = rng.random_bool(0.5);
            for x in v.iter_mut() {
                let e = f.e_max() - rng.random_range(0..3);
                *x = f
                    .from_parts(neg ^ rng.random_bool(0.1), e, rand_sig(rng, f))
                    .unwrap();
            }
        }
        _ => {
            for x in v.iter_mut() {
                let e = f.e_min() + rng.random_range(0..3);
                *x = f
                    .from_parts(rng.random_bool(0.5), e, rand_sig(rng, f))
                    .unwrap();
            }
        }
    }
    for i in (1..n).rev() {
        let j = rng.random_range(0..=i);
        v.swap(i, j);
    }
    v
}

fn rand_lists(seed: u64, f: Format, len: usize, count: usize) -> Vec<Vec<Float>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..count)
        .map(|k| rand_list(&mut rng, f, len, k as u32))
        .collect()
}

#[test]
fn sum_random_with_cancellation() {
    for (p, q, n, count, seed) in [
        (4, 4, 5, 3000, 1),
        (8, 5, 2, 3000, 2),
        (8, 5, 7, 3000, 3),
        (8, 5, 256, 1200, 4),
        (11, 6, 3, 2000, 5),
        (11, 6, 64, 600, 6),
        (5, 9, 33, 300, 7),
    ] {
        let f = fmt(p, q);
        let c = sum_circuit(f, n);
        let lists = rand_lists(seed, f, n, count);
        check(
            &c,
            &lists,
            |l| f.sum(l).unwrap(),
            &format!("sum of {n} in {f}"),
        );
    }
}

#[test]
fn dot_random_with_cancellation() {
    for (p, q, n, count, seed) in [
        (8, 5, 3, 2000, 11),
        (8, 5, 256, 600, 12),
        (11, 6, 64, 600, 13),
    ] {
        let f = fmt(p, q);
        let c = dot_circuit(f, n);
        let lists = rand_lists(seed, f, 2 * n, count);
        check(
            &c,
            &lists,
            |l| f.dot(&l[..n], &l[n..]).unwrap(),
            &format!("dot of {n} in {f}"),
        );
    }
}

/// n = 16384 (= `MAX_TERMS`) at F(8,5): one moderate batch for sum and for dot, and the depth
/// equals the depth at n = 256.
#[test]
fn sum_and_dot_at_max_terms() {
    let f = fmt(8, 5);
    let n = sum::MAX_TERMS;
    assert!(n >= 16384);
    let c = sum_circuit(f, n);
    let lists = rand_lists(21, f, n, 96);
    check(&c, &lists, |l| f.sum(l).unwrap(), "sum of 16384 in F(8,5)");
    assert_eq!(
        c.depth(),
        sum_circuit(f, 256).depth(),
        "sum depth depends on n"
    );
    let c = dot_circuit(f, n);
    let lists = rand_lists(22, f, 2 * n, 48);
    check(
        &c,
        &lists,
        |l| f.dot(&l[..n], &l[n..]).unwrap(),
        "dot of 16384 in F(8,5)",
    );
    assert_eq!(
        c.depth(),
        dot_circuit(f, 256).depth(),
        "dot depth depends on n"
    );
}

#[test]
fn depth_independent_of_n() {
    for (p, q) in [(4, 4), (8, 5), (11, 6)] {
        let f = fmt(p, q);
        let d8 = sum_circuit(f, 8).depth();
        for n in [16, 100, 1024] {
            assert_eq!(sum_circuit(f, n).depth(), d8, "sum depth at n = {n} in {f}");
        }
        let d8 = dot_circuit(f, 8).depth();
        assert_eq!(dot_circuit(f, 300).depth(), d8, "dot depth in {f}");
    }
}

#[test]
fn too_many_operands_is_an_error() {
    let f = fmt(2, 2);
    let mut b = Builder::new();
    let x = FloatWord::input(&mut b, "x", f).unwrap();
    let xs = vec![x; sum::MAX_TERMS + 1];
    assert!(sum::sum(&mut b, &xs).is_err());
    assert!(sum::sum(&mut b, &[]).is_err());
}

// ------------------------------------------------------------------ fixed: exact partial sums

/// `round_sum` of the `exact_sum`s of chunks equals `Format::sum` of the whole list, and each
/// `exact_sum` is the exact integer on the grid.
#[test]
fn fixed_partial_sums() {
    for (p, q, n, chunk, count, seed) in [
        (3, 3, 6usize, 2usize, 3000, 31),
        (8, 5, 40, 16, 800, 32),
        (11, 6, 24, 8, 400, 33),
    ] {
        let f = fmt(p, q);
        let nchunks: usize = n.div_ceil(chunk);
        let c = build(f, n, |b, xs| {
            let parts: Vec<Vec<Lit>> = xs
                .chunks(chunk)
                .map(|ch| fixed::exact_sum(b, ch).unwrap())
                .collect();
            let mut outs = vec![fixed::round_sum(b, f, &parts).unwrap().bits];
            if fixed::exact_width(f, chunk) <= 64 {
                outs.extend(parts);
            }
            outs
        });
        let lists = rand_lists(seed, f, n, count);
        let inst: Vec<Vec<u64>> = lists.iter().map(|l| words(l)).collect();
        let got = eval_words(&c, &inst);
        check_single(&c, &inst, &got, 4);
        for (l, g) in lists.iter().zip(&got) {
            assert_eq!(g[0], f.sum(l).unwrap().to_bits(), "round_sum of {l:?}");
            if g.len() == 1 {
                continue;
            }
            for (k, ch) in l.chunks(chunk).enumerate() {
                let w = fixed::exact_width(f, ch.len());
                let exact: i128 = ch
                    .iter()
                    .filter(|x| !x.is_zero())
                    .map(|x| {
                        let v = (x.sig() as i128) << (x.exp() - f.e_min());
                        if x.is_negative() {
                            -v
                        } else {
                            v
                        }
                    })
                    .sum();
                let want = (exact as u128 & ((1u128 << w) - 1)) as u64;
                assert_eq!(g[1 + k], want, "exact_sum of chunk {k} of {nchunks}");
            }
        }
    }
}
