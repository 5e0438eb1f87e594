//! Distributed `tcvar run` under `mpirun -np 2` (cargo feature `mpi`; README "Distributed
//! evaluation (MPI)"): sharing the batch and sharing each application's instances give outputs
//! equal to the F(p, q) reference bit for bit on every rank's share, rank 0 prints one summary,
//! and bad input ends every rank with one line on stderr and status 2 instead of a hang.
//!
//! Run with `cargo test --features mpi --test mpi` on a machine with Open MPI's `mpirun`.
#![cfg(feature = "mpi")]

use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A run that has not finished in this long is taken for a deadlock.
const HANG: Duration = Duration::from_secs(300);

/// `mpirun -np <np> tcvar <args>` on this machine only: loopback shared memory, as root if
/// need be, more ranks than cores allowed.
fn mpirun(np: usize, args: &[&str], env: &[(&str, &str)]) -> Output {
    mpmd(&[(np, args)], env)
}

/// `mpirun -np n0 tcvar <args0> : -np n1 tcvar <args1> ...` (ranks in that order).
fn mpmd(apps: &[(usize, &[&str])], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new("mpirun");
    cmd.args([
        "-q",
        "--oversubscribe",
        "--mca",
        "pml",
        "ob1",
        "--mca",
        "btl",
        "self,vader",
    ])
    .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
    .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    for (i, (np, args)) in apps.iter().enumerate() {
        if i > 0 {
            cmd.arg(":");
        }
        cmd.args(["-np", &np.to_string()])
            .arg(env!("CARGO_BIN_EXE_tcvar"))
            .args(*args);
    }
    let what = format!("{:?}", cmd);
    let mut child = cmd
        .spawn()
        .expect("mpirun (Open MPI) is installed and runs");
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let o = std::thread::spawn(move || {
        let mut v = Vec::new();
        out.read_to_end(&mut v).map(|_| v)
    });
    let e = std::thread::spawn(move || {
        let mut v = Vec::new();
        err.read_to_end(&mut v).map(|_| v)
    });
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for mpirun") {
            break s;
        }
        if t.elapsed() > HANG {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish: deadlock?");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: o.join().unwrap().unwrap(),
        stderr: e.join().unwrap().unwrap(),
    }
}

/// The one JSON line rank 0 prints.
fn summary(out: &Output) -> serde_json::Value {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "status {:?}: {err}", out.status);
    let s = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one summary line from rank 0 only: {s}");
    serde_json::from_str(lines[0]).expect("a JSON object")
}

/// A micro-sized pass: the `micro` preset up to its token maps.
const MICRO: &[&str] = &["--config", "micro", "--until", "tokens"];

fn run_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["run", "--json", "--quiet"];
    v.extend_from_slice(MICRO);
    v.extend_from_slice(extra);
    v
}

/// Checks common to every distributed summary: two ranks, the batch checked in full across
/// the ranks, no mismatch, every rank evaluating.
fn check_summary(s: &serde_json::Value, batch: u64, split: &str) {
    assert_eq!(s["ranks"], 2, "{s}");
    assert_eq!(s["batch"], batch, "{s}");
    assert_eq!(s["mpi_split"], split, "{s}");
    assert_eq!(s["bit_exact"], true, "{s}");
    for e in s["evaluators"].as_array().expect("evaluators") {
        let ranks = e["per_rank"].as_array().expect("per_rank");
        assert_eq!(ranks.len(), 2, "{e}");
        let checked: u64 = ranks.iter().map(|r| r["checked"].as_u64().unwrap()).sum();
        assert_eq!(
            checked, batch,
            "the ranks' checks cover the batch once: {e}"
        );
        assert_eq!(e["mismatches"], 0, "{e}");
        for r in ranks {
            assert!(r["gate_evals"].as_u64().unwrap() > 0, "rank evaluates: {r}");
        }
    }
}

#[test]
fn batch_split_over_two_ranks_is_bit_exact_on_cpu() {
    let s = summary(&mpirun(
        2,
        &run_args(&["--backend", "cpu", "--batch", "5"]),
        &[],
    ));
    check_summary(&s, 5, "batch");
    // The shares are 3 and 2 instances, and each rank's gate evaluations are its share's.
    let r = s["evaluators"][0]["per_rank"].as_array().unwrap().clone();
    assert_eq!(
        (r[0]["checked"].as_u64(), r[1]["checked"].as_u64()),
        (Some(3), Some(2))
    );
    let (g0, g1) = (
        r[0]["gate_evals"].as_u64().unwrap(),
        r[1]["gate_evals"].as_u64().unwrap(),
    );
    assert_eq!(
        g0 * 2,
        g1 * 3,
        "gate evaluations proportional to the shares"
    );
    assert_eq!(s["gate_evals"].as_u64(), Some(g0 + g1));
}

#[test]
fn instance_split_over_two_ranks_is_bit_exact_on_cpu() {
    let s = summary(&mpirun(
        2,
        &run_args(&[
            "--backend",
            "cpu",
            "--batch",
            "3",
            "--mpi-split",
            "instances",
        ]),
        &[],
    ));
    check_summary(&s, 3, "instances");
    for r in s["evaluators"][0]["per_rank"].as_array().unwrap() {
        assert!(r["split_applications"].as_u64().unwrap() > 0, "{r}");
        assert!(r["words_received"].as_u64().unwrap() > 0, "{r}");
    }
}

