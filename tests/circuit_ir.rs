//! Property tests of the circuit IR: the builder's hashing and folding keep the function, the
//! levelization is a valid topological layering that keeps the function, depth is the longest
//! path, statistics match an independent count, and the builder rejects bad input with errors.
//!
//! Every reference here (expression semantics, longest path, the Levelized interpreter, the
//! statistics) is written in this file, independently of the code under test.

use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tcvar::circuit::{Builder, Circuit, CircuitError, Levelized, Lit, Node, RowLit};

// ------------------------------------------------------------------------------ expressions

/// A gate expression over inputs `0..n`, with the builder's documented semantics.
#[derive(Clone, Debug)]
enum Expr {
    Input(usize),
    Const(bool),
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    /// True when at least half of the operands are true.
    Maj(Vec<Expr>),
    Xor(Vec<Expr>),
    /// `if s { a } else { b }`.
    Mux(Box<Expr>, Box<Expr>, Box<Expr>),
    /// `[sum w_i x_i >= t]`.
    Thr(Vec<(Expr, i64)>, i64),
    /// Threshold `pick` of a bank of thresholds on one sum.
    Bank(Vec<(Expr, i64)>, Vec<i64>, usize),
}

fn eval(e: &Expr, x: &[bool]) -> bool {
    match e {
        Expr::Input(i) => x[*i],
        Expr::Const(b) => *b,
        Expr::Not(a) => !eval(a, x),
        Expr::And(v) => v.iter().all(|a| eval(a, x)),
        Expr::Or(v) => v.iter().any(|a| eval(a, x)),
        Expr::Maj(v) => 2 * v.iter().filter(|a| eval(a, x)).count() >= v.len(),
        Expr::Xor(v) => v.iter().filter(|a| eval(a, x)).count() % 2 == 1,
        Expr::Mux(s, a, b) => {
            if eval(s, x) {
                eval(a, x)
            } else {
                eval(b, x)
            }
        }
        Expr::Thr(t, th) => sum(t, x) >= *th as i128,
        Expr::Bank(t, ths, k) => sum(t, x) >= ths[*k % ths.len()] as i128,
    }
}

fn sum(t: &[(Expr, i64)], x: &[bool]) -> i128 {
    t.iter()
        .map(|(a, w)| if eval(a, x) { *w as i128 } else { 0 })
        .sum()
}

fn build(b: &mut Builder, e: &Expr, ins: &[Lit]) -> Lit {
    let all =
        |b: &mut Builder, v: &[Expr]| -> Vec<Lit> { v.iter().map(|a| build(b, a, ins)).collect() };
    let terms = |b: &mut Builder, t: &[(Expr, i64)]| -> Vec<(Lit, i64)> {
        t.iter().map(|(a, w)| (build(b, a, ins), *w)).collect()
    };
    match e {
        Expr::Input(i) => ins[*i],
        Expr::Const(v) => b.constant(*v),
        Expr::Not(a) => {
            let l = build(b, a, ins);
            b.not(l)
        }
        Expr::And(v) => {
            let l = all(b, v);
            b.and(&l).unwrap()
        }
        Expr::Or(v) => {
            let l = all(b, v);
            b.or(&l).unwrap()
        }
        Expr::Maj(v) => {
            let l = all(b, v);
            b.majority(&l).unwrap()
        }
        Expr::Xor(v) => {
            let l = all(b, v);
            b.xor(&l).unwrap()
        }
        Expr::Mux(s, p, q) => {
            let (s, p, q) = (build(b, s, ins), build(b, p, ins), build(b, q, ins));
            b.mux(s, p, q).unwrap()
        }
        Expr::Thr(t, th) => {
            let t = terms(b, t);
            b.threshold(&t, *th).unwrap()
        }
        Expr::Bank(t, ths, k) => {
            let t = terms(b, t);
            b.bank(&t, ths).unwrap()[*k % ths.len()]
        }
    }
}

