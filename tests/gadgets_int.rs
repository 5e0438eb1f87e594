//! Integer word gadgets (`tcvar::gadgets::int`) built into circuits and evaluated against plain
//! Rust integer arithmetic (u128 / num-bigint): exhaustively at small widths, on seeded random
//! inputs at width 32 and on wide words; depth assertions; errors.
//!
//! Evaluation uses a small bit-parallel netlist interpreter defined here (64 instances per
//! `u64`, one form sum per lane), independent of the crate's evaluators; it is checked against
//! `Circuit::eval_single` on one circuit.

mod common;

use num_bigint::BigUint;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use tcvar::circuit::{Builder, Circuit, Lit, Node};
use tcvar::gadgets::error::GadgetError;
use tcvar::gadgets::int::{self, SumStrategy};

use common::int::{mask, tc};

// ===================================================================== harness

/// Evaluate `c` on instances given as one `u128` per input word; returns one `u128` per output
/// word (outputs must be at most 128 bits wide).
fn eval(c: &Circuit, inst: &[Vec<u128>]) -> Vec<Vec<u128>> {
    let in_w: Vec<usize> = c.inputs.iter().map(|w| w.bits.len()).collect();
    let n_in: usize = in_w.iter().sum();
    let mut val = vec![0u64; c.nodes.len()];
    let mut rows = vec![0u64; n_in];
    let mut sums = [0i64; 64];
    let mut out = Vec::with_capacity(inst.len());
    for chunk in inst.chunks(64) {
        rows.iter_mut().for_each(|r| *r = 0);
        for (lane, words) in chunk.iter().enumerate() {
            assert_eq!(words.len(), in_w.len());
            let mut base = 0;
            for (k, &w) in in_w.iter().enumerate() {
                for bit in 0..w {
                    if (words[k] >> bit) & 1 == 1 {
                        rows[base + bit] |= 1 << lane;
                    }
                }
                base += w;
            }
        }
        let mut cached = u32::MAX;
        for (w, node) in c.nodes.iter().enumerate() {
            val[w] = match *node {
                Node::False => 0,
                Node::Input(i) => rows[i as usize],
                Node::Gate { form, threshold } => {
                    if cached != form.0 {
                        cached = form.0;
                        sums = [0; 64];
                        let (ws, wt) = c.forms.terms(form);
                        for (x, &weight) in ws.iter().zip(wt) {
                            let mut m = val[x.index()];
                            while m != 0 {
                                let l = m.trailing_zeros() as usize;
                                sums[l] += weight;
                                m &= m - 1;
                            }
                        }
                    }
                    let mut r = 0u64;
                    for (l, &s) in sums.iter().enumerate() {
                        if s >= threshold {
                            r |= 1 << l;
                        }
                    }
                    r
                }
            };
        }
        for lane in 0..chunk.len() {
            let mut words = Vec::with_capacity(c.outputs.len());
            for o in &c.outputs {
                assert!(o.bits.len() <= 128);
                let mut v = 0u128;
                for (bit, l) in o.bits.iter().enumerate() {
                    let x = ((val[l.wire().index()] >> lane) & 1 == 1) ^ l.is_complemented();
                    if x {
                        v |= 1 << bit;
                    }
                }
                words.push(v);
            }
            out.push(words);
        }
    }
    out
}

/// Two's complement value of the low `w` bits of `v`.
fn sval(v: u128, w: usize) -> i128 {
    if w == 0 {
        return 0;
    }
    let v = v & mask(w);
    if (v >> (w - 1)) & 1 == 1 {
        (v as i128).wrapping_sub(1i128 << w)
    } else {
        v as i128
    }
}

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

fn rand_word(r: &mut ChaCha8Rng, w: usize) -> u128 {
    r.random::<u128>() & mask(w)
}

/// All combinations of `n` words of width `w`.
fn all_combos(n: usize, w: usize) -> Vec<Vec<u128>> {
    let total = 1usize << (n * w);
    (0..total)
        .map(|c| (0..n).map(|i| ((c >> (i * w)) as u128) & mask(w)).collect())
        .collect()
}

/// Build a circuit with inputs of the given widths, outputs from `f`.
fn build(
    widths: &[usize],
    f: impl FnOnce(&mut Builder, &[Vec<Lit>]) -> Vec<Vec<Lit>>,
) -> (Circuit, Vec<usize>) {
    let mut b = Builder::new();
    let ins: Vec<Vec<Lit>> = widths
        .iter()
        .enumerate()
        .map(|(i, &w)| b.input_word(&format!("x{i}"), w as u32).unwrap())
        .collect();
    let outs = f(&mut b, &ins);
    let ow: Vec<usize> = outs.iter().map(|o| o.len()).collect();
    for (i, o) in outs.iter().enumerate() {
        b.output_word(&format!("y{i}"), o).unwrap();
    }
    (b.finish(), ow)
}

fn bit(l: Lit) -> Vec<Lit> {
    vec![l]
}

// ===================================================================== harness self-check