#[test]
fn both_splits_on_the_gpu_when_an_adapter_exists() {
    let required = std::env::var_os("TCVAR_REQUIRE_GPU").is_some_and(|v| v != "0" && !v.is_empty());
    for split in ["batch", "instances"] {
        let out = mpirun(
            2,
            &run_args(&["--backend", "gpu", "--batch", "2", "--mpi-split", split]),
            &[],
        );
        if !out.status.success() && !required {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("adapter"),
                "only a missing GPU may fail: {err}"
            );
            eprintln!("skipped: no GPU adapter ({})", err.trim());
            return;
        }
        let s = summary(&out);
        check_summary(&s, 2, split);
        assert!(s["backend"].as_str().unwrap().starts_with("gpu"), "{s}");
    }
}

/// Status 2 and exactly one line on stderr (`mpirun -q` adds no notice of its own).
fn assert_user_error(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    let ours: Vec<&str> = err
        .lines()
        .filter(|l| !l.contains("XDG_RUNTIME_DIR"))
        .collect();
    assert_eq!(ours.len(), 1, "one line from rank 0 only: {err}");
    assert!(
        ours[0].contains(needle),
        "{:?} should mention {needle:?}",
        ours[0]
    );
    assert!(String::from_utf8_lossy(&out.stdout).trim().is_empty());
}

#[test]
fn bad_input_ends_every_rank_with_one_line() {
    let out = mpirun(2, &run_args(&["--backend", "cpu", "--batch", "1"]), &[]);
    assert_user_error(&out, "smaller than the 2 MPI ranks");
    let out = mpirun(
        2,
        &run_args(&[
            "--backend",
            "cpu",
            "--batch",
            "4",
            "--memory-budget",
            "0.0000001",
        ]),
        &[],
    );
    assert_user_error(&out, "memory-budget");
    let out = mpirun(2, &["run", "--config", "nonesuch", "--json"], &[]);
    assert_user_error(&out, "unknown configuration");
}

/// The bytes of tensor values a run needs, from the refusal of a budget too small for them
/// (smaller budgets are refused earlier, for the batch's inputs: raise past those first).
fn needed_bytes(args: &[&str]) -> u64 {
    let mut budget = "0.0000001".to_string();
    for _ in 0..4 {
        let mut a = args.to_vec();
        a.extend_from_slice(&["--memory-budget", &budget]);
        let out = mpirun(1, &a, &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        let at = err
            .find(" needs ")
            .expect("the refusal names the bytes needed")
            + 7;
        let need: u64 = err[at..]
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("a byte count in {err}"));
        if err.contains("tensor values") {
            return need;
        }
        budget = format!("{:.15}", (need + 1) as f64 / (1u64 << 30) as f64);
    }
    panic!("no refusal for tensor values")
}

#[test]
fn a_failure_on_one_rank_is_reported_once_by_rank_0() {
    // Rank 1 cannot read its weights: the ranks agree on the failure after preparing.
    let ok = run_args(&["--backend", "cpu", "--batch", "4"]);
    let mut bad = ok.clone();
    bad.extend_from_slice(&["--weights", "/nonexistent/tcvar-mpi-test.safetensors"]);
    let out = mpmd(&[(1, &ok), (1, &bad)], &[]);
    assert_user_error(&out, "rank 1: --weights");

    // Rank 1's budget holds the tensor store but not one template instance more, so its
    // evaluator refuses the run before the first application, while rank 0 is already waiting
    // to exchange that application's outputs: the agreement there ends both.
    let ok = run_args(&[
        "--backend",
        "cpu",
        "--batch",
        "3",
        "--mpi-split",
        "instances",
    ]);
    let need = needed_bytes(&ok);
    let gib = format!("{:.15}", (need + 1) as f64 / (1u64 << 30) as f64);
    let mut bad = ok.clone();
    bad.extend_from_slice(&["--memory-budget", &gib]);
    let out = mpmd(&[(1, &ok), (1, &bad)], &[]);
    assert_user_error(&out, "rank 1: cpu: limit exceeded");
}

/// `--out` under mpirun: rank 0 gathers the whole batch's outputs and writes the same token
/// maps and images as a run without MPI, for both splits (the batch split with unequal shares).
#[test]
fn out_files_under_mpi_equal_a_single_process_run() {
    let dir = std::env::temp_dir().join(format!("tcvar-mpi-out-{}", std::process::id()));
    let args = |d: &std::path::Path, extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "run",
            "--json",
            "--quiet",
            "--config",
            "micro",
            "--backend",
            "cpu",
            "--batch",
            "3",
            "--out",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.push(d.display().to_string());
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let single = dir.join("single");
    let out = Command::new(env!("CARGO_BIN_EXE_tcvar"))
        .args(args(&single, &[]))
        .output()
        .expect("run tcvar");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |d: &std::path::Path, f: &str| {
        std::fs::read(d.join(f)).unwrap_or_else(|e| panic!("{}/{f}: {e}", d.display()))
    };
    for split in ["batch", "instances"] {
        let d = dir.join(split);
        let a = args(&d, &["--mpi-split", split]);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        check_summary(&summary(&mpirun(2, &a, &[])), 3, split);
        for f in ["tokens.json", "images.npy"] {
            assert!(
                read(&d, f) == read(&single, f),
                "{split} split: {f} differs from the single-process run"
            );
        }
        assert!(d.join("images.png").is_file() && d.join("summary.json").is_file());
    }
    let _ = std::fs::remove_dir_all(&dir);
}