fn weight_strategy() -> BoxedStrategy<i64> {
    prop_oneof![
        4 => -4i64..=4,
        1 => prop_oneof![Just(1i64 << 40), Just(-(1i64 << 40)), Just((1i64 << 40) + 3)],
    ]
    .boxed()
}

fn expr_strategy(n: usize) -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        6 => (0..n).prop_map(Expr::Input),
        1 => any::<bool>().prop_map(Expr::Const),
    ];
    leaf.prop_recursive(4, 40, 5, |inner| {
        let list = prop::collection::vec(inner.clone(), 0..5);
        let wterms = prop::collection::vec((inner.clone(), weight_strategy()), 0..5);
        prop_oneof![
            inner.clone().prop_map(|a| Expr::Not(Box::new(a))),
            list.clone().prop_map(Expr::And),
            list.clone().prop_map(Expr::Or),
            list.clone().prop_map(Expr::Maj),
            prop::collection::vec(inner.clone(), 0..4).prop_map(Expr::Xor),
            (inner.clone(), inner.clone(), inner.clone()).prop_map(|(s, a, b)| Expr::Mux(
                Box::new(s),
                Box::new(a),
                Box::new(b)
            )),
            (wterms.clone(), -8i64..=8).prop_map(|(t, th)| Expr::Thr(t, th)),
            (wterms, prop::collection::vec(-8i64..=8, 1..5), 0usize..5)
                .prop_map(|(t, ths, k)| Expr::Bank(t, ths, k)),
        ]
    })
}

fn all_vectors(n: usize) -> impl Iterator<Item = Vec<bool>> {
    (0u32..1 << n).map(move |v| (0..n).map(|i| v >> i & 1 == 1).collect())
}

// ------------------------------------------------------------------------------ references

/// Longest path (in gates) ending at every node, from the netlist's nodes and forms.
fn longest_paths(c: &Circuit) -> Vec<u32> {
    let mut lp = vec![0u32; c.nodes.len()];
    for (w, n) in c.nodes.iter().enumerate() {
        if let Node::Gate { form, .. } = *n {
            let r =
                c.forms.offsets[form.index()] as usize..c.forms.offsets[form.index() + 1] as usize;
            lp[w] = 1 + c.forms.wires[r]
                .iter()
                .map(|x| lp[x.index()])
                .max()
                .unwrap_or(0);
        }
    }
    lp
}

/// Check that `lv` is a valid layering and evaluate it with a naive interpreter.
fn check_layering(lv: &Levelized) {
    let mut written = 1 + lv.num_inputs;
    assert_eq!(lv.gate_offsets[0], 0);
    assert_eq!(lv.form_offsets[0], 0);
    assert_eq!(lv.bank_offsets[0], 0);
    let (mut g, mut f, mut t) = (0u32, 0u32, 0u32);
    for (k, l) in lv.levels.iter().enumerate() {
        assert_eq!(
            l.row_start, written,
            "level {k} starts after the previous one"
        );
        assert_eq!((l.and_start, l.form_start, l.threshold_start), (g, f, t));
        assert!(l.and_start <= l.or_start && l.or_start <= l.or_end);
        assert!(l.num_rows() > 0, "empty level {k}");
        for gi in l.and_start..l.or_end {
            let r = lv.gate_offsets[gi as usize]..lv.gate_offsets[gi as usize + 1];
            for j in r {
                let row = lv.gate_lits[j as usize].row().0;
                assert!(
                    row < l.row_start,
                    "level {k} gate reads row {row} not yet written"
                );
            }
        }
        for fi in l.form_start..l.form_end {
            for j in lv.form_offsets[fi as usize]..lv.form_offsets[fi as usize + 1] {
                let row = lv.form_rows[j as usize].0;
                assert!(
                    row < l.row_start,
                    "level {k} form reads row {row} not yet written"
                );
            }
            let th = &lv.thresholds
                [lv.bank_offsets[fi as usize] as usize..lv.bank_offsets[fi as usize + 1] as usize];
            assert!(!th.is_empty());
            assert!(
                th.windows(2).all(|p| p[0] <= p[1]),
                "bank thresholds ascending"
            );
            let ws = form_weights_of(lv, fi as usize);
            assert!(ws.iter().map(|w| w.unsigned_abs() as u128).sum::<u128>() <= 1 << 62);
        }
        g = l.or_end;
        f = l.form_end;
        t = l.threshold_end;
        assert_eq!(lv.bank_offsets[f as usize], t);
        written += l.num_rows();
    }
    assert_eq!(written, lv.num_rows);
    assert_eq!(g as usize + 1, lv.gate_offsets.len());
    assert_eq!(f as usize + 1, lv.form_offsets.len());
    assert_eq!(t as usize, lv.thresholds.len());
    assert!(lv.outputs.iter().all(|&o| o.row().0 < lv.num_rows));
    assert!(
        lv.check().is_ok(),
        "the levelizer's output passes Levelized::check"
    );
}