#[test]
fn harness_agrees_with_eval_single() {
    let (c, _) = build(&[5, 5], |b, x| {
        vec![
            int::add(b, &x[0], &x[1]).unwrap(),
            int::mul(b, &x[0], &x[1]).unwrap(),
        ]
    });
    let inst = all_combos(2, 5);
    let fast = eval(&c, &inst);
    for (words, got) in inst.iter().zip(&fast) {
        let mut bits = Vec::new();
        for (k, &w) in [5usize, 5].iter().enumerate() {
            for i in 0..w {
                bits.push((words[k] >> i) & 1 == 1);
            }
        }
        let slow = c.eval_single(&bits).unwrap();
        let mut pos = 0;
        for (o, out) in c.outputs.iter().enumerate() {
            let mut v = 0u128;
            for i in 0..out.bits.len() {
                if slow[pos + i] {
                    v |= 1 << i;
                }
            }
            pos += out.bits.len();
            assert_eq!(v, got[o]);
        }
        assert_eq!(got[0], words[0] + words[1]);
        assert_eq!(got[1], words[0] * words[1]);
    }
}

// ===================================================================== add, sub, neg

#[test]
fn add_sub_exhaustive_small() {
    for &(wx, wy) in &[(8usize, 8usize), (6, 3), (1, 1), (3, 0)] {
        let (c, ow) = build(&[wx, wy], |b, x| vec![int::add(b, &x[0], &x[1]).unwrap()]);
        assert_eq!(ow[0], wx.max(wy) + 1);
        let inst: Vec<Vec<u128>> = (0..1u128 << wx)
            .flat_map(|a| (0..1u128 << wy).map(move |bb| vec![a, bb]))
            .collect();
        for (i, o) in inst.iter().zip(eval(&c, &inst)) {
            assert_eq!(o[0], i[0] + i[1], "add {wx}x{wy} {i:?}");
        }
        let (c, _) = build(&[wx, wy], |b, x| {
            vec![
                int::add_signed(b, &x[0], &x[1]).unwrap(),
                int::sub_signed(b, &x[0], &x[1]).unwrap(),
                int::sub_to_signed(b, &x[0], &x[1]).unwrap(),
            ]
        });
        let w = wx.max(wy) + 1;
        for (i, o) in inst.iter().zip(eval(&c, &inst)) {
            let (a, bb) = (sval(i[0], wx), sval(i[1], wy));
            assert_eq!(o[0], tc(a + bb, w), "add_signed {i:?}");
            assert_eq!(o[1], tc(a - bb, w), "sub_signed {i:?}");
            assert_eq!(o[2], tc(i[0] as i128 - i[1] as i128, w), "sub_to_signed");
        }
    }
    for w in [1usize, 4, 8] {
        let (c, _) = build(&[w, w], |b, x| {
            let (d, borrow) = int::sub(b, &x[0], &x[1]).unwrap();
            let (s, carry) = int::add_mod(b, &x[0], &x[1]).unwrap();
            vec![d, bit(borrow), int::neg(b, &x[0]).unwrap(), s, bit(carry)]
        });
        let inst = all_combos(2, w);
        for (i, o) in inst.iter().zip(eval(&c, &inst)) {
            assert_eq!(o[0], i[0].wrapping_sub(i[1]) & mask(w));
            assert_eq!(o[1], (i[0] < i[1]) as u128);
            assert_eq!(o[2], i[0].wrapping_neg() & mask(w));
            assert_eq!(o[3], (i[0] + i[1]) & mask(w));
            assert_eq!(o[4], (i[0] + i[1]) >> w);
        }
    }
}

#[test]
fn add_sub_random_32_and_wide() {
    let mut r = rng(1);
    for &w in &[32usize, 63, 100] {
        let (c, _) = build(&[w, w], |b, x| {
            let (d, borrow) = int::sub(b, &x[0], &x[1]).unwrap();
            vec![
                int::add(b, &x[0], &x[1]).unwrap(),
                d,
                bit(borrow),
                int::neg(b, &x[0]).unwrap(),
                int::sub_signed(b, &x[0], &x[1]).unwrap(),
            ]
        });
        let mut inst: Vec<Vec<u128>> = (0..2000)
            .map(|_| vec![rand_word(&mut r, w), rand_word(&mut r, w)])
            .collect();
        // carry chains: all ones plus small values, equal values
        inst.push(vec![mask(w), 1]);
        inst.push(vec![mask(w), mask(w)]);
        inst.push(vec![mask(w) - 5, 7]);
        inst.push(vec![12345 & mask(w), 12345 & mask(w)]);
        inst.push(vec![0, 1]);
        for (i, o) in inst.iter().zip(eval(&c, &inst)) {
            assert_eq!(o[0], i[0] + i[1], "w {w} add {i:?}");
            assert_eq!(o[1], i[0].wrapping_sub(i[1]) & mask(w), "w {w} sub");
            assert_eq!(o[2], (i[0] < i[1]) as u128);
            assert_eq!(o[3], i[0].wrapping_neg() & mask(w));
            assert_eq!(o[4], tc(sval(i[0], w) - sval(i[1], w), w + 1));
        }
    }
}

// ===================================================================== comparisons

fn check_compare(w: usize, inst: &[Vec<u128>]) {
    let (c, _) = build(&[w, w], |b, x| {
        let (p, q) = (&x[0], &x[1]);
        [
            int::lt(b, p, q),
            int::le(b, p, q),
            int::gt(b, p, q),
            int::ge(b, p, q),
            int::eq(b, p, q),
            int::ne(b, p, q),
            int::lt_signed(b, p, q),
            int::le_signed(b, p, q),
            int::gt_signed(b, p, q),
            int::ge_signed(b, p, q),
            int::is_zero(b, p),
        ]
        .into_iter()
        .map(|l| bit(l.unwrap()))
        .collect()
    });
    for (i, o) in inst.iter().zip(eval(&c, inst)) {
        let (a, bb) = (i[0], i[1]);
        let (sa, sb) = (sval(a, w), sval(bb, w));
        let want = [
            a < bb,
            a <= bb,
            a > bb,
            a >= bb,
            a == bb,
            a != bb,
            sa < sb,
            sa <= sb,
            sa > sb,
            sa >= sb,
            a == 0,
        ];
        for (k, &v) in want.iter().enumerate() {
            assert_eq!(o[k], v as u128, "w {w} cmp #{k} on {i:?}");
        }
    }
}

