//! Float add/sub/compare/max/argmax/floor/sum/dot gadgets against the `float` reference, bit
//! for bit: exhaustive at F(4,4), seeded random at F(8,5) and F(11,6), and the constant-depth
//! checks.
//!
//! Circuits are evaluated by a small independent bit-sliced interpreter of the netlist (64
//! instances per word, forms summed once per bank), cross-checked against
//! `Circuit::eval_single` on a few instances.

mod common;

use std::cmp::Ordering;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tcvar::circuit::{Builder, Circuit, Lit, Node};
use tcvar::float::{Float, Format};
use tcvar::gadgets::float::{add, cmp, round, sum, FloatWord};

use common::float_gadgets::{eval_words, fmt};

// ------------------------------------------------------------------ evaluation

/// Evaluate `c` with the crate's `CpuEvaluator` on instances (each a list of input-word values,
/// in input-word order); returns each instance's output-word values. The first instances are
/// cross-checked against the local interpreter [`interp`] and `Circuit::eval_single`.
fn run(c: &Circuit, instances: &[Vec<u64>]) -> Vec<Vec<u64>> {
    let got = eval_words(c, instances);
    let k = instances.len().min(256);
    assert_eq!(
        interp(c, &instances[..k]),
        got[..k],
        "CpuEvaluator disagrees with the interpreter"
    );
    check_interpreter(c, instances, &got);
    got
}

/// An independent bit-sliced interpreter of the netlist (64 instances per word, each form
/// summed once per bank).
fn interp(c: &Circuit, instances: &[Vec<u64>]) -> Vec<Vec<u64>> {
    let in_widths: Vec<usize> = c.inputs.iter().map(|w| w.bits.len()).collect();
    let nforms = c.forms.len();
    let mut bank_of: Vec<Vec<(usize, i64)>> = vec![Vec::new(); nforms];
    for (w, n) in c.nodes.iter().enumerate() {
        if let Node::Gate { form, threshold } = *n {
            bank_of[form.index()].push((w, threshold));
        }
    }
    let mut out = Vec::with_capacity(instances.len());
    let mut val = vec![0u64; c.nodes.len()];
    let mut done = vec![false; nforms];
    for chunk in instances.chunks(64) {
        // inputs
        let mut input_words = vec![0u64; c.num_inputs()];
        for (lane, inst) in chunk.iter().enumerate() {
            let mut k = 0;
            for (wi, &w) in in_widths.iter().enumerate() {
                for bit in 0..w {
                    if (inst[wi] >> bit) & 1 == 1 {
                        input_words[k] |= 1 << lane;
                    }
                    k += 1;
                }
            }
        }
        done.iter_mut().for_each(|d| *d = false);
        for w in 0..c.nodes.len() {
            match c.nodes[w] {
                Node::False => val[w] = 0,
                Node::Input(i) => val[w] = input_words[i as usize],
                Node::Gate { form, .. } => {
                    if done[form.index()] {
                        continue;
                    }
                    done[form.index()] = true;
                    let mut sums = [0i64; 64];
                    let (wires, weights) = c.forms.terms(form);
                    for (x, &wt) in wires.iter().zip(weights) {
                        let mut bits = val[x.index()];
                        while bits != 0 {
                            let lane = bits.trailing_zeros() as usize;
                            sums[lane] += wt;
                            bits &= bits - 1;
                        }
                    }
                    for &(g, th) in &bank_of[form.index()] {
                        let mut word = 0u64;
                        for (lane, &s) in sums.iter().enumerate() {
                            if s >= th {
                                word |= 1 << lane;
                            }
                        }
                        val[g] = word;
                    }
                }
            }
        }
        let lit = |l: Lit| -> u64 {
            let v = val[l.wire().index()];
            if l.is_complemented() {
                !v
            } else {
                v
            }
        };
        for lane in 0..chunk.len() {
            let mut res = Vec::with_capacity(c.outputs.len());
            for ow in &c.outputs {
                let mut v = 0u64;
                for (bit, &l) in ow.bits.iter().enumerate() {
                    if (lit(l) >> lane) & 1 == 1 {
                        v |= 1 << bit;
                    }
                }
                res.push(v);
            }
            out.push(res);
        }
    }
    out
}