/// Form `f`'s weights decoded directly from the byte pool (independently of
/// `Levelized::form_weights`): `n` terms of `width = bytes / n` bytes, little-endian two's
/// complement; the width must be the smallest that holds every weight.
fn form_weights_of(lv: &Levelized, f: usize) -> Vec<i64> {
    let n = (lv.form_offsets[f + 1] - lv.form_offsets[f]) as usize;
    let b = &lv.form_weight_bytes
        [lv.form_weight_offsets[f] as usize..lv.form_weight_offsets[f + 1] as usize];
    if n == 0 {
        assert!(b.is_empty());
        return Vec::new();
    }
    assert_eq!(
        b.len() % n,
        0,
        "form {f}: weight bytes not a multiple of its terms"
    );
    let width = b.len() / n;
    assert!((1..=8).contains(&width), "form {f}: width {width}");
    let ws: Vec<i64> = b
        .chunks(width)
        .map(|c| {
            let mut v: i128 = 0;
            for (k, &byte) in c.iter().enumerate() {
                v |= (byte as i128) << (8 * k);
            }
            if c[width - 1] & 0x80 != 0 {
                v -= 1i128 << (8 * width);
            }
            v as i64
        })
        .collect();
    if width > 1 {
        let half = 1i128 << (8 * (width - 1) - 1);
        assert!(
            ws.iter()
                .any(|&w| (w as i128) < -half || (w as i128) >= half),
            "form {f}: width {width} is not the smallest"
        );
    }
    ws
}

/// Evaluate a levelized circuit directly from its arrays.
fn eval_levelized(lv: &Levelized, x: &[bool]) -> Vec<bool> {
    let mut row = vec![false; lv.num_rows as usize];
    for (i, &b) in x.iter().enumerate() {
        row[1 + i] = b;
    }
    let litv = |row: &[bool], l: RowLit| row[l.row().index()] ^ l.is_complemented();
    for l in &lv.levels {
        let mut out = l.row_start as usize;
        for gi in l.and_start..l.or_end {
            let r =
                lv.gate_offsets[gi as usize] as usize..lv.gate_offsets[gi as usize + 1] as usize;
            let lits = &lv.gate_lits[r];
            row[out] = if gi < l.or_start {
                lits.iter().all(|&q| litv(&row, q))
            } else {
                lits.iter().any(|&q| litv(&row, q))
            };
            out += 1;
        }
        for fi in l.form_start as usize..l.form_end as usize {
            let r = lv.form_offsets[fi] as usize..lv.form_offsets[fi + 1] as usize;
            let ws = form_weights_of(lv, fi);
            let s: i128 = r
                .zip(&ws)
                .map(|(j, &w)| {
                    if row[lv.form_rows[j].index()] {
                        w as i128
                    } else {
                        0
                    }
                })
                .sum();
            for j in lv.bank_offsets[fi] as usize..lv.bank_offsets[fi + 1] as usize {
                row[out] = s >= lv.thresholds[j] as i128;
                out += 1;
            }
        }
    }
    lv.outputs.iter().map(|&o| litv(&row, o)).collect()
}