#[test]
fn compare_exhaustive_small() {
    for w in [1usize, 3, 8] {
        check_compare(w, &all_combos(2, w));
    }
}

#[test]
fn compare_random_32_and_blocked_wide() {
    let mut r = rng(2);
    for &w in &[32usize, 59, 60, 100, 127] {
        let mut inst = Vec::new();
        for _ in 0..1500 {
            let a = rand_word(&mut r, w);
            // many near-equal pairs: differ only in a few low bits or one block
            let bb = match r.random_range(0..4) {
                0 => a,
                1 => a ^ (1u128 << r.random_range(0..w)),
                2 => a ^ (r.random::<u128>() & 0xff),
                _ => rand_word(&mut r, w),
            };
            inst.push(vec![a, bb]);
        }
        check_compare(w, &inst);
    }
}

// ===================================================================== max, min, argmax

fn check_extrema(n: usize, w: usize, inst: &[Vec<u128>]) {
    let widths = vec![w; n];
    let (c, _) = build(&widths, |b, x| {
        vec![
            int::max_n(b, x).unwrap(),
            int::min_n(b, x).unwrap(),
            int::argmax(b, x).unwrap(),
            int::argmin(b, x).unwrap(),
            int::max_n_signed(b, x).unwrap(),
            int::min_n_signed(b, x).unwrap(),
            int::argmax_signed(b, x).unwrap(),
            int::argmin_signed(b, x).unwrap(),
        ]
    });
    for (i, o) in inst.iter().zip(eval(&c, inst)) {
        let mx = *i.iter().max().unwrap();
        let mn = *i.iter().min().unwrap();
        let amx = i.iter().position(|&v| v == mx).unwrap();
        let amn = i.iter().position(|&v| v == mn).unwrap();
        let s: Vec<i128> = i.iter().map(|&v| sval(v, w)).collect();
        let smx = *s.iter().max().unwrap();
        let smn = *s.iter().min().unwrap();
        let samx = s.iter().position(|&v| v == smx).unwrap();
        let samn = s.iter().position(|&v| v == smn).unwrap();
        assert_eq!(o[0], mx, "max {i:?}");
        assert_eq!(o[1], mn, "min {i:?}");
        assert_eq!(o[2], 1 << amx, "argmax {i:?}");
        assert_eq!(o[3], 1 << amn, "argmin {i:?}");
        assert_eq!(o[4], tc(smx, w), "max_signed {i:?}");
        assert_eq!(o[5], tc(smn, w), "min_signed {i:?}");
        assert_eq!(o[6], 1 << samx, "argmax_signed {i:?}");
        assert_eq!(o[7], 1 << samn, "argmin_signed {i:?}");
    }
}

#[test]
fn extrema_exhaustive_small_and_random() {
    check_extrema(1, 4, &all_combos(1, 4));
    check_extrema(2, 5, &all_combos(2, 5));
    check_extrema(3, 3, &all_combos(3, 3));
    check_extrema(4, 2, &all_combos(4, 2));
    let mut r = rng(3);
    for &(n, w) in &[(10usize, 8usize), (6, 32), (4, 70)] {
        let inst: Vec<Vec<u128>> = (0..1000)
            .map(|_| {
                // draw from a small pool so that ties are frequent
                let pool: Vec<u128> = (0..3).map(|_| rand_word(&mut r, w)).collect();
                (0..n).map(|_| pool[r.random_range(0..3)]).collect()
            })
            .collect();
        check_extrema(n, w, &inst);
    }
}

// ===================================================================== multiplication

#[test]
fn mul_exhaustive_8_and_random_32() {
    let (c, ow) = build(&[8, 8], |b, x| vec![int::mul(b, &x[0], &x[1]).unwrap()]);
    assert_eq!(ow[0], 16);
    let inst = all_combos(2, 8);
    for (i, o) in inst.iter().zip(eval(&c, &inst)) {
        assert_eq!(o[0], i[0] * i[1]);
    }
    let (c, _) = build(&[5, 3], |b, x| vec![int::mul(b, &x[0], &x[1]).unwrap()]);
    let inst: Vec<Vec<u128>> = (0..32u128)
        .flat_map(|a| (0..8u128).map(move |bb| vec![a, bb]))
        .collect();
    for (i, o) in inst.iter().zip(eval(&c, &inst)) {
        assert_eq!(o[0], i[0] * i[1]);
    }
    let mut r = rng(4);
    for &(wx, wy) in &[(32usize, 32usize), (40, 24), (60, 60)] {
        let (c, _) = build(&[wx, wy], |b, x| vec![int::mul(b, &x[0], &x[1]).unwrap()]);
        let mut inst: Vec<Vec<u128>> = (0..600)
            .map(|_| vec![rand_word(&mut r, wx), rand_word(&mut r, wy)])
            .collect();
        inst.push(vec![mask(wx), mask(wy)]);
        for (i, o) in inst.iter().zip(eval(&c, &inst)) {
            assert_eq!(o[0], i[0] * i[1], "{wx}x{wy} {i:?}");
        }
    }
}