/// Cross-check the interpreter against `Circuit::eval_single` on the first instances.
fn check_interpreter(c: &Circuit, instances: &[Vec<u64>], got: &[Vec<u64>]) {
    let in_widths: Vec<usize> = c.inputs.iter().map(|w| w.bits.len()).collect();
    // eval_single sums every gate's form separately: only affordable for small circuits.
    let take = if stats(c).fan_in < 20_000_000 { 8 } else { 0 };
    for (inst, g) in instances.iter().zip(got).take(take) {
        let mut bits = Vec::new();
        for (wi, &w) in in_widths.iter().enumerate() {
            for bit in 0..w {
                bits.push((inst[wi] >> bit) & 1 == 1);
            }
        }
        let o = c.eval_single(&bits).unwrap();
        let mut k = 0;
        for (oi, ow) in c.outputs.iter().enumerate() {
            let mut v = 0u64;
            for bit in 0..ow.bits.len() {
                if o[k] {
                    v |= 1 << bit;
                }
                k += 1;
            }
            assert_eq!(v, g[oi], "interpreter disagrees with eval_single");
        }
    }
}

fn bits(x: Float) -> u64 {
    x.to_bits()
}

// ------------------------------------------------------------------ random values

/// A random value: mostly uniform encodings, with zero, extremes and exponent-range ends.
fn rand_val(rng: &mut ChaCha8Rng, f: Format) -> Float {
    let p = f.p();
    let q = f.q();
    let r: u32 = rng.random_range(0..100);
    let neg = rng.random_bool(0.5);
    let sig = (1u64 << (p - 1)) | rng.random_range(0..(1u64 << (p - 1)));
    let e = match r {
        0..=4 => return f.zero(),
        5..=7 => return f.max_finite(neg),
        8..=10 => {
            let m = f.min_positive();
            return if neg { m.neg() } else { m };
        }
        11..=25 => f.e_max() - rng.random_range(0..3),
        26..=40 => f.e_min() + rng.random_range(0..3),
        _ => f.e_min() + rng.random_range(0..(1i32 << q)),
    };
    f.from_parts(neg, e, sig).unwrap()
}

/// A value near `x` in magnitude (same or neighbouring exponent), to provoke cancellation.
fn near(rng: &mut ChaCha8Rng, x: Float) -> Float {
    let f = x.format();
    if x.is_zero() {
        return rand_val(rng, f);
    }
    let e = (x.exp() + rng.random_range(-2..=2)).clamp(f.e_min(), f.e_max());
    let p = f.p();
    let sig = if rng.random_bool(0.3) {
        x.sig()
    } else {
        (1u64 << (p - 1)) | rng.random_range(0..(1u64 << (p - 1)))
    };
    f.from_parts(rng.random_bool(0.5), e, sig).unwrap()
}

fn pairs(rng: &mut ChaCha8Rng, f: Format, count: usize) -> Vec<(Float, Float)> {
    (0..count)
        .map(|i| {
            let x = rand_val(rng, f);
            let y = if i % 2 == 0 {
                near(rng, x)
            } else {
                rand_val(rng, f)
            };
            (x, y)
        })
        .collect()
}

// ------------------------------------------------------------------ binary gadgets

type BinBuild = fn(&mut Builder, &FloatWord, &FloatWord) -> Vec<Vec<Lit>>;

fn build_bin(f: Format, g: BinBuild) -> Circuit {
    let mut b = Builder::new();
    let x = FloatWord::input(&mut b, "x", f).unwrap();
    let y = FloatWord::input(&mut b, "y", f).unwrap();
    for (i, o) in g(&mut b, &x, &y).iter().enumerate() {
        b.output_word(&format!("o{i}"), o).unwrap();
    }
    b.finish()
}

fn b_add(b: &mut Builder, x: &FloatWord, y: &FloatWord) -> Vec<Vec<Lit>> {
    vec![
        add::add(b, x, y).unwrap().bits,
        add::sub(b, x, y).unwrap().bits,
    ]
}

fn b_cmp(b: &mut Builder, x: &FloatWord, y: &FloatWord) -> Vec<Vec<Lit>> {
    let c = cmp::compare(b, x, y).unwrap();
    vec![
        vec![cmp::lt(b, x, y).unwrap()],
        vec![cmp::le(b, x, y).unwrap()],
        vec![cmp::eq(b, x, y).unwrap()],
        vec![c.lt, c.eq, c.gt],
    ]
}