/// A random circuit from the builder's gate methods, with nested regions.
fn random_circuit(seed: u64, ni: u32, steps: usize) -> Circuit {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut b = Builder::new();
    let mut pool = b.input_word("x", ni).unwrap();
    pool.push(Lit::TRUE);
    let names = ["enc", "dec", "blk", "attn"];
    let mut open = 0;
    for _ in 0..steps {
        if rng.random_bool(0.08) {
            if open > 0 && rng.random_bool(0.5) {
                b.pop_region().unwrap();
                open -= 1;
            } else if open < 3 {
                b.push_region(names[rng.random_range(0..names.len())])
                    .unwrap();
                open += 1;
            }
        }
        let lo = pool.len().saturating_sub(30);
        let pick = |rng: &mut ChaCha8Rng| {
            let l = pool[if rng.random_bool(0.6) {
                rng.random_range(lo..pool.len())
            } else {
                rng.random_range(0..pool.len())
            }];
            if rng.random_bool(0.3) {
                !l
            } else {
                l
            }
        };
        let k = rng.random_range(1..=6);
        let lits: Vec<Lit> = (0..k).map(|_| pick(&mut rng)).collect();
        let new = match rng.random_range(0..6) {
            0 => vec![b.and(&lits).unwrap()],
            1 => vec![b.or(&lits).unwrap()],
            2 => vec![b.majority(&lits).unwrap()],
            3 => vec![b.xor(&lits[..k.min(3)]).unwrap()],
            _ => {
                let terms: Vec<(Lit, i64)> = lits
                    .iter()
                    .map(|&l| (l, rng.random_range(-(1i64 << 20)..=1 << 20)))
                    .collect();
                let pos: i64 = terms.iter().map(|t| t.1.max(0)).sum();
                let neg: i64 = terms.iter().map(|t| t.1.min(0)).sum();
                let n = rng.random_range(1..=4);
                let th: Vec<i64> = (0..n).map(|_| rng.random_range(neg..=pos + 1)).collect();
                b.bank(&terms, &th).unwrap()
            }
        };
        // Constants would make later gates fold away; keep them out of the pool.
        pool.extend(new.into_iter().filter(|l| !l.is_constant()));
    }
    let n = pool.len();
    let outs: Vec<Lit> = (0..12)
        .map(|i| {
            if i < 6 {
                pool[n - 1 - i]
            } else {
                !pool[rng.random_range(0..n)]
            }
        })
        .collect();
    b.output_word("y", &outs).unwrap();
    b.finish()
}