#[test]
fn mul_signed_exhaustive_and_random() {
    let mut r = rng(11);
    for &(wx, wy, exhaustive) in &[
        (6usize, 6usize, true),
        (1, 4, true),
        (5, 2, true),
        (32, 32, false),
        (20, 9, false),
    ] {
        let (c, ow) = build(&[wx, wy], |b, x| {
            vec![int::mul_signed(b, &x[0], &x[1]).unwrap()]
        });
        assert_eq!(ow[0], wx + wy);
        let mut inst: Vec<Vec<u128>> = if exhaustive {
            (0..1u128 << wx)
                .flat_map(|a| (0..1u128 << wy).map(move |bb| vec![a, bb]))
                .collect()
        } else {
            (0..800)
                .map(|_| vec![rand_word(&mut r, wx), rand_word(&mut r, wy)])
                .collect()
        };
        inst.push(vec![1 << (wx - 1), 1 << (wy - 1)]); // most negative squared
        for (i, o) in inst.iter().zip(eval(&c, &inst)) {
            let want = sval(i[0], wx) * sval(i[1], wy);
            assert_eq!(o[0], tc(want, wx + wy), "{wx}x{wy} {i:?}");
        }
    }
}

#[test]
fn sum_weighted_exhaustive_and_random() {
    let consts: [i64; 4] = [3, -5, 1, -1];
    let (c, _) = build(&[3, 3, 3, 3], |b, x| {
        let terms: Vec<(Vec<Lit>, i64)> = x.iter().cloned().zip(consts).collect();
        vec![int::sum_weighted(b, &terms).unwrap()]
    });
    let sw = c.outputs[0].bits.len();
    let inst = all_combos(4, 3);
    for (i, o) in inst.iter().zip(eval(&c, &inst)) {
        let want: i128 = i
            .iter()
            .zip(consts)
            .map(|(&v, k)| v as i128 * k as i128)
            .sum();
        assert_eq!(o[0], tc(want, sw), "{i:?}");
    }
    let mut r = rng(12);
    let n = 12;
    let consts: Vec<i64> = (0..n)
        .map(|_| r.random_range(-100_000i64..100_000))
        .collect();
    let (c, _) = build(&vec![16; n], |b, x| {
        let terms: Vec<(Vec<Lit>, i64)> = x.iter().cloned().zip(consts.iter().copied()).collect();
        vec![int::sum_weighted(b, &terms).unwrap()]
    });
    let sw = c.outputs[0].bits.len();
    let inst: Vec<Vec<u128>> = (0..500)
        .map(|_| (0..n).map(|_| rand_word(&mut r, 16)).collect())
        .collect();
    for (i, o) in inst.iter().zip(eval(&c, &inst)) {
        let want: i128 = i
            .iter()
            .zip(&consts)
            .map(|(&v, &k)| v as i128 * k as i128)
            .sum();
        assert_eq!(o[0], tc(want, sw), "{i:?}");
    }
}

#[test]
fn mul_const_exhaustive_and_big() {
    for &k in &[0u64, 1, 2, 3, 5, 77, 200, 255, 1 << 20, 0xdead_beef] {
        let (c, ow) = build(&[8], |b, x| vec![int::mul_const(b, &x[0], k).unwrap()]);
        assert_eq!(ow[0], (8 + (64 - k.leading_zeros()) as usize).max(1));
        let inst = all_combos(1, 8);
        for (i, o) in inst.iter().zip(eval(&c, &inst)) {
            assert_eq!(o[0], i[0] * k as u128, "x * {k}");
        }
    }
    let mut r = rng(5);
    let k: u128 = rand_word(&mut r, 60) | 1 << 59;
    let kb = BigUint::from(k);
    let (c, _) = build(&[40], |b, x| {
        vec![int::mul_const_big(b, &x[0], &kb).unwrap()]
    });
    let inst: Vec<Vec<u128>> = (0..500).map(|_| vec![rand_word(&mut r, 40)]).collect();
    for (i, o) in inst.iter().zip(eval(&c, &inst)) {
        assert_eq!(o[0], i[0] * k);
    }
}

// ===================================================================== shifts

#[test]
fn shifts_exhaustive_small() {
    for &ow in &[4usize, 8, 12] {
        let (c, _) = build(&[8, 4], |b, x| {
            let (s, st) = int::shr_sticky(b, &x[0], &x[1], ow).unwrap();
            vec![
                int::shl(b, &x[0], &x[1], ow).unwrap(),
                int::shr(b, &x[0], &x[1], ow).unwrap(),
                s,
                bit(st),
                int::shl_const(b, &x[0], 3).unwrap(),
                int::shr_const(b, &x[0], 3).unwrap(),
            ]
        });
        let inst: Vec<Vec<u128>> = (0..256u128)
            .flat_map(|a| (0..16u128).map(move |s| vec![a, s]))
            .collect();
        for (i, o) in inst.iter().zip(eval(&c, &inst)) {
            let (x, s) = (i[0], i[1] as u32);
            assert_eq!(o[0], (x << s) & mask(ow), "shl {i:?} ow {ow}");
            assert_eq!(o[1], (x >> s) & mask(ow), "shr {i:?} ow {ow}");
            assert_eq!(o[2], (x >> s) & mask(ow));
            assert_eq!(o[3], (x & mask(s as usize) != 0) as u128, "sticky {i:?}");
            assert_eq!(o[4], x << 3);
            assert_eq!(o[5], x >> 3);
        }
    }
}

