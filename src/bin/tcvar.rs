//! The `tcvar` command line: build threshold circuits, evaluate them on CPU and GPU, report.
//!
//! A user error (bad option, unknown configuration, unreadable file, no GPU with
//! `--backend gpu`) prints one line and exits with status 2; a bit mismatch between an
//! evaluator and the reference exits with status 1.

#[path = "tcvar/args.rs"]
mod args;
#[path = "tcvar/common.rs"]
mod common;
#[cfg(feature = "mpi")]
#[path = "tcvar/distributed.rs"]
mod distributed;
#[path = "tcvar/files.rs"]
mod files;
#[path = "tcvar/gadgets.rs"]
mod gadgets;
#[path = "tcvar/outputs.rs"]
mod outputs;
#[path = "tcvar/run.rs"]
mod run;
#[path = "tcvar/scale.rs"]
mod scale;
#[path = "tcvar/shape.rs"]
mod shape;
#[path = "tcvar/stats.rs"]
mod stats;
#[path = "tcvar/weights_arg.rs"]
mod weights_arg;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// Compile VAR forward passes into constant-depth threshold circuits and evaluate them.
#[derive(Parser, Debug)]
#[command(name = "tcvar", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Build a circuit, evaluate a batch, cross-check against the reference, print a summary
    /// (what plain `tcvar` does).
    Run(run::RunArgs),
    /// List the supported float formats F(p, q) and probe for a GPU adapter.
    Formats(common::FormatsArgs),
    /// The gadget depth and size table (d_std, d_sum, d_prod, d_exp, d_sqrt).
    Gadgets(gadgets::GadgetsArgs),
    /// Depth and size sweeps over n, d and the number of scales, as CSV and SVG plots.
    Scale(scale::ScaleArgs),
    /// Exact gates, terms, fan-in and depth of a configuration's circuit (any preset, any
    /// format), counted from its uniform program without building it.
    Stats(stats::StatsArgs),
    /// Build a circuit and save it to a file.
    Build(files::BuildArgs),
    /// Evaluate a saved circuit on input vectors read from a file.
    Eval(files::EvalArgs),
    /// Export a saved circuit as structural Verilog with a testbench.
    Export(files::ExportArgs),
}

fn main() {
    let parsed = Cli::command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m).map(|c| (c, m)));
    let mut cli = match parsed {
        Ok((mut c, m)) => {
            // `--config` has a default; `run` needs to know whether it was given.
            if let (Some(Cmd::Run(a)), Some(sub)) = (&mut c.cmd, m.subcommand_matches("run")) {
                a.config_given =
                    sub.value_source("config") == Some(clap::parser::ValueSource::CommandLine);
            }
            c
        }
        Err(e) => {
            use clap::error::ErrorKind;
            match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = e.print();
                    std::process::exit(0);
                }
                _ => {
                    // clap's message spans several lines; keep its substance on one line.
                    let msg = e.to_string();
                    let line: Vec<&str> = msg
                        .lines()
                        .map(str::trim)
                        .take_while(|l| !l.starts_with("Usage:"))
                        .filter(|l| {
                            !l.is_empty() && !l.starts_with("tip:") && !l.starts_with("For more")
                        })
                        .collect();
                    let line = if line.is_empty() {
                        "error: invalid arguments".to_string()
                    } else {
                        line.join(" ")
                    };
                    eprintln!("{line} (see `tcvar --help`)");
                    std::process::exit(2);
                }
            }
        }
    };
    let result = match cli.cmd.take() {
        None => run::run(&run::RunArgs::default_args()),
        Some(Cmd::Run(a)) => run::run(&a),
        Some(Cmd::Formats(a)) => common::formats(&a),
        Some(Cmd::Gadgets(a)) => gadgets::gadgets(&a),
        Some(Cmd::Scale(a)) => scale::scale(&a),
        Some(Cmd::Stats(a)) => stats::stats(&a),
        Some(Cmd::Build(a)) => files::build(&a),
        Some(Cmd::Eval(a)) => files::eval(&a),
        Some(Cmd::Export(a)) => files::export(&a),
    };
    std::process::exit(common::conclude(&result));
}