// ------------------------------------------------------------------------------ properties

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Hashing, constant folding and negation folding keep the function of every expression,
    /// building an expression twice returns the same literal and adds no gate, and the
    /// levelized circuit computes the same function.
    #[test]
    fn builder_folding_keeps_the_function(
        n in 1usize..=5,
        exprs in prop::collection::vec(expr_strategy(5), 1..4),
    ) {
        let exprs: Vec<Expr> = exprs.into_iter().map(|e| clamp_inputs(e, n)).collect();
        let mut b = Builder::new();
        let ins = b.input_word("x", n as u32).unwrap();
        let outs: Vec<Lit> = exprs.iter().map(|e| build(&mut b, e, &ins)).collect();
        let gates = b.num_gates();
        let again: Vec<Lit> = exprs.iter().map(|e| build(&mut b, e, &ins)).collect();
        prop_assert_eq!(&again, &outs, "hash-consing returns the same literal");
        prop_assert_eq!(b.num_gates(), gates, "rebuilding adds no gate");
        b.output_word("y", &outs).unwrap();
        let c = b.finish();
        let lv = c.levelize();
        check_layering(&lv);
        for x in all_vectors(n) {
            let want: Vec<bool> = exprs.iter().map(|e| eval(e, &x)).collect();
            prop_assert_eq!(c.eval_single(&x).unwrap(), want.clone(), "input {:?}", x);
            prop_assert_eq!(eval_levelized(&lv, &x), want, "levelized, input {:?}", x);
        }
        // NOT is free: a complemented expression costs no gate and no level.
        for (e, &l) in exprs.iter().zip(&outs) {
            let mut b2 = Builder::new();
            let ins2 = b2.input_word("x", n as u32).unwrap();
            let p = build(&mut b2, e, &ins2);
            let g = b2.num_gates();
            let q = build(&mut b2, &Expr::Not(Box::new(e.clone())), &ins2);
            prop_assert_eq!(q, !p);
            prop_assert_eq!(b2.num_gates(), g);
            let _ = l;
        }
    }

    /// On random multi-thousand-gate circuits: levels are a valid topological layering, the
    /// levelized arrays compute the netlist's function, depth equals the longest path, and the
    /// statistics equal an independent count.
    #[test]
    fn levelize_depth_and_stats_on_random_circuits(seed in any::<u64>()) {
        let ni = 10;
        let c = random_circuit(seed, ni, 1500);
        prop_assert!(c.num_gates() > 1000, "{} gates", c.num_gates());
        prop_assert!(c.regions.len() > 3);
        let lp = longest_paths(&c);
        prop_assert_eq!(&c.levels, &lp, "builder levels are longest paths");
        let depth = c.output_lits().iter().map(|l| lp[l.wire().index()]).max().unwrap_or(0);
        prop_assert_eq!(c.depth(), depth);
        let lv = c.levelize();
        prop_assert_eq!(lv.depth(), depth);
        check_layering(&lv);
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
        for _ in 0..64 {
            let x: Vec<bool> = (0..ni).map(|_| rng.random_bool(0.5)).collect();
            prop_assert_eq!(eval_levelized(&lv, &x), c.eval_single(&x).unwrap());
        }
        check_stats(&c);
    }
}

/// Map every input index into `0..n`.
fn clamp_inputs(e: Expr, n: usize) -> Expr {
    let f = |e: Expr| clamp_inputs(e, n);
    let ft = |t: Vec<(Expr, i64)>| {
        t.into_iter()
            .map(|(a, w)| (clamp_inputs(a, n), w))
            .collect()
    };
    match e {
        Expr::Input(i) => Expr::Input(i % n),
        Expr::Const(b) => Expr::Const(b),
        Expr::Not(a) => Expr::Not(Box::new(f(*a))),
        Expr::And(v) => Expr::And(v.into_iter().map(f).collect()),
        Expr::Or(v) => Expr::Or(v.into_iter().map(f).collect()),
        Expr::Maj(v) => Expr::Maj(v.into_iter().map(f).collect()),
        Expr::Xor(v) => Expr::Xor(v.into_iter().map(f).collect()),
        Expr::Mux(s, a, b) => Expr::Mux(Box::new(f(*s)), Box::new(f(*a)), Box::new(f(*b))),
        Expr::Thr(t, th) => Expr::Thr(ft(t), th),
        Expr::Bank(t, ths, k) => Expr::Bank(ft(t), ths, k),
    }
}