#[test]
fn shifts_random_32() {
    let mut r = rng(6);
    let (c, _) = build(&[32, 6], |b, x| {
        let (s, st) = int::shr_sticky(b, &x[0], &x[1], 32).unwrap();
        vec![int::shl(b, &x[0], &x[1], 40).unwrap(), s, bit(st)]
    });
    let inst: Vec<Vec<u128>> = (0..2000)
        .map(|_| vec![rand_word(&mut r, 32), rand_word(&mut r, 6)])
        .collect();
    for (i, o) in inst.iter().zip(eval(&c, &inst)) {
        let (x, s) = (i[0], i[1] as u32);
        assert_eq!(o[0], (x << s) & mask(40));
        assert_eq!(o[1], x >> s);
        assert_eq!(o[2], (x & mask(s as usize) != 0) as u128);
    }
}

// ===================================================================== leading one, popcount

#[test]
fn leading_one_exhaustive_and_random() {
    let check = |w: usize, inst: &[Vec<u128>]| {
        let (c, _) = build(&[w], |b, x| {
            vec![
                int::leading_one(b, &x[0]).unwrap(),
                int::leading_one_index(b, &x[0]).unwrap(),
                int::leading_zeros(b, &x[0]).unwrap(),
                bit(int::is_zero(b, &x[0]).unwrap()),
            ]
        });
        for (i, o) in inst.iter().zip(eval(&c, inst)) {
            let x = i[0];
            let idx = if x == 0 {
                0
            } else {
                127 - x.leading_zeros() as u128
            };
            assert_eq!(o[0], if x == 0 { 0 } else { 1 << idx }, "lead {x}");
            assert_eq!(o[1], idx, "index {x}");
            assert_eq!(
                o[2],
                if x == 0 {
                    w as u128
                } else {
                    w as u128 - 1 - idx
                }
            );
            assert_eq!(o[3], (x == 0) as u128);
        }
    };
    for w in [1usize, 2, 7, 8, 10] {
        check(w, &all_combos(1, w));
    }
    let mut r = rng(7);
    let inst: Vec<Vec<u128>> = (0..2000)
        .map(|_| vec![rand_word(&mut r, 32) >> r.random_range(0..32)])
        .collect();
    check(32, &inst);
}

#[test]
fn popcount_exhaustive() {
    for n in [1usize, 3, 7, 12] {
        let (c, ow) = build(&[n], |b, x| vec![int::popcount(b, &x[0]).unwrap()]);
        assert_eq!(ow[0], (usize::BITS - n.leading_zeros()) as usize);
        let inst = all_combos(1, n);
        for (i, o) in inst.iter().zip(eval(&c, &inst)) {
            assert_eq!(o[0], i[0].count_ones() as u128);
        }
    }
}

// ===================================================================== iterated addition

fn check_sum(n: usize, w: usize, strategy: SumStrategy, inst: &[Vec<u128>]) {
    let widths = vec![w; n];
    let (c, _) = build(&widths, |b, x| {
        vec![
            int::sum_with(b, x, strategy).unwrap(),
            int::sum_signed(b, x).unwrap(),
        ]
    });
    let sw = c.outputs[1].bits.len();
    for (i, o) in inst.iter().zip(eval(&c, inst)) {
        let s: u128 = i.iter().sum();
        let ss: i128 = i.iter().map(|&v| sval(v, w)).sum();
        assert_eq!(o[0], s, "sum n {n} w {w} {strategy:?} {i:?}");
        assert_eq!(o[1], tc(ss, sw), "sum_signed n {n} w {w} {i:?}");
    }
}

#[test]
fn sum_exhaustive_small_both_strategies() {
    for strategy in [SumStrategy::Direct, SumStrategy::Blocked] {
        check_sum(1, 6, strategy, &all_combos(1, 6));
        check_sum(2, 6, strategy, &all_combos(2, 6));
        check_sum(3, 4, strategy, &all_combos(3, 4));
        check_sum(5, 2, strategy, &all_combos(5, 2));
    }
}

#[test]
fn sum_random_32_and_blocked() {
    let mut r = rng(8);
    for strategy in [SumStrategy::Auto, SumStrategy::Blocked] {
        for &(n, w) in &[(16usize, 32usize), (40, 8), (3, 20)] {
            let mut inst: Vec<Vec<u128>> = (0..500)
                .map(|_| (0..n).map(|_| rand_word(&mut r, w)).collect())
                .collect();
            inst.push(vec![mask(w); n]);
            check_sum(n, w, strategy, &inst);
        }
    }
}

