//! `tcvar gadgets`: the gadget depth and size table (the paper's d_std, d_sum, d_prod, d_exp,
//! d_sqrt), refused up front when its largest gadget would not fit the memory budget.

use clap::Args;
use tcvar::gadgets::report::{estimate_bytes, gadget_report_within};

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
    #[arg(long, default_value_t = 16, value_parser = crate::args::operand_count)]
    pub n: usize,
    /// Refuse (or skip, when only the build finds out) gadgets that would take more than this
    /// many GiB.
    #[arg(long, default_value_t = 8.0, value_parser = crate::args::gibibytes)]
    pub memory_budget: f64,
    /// Print one JSON object on stdout (one row per gadget: gadget, n, depth, gates, terms,
    /// fan_in, forms, max_weight, maj_size; skipped gadgets with their reason).
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
    let budget = crate::args::budget_bytes(a.memory_budget);
    // The dot product reads 2n operands.
    let est = estimate_bytes(fmt, 2 * a.n);
    if est > budget {
        return Err(CliError::User(format!(
            "the gadgets in {fmt} at n = {} need about {:.2} GiB (at least), above \
             --memory-budget {:.2} GiB: lower --n, p or q, or raise the budget",
            a.n,
            est as f64 / crate::args::GIB,
            a.memory_budget
        )));
    }
    let pb = common::spinner(
        common::progress_allowed(a.quiet, a.json),
        &format!("building every gadget in {fmt}, n = {}", a.n),
    );
    let report =
        gadget_report_within(fmt, a.n, budget).map_err(|e| CliError::User(e.to_string()))?;
    pb.finish_and_clear();
    if a.json {
        println!("{}", report.to_json());
    } else {
        print!("{report}");
    }
    Ok(Outcome::Ok)
}