/// Compare `Circuit::stats` and `Circuit::region_stats` with counts made here.
fn check_stats(c: &Circuit) {
    let terms = |f: usize| {
        let r = c.forms.offsets[f] as usize..c.forms.offsets[f + 1] as usize;
        c.forms.weights[r].to_vec()
    };
    let paths: Vec<String> = (0..c.regions.len())
        .map(|r| c.region_path(tcvar::circuit::RegionId(r as u32)))
        .collect();
    let inside = |node: usize, p: &str| {
        let q = &paths[c.node_region[node].index()];
        p.is_empty() || q == p || q.starts_with(&format!("{p}."))
    };
    let region_stats = c.region_stats();
    assert_eq!(region_stats.len(), c.regions.len());
    let whole = c.stats();
    for (p, s) in region_stats
        .iter()
        .map(|(p, s)| (p.as_str(), s))
        .chain([("", &whole)])
    {
        let (mut gates, mut fan_in, mut maj, mut maxw) = (0u64, 0u64, 0u128, 0u64);
        let mut forms = std::collections::BTreeSet::new();
        let mut d = vec![0u32; c.nodes.len()];
        let mut depth = 0;
        for (w, n) in c.nodes.iter().enumerate() {
            let Node::Gate { form, .. } = *n else {
                continue;
            };
            if !inside(w, p) {
                continue;
            }
            let ws = terms(form.index());
            gates += 1;
            fan_in += ws.len() as u64;
            maj += ws.iter().map(|x| x.unsigned_abs() as u128).sum::<u128>();
            maxw = maxw.max(ws.iter().map(|x| x.unsigned_abs()).max().unwrap());
            forms.insert(form.index());
            let (fw, _) = c.forms.terms(form);
            d[w] = 1 + fw
                .iter()
                .filter(|x| inside(x.index(), p))
                .map(|x| d[x.index()])
                .max()
                .unwrap_or(0);
            depth = depth.max(d[w]);
        }
        let form_terms: u64 = forms.iter().map(|&f| terms(f).len() as u64).sum();
        assert_eq!(s.gates, gates, "region {p:?}");
        assert_eq!(s.fan_in, fan_in, "region {p:?}");
        assert_eq!(s.majority_size, maj, "region {p:?}");
        assert_eq!(s.max_abs_weight, maxw, "region {p:?}");
        assert_eq!(s.forms, forms.len() as u64, "region {p:?}");
        assert_eq!(s.form_terms, form_terms, "region {p:?}");
        if std::ptr::eq(s, &whole) {
            assert_eq!(s.depth, c.depth());
            assert!(s.memory.is_some() && s.levelized.is_some());
        } else {
            assert_eq!(s.depth, depth, "region {p:?}");
        }
    }
    let json = whole.to_json();
    assert!(json.starts_with('{') && json.ends_with('}') && json.contains("\"gates\":"));
    let table = tcvar::circuit::stats::format_region_table(&region_stats);
    assert_eq!(table.lines().count(), 1 + c.regions.len());
}

// ------------------------------------------------------------------------------ examples

#[test]
fn stats_of_a_hand_built_circuit() {
    let mut b = Builder::new();
    let x = b.input_word("x", 4).unwrap();
    b.push_region("top").unwrap();
    let a = b.and(&[x[0], x[1], x[2]]).unwrap(); // fan-in 3, |w| sum 3
    b.push_region("inner").unwrap();
    let bank = b
        .bank(&[(x[0], 3), (x[1], -5), (a, 2)], &[1, 2, 4])
        .unwrap(); // 3 gates on 1 form
    b.pop_region().unwrap();
    let o = b.or(&[bank[0], bank[2], !x[3]]).unwrap(); // fan-in 3
    b.pop_region().unwrap();
    b.output_word("y", &[o, !bank[1]]).unwrap();
    let c = b.finish();
    let s = c.stats();
    assert_eq!((s.gates, s.fan_in, s.forms, s.form_terms), (5, 15, 3, 9));
    assert_eq!(s.max_abs_weight, 5);
    assert_eq!(s.majority_size, 3 + 3 * 10 + 3);
    assert_eq!(s.depth, 3);
    assert_eq!((s.inputs, s.outputs), (4, 2));
    let r = c.region_stats();
    let paths: Vec<&str> = r.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, ["", "top", "top.inner"]);
    assert_eq!((r[1].1.gates, r[1].1.depth, r[1].1.forms), (5, 3, 3));
    assert_eq!((r[2].1.gates, r[2].1.depth, r[2].1.fan_in), (3, 1, 9));
    assert_eq!(r[2].1.outputs, 1);
    assert_eq!(r[0].1.inputs, 4);
    assert!(r[1].1.memory.is_none());
    let shown = format!("{s}");
    assert!(shown.contains("gates            5"));
}