/// 64 words of 80 bits (auto picks the blocked construction: 64 * 2^80 > 2^61), against
/// num-bigint; also shifted terms.
#[test]
fn sum_wide_64_words_of_80_bits() {
    let (n, w) = (64usize, 80usize);
    let widths = vec![w; n];
    let mut r = rng(9);
    let shifts: Vec<usize> = (0..n).map(|_| r.random_range(0..20)).collect();
    let (c, ow) = build(&widths, |b, x| {
        assert_eq!(int::sum_strategy_for(&cols_of(x), 86), SumStrategy::Blocked);
        let terms: Vec<(Vec<Lit>, usize)> = x.iter().cloned().zip(shifts.iter().copied()).collect();
        vec![
            int::sum(b, x).unwrap(),
            int::sum_shifted(b, &terms).unwrap(),
        ]
    });
    assert_eq!(ow[0], 86);
    let mut inst: Vec<Vec<u128>> = (0..200)
        .map(|_| (0..n).map(|_| rand_word(&mut r, w)).collect())
        .collect();
    inst.push(vec![mask(w); n]);
    inst.push(
        (0..n)
            .map(|i| if i % 2 == 0 { mask(w) } else { 1 })
            .collect(),
    );
    for (i, o) in inst.iter().zip(eval(&c, &inst)) {
        let s: BigUint = i.iter().map(|&v| BigUint::from(v)).sum();
        assert_eq!(BigUint::from(o[0]), s);
        let t: BigUint = i
            .iter()
            .zip(&shifts)
            .map(|(&v, &sh)| BigUint::from(v) << sh)
            .sum();
        assert_eq!(BigUint::from(o[1]), t);
    }
}

/// Column layout of unsigned words (word bits into columns), for `sum_strategy_for`.
fn cols_of(words: &[Vec<Lit>]) -> Vec<Vec<Lit>> {
    let w = words.iter().map(|x| x.len()).max().unwrap_or(0);
    (0..w)
        .map(|j| words.iter().filter_map(|x| x.get(j).copied()).collect())
        .collect()
}

// ===================================================================== selection

#[test]
fn select_and_mux_exhaustive() {
    let (c, _) = build(&[3, 3, 3, 1], |b, x| {
        let words = vec![x[0].clone(), x[1].clone(), x[2].clone()];
        let oh = x[3][0];
        vec![
            int::select_onehot(b, &[oh, !oh, Lit::FALSE], &words).unwrap(),
            int::mux_word(b, oh, &x[0], &x[1]).unwrap(),
        ]
    });
    let inst = all_combos(3, 3)
        .into_iter()
        .flat_map(|v| {
            (0..2u128).map(move |s| {
                let mut v = v.clone();
                v.push(s);
                v
            })
        })
        .collect::<Vec<_>>();
    for (i, o) in inst.iter().zip(eval(&c, &inst)) {
        let want = if i[3] == 1 { i[0] } else { i[1] };
        assert_eq!(o[0], want);
        assert_eq!(o[1], want);
    }
}

// ===================================================================== depth

/// Measured depth of the outputs of `f` (inputs are at level 0).
fn measure(widths: &[usize], f: impl FnOnce(&mut Builder, &[Vec<Lit>]) -> Vec<Lit>) -> u32 {
    let mut b = Builder::new();
    let ins: Vec<Vec<Lit>> = widths
        .iter()
        .enumerate()
        .map(|(i, &w)| b.input_word(&format!("x{i}"), w as u32).unwrap())
        .collect();
    let out = f(&mut b, &ins);
    int::depth_of(&b, &out).unwrap()
}

#[test]
fn depth_is_constant_in_n() {
    let ns = [8usize, 16, 32, 64, 128, 256, 512, 1024];
    let w = 8;
    let mut sums = Vec::new();
    let mut blocked = Vec::new();
    let mut maxs = Vec::new();
    let mut args = Vec::new();
    for &n in &ns {
        let widths = vec![w; n];
        sums.push(measure(&widths, |b, x| int::sum(b, x).unwrap()));
        blocked.push(measure(&vec![16; n], |b, x| {
            int::sum_with(b, x, SumStrategy::Blocked).unwrap()
        }));
        if n <= 1024 {
            maxs.push(measure(&widths, |b, x| int::max_n(b, x).unwrap()));
        }
        args.push(measure(&vec![4; n], |b, x| int::argmax(b, x).unwrap()));
    }
    eprintln!("depth sum {sums:?} blocked {blocked:?} max {maxs:?} argmax {args:?}");
    assert!(sums.iter().all(|&d| d == int::DEPTH_SUM_DIRECT));
    assert!(blocked.iter().all(|&d| d == int::DEPTH_SUM_BLOCKED));
    assert!(maxs.iter().all(|&d| d == int::DEPTH_CMP_DIRECT + 2));
    assert!(args.iter().all(|&d| d == int::DEPTH_CMP_DIRECT + 1));
}

