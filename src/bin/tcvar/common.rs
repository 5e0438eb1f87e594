//! Shared pieces of the command line: errors, backends, progress, format listing.

use std::io::IsTerminal;
use std::time::Instant;

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use tcvar::eval::cpu::CpuEvaluator;
use tcvar::eval::gpu::{probe_adapter, GpuEvaluator, GpuOptions};
use tcvar::eval::{Batch, EvalError, Evaluator};
use tcvar::float::Format;

/// How a command ended without an error.
pub enum Outcome {
    /// Everything matched.
    Ok,
    /// An evaluator disagreed with the reference (exit status 1).
    Mismatch,
}

/// A command-line failure.
pub enum CliError {
    /// The user's fault: one line, exit status 2.
    User(String),
    /// Something failed while running (exit status 1).
    Failure(String),
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::Failure(format!("I/O: {e}"))
    }
}

/// Which evaluator(s) to use.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum Backend {
    /// The GPU when an adapter exists, else the CPU (with a notice).
    #[default]
    Auto,
    /// The CPU evaluator.
    Cpu,
    /// The GPU evaluator (an error when no adapter exists).
    Gpu,
    /// Both, cross-checked against each other and the reference.
    Both,
}

/// `tcvar formats` options.
#[derive(Args, Debug)]
pub struct FormatsArgs {
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Whether progress bars may be drawn.
/// Prints a command's error, if any, as one line on stderr and gives the process's exit
/// status: 0 when every check held, 1 for a mismatch or a failure, 2 for a user error.
pub fn conclude(result: &Result<Outcome, CliError>) -> i32 {
    match result {
        Ok(Outcome::Ok) => 0,
        Ok(Outcome::Mismatch) => 1,
        Err(CliError::User(msg)) => {
            eprintln!("error: {msg}");
            2
        }
        Err(CliError::Failure(msg)) => {
            eprintln!("failure: {msg}");
            1
        }
    }
}

pub fn progress_allowed(quiet: bool, json: bool) -> bool {
    !quiet && !json && std::io::stderr().is_terminal()
}

/// A spinner with a message, or a hidden bar.
pub fn spinner(show: bool, msg: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new_spinner();
    pb.set_style(ProgressStyle::with_template("{spinner} {msg} [{elapsed}]").expect("template"));
    pb.set_message(msg.to_string());
    pb.enable_steady_tick(std::time::Duration::from_millis(120));
    pb
}

/// Parse a format, as a user error when invalid.
pub fn format(p: u32, q: u32) -> Result<Format, CliError> {
    Format::new(p, q).map_err(|e| CliError::User(e.to_string()))
}

/// The evaluators chosen for `backend` from a CPU and a GPU constructor, with the line
/// explaining the choice (`name` gives an evaluator's report name, "gpu: <adapter>"). `auto`
/// falls back to the CPU, with the reason, when no GPU evaluator can be made.
pub fn choose<E>(
    backend: Backend,
    cpu: impl Fn() -> Result<E, CliError>,
    gpu: impl Fn() -> Result<E, EvalError>,
    name: impl Fn(&E) -> String,
) -> Result<(Vec<E>, String), CliError> {
    match backend {
        Backend::Cpu => Ok((vec![cpu()?], "CPU evaluator (--backend cpu)".into())),
        Backend::Gpu => match gpu() {
            Ok(g) => {
                let n = name(&g);
                Ok((vec![g], format!("{n} (--backend gpu)")))
            }
            Err(e) => Err(CliError::User(format!("--backend gpu: {e}"))),
        },
        Backend::Both => match gpu() {
            Ok(g) => {
                let n = name(&g);
                Ok((vec![cpu()?, g], format!("CPU and GPU evaluators ({n})")))
            }
            Err(e) => Err(CliError::User(format!("--backend both: {e}"))),
        },
        Backend::Auto => match gpu() {
            Ok(g) => {
                let n = name(&g);
                Ok((vec![g], format!("{n} (an adapter was found)")))
            }
            Err(e) => Ok((
                vec![cpu()?],
                format!("CPU evaluator: no usable GPU adapter ({e})"),
            )),
        },
    }
}

/// The circuit evaluators chosen for `backend`, with the line explaining the choice.
pub fn evaluators(
    backend: Backend,
    lv: &tcvar::circuit::Levelized,
) -> Result<(Vec<Box<dyn Evaluator>>, String), CliError> {
    choose(
        backend,
        || -> Result<Box<dyn Evaluator>, CliError> {
            Ok(Box::new(
                CpuEvaluator::new(lv).map_err(|e| CliError::Failure(e.to_string()))?,
            ))
        },
        || -> Result<Box<dyn Evaluator>, EvalError> {
            Ok(Box::new(GpuEvaluator::new(lv, &GpuOptions::default())?))
        },
        |e| e.name(),
    )
}

/// Evaluate `inputs` with `ev`, timing it.
pub fn timed_eval(ev: &mut dyn Evaluator, inputs: &Batch) -> Result<(Batch, f64), CliError> {
    let t = Instant::now();
    let out = ev
        .evaluate(inputs)
        .map_err(|e| CliError::Failure(format!("{}: {e}", ev.name())))?;
    Ok((out, t.elapsed().as_secs_f64()))
}

/// `tcvar formats`.
pub fn formats(a: &FormatsArgs) -> Result<Outcome, CliError> {
    let named = [
        (
            24,
            9,
            "covers every f32 normal; add/sub/mul/div/sqrt equal IEEE f32 in the normal range",
        ),
        (11, 6, "covers every f16 normal"),
        (8, 9, "covers every bfloat16 normal"),
        (8, 5, "the gadget report's main format"),
        (4, 4, "small enough for exhaustive tests"),
        (
            5,
            6,
            "Chiang's format for p = 5 (q = p + 1, exponents in [-2^p, 2^p))",
        ),
    ];
    let adapter = probe_adapter();
    if a.json {
        let rows: Vec<serde_json::Value> = named
            .iter()
            .map(|&(p, q, what)| {
                let f = Format::new(p, q).expect("named formats are valid");
                serde_json::json!({"p": p, "q": q, "width": f.width(), "e_min": f.e_min(),
                    "e_max": f.e_max(), "note": what})
            })
            .collect();
        let gpu = match &adapter {
            Ok(s) => serde_json::json!({"found": true, "adapter": s.to_string()}),
            Err(e) => serde_json::json!({"found": false, "reason": e.to_string()}),
        };
        let v = serde_json::json!({"p_range": [2, 32], "q_range": [2, 16], "formats": rows, "gpu": gpu});
        println!("{v}");
    } else {
        println!(
            "Float formats F(p, q): p in [2, 32] significand bits, q in [2, 16] exponent bits"
        );
        println!("value = (-1)^s * m * 2^e, m in [2^(p-1), 2^p), e in [-2^(q-1), 2^(q-1) - 1]; one zero;");
        println!(
            "encoded in p + q + 1 bits (significand with its leading one, biased exponent, sign)."
        );
        println!(
            "{:>10} {:>6} {:>8} {:>8}  note",
            "format", "width", "e_min", "e_max"
        );
        for &(p, q, what) in &named {
            let f = Format::new(p, q).expect("named formats are valid");
            println!(
                "{:>10} {:>6} {:>8} {:>8}  {what}",
                f.to_string(),
                f.width(),
                f.e_min(),
                f.e_max()
            );
        }
        match &adapter {
            Ok(s) => println!("GPU adapter: {s}"),
            Err(e) => println!("GPU adapter: none ({e})"),
        }
    }
    Ok(Outcome::Ok)
}