#[test]
fn builder_error_cases() {
    let mut b = Builder::new();
    let x = b.input_word("x", 2).unwrap();
    assert!(matches!(
        b.input_word("x", 1),
        Err(CircuitError::DuplicateName { kind: "input", .. })
    ));
    b.output_word("y", &[x[0]]).unwrap();
    assert!(matches!(
        b.output_word("y", &[x[1]]),
        Err(CircuitError::DuplicateName { kind: "output", .. })
    ));
    let ghost = Lit(1000 << 1);
    assert!(matches!(
        b.and2(x[0], ghost),
        Err(CircuitError::UnknownWire { wire: 1000, .. })
    ));
    assert!(matches!(
        b.threshold(&[(ghost, 1)], 1),
        Err(CircuitError::UnknownWire { .. })
    ));
    assert!(matches!(
        b.output_word("z", &[ghost]),
        Err(CircuitError::UnknownWire { .. })
    ));
    let big = 1i64 << 62;
    assert!(matches!(
        b.threshold(&[(x[0], big), (x[1], big)], 1),
        Err(CircuitError::WeightOverflow { .. })
    ));
    assert!(matches!(
        b.threshold(&[(x[0], i64::MAX), (x[1], i64::MIN)], 0),
        Err(CircuitError::WeightOverflow { .. })
    ));
    // At the limit exactly, the gate is built.
    b.threshold(&[(x[0], 1 << 61), (x[1], 1 << 61)], 1 << 61)
        .unwrap();
    assert!(matches!(b.pop_region(), Err(CircuitError::RegionUnderflow)));
    b.push_region("r").unwrap();
    b.pop_region().unwrap();
    assert!(matches!(b.pop_region(), Err(CircuitError::RegionUnderflow)));
    assert!(matches!(
        b.push_region("a.b"),
        Err(CircuitError::InvalidRegionName(_))
    ));
    assert!(matches!(
        b.push_region(""),
        Err(CircuitError::InvalidRegionName(_))
    ));
    // Extreme i128 thresholds fold to constants instead of overflowing.
    let t = b
        .bank_i128(
            &[(!x[0], i64::MAX), (Lit::TRUE, i64::MAX)],
            &[i128::MIN, i128::MAX],
        )
        .unwrap();
    assert_eq!(t, [Lit::TRUE, Lit::FALSE]);
    let t = b
        .bank_i128(
            &[(x[0], i64::MIN), (Lit::TRUE, i64::MIN)],
            &[i128::MIN, i128::MAX],
        )
        .unwrap();
    assert_eq!(t, [Lit::TRUE, Lit::FALSE]);
}

#[test]
fn constant_and_single_literal_gates_fold_away() {
    let mut b = Builder::new();
    let x = b.input_word("x", 3).unwrap();
    assert_eq!(b.and(&[]).unwrap(), Lit::TRUE);
    assert_eq!(b.or(&[]).unwrap(), Lit::FALSE);
    assert_eq!(b.and(&[x[0], Lit::FALSE]).unwrap(), Lit::FALSE);
    assert_eq!(b.or(&[x[1], Lit::TRUE]).unwrap(), Lit::TRUE);
    assert_eq!(b.and(&[x[2], Lit::TRUE]).unwrap(), x[2]);
    assert_eq!(b.or(&[!x[2], Lit::FALSE]).unwrap(), !x[2]);
    assert_eq!(b.threshold(&[(x[0], -3)], -1).unwrap(), !x[0]);
    assert_eq!(b.mux(x[0], x[1], x[1]).unwrap(), x[1]);
    assert_eq!(b.num_gates(), 0);
    // [x0 + x1 >= 1] and [-x0 - x1 >= 0] are complements: one gate.
    let g = b.or(&[x[0], x[1]]).unwrap();
    let h = b.threshold(&[(x[0], -1), (x[1], -1)], 0).unwrap();
    assert_eq!(h, !g);
    // Scaling weights and threshold shares the form and the gate.
    let p = b.threshold(&[(x[0], 2), (x[1], 4), (x[2], 6)], 5).unwrap();
    let q = b.threshold(&[(x[0], 1), (x[1], 2), (x[2], 3)], 3).unwrap();
    assert_eq!(p, q);
    assert_eq!(b.num_gates(), 2);
}