#[test]
fn depth_matches_documentation() {
    use int::*;
    // (name, measured, stated)
    let cases: Vec<(&str, u32, u32)> = vec![
        (
            "add 32",
            measure(&[32, 32], |b, x| add(b, &x[0], &x[1]).unwrap()),
            2,
        ),
        (
            "add 100",
            measure(&[100, 100], |b, x| add(b, &x[0], &x[1]).unwrap()),
            5,
        ),
        (
            "sub 32",
            measure(&[32, 32], |b, x| sub(b, &x[0], &x[1]).unwrap().0),
            2,
        ),
        ("neg 32", measure(&[32], |b, x| neg(b, &x[0]).unwrap()), 2),
        (
            "lt 32",
            measure(&[32, 32], |b, x| bit(lt(b, &x[0], &x[1]).unwrap())),
            cmp_depth(32),
        ),
        (
            "lt 59",
            measure(&[59, 59], |b, x| bit(lt(b, &x[0], &x[1]).unwrap())),
            1,
        ),
        (
            "lt 100",
            measure(&[100, 100], |b, x| bit(lt(b, &x[0], &x[1]).unwrap())),
            cmp_depth(100),
        ),
        (
            "eq 32",
            measure(&[32, 32], |b, x| bit(eq(b, &x[0], &x[1]).unwrap())),
            2,
        ),
        (
            "eq 100",
            measure(&[100, 100], |b, x| bit(eq(b, &x[0], &x[1]).unwrap())),
            2,
        ),
        (
            "mul 8",
            measure(&[8, 8], |b, x| mul(b, &x[0], &x[1]).unwrap()),
            3,
        ),
        (
            "mul 32",
            measure(&[32, 32], |b, x| mul(b, &x[0], &x[1]).unwrap()),
            6,
        ),
        (
            "mul_const 16",
            measure(&[16], |b, x| mul_const(b, &x[0], 12345).unwrap()),
            2,
        ),
        (
            "shl",
            measure(&[16, 5], |b, x| shl(b, &x[0], &x[1], 24).unwrap()),
            2,
        ),
        (
            "shr",
            measure(&[16, 5], |b, x| shr(b, &x[0], &x[1], 16).unwrap()),
            2,
        ),
        (
            "shr_sticky",
            measure(&[16, 5], |b, x| {
                vec![shr_sticky(b, &x[0], &x[1], 16).unwrap().1]
            }),
            2,
        ),
        (
            "leading_one",
            measure(&[16], |b, x| leading_one(b, &x[0]).unwrap()),
            1,
        ),
        (
            "leading_one_index",
            measure(&[16], |b, x| leading_one_index(b, &x[0]).unwrap()),
            2,
        ),
        (
            "leading_zeros",
            measure(&[16], |b, x| leading_zeros(b, &x[0]).unwrap()),
            2,
        ),
        (
            "is_zero",
            measure(&[16], |b, x| bit(is_zero(b, &x[0]).unwrap())),
            1,
        ),
        (
            "popcount",
            measure(&[100], |b, x| popcount(b, &x[0]).unwrap()),
            2,
        ),
        (
            "max_n 70",
            measure(&[70; 5], |b, x| max_n(b, x).unwrap()),
            cmp_depth(70) + 2,
        ),
        (
            "argmax 70",
            measure(&[70; 5], |b, x| argmax(b, x).unwrap()),
            cmp_depth(70) + 1,
        ),
        (
            "select_onehot",
            measure(&[4, 4, 2], |b, x| {
                select_onehot(b, &x[2], &[x[0].clone(), x[1].clone()]).unwrap()
            }),
            2,
        ),
        (
            "mux_word",
            measure(&[4, 4, 1], |b, x| {
                mux_word(b, x[2][0], &x[0], &x[1]).unwrap()
            }),
            2,
        ),
        (
            "sum 1024x8",
            measure(&[8; 1024], |b, x| sum(b, x).unwrap()),
            DEPTH_SUM_DIRECT,
        ),
        (
            "sum 64x80",
            measure(&[80; 64], |b, x| sum(b, x).unwrap()),
            DEPTH_SUM_BLOCKED,
        ),
    ];
    for (name, got, want) in cases {
        assert_eq!(got, want, "{name}: measured depth {got}, documented {want}");
    }
    assert_eq!(cmp_depth(32), 1);
    assert_eq!(cmp_depth(100), 2);
}

// ===================================================================== errors

#[test]
fn errors_are_reported() {
    let mut b = Builder::new();
    let x = b.input_word("x", 8).unwrap();
    let y = b.input_word("y", 7).unwrap();
    let mismatch = |e: GadgetError| matches!(e, GadgetError::WidthMismatch { .. });
    assert!(mismatch(int::sub(&mut b, &x, &y).unwrap_err()));
    assert!(mismatch(int::lt(&mut b, &x, &y).unwrap_err()));
    assert!(mismatch(int::eq(&mut b, &x, &y).unwrap_err()));
    assert!(mismatch(int::lt_signed(&mut b, &x, &y).unwrap_err()));
    assert!(mismatch(int::mux_word(&mut b, x[0], &x, &y).unwrap_err()));
    assert!(mismatch(
        int::max_n(&mut b, &[x.clone(), y.clone()]).unwrap_err()
    ));
    assert!(mismatch(
        int::argmax(&mut b, &[x.clone(), y.clone()]).unwrap_err()
    ));
    assert!(mismatch(
        int::select_onehot(&mut b, &[x[0]], &[x.clone(), x.clone()]).unwrap_err()
    ));
    let few = |e: GadgetError| matches!(e, GadgetError::TooFewOperands { got: 0, .. });
    assert!(few(int::sum(&mut b, &[]).unwrap_err()));
    assert!(few(int::sum_signed(&mut b, &[]).unwrap_err()));
    assert!(few(int::sum_shifted(&mut b, &[]).unwrap_err()));
    assert!(few(int::max_n(&mut b, &[]).unwrap_err()));
    assert!(few(int::min_n(&mut b, &[]).unwrap_err()));
    assert!(few(int::argmax(&mut b, &[]).unwrap_err()));
    assert!(few(int::popcount(&mut b, &[]).unwrap_err()));
    assert!(few(int::select_onehot(&mut b, &[], &[]).unwrap_err()));
    // Too wide / beyond the weight bound: Unsupported naming the limit.
    let wide = b.input_word("wide", 100).unwrap();
    let e = int::column_sum(&mut b, std::slice::from_ref(&wide), 1, SumStrategy::Direct);
    assert!(e.is_ok(), "one column of 100 literals is fine directly");
    let cols: Vec<Vec<Lit>> = wide.iter().map(|&l| vec![l, l]).collect();
    match int::column_sum(&mut b, &cols, 101, SumStrategy::Direct).unwrap_err() {
        GadgetError::Unsupported { limit, .. } => assert!(limit.contains("weight bound")),
        e => panic!("unexpected {e:?}"),
    }
    let amount = b.input_word("amount", 60).unwrap();
    match int::shr_sticky(&mut b, &x, &amount, 8).unwrap_err() {
        GadgetError::Unsupported { limit, .. } => assert!(limit.contains("60 bits")),
        e => panic!("unexpected {e:?}"),
    }
    // An output too wide for the fixed blocking.
    let huge = vec![Lit::TRUE; 2000];
    let cols: Vec<Vec<Lit>> = (0..2000).map(|i| vec![huge[i], wide[i % 100]]).collect();
    match int::column_sum(&mut b, &cols, 2001, SumStrategy::Auto).unwrap_err() {
        GadgetError::Unsupported { limit, .. } => assert!(limit.contains("weight bound")),
        e => panic!("unexpected {e:?}"),
    }
}

