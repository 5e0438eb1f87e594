//! Running the `tcvar` binary and checking what it prints: its JSON summary, temporary
//! directories for its files, and user errors (status 2, one line on stderr).

use std::path::PathBuf;
use std::process::{Command, Output};

/// Runs the `tcvar` binary built for these tests with `args` and returns its status and output.
pub fn tcvar(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tcvar"))
        .args(args)
        .output()
        .expect("the tcvar binary runs")
}

/// Asserts that the run ended with success, showing its stderr otherwise.
pub fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The JSON object of a successful `--json` run: asserts that the run succeeded and printed
/// exactly one non-blank line on stdout, and parses that line.
pub fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "status {:?}, stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let s = String::from_utf8(out.stdout.clone()).expect("utf-8 stdout");
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "--json prints exactly one line: {s}");
    serde_json::from_str(lines[0]).expect("one JSON object")
}

/// A fresh, empty directory `<system temp>/<prefix>-<process id>-<name>` (one left over from an
/// earlier run is removed first).
pub fn tmpdir(prefix: &str, name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("{prefix}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Stderr words that no user error may contain: a panic.
pub const PANIC: &[&str] = &["panicked"];

/// Stderr words that no user error may contain: a panic or a backtrace.
pub const PANIC_OR_BACKTRACE: &[&str] = &["panicked", "backtrace"];

/// The one line of a user error: asserts exit status 2, exactly one line on stderr (the Vulkan
/// loader's `XDG_RUNTIME_DIR` notice aside) and none of `forbidden` anywhere on stderr, and
/// returns that line. `context` starts every failure message (empty, or such as `"[args]: "`).
pub fn user_error_line(out: &Output, forbidden: &[&str], context: &str) -> String {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{context}stderr: {err}");
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| !l.contains("XDG_RUNTIME_DIR"))
        .collect();
    assert_eq!(lines.len(), 1, "{context}one line expected, got: {err}");
    for word in forbidden {
        assert!(!err.contains(word), "{context}{err}");
    }
    lines[0].to_string()
}

/// Asserts that `line` mentions `needle`, ignoring case.
pub fn assert_mentions(line: &str, needle: &str) {
    assert!(
        line.to_lowercase().contains(&needle.to_lowercase()),
        "{line:?} should mention {needle:?}"
    );
}
