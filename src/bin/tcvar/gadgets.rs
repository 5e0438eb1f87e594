//! `tcvar gadgets`: the gadget depth and size table (issue: the paper's d_std, d_sum, ...).

use clap::Args;
use tcvar::gadgets::report::gadget_report;

use crate::common::{self, CliError, Outcome};

/// `tcvar gadgets` options.
#[derive(Args, Debug, Clone)]
pub struct GadgetsArgs {
    /// Significand bits p.
    #[arg(long, default_value_t = 8)]
    pub p: u32,
    /// Exponent bits q.
    #[arg(long, default_value_t = 5)]
    pub q: u32,
    /// Operand count of the n-ary gadgets (iterated sum, product, max, dot).
    #[arg(long, default_value_t = 16)]
    pub n: usize,
    /// Print one JSON object on stdout (one row per gadget: gadget, n, depth, gates, terms,
    /// wires, forms, max_weight, maj_size; skipped gadgets with their reason).
    #[arg(long)]
    pub json: bool,
    /// No progress display.
    #[arg(long)]
    pub quiet: bool,
}

/// `tcvar gadgets`.
pub fn gadgets(a: &GadgetsArgs) -> Result<Outcome, CliError> {
    let fmt = common::format(a.p, a.q)?;
    if a.n < 2 {
        return Err(CliError::User("--n must be at least 2".into()));
    }
    let pb = common::spinner(
        common::progress_allowed(a.quiet, a.json),
        &format!("building every gadget in {fmt}, n = {}", a.n),
    );
    let report = gadget_report(fmt, a.n).map_err(|e| CliError::User(e.to_string()))?;
    pb.finish_and_clear();
    if a.json {
        println!("{}", report.to_json());
    } else {
        print!("{report}");
    }
    Ok(Outcome::Ok)
}