/// The width limits of the direct (shallow) constructions stated in the doc comments: at the
/// limit the gadget has the direct depth, one bit wider the blocked depth.
#[test]
fn depth_switch_at_documented_widths() {
    use int::*;
    type Gadget = fn(&mut Builder, &[Vec<Lit>]) -> Vec<Lit>;
    let cases: Vec<(&str, usize, u32, u32, Gadget)> = vec![
        ("add", 60, 2, 5, |b, x| add(b, &x[0], &x[1]).unwrap()),
        ("sub", 60, 2, 5, |b, x| sub(b, &x[0], &x[1]).unwrap().0),
        ("add_signed", 59, 2, 5, |b, x| {
            add_signed(b, &x[0], &x[1]).unwrap()
        }),
        ("sub_signed", 59, 2, 5, |b, x| {
            sub_signed(b, &x[0], &x[1]).unwrap()
        }),
        ("sub_to_signed", 59, 2, 5, |b, x| {
            sub_to_signed(b, &x[0], &x[1]).unwrap()
        }),
        ("lt", CMP_DIRECT_MAX_WIDTH, 1, 2, |b, x| {
            vec![lt(b, &x[0], &x[1]).unwrap()]
        }),
    ];
    for (name, w, d_at, d_above, f) in cases {
        assert_eq!(measure(&[w, w], f), d_at, "{name} at width {w}");
        assert_eq!(
            measure(&[w + 1, w + 1], f),
            d_above,
            "{name} at width {}",
            w + 1
        );
    }
    assert_eq!(measure(&[61], |b, x| neg(b, &x[0]).unwrap()), 2);
    assert_eq!(measure(&[62], |b, x| neg(b, &x[0]).unwrap()), 5);
    assert_eq!(measure(&[30, 31], |b, x| mul(b, &x[0], &x[1]).unwrap()), 3);
    assert_eq!(measure(&[31, 31], |b, x| mul(b, &x[0], &x[1]).unwrap()), 6);
    assert_eq!(
        measure(&[30, 30], |b, x| mul_signed(b, &x[0], &x[1]).unwrap()),
        3
    );
    assert_eq!(
        measure(&[31, 31], |b, x| mul_signed(b, &x[0], &x[1]).unwrap()),
        6
    );
}

/// Gates and fan-in sum (every gate's fan-in, added up) of a gadget over n words.
fn size_of(n: usize, w: usize, f: fn(&mut Builder, &[Vec<Lit>]) -> Vec<Lit>) -> (f64, f64) {
    let (c, _) = build(&vec![w; n], |b, x| vec![f(b, x)]);
    let mut gates = 0f64;
    let mut fan_in = 0f64;
    for node in &c.nodes {
        if let Node::Gate { form, .. } = *node {
            gates += 1.0;
            fan_in += c.forms.terms(form).0.len() as f64;
        }
    }
    (gates, fan_in)
}

/// Size grows polynomially: the log-log slope from n = 32 to n = 256 is below 2.2 for the
/// all-pairs gadgets and below 2.2 for iterated addition (whose fan-in grows as n^2 * w because each
/// output bit's staircase has about 2n thresholds reading one shared form).
#[test]
fn size_grows_at_most_quadratically() {
    type Gadget = fn(&mut Builder, &[Vec<Lit>]) -> Vec<Lit>;
    let cases: Vec<(&str, usize, Gadget)> = vec![
        ("sum", 16, |b, x| int::sum(b, x).unwrap()),
        ("max_n", 8, |b, x| int::max_n(b, x).unwrap()),
        ("argmax", 8, |b, x| int::argmax(b, x).unwrap()),
    ];
    for (name, w, f) in cases {
        let (g1, w1) = size_of(32, w, f);
        let (g2, w2) = size_of(256, w, f);
        let sg = (g2 / g1).ln() / 8f64.ln();
        let sw = (w2 / w1).ln() / 8f64.ln();
        eprintln!("{name} w {w}: n=32 gates {g1} fan-in {w1}; n=256 gates {g2} fan-in {w2}; slopes {sg:.2} {sw:.2}");
        assert!(sg < 2.2 && sw < 2.2, "{name}: slopes {sg} {sw}");
    }
}