fn ref_add(x: Float, y: Float) -> Vec<u64> {
    vec![bits(x.add(y).unwrap()), bits(x.sub(y).unwrap())]
}

fn ref_cmp(x: Float, y: Float) -> Vec<u64> {
    let o = x.cmp_value(y).unwrap();
    vec![
        (o == Ordering::Less) as u64,
        (o != Ordering::Greater) as u64,
        (o == Ordering::Equal) as u64,
        match o {
            Ordering::Less => 1,
            Ordering::Equal => 2,
            Ordering::Greater => 4,
        },
    ]
}

fn check_bin(c: &Circuit, ps: &[(Float, Float)], r: fn(Float, Float) -> Vec<u64>, what: &str) {
    let inst: Vec<Vec<u64>> = ps.iter().map(|&(x, y)| vec![bits(x), bits(y)]).collect();
    let got = run(c, &inst);
    check_interpreter(c, &inst, &got);
    for ((&(x, y), g), _) in ps.iter().zip(&got).zip(0..) {
        let want = r(x, y);
        assert_eq!(g, &want, "{what}: x = {x}, y = {y}");
    }
}

fn all_pairs(f: Format) -> Vec<(Float, Float)> {
    let vals: Vec<Float> = f.all_values().collect();
    let mut ps = Vec::with_capacity(vals.len() * vals.len());
    for &x in &vals {
        for &y in &vals {
            ps.push((x, y));
        }
    }
    ps
}

#[test]
fn add_sub_exhaustive_f44() {
    let f = fmt(4, 4);
    let c = build_bin(f, b_add);
    check_bin(&c, &all_pairs(f), ref_add, "add/sub F(4,4)");
}

#[test]
fn add_sub_exhaustive_small_formats() {
    // Every pair of values: p from 2 (no bits below the leading one) to 6, q from 2 to 5
    // (exponent differences beyond p + 2, where only the sticky bit is left, saturation and
    // flush at both ends of the range).
    for (p, q) in [
        (2, 2),
        (2, 3),
        (3, 2),
        (2, 5),
        (4, 3),
        (3, 5),
        (5, 4),
        (6, 3),
    ] {
        let f = fmt(p, q);
        let c = build_bin(f, b_add);
        check_bin(&c, &all_pairs(f), ref_add, &format!("add/sub {f}"));
    }
}

#[test]
fn add_sub_random_wide_formats() {
    // The widest formats: F(24,9) (f32's significand) and F(32,16) (the largest supported).
    for (p, q, seed) in [(16, 7, 5u64), (24, 9, 6), (32, 16, 7)] {
        let f = fmt(p, q);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let c = build_bin(f, b_add);
        check_bin(&c, &pairs(&mut rng, f, 30_000), ref_add, "add/sub random");
    }
}

#[test]
fn compare_exhaustive_f44() {
    let f = fmt(4, 4);
    let c = build_bin(f, b_cmp);
    check_bin(&c, &all_pairs(f), ref_cmp, "compare F(4,4)");
}

#[test]
fn add_sub_random_f85_f116() {
    for (p, q, seed) in [(8, 5, 1u64), (11, 6, 2)] {
        let f = fmt(p, q);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let c = build_bin(f, b_add);
        check_bin(&c, &pairs(&mut rng, f, 100_000), ref_add, "add/sub random");
    }
}

#[test]
fn compare_random_f85_f116() {
    for (p, q, seed) in [(8, 5, 3u64), (11, 6, 4)] {
        let f = fmt(p, q);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let c = build_bin(f, b_cmp);
        let mut ps = pairs(&mut rng, f, 100_000);
        // equal pairs too
        for i in 0..1000 {
            let x = ps[i].0;
            ps.push((x, x));
        }
        check_bin(&c, &ps, ref_cmp, "compare random");
    }
}

// ------------------------------------------------------------------ floor

