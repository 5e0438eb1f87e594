//! Every `tcvar` subcommand with hostile and careless arguments, run under a 4 GiB address-space
//! cap (`ulimit -v`): each must end with status 2 and one line on stderr, never a panic, and
//! never need more memory than the cap (an allocation past it would abort the process, which
//! these tests see as a wrong status).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::cli::{assert_success, user_error_line, PANIC_OR_BACKTRACE};

/// The address-space cap, in KiB.
const CAP_KIB: u64 = 4 << 20;

fn capped(args: &[&str]) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {CAP_KIB} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_tcvar"))
        .args(args)
        .output()
        .expect("sh runs")
}

/// A fresh, empty temporary directory for the test part `name`.
fn tmpdir(name: &str) -> PathBuf {
    common::cli::tmpdir("tcvar-hostile", name)
}

/// The one stderr line of `tcvar args` (under the cap): status 2, exactly one line on stderr
/// (besides the Vulkan loader's own notice), no panic or backtrace.
fn refused(args: &[&str]) -> String {
    user_error_line(&capped(args), PANIC_OR_BACKTRACE, &format!("{args:?}: "))
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// A small circuit file (a float adder in F(4, 3): 16 inputs).
fn adder(dir: &Path) -> PathBuf {
    let c = dir.join("add.tcc");
    let out = capped(&[
        "build",
        "--gadget",
        "add",
        "--p",
        "4",
        "--q",
        "3",
        "--out",
        s(&c),
    ]);
    assert_success(&out);
    c
}

/// A sparse file of `len` zero bytes (no disk space used).
fn sparse(path: PathBuf, len: u64) -> PathBuf {
    std::fs::File::create(&path)
        .and_then(|f| f.set_len(len))
        .expect("sparse file");
    path
}

#[test]
fn eval_refuses_hostile_circuit_files_without_reading_them() {
    let d = tmpdir("eval-circuit");
    let v = d.join("v.txt");
    std::fs::write(&v, "0000000000000000\n").unwrap();
    // A device: refused before any read (the old reader grew without bound).
    assert!(refused(&["eval", "/dev/zero", "--inputs", s(&v)]).contains("regular file"));
    // A 3 GiB file that is not a circuit: refused after its header (reading it whole would
    // pass the cap).
    let big = sparse(d.join("big.tcc"), 3 << 30);
    assert!(refused(&["eval", s(&big), "--inputs", s(&v)]).contains("magic"));
    assert!(refused(&["eval", s(&d), "--inputs", s(&v)]).contains("directory"));
    refused(&["eval", s(&d.join("missing.tcc")), "--inputs", s(&v)]);
    // A valid header announcing more payload than the file holds.
    let c = adder(&d);
    let mut bytes = std::fs::read(&c).unwrap();
    bytes.truncate(bytes.len() - 1);
    std::fs::write(d.join("short.tcc"), &bytes).unwrap();
    assert!(refused(&["eval", s(&d.join("short.tcc")), "--inputs", s(&v)]).contains("truncated"));
    refused(&["export", "/dev/zero", "--verilog", s(&d.join("v"))]);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn eval_refuses_hostile_vector_files() {
    let d = tmpdir("eval-vectors");
    let c = adder(&d);
    let run = |name: &str, body: &[u8]| {
        let p = d.join(name);
        std::fs::write(&p, body).unwrap();
        refused(&["eval", s(&c), "--inputs", s(&p)])
    };
    // Multi-byte characters inside the first 40 bytes of a bad line (was a panic slicing
    // inside a character).
    let mut line = "0".repeat(39);
    line.push('é');
    line.push_str(&"0".repeat(10));
    line.push('\n');
    assert!(run("utf8.txt", line.as_bytes()).contains("binary digits"));
    assert!(run("latin1.txt", b"00000000\xe900000000\n").contains("UTF-8"));
    // No vector at all is an error, not "evaluated 0 instances".
    assert!(run("empty.txt", b"").contains("no input vectors"));
    assert!(run("comments.txt", b"# nothing\n\n   \n# more\n").contains("no input vectors"));
    assert!(run("short.txt", b"0101\n").contains("binary digits"));
    assert!(run("digits.txt", b"0000000000000002\n").contains("binary digits"));
    // Devices and endless lines: refused promptly, memory bounded.
    assert!(refused(&["eval", s(&c), "--inputs", "/dev/zero"]).contains("regular file"));
    let long = sparse(d.join("long.txt"), 3 << 30);
    assert!(refused(&["eval", s(&c), "--inputs", s(&long)]).contains("longer than"));
    refused(&["eval", s(&c), "--inputs", s(&d)]);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn build_validates_every_numeric_option_and_the_output_first() {
    let d = tmpdir("build");
    let out = d.join("c.tcc");
    for bad in ["NaN", "inf", "-inf", "0", "-5", "1e999", "x"] {
        // A NaN once switched the size guard off and started a 2.5e15-gate build.
        let opt = format!("--max-gates={bad}");
        let line = refused(&["build", "--config", "d30", &opt, "--out", s(&out)]);
        assert!(line.contains("--max-gates"), "{line}");
    }
    for bad in ["0", "18446744073709551615", "-1", "99999999999"] {
        refused(&["build", "--gadget", "sum", "--n", bad, "--out", s(&out)]);
    }
    refused(&[
        "build",
        "--gadget",
        "sum",
        "--memory-budget",
        "NaN",
        "--out",
        s(&out),
    ]);
    // The estimate refuses what would not fit, before building.
    let line = refused(&[
        "build",
        "--gadget",
        "dot",
        "--n",
        "16777216",
        "--p",
        "32",
        "--q",
        "16",
        "--out",
        s(&out),
    ]);
    assert!(line.contains("GiB"), "{line}");
    // An unwritable --out is found before the build: d30 with the guard lifted would otherwise
    // build past the memory cap first.
    let line = refused(&[
        "build",
        "--config",
        "d30",
        "--max-gates",
        "1e30",
        "--out",
        s(&d.join("no/such/dir/c.tcc")),
    ]);
    assert!(line.contains("cannot write"), "{line}");
    assert!(refused(&["build", "--config", "micro", "--out", s(&d)]).contains("directory"));
    refused(&["build", "--gadget", "add", "--p", "1", "--out", s(&out)]);
    refused(&[
        "build",
        "--gadget",
        "add",
        "--q",
        "4294967296",
        "--out",
        s(&out),
    ]);
    refused(&["build", "--config", "nope", "--out", s(&out)]);
    assert!(!out.exists(), "no file is left behind by a refused build");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn gadgets_refuses_what_does_not_fit() {
    // Was an abort on a 6.6 GB allocation.
    let line = refused(&["gadgets", "--p", "32", "--q", "16", "--n", "4096"]);
    assert!(
        line.contains("GiB") && line.contains("--memory-budget"),
        "{line}"
    );
    for bad in [
        &["gadgets", "--n", "0"][..],
        &["gadgets", "--n", "1"],
        &["gadgets", "--n", "18446744073709551616"],
        &["gadgets", "--p", "33"],
        &["gadgets", "--q", "-1"],
        &["gadgets", "--memory-budget", "NaN"],
        &["gadgets", "--memory-budget", "0"],
        &["gadgets", "--memory-budget", "1e300"],
    ] {
        refused(bad);
    }
}

#[test]
fn stats_scale_export_formats_refuse_hostile_arguments() {
    let d = tmpdir("misc");
    let out = d.join("o");
    for bad in [
        &["stats", "--config", "nope"][..],
        &["stats", "--width", "0"],
        &["stats", "--width", "1000000000000"],
        &["stats", "--width", "NaN"],
        &["stats", "--scales", "0"],
        &["stats", "--scales", "1,99999999"],
        &["stats", "--blocks", "0"],
        &["stats", "--blocks", "99999999999"],
        &["stats", "--p", "99"],
        &["scale", "--ns", "0", "--out", s(&out)],
        &["scale", "--ns", "1,99999999", "--out", s(&out)],
        &["scale", "--ds", "", "--out", s(&out)],
        &["scale", "--ms", "x", "--out", s(&out)],
        &["scale", "--widths", "-3", "--out", s(&out)],
        &["scale", "--released-format", "11", "--out", s(&out)],
        &["scale", "--released-format", "99,6", "--out", s(&out)],
        &["scale", "--released-widths", "0", "--out", s(&out)],
        &["scale", "--p", "1", "--out", s(&out)],
        &["formats", "--bogus"],
        &["export", s(&d.join("missing.tcc")), "--verilog", s(&out)],
        &["nonsense"],
    ] {
        refused(bad);
    }
    let c = d.join("add.tcc");
    let ok = capped(&[
        "build",
        "--gadget",
        "add",
        "--p",
        "4",
        "--q",
        "3",
        "--out",
        s(&c),
    ]);
    assert!(ok.status.success());
    refused(&["export", s(&c), "--verilog", s(&out), "--module", "1bad"]);
    refused(&["export", s(&c), "--verilog", s(&out), "--module", "a-b"]);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn run_refuses_hostile_arguments() {
    for bad in [
        &["run", "--config", "nope"][..],
        &["run", "--batch", "0"],
        &["run", "--batch", "-1"],
        &["run", "--p", "99"],
        &["run", "--memory-budget", "NaN"],
        &["run", "--backend", "tpu"],
        &["run", "--scales", "0"],
        &["run", "--width", "0"],
    ] {
        refused(bad);
    }
}

/// Batches whose inputs and outputs cannot fit, an output directory that cannot be written,
/// and weight paths that are not weight files: refused up front, within the cap.
#[test]
fn run_refuses_huge_batches_unwritable_out_and_hostile_weights() {
    for batch in ["18446744073709551615", "10000000000", "100000000"] {
        let line = refused(&["run", "--backend", "cpu", "--batch", batch]);
        assert!(line.contains("bytes"), "--batch {batch}: {line}");
    }
    let d = tmpdir("run-out");
    let file = d.join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let under_file = file.join("out");
    refused(&[
        "run",
        "--backend",
        "cpu",
        "--batch",
        "1",
        "--out",
        s(&under_file),
    ]);
    refused(&["run", "--backend", "reference", "--weights", "/dev/zero"]);
    let garbage = d.join("garbage.pth");
    std::fs::write(&garbage, vec![0x50u8; 4096]).unwrap();
    refused(&["run", "--backend", "reference", "--weights", s(&garbage)]);
    let empty = d.join("empty.safetensors");
    std::fs::write(&empty, b"").unwrap();
    refused(&["run", "--backend", "reference", "--weights", s(&empty)]);
}
