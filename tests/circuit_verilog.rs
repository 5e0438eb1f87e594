//! Structural Verilog export, cross-checked bit for bit against `Circuit::eval_single` by
//! simulating the exported module and its testbench with Icarus Verilog.
//!
//! Without `iverilog` the test prints a loud skip, unless the `CI` or `TCVAR_REQUIRE_IVERILOG`
//! environment variable is set, in which case it fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tcvar::circuit::verilog::{format_input_vector, parse_output_line, sanitize_identifier};
use tcvar::circuit::{Builder, Circuit, Lit};

fn iverilog_available() -> bool {
    let ok = Command::new("iverilog")
        .arg("-V")
        .output()
        .map(|o| o.status.success() || !o.stdout.is_empty())
        .unwrap_or(false);
    if !ok {
        let required = std::env::var_os("CI").is_some()
            || std::env::var_os("TCVAR_REQUIRE_IVERILOG").is_some();
        assert!(
            !required,
            "iverilog is required (CI or TCVAR_REQUIRE_IVERILOG is set) but was not found"
        );
        eprintln!();
        eprintln!("################################################################");
        eprintln!("## SKIPPED: iverilog not found; the Verilog cross-check did not run");
        eprintln!("################################################################");
    }
    ok
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tcvar_verilog_{}_{tag}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Simulate `c` on `vectors` with Icarus Verilog; returns one output vector per input vector.
fn simulate(c: &Circuit, module: &str, vectors: &[Vec<bool>], dir: &Path) -> Vec<Vec<bool>> {
    let dut = dir.join("dut.v");
    let tb = dir.join("tb.v");
    let vecs = dir.join("vectors.txt");
    let sim = dir.join("sim.vvp");
    c.write_verilog(module, std::fs::File::create(&dut).unwrap())
        .unwrap();
    std::fs::write(&tb, c.verilog_testbench(module)).unwrap();
    let text: String = vectors
        .iter()
        .map(|v| format_input_vector(v) + "\n")
        .collect();
    std::fs::write(&vecs, text).unwrap();
    let top = format!("{}_tb", sanitize_identifier("", module));
    let out = Command::new("iverilog")
        .arg("-g2005")
        .arg("-s")
        .arg(&top)
        .arg("-o")
        .arg(&sim)
        .arg(&dut)
        .arg(&tb)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "iverilog failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("vvp")
        .arg("-n")
        .arg(&sim)
        .arg(format!("+vectors={}", vecs.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "vvp failed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| {
            !l.is_empty()
                && l.chars()
                    .all(|c| matches!(c, '0' | '1' | 'x' | 'z' | 'X' | 'Z'))
        })
        .collect();
    assert_eq!(lines.len(), vectors.len(), "simulator output:\n{stdout}");
    lines
        .iter()
        .map(|l| {
            parse_output_line(l, c.num_outputs())
                .unwrap_or_else(|| panic!("bad simulator line {l:?}"))
        })
        .collect()
}

fn check(c: &Circuit, module: &str, vectors: &[Vec<bool>], tag: &str) {
    let dir = tmpdir(tag);
    let got = simulate(c, module, vectors, &dir);
    for (v, g) in vectors.iter().zip(&got) {
        let want = c.eval_single(v).unwrap();
        assert_eq!(g, &want, "{tag}: input {v:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Weight classes: small, medium, near 2^40, near 2^60 (few terms so the sum stays <= 2^62).
fn weight(rng: &mut ChaCha8Rng, class: u32) -> i64 {
    let mag: i64 = match class {
        0 => rng.random_range(1..=4),
        1 => rng.random_range(1..=1 << 20),
        2 => (1i64 << 40) + rng.random_range(-1000..=1000),
        _ => (1i64 << 60) - rng.random_range(0..=1 << 20),
    };
    if rng.random_bool(0.5) {
        mag
    } else {
        -mag
    }
}

/// A random circuit of `gates` gate-building steps over `ni` inputs in several words.
fn random_circuit(seed: u64, ni: usize, steps: usize) -> Circuit {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut b = Builder::new();
    let mut pool: Vec<Lit> = Vec::new();
    let words = ["a", "b.c", "9x", "module"];
    let mut left = ni;
    for (k, name) in words.iter().enumerate() {
        let w = if k == words.len() - 1 {
            left
        } else {
            rng.random_range(0..=left)
        };
        left -= w;
        pool.extend(b.input_word(name, w as u32).unwrap());
    }
    pool.push(Lit::TRUE);
    pool.push(Lit::FALSE);
    for _ in 0..steps {
        let recent = pool.len().saturating_sub(40);
        let pick = |rng: &mut ChaCha8Rng, pool: &Vec<Lit>| {
            // Mostly recent literals (deep circuits), sometimes any (wide ones).
            let i = if rng.random_bool(0.7) {
                rng.random_range(recent..pool.len())
            } else {
                rng.random_range(0..pool.len())
            };
            let l = pool[i];
            if rng.random_bool(0.3) {
                !l
            } else {
                l
            }
        };
        let k = rng.random_range(1..=6);
        let lits: Vec<Lit> = (0..k).map(|_| pick(&mut rng, &pool)).collect();
        let op = rng.random_range(0..8);
        let new: Vec<Lit> = match op {
            0 => vec![b.and(&lits).unwrap()],
            1 => vec![b.or(&lits).unwrap()],
            2 => vec![b.majority(&lits).unwrap()],
            3 => vec![b.xor(&lits[..k.min(3)]).unwrap()],
            4 => vec![b
                .mux(lits[0], pick(&mut rng, &pool), pick(&mut rng, &pool))
                .unwrap()],
            _ => {
                let class = rng.random_range(0..4);
                let n = if class == 3 { k.min(3) } else { k };
                let terms: Vec<(Lit, i64)> = lits[..n]
                    .iter()
                    .map(|&l| (l, weight(&mut rng, class)))
                    .collect();
                let pos: i64 = terms.iter().map(|t| t.1.max(0)).sum();
                let neg: i64 = terms.iter().map(|t| t.1.min(0)).sum();
                let nt = if op == 7 { rng.random_range(2..=5) } else { 1 };
                let thetas: Vec<i64> = (0..nt).map(|_| rng.random_range(neg..=pos + 1)).collect();
                b.bank(&terms, &thetas).unwrap()
            }
        };
        // Constants would make later gates fold away; keep them out of the pool.
        pool.extend(new.into_iter().filter(|l| !l.is_constant()));
    }
    // Outputs: the last literals (so the deep part is observed), random others, constants.
    let n = pool.len();
    let mut outs: Vec<Lit> = pool[n.saturating_sub(8)..].to_vec();
    for _ in 0..8 {
        let l = pool[rng.random_range(0..n)];
        outs.push(if rng.random_bool(0.5) { !l } else { l });
    }
    let split = outs.len() / 2;
    b.output_word("y", &outs[..split]).unwrap();
    b.output_word("y-2", &outs[split..]).unwrap();
    b.output_word("k", &[Lit::TRUE, Lit::FALSE]).unwrap();
    b.output_word("empty", &[]).unwrap();
    b.finish()
}

fn random_vectors(rng: &mut ChaCha8Rng, n: usize, count: usize) -> Vec<Vec<bool>> {
    (0..count)
        .map(|_| (0..n).map(|_| rng.random_bool(0.5)).collect())
        .collect()
}

#[test]
fn exported_random_circuits_simulate_like_eval_single() {
    if !iverilog_available() {
        return;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    for seed in 0..6u64 {
        let ni = 6 + 3 * seed as usize;
        let c = random_circuit(seed, ni, 150 + 50 * seed as usize);
        assert!(c.num_gates() > 150, "seed {seed}: {} gates", c.num_gates());
        let v = c.to_verilog("circ");
        assert!(v.contains("signed"));
        let vectors = random_vectors(&mut rng, ni, 300);
        check(&c, "circ", &vectors, &format!("random{seed}"));
    }
}

#[test]
fn exhaustive_small_circuit_with_wide_negative_weights() {
    if !iverilog_available() {
        return;
    }
    let mut b = Builder::new();
    let x = b.input_word("x", 5).unwrap();
    let big = 1i64 << 40;
    let terms = [
        (x[0], big + 3),
        (!x[1], -(big - 7)),
        (x[2], -(1 << 41)),
        (x[3], (1 << 61) - 1),
        (!x[4], -((1 << 60) + 5)),
    ];
    let lo: i64 = terms.iter().map(|t| t.1.min(0)).sum();
    let hi: i64 = terms.iter().map(|t| t.1.max(0)).sum();
    let thetas = [
        lo,
        lo + 1,
        -(1 << 41),
        -1,
        0,
        1,
        big,
        (1 << 61) - 100,
        hi,
        hi + 1,
    ];
    let bank = b.bank(&terms, &thetas).unwrap();
    let m = b.majority(&[bank[2], bank[4], !bank[6], x[0]]).unwrap();
    let mut outs = bank.clone();
    outs.push(!m);
    b.output_word("out", &outs).unwrap();
    let c = b.finish();
    let vectors: Vec<Vec<bool>> = (0u32..32)
        .map(|v| (0..5).map(|i| v >> i & 1 == 1).collect())
        .collect();
    check(&c, "wide", &vectors, "wide");
}

#[test]
fn circuits_without_inputs_or_outputs_export() {
    if !iverilog_available() {
        return;
    }
    let mut b = Builder::new();
    b.output_word("k", &[Lit::TRUE, Lit::FALSE, Lit::TRUE])
        .unwrap();
    let c = b.finish();
    check(&c, "module", &[vec![], vec![]], "noinputs");
    let mut b = Builder::new();
    let x = b.input_word("x", 3).unwrap();
    let _ = b.and(&x).unwrap();
    let c = b.finish();
    let vectors: Vec<Vec<bool>> = vec![vec![true; 3], vec![false; 3]];
    let dir = tmpdir("nooutputs");
    let got = simulate(&c, "m", &vectors, &dir);
    assert_eq!(got, vec![Vec::<bool>::new(); 2]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn vector_line_format() {
    assert_eq!(format_input_vector(&[true, false, false]), "001");
    assert_eq!(format_input_vector(&[]), "0");
    assert_eq!(parse_output_line("110\n", 3), Some(vec![false, true, true]));
    assert_eq!(parse_output_line("0", 0), Some(vec![]));
    assert_eq!(parse_output_line("1x0", 3), None);
    assert_eq!(parse_output_line("10", 3), None);
    assert_eq!(sanitize_identifier("in_", "a.b c"), "in_a_b_c");
    assert_eq!(sanitize_identifier("", "9x"), "_9x");
    assert_eq!(sanitize_identifier("", "module"), "module_");
    assert_eq!(sanitize_identifier("", ""), "_");
}