#[test]
fn floor_exhaustive() {
    // Every value of F(4,4), F(8,5) and F(11,6) (floor is unary: exhaustive everywhere).
    for (p, q) in [(4, 4), (8, 5), (11, 6), (6, 2), (3, 5)] {
        let f = fmt(p, q);
        let mut b = Builder::new();
        let x = FloatWord::input(&mut b, "x", f).unwrap();
        let y = round::floor(&mut b, &x).unwrap();
        b.output_word("y", &y.bits).unwrap();
        let c = b.finish();
        let vals: Vec<Float> = f.all_values().collect();
        let inst: Vec<Vec<u64>> = vals.iter().map(|&v| vec![bits(v)]).collect();
        let got = run(&c, &inst);
        check_interpreter(&c, &inst, &got);
        for (v, g) in vals.iter().zip(&got) {
            assert_eq!(g[0], bits(v.floor()), "floor {v} in {f}");
        }
    }
}

// ------------------------------------------------------------------ n-ary gadgets

/// A random operand list of length n: mixed with cancellation (x, -x, tiny), exponent-range
/// ends and saturating sums.
fn rand_list(rng: &mut ChaCha8Rng, f: Format, n: usize, kind: u32) -> Vec<Float> {
    let mut v: Vec<Float> = (0..n).map(|_| rand_val(rng, f)).collect();
    match kind % 4 {
        0 => {}
        1 => {
            // heavy cancellation: pairs x, -x plus a tiny value
            for i in (0..n.saturating_sub(1)).step_by(2) {
                v[i + 1] = v[i].neg();
            }
            if n % 2 == 1 || rng.random_bool(0.5) {
                let last = n - 1;
                let e = f.e_min() + rng.random_range(0..3);
                v[last] = f
                    .from_parts(rng.random_bool(0.5), e, 1u64 << (f.p() - 1))
                    .unwrap();
            }
        }
        2 => {
            // all large, same sign: saturation
            let neg = rng.random_bool(0.5);
            for x in v.iter_mut() {
                let e = f.e_max() - rng.random_range(0..2);
                let s = (1u64 << (f.p() - 1)) | rng.random_range(0..(1u64 << (f.p() - 1)));
                *x = f.from_parts(neg, e, s).unwrap();
            }
        }
        _ => {
            // all tiny, near cancellation: flush to zero or smallest values
            for x in v.iter_mut() {
                let e = f.e_min() + rng.random_range(0..2);
                let s = (1u64 << (f.p() - 1)) | rng.random_range(0..(1u64 << (f.p() - 1)));
                *x = f.from_parts(rng.random_bool(0.5), e, s).unwrap();
            }
        }
    }
    // shuffle
    for i in (1..n).rev() {
        let j = rng.random_range(0..=i);
        v.swap(i, j);
    }
    v
}

type NBuild<'a> = &'a dyn Fn(&mut Builder, &[FloatWord]) -> Vec<Vec<Lit>>;

fn build_n(f: Format, n: usize, g: NBuild) -> Circuit {
    let mut b = Builder::new();
    let xs: Vec<FloatWord> = (0..n)
        .map(|i| FloatWord::input(&mut b, &format!("x{i}"), f).unwrap())
        .collect();
    for (i, o) in g(&mut b, &xs).iter().enumerate() {
        b.output_word(&format!("o{i}"), o).unwrap();
    }
    b.finish()
}

fn argmax_ref(xs: &[Float]) -> u64 {
    let mut best = 0;
    for i in 1..xs.len() {
        if xs[i].cmp_value(xs[best]).unwrap() == Ordering::Greater {
            best = i;
        }
    }
    best as u64
}

#[test]
fn sum_max_argmax_random() {
    let cases: &[(u32, u32, usize, usize)] = &[
        (4, 4, 2, 3000),
        (4, 4, 3, 3000),
        (4, 4, 8, 2000),
        (8, 5, 2, 4000),
        (8, 5, 3, 4000),
        (8, 5, 8, 2000),
        (8, 5, 64, 300),
        (8, 5, 256, 64),
        (11, 6, 3, 2000),
        (11, 6, 16, 500),
    ];
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for &(p, q, n, count) in cases {
        let f = fmt(p, q);
        let t0 = std::time::Instant::now();
        let c = build_n(f, n, &|b, xs| {
            let am = cmp::argmax_n(b, xs).unwrap();
            // the one-hot argmax as a binary index
            let idx: Vec<Lit> = (0..usize::BITS - n.leading_zeros())
                .map(|bit| {
                    let ls: Vec<Lit> = am
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| (i >> bit) & 1 == 1)
                        .map(|(_, &l)| l)
                        .collect();
                    b.or(&ls).unwrap()
                })
                .collect();
            vec![
                sum::sum(b, xs).unwrap().bits,
                cmp::max_n(b, xs).unwrap().bits,
                idx,
            ]
        });
        let lists: Vec<Vec<Float>> = (0..count)
            .map(|k| rand_list(&mut rng, f, n, k as u32))
            .collect();
        let inst: Vec<Vec<u64>> = lists
            .iter()
            .map(|l| l.iter().map(|&x| bits(x)).collect())
            .collect();
        let t1 = t0.elapsed();
        let got = run(&c, &inst);
        println!("F({p},{q}) n = {n}: build {t1:?}, total {:?}", t0.elapsed());
        check_interpreter(&c, &inst, &got);
        for (l, g) in lists.iter().zip(&got) {
            let s = f.sum(l).unwrap();
            assert_eq!(g[0], bits(s), "sum of {n} in {f}: {l:?}");
            let m = l.iter().skip(1).fold(l[0], |a, &x| a.max(x).unwrap());
            assert_eq!(g[1], bits(m), "max of {n} in {f}");
            assert_eq!(g[2], argmax_ref(l), "argmax of {n} in {f}");
        }
    }
}

#[test]
fn dot_random() {
    let cases: &[(u32, u32, usize, usize)] = &[
        (4, 4, 2, 3000),
        (4, 4, 5, 2000),
        (8, 5, 3, 2000),
        (8, 5, 32, 200),
    ];
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    for &(p, q, n, count) in cases {
        let f = fmt(p, q);
        let c = build_n(f, 2 * n, &|b, xs| {
            vec![sum::dot(b, &xs[..n], &xs[n..]).unwrap().bits]
        });
        let lists: Vec<Vec<Float>> = (0..count)
            .map(|k| rand_list(&mut rng, f, 2 * n, k as u32))
            .collect();
        let inst: Vec<Vec<u64>> = lists
            .iter()
            .map(|l| l.iter().map(|&x| bits(x)).collect())
            .collect();
        let got = run(&c, &inst);
        for (l, g) in lists.iter().zip(&got) {
            let d = f.dot(&l[..n], &l[n..]).unwrap();
            assert_eq!(g[0], bits(d), "dot of {n} in {f}: {l:?}");
        }
    }
}

// ------------------------------------------------------------------ errors

#[test]
fn bad_operands_are_errors() {
    let mut b = Builder::new();
    let f = fmt(4, 4);
    let g = fmt(5, 4);
    let x = FloatWord::input(&mut b, "x", f).unwrap();
    let y = FloatWord::input(&mut b, "y", g).unwrap();
    assert!(add::add(&mut b, &x, &y).is_err());
    assert!(add::sub(&mut b, &x, &y).is_err());
    assert!(cmp::lt(&mut b, &x, &y).is_err());
    assert!(cmp::eq(&mut b, &x, &y).is_err());
    assert!(sum::sum(&mut b, &[]).is_err());
    assert!(sum::sum(&mut b, &[x.clone(), y.clone()]).is_err());
    assert!(cmp::max_n(&mut b, &[]).is_err());
    assert!(cmp::argmax_n(&mut b, &[x.clone(), y.clone()]).is_err());
    assert!(sum::dot(&mut b, std::slice::from_ref(&x), &[]).is_err());
    assert!(round::round_pack(&mut b, f, &[], Lit::FALSE, &[]).is_err());
}

// ------------------------------------------------------------------ depth and size

struct Stats {
    depth: u32,
    gates: u64,
    fan_in: u64,
}

fn stats(c: &Circuit) -> Stats {
    let mut gates = 0u64;
    let mut fan_in = 0u64;
    for n in &c.nodes {
        if let Node::Gate { form, .. } = *n {
            gates += 1;
            fan_in += c.forms.range(form).len() as u64;
        }
    }
    Stats {
        depth: c.depth(),
        gates,
        fan_in,
    }
}

fn slope(xs: &[(usize, u64)]) -> f64 {
    let pts: Vec<(f64, f64)> = xs
        .iter()
        .map(|&(n, v)| ((n as f64).ln(), (v as f64).ln()))
        .collect();
    let k = pts.len() as f64;
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / k;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / k;
    let num: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let den: f64 = pts.iter().map(|p| (p.0 - mx) * (p.0 - mx)).sum();
    num / den
}

#[test]
fn constant_depth_in_n() {
    let f = fmt(8, 5);
    type G = fn(&mut Builder, &[FloatWord]) -> Vec<Lit>;
    let gadgets: [(&str, G, usize); 4] = [
        ("sum", |b, xs| sum::sum(b, xs).unwrap().bits, 1024),
        ("max", |b, xs| cmp::max_n(b, xs).unwrap().bits, 1024),
        ("argmax", |b, xs| cmp::argmax_n(b, xs).unwrap(), 1024),
        (
            "dot",
            |b, xs| {
                let n = xs.len() / 2;
                sum::dot(b, &xs[..n], &xs[n..]).unwrap().bits
            },
            1024,
        ),
    ];
    for (name, g, nmax) in gadgets {
        let mut depths = Vec::new();
        let mut gates = Vec::new();
        let mut fan_in = Vec::new();
        let mut n = 2;
        while n <= nmax {
            let m = if name == "dot" { 2 * n } else { n };
            let mut b = Builder::new();
            let xs: Vec<FloatWord> = (0..m)
                .map(|i| FloatWord::input(&mut b, &format!("x{i}"), f).unwrap())
                .collect();
            let out = g(&mut b, &xs);
            b.output_word("o", &out).unwrap();
            let s = stats(&b.finish());
            println!(
                "{name} n = {n}: depth {} gates {} fan-in {}",
                s.depth, s.gates, s.fan_in
            );
            depths.push((n, s.depth));
            gates.push((n, s.gates));
            fan_in.push((n, s.fan_in));
            n *= 2;
        }
        let d8 = depths.iter().find(|d| d.0 == 8).unwrap().1;
        for &(n, d) in &depths {
            if n >= 8 {
                assert_eq!(d, d8, "{name}: depth at n = {n} differs from n = 8");
            }
        }
        let big: Vec<(usize, u64)> = gates.iter().copied().filter(|g| g.0 >= 8).collect();
        let bigw: Vec<(usize, u64)> = fan_in.iter().copied().filter(|g| g.0 >= 8).collect();
        let (sg, sw) = (slope(&big), slope(&bigw));
        println!("{name}: gate slope {sg:.3}, wire slope {sw:.3}");
        assert!(sg < 2.2, "{name}: gate count slope {sg}");
        assert!(sw < 2.2, "{name}: wire count slope {sw}");
    }
}

#[test]
fn depth_report() {
    for (p, q) in [(4, 4), (8, 5), (11, 6)] {
        let f = fmt(p, q);
        let bin = |g: BinBuild| build_bin(f, g).depth();
        let d_add = bin(|b, x, y| vec![add::add(b, x, y).unwrap().bits]);
        let d_cmp = bin(|b, x, y| vec![vec![cmp::lt(b, x, y).unwrap()]]);
        let d_floor = build_n(f, 1, &|b, xs| vec![round::floor(b, &xs[0]).unwrap().bits]).depth();
        let d_max = build_n(f, 16, &|b, xs| vec![cmp::max_n(b, xs).unwrap().bits]).depth();
        let d_argmax = build_n(f, 16, &|b, xs| vec![cmp::argmax_n(b, xs).unwrap()]).depth();
        let d_sum = build_n(f, 16, &|b, xs| vec![sum::sum(b, xs).unwrap().bits]).depth();
        let d_dot = build_n(f, 32, &|b, xs| {
            vec![sum::dot(b, &xs[..16], &xs[16..]).unwrap().bits]
        })
        .depth();
        println!(
            "F({p},{q}): add {d_add} compare {d_cmp} floor {d_floor} max16 {d_max} argmax16 {d_argmax} sum16 {d_sum} dot16 {d_dot}"
        );
        assert!(d_add <= 10 && d_sum <= 10, "depth budget d_std/d_sum <= 10");
    }
}
