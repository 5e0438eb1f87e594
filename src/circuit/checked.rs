//! One check of every invariant of a [`Levelized`] circuit ([`Levelized::check`]), done once
//! before an evaluator compiles it, and the [`CheckedLevelized`] view that proves it was done.
//!
//! The evaluators index the arrays without further checks, so everything they rely on is
//! verified here: offsets, level ranges, rows read only after they are written, weight
//! encodings and bounds, word terms (docs/architecture.md, "Untrusted input").

use std::ops::{Deref, Range};

use super::error::CircuitError;
use super::ids::{Row, RowLit};
use super::levelize::{FormWeights, Level, Levelized, WordRun};

/// Largest sum of |weights| of one form: the builder's bound, which keeps every sum in `i64`.
pub const MAX_FORM_ABS_SUM: u128 = 1 << 62;

/// Most rows: row literals carry a complement bit in a `u32`.
pub const MAX_ROWS: u64 = 1 << 31;

/// A [`Levelized`] circuit whose invariants hold: made only by [`Levelized::check`].
///
/// It dereferences to the arrays and adds infallible accessors for what the evaluators read
/// per gate and per form.
#[derive(Copy, Clone, Debug)]
pub struct CheckedLevelized<'a> {
    lv: &'a Levelized,
}

impl Deref for CheckedLevelized<'_> {
    type Target = Levelized;
    fn deref(&self) -> &Levelized {
        self.lv
    }
}

fn range(off: &[u32], i: u32) -> Range<usize> {
    off[i as usize] as usize..off[i as usize + 1] as usize
}

impl<'a> CheckedLevelized<'a> {
    /// The circuit.
    pub fn levelized(&self) -> &'a Levelized {
        self.lv
    }

    /// The literals of AND/OR gate `g`.
    pub fn gate_lits_of(&self, g: u32) -> &'a [RowLit] {
        &self.lv.gate_lits[range(&self.lv.gate_offsets, g)]
    }

    /// The terms of form `f`: their indices into `form_rows`.
    pub fn form_terms(&self, f: u32) -> Range<usize> {
        range(&self.lv.form_offsets, f)
    }

    /// The rows read by form `f`'s terms.
    pub fn form_rows_of(&self, f: u32) -> &'a [Row] {
        &self.lv.form_rows[self.form_terms(f)]
    }

    /// The weights of form `f`, decoded.
    pub fn weights(&self, f: u32) -> FormWeights<'a> {
        self.lv
            .form_weights(f)
            .expect("weight encoding checked by Levelized::check")
    }

    /// The indices into `thresholds` of form `f`'s bank.
    pub fn bank(&self, f: u32) -> Range<usize> {
        range(&self.lv.bank_offsets, f)
    }

    /// Allocate wire slots: constant and inputs keep slots `0..=num_inputs` for good; each gate
    /// row gets a free slot; a gate row's slot returns to the pool once the last level that reads
    /// it has run (output rows are never freed). Returns the slot of every row and the
    /// number of slots.
    ///
    /// Correctness: a level reads only rows whose last reader is that level or later, and writes
    /// only slots freed by rows whose last reader is an earlier level, so no read sees a value
    /// overwritten in the same or an earlier level.
    pub fn allocate_slots(&self) -> (Vec<u32>, u32) {
        let lv = self;
        let n = lv.num_rows as usize;
        let depth = lv.levels.len();
        // last[row]: 1-based index of the last level reading it; usize::MAX: keep forever.
        let mut last = vec![0usize; n];
        // The constant and the inputs are never freed, so that the levels can be run again on
        // inputs uploaded once (the split upload / run / download API).
        for l in last.iter_mut().take((1 + lv.num_inputs as usize).min(n)) {
            *l = usize::MAX;
        }
        for &o in &lv.outputs {
            last[o.row().index()] = usize::MAX;
        }
        for (i, l) in lv.levels.iter().enumerate() {
            let li = i + 1;
            for j in lv.gate_offsets[l.and_start as usize]..lv.gate_offsets[l.or_end as usize] {
                let r = lv.gate_lits[j as usize].row().index();
                if last[r] != usize::MAX {
                    last[r] = last[r].max(li);
                }
            }
            for j in lv.form_offsets[l.form_start as usize]..lv.form_offsets[l.form_end as usize] {
                let r = lv.form_rows[j as usize].index();
                if last[r] != usize::MAX {
                    last[r] = last[r].max(li);
                }
            }
        }
        // A gate row nobody reads (possible in a hand-made circuit) is freed after its own
        // level.
        for (i, l) in lv.levels.iter().enumerate() {
            for r in l.row_start..l.row_start + l.num_rows() {
                if last[r as usize] == 0 {
                    last[r as usize] = i + 1;
                }
            }
        }
        // free_after[L]: rows whose last reader is level L.
        let mut free_after: Vec<Vec<u32>> = vec![Vec::new(); depth + 1];
        for (r, &l) in last.iter().enumerate() {
            if l != usize::MAX {
                free_after[l].push(r as u32);
            }
        }
        let mut slot = vec![u32::MAX; n];
        let first_gate_row = (1 + lv.num_inputs as usize).min(n);
        for (r, s) in slot.iter_mut().enumerate().take(first_gate_row) {
            *s = r as u32;
        }
        let mut next = first_gate_row as u32;
        let mut pool: Vec<u32> = Vec::new();
        for (i, l) in lv.levels.iter().enumerate() {
            for &r in &free_after[i] {
                pool.push(slot[r as usize]);
            }
            for r in l.row_start..l.row_start + l.num_rows() {
                slot[r as usize] = pool.pop().unwrap_or_else(|| {
                    next += 1;
                    next - 1
                });
            }
        }
        (slot, next)
    }

    /// The word terms of form `f` (empty when the circuit carries none).
    pub fn word_runs_of(&self, f: u32) -> &'a [WordRun] {
        if self.lv.form_run_offsets.is_empty() {
            &[]
        } else {
            &self.lv.word_runs[range(&self.lv.form_run_offsets, f)]
        }
    }
}

fn malformed(what: impl Into<String>) -> CircuitError {
    CircuitError::Malformed(what.into())
}

/// `off` starts at 0, ascends and ends at `len`.
fn check_offsets(name: &str, off: &[u32], len: usize) -> Result<(), CircuitError> {
    if off.first() != Some(&0) || off.last().map(|&o| o as usize) != Some(len) {
        return Err(malformed(format!(
            "{name} must start at 0 and end at {len}"
        )));
    }
    if off.windows(2).any(|w| w[0] > w[1]) {
        return Err(malformed(format!("{name} is not ascending")));
    }
    Ok(())
}

impl Levelized {
    /// Check every invariant of the type (see [`Levelized`]) and return the checked view.
    ///
    /// Errors ([`CircuitError::Malformed`], naming the first broken invariant): offset arrays
    /// that do not start at 0, ascend and end at their array's length, or that disagree in
    /// length; fewer rows than inputs or more than 2^31; levels whose ranges do not tile the
    /// rows, gates and forms in order; a gate, form term or output reading a row not written
    /// before it; weight bytes that break the encoding; a form whose sum of |weights| exceeds
    /// 2^62; thresholds not ascending within a bank; word terms that break [`WordRun`]'s
    /// invariant; named words whose widths do not add up to the inputs or outputs.
    pub fn check(&self) -> Result<CheckedLevelized<'_>, CircuitError> {
        self.check_arrays()?;
        let mut row = 1 + self.num_inputs as u64;
        let (mut g, mut f) = (0u32, 0u32);
        for (i, l) in self.levels.iter().enumerate() {
            self.check_level(i, l, row, g, f)?;
            row += l.num_rows() as u64;
            g = l.or_end;
            f = l.form_end;
        }
        if row != self.num_rows as u64
            || g as usize + 1 != self.gate_offsets.len()
            || f as usize + 1 != self.form_offsets.len()
        {
            return Err(malformed("levels do not cover all rows, gates and forms"));
        }
        if self.outputs.iter().any(|o| o.row().0 >= self.num_rows) {
            return Err(malformed("an output reads a row out of range"));
        }
        self.check_forms()?;
        self.check_words()?;
        Ok(CheckedLevelized { lv: self })
    }

    /// The offset arrays against their arrays and each other, and the row count.
    fn check_arrays(&self) -> Result<(), CircuitError> {
        check_offsets("gate_offsets", &self.gate_offsets, self.gate_lits.len())?;
        check_offsets("form_offsets", &self.form_offsets, self.form_rows.len())?;
        check_offsets("bank_offsets", &self.bank_offsets, self.thresholds.len())?;
        check_offsets(
            "form_weight_offsets",
            &self.form_weight_offsets,
            self.form_weight_bytes.len(),
        )?;
        let forms = self.form_offsets.len();
        if self.form_weight_offsets.len() != forms || self.bank_offsets.len() != forms {
            return Err(malformed(
                "form_weight_offsets, bank_offsets and form_offsets differ in length",
            ));
        }
        if !self.form_run_offsets.is_empty() {
            check_offsets(
                "form_run_offsets",
                &self.form_run_offsets,
                self.word_runs.len(),
            )?;
            if self.form_run_offsets.len() != forms {
                return Err(malformed(
                    "form_run_offsets and form_offsets differ in length",
                ));
            }
        }
        if (self.num_rows as u64) < 1 + self.num_inputs as u64 {
            return Err(malformed("fewer rows than inputs"));
        }
        if self.num_rows as u64 > MAX_ROWS {
            return Err(malformed(format!("more than {MAX_ROWS} rows")));
        }
        Ok(())
    }

    /// Level `i` (0-based) starts at row `row`, gate `g` and form `f`, its ranges are ordered
    /// and in bounds, and it reads only rows written before it.
    fn check_level(
        &self,
        i: usize,
        l: &Level,
        row: u64,
        g: u32,
        f: u32,
    ) -> Result<(), CircuitError> {
        let ng = self.gate_offsets.len() - 1;
        let nf = self.form_offsets.len() - 1;
        if l.row_start as u64 != row
            || l.and_start != g
            || l.and_start > l.or_start
            || l.or_start > l.or_end
            || l.or_end as usize > ng
            || l.form_start != f
            || l.form_start > l.form_end
            || l.form_end as usize > nf
            || l.threshold_start != self.bank_offsets[l.form_start as usize]
            || l.threshold_end != self.bank_offsets[l.form_end as usize]
        {
            return Err(malformed(format!(
                "level {} has inconsistent ranges",
                i + 1
            )));
        }
        let lits = self.gate_offsets[l.and_start as usize] as usize
            ..self.gate_offsets[l.or_end as usize] as usize;
        let terms = self.form_offsets[l.form_start as usize] as usize
            ..self.form_offsets[l.form_end as usize] as usize;
        if self.gate_lits[lits]
            .iter()
            .any(|x| x.row().0 >= l.row_start)
            || self.form_rows[terms].iter().any(|r| r.0 >= l.row_start)
        {
            return Err(malformed(format!(
                "level {} reads a row that is not written by an earlier level",
                i + 1
            )));
        }
        Ok(())
    }

    /// Every form's weight encoding, weight bound, bank order and word terms.
    fn check_forms(&self) -> Result<(), CircuitError> {
        let mut ws: Vec<i64> = Vec::new();
        for f in 0..self.num_forms() {
            ws.clear();
            ws.extend(
                self.form_weights(f).ok_or_else(|| {
                    malformed(format!("form {f}: weight bytes break the encoding"))
                })?,
            );
            let abs_sum: u128 = ws.iter().map(|w| w.unsigned_abs() as u128).sum();
            if abs_sum > MAX_FORM_ABS_SUM {
                return Err(malformed(format!(
                    "form {f}: sum of |weights| {abs_sum} exceeds 2^62"
                )));
            }
            let bank = &self.thresholds[range(&self.bank_offsets, f)];
            if bank.windows(2).any(|t| t[0] > t[1]) {
                return Err(malformed(format!("form {f}: thresholds not ascending")));
            }
            self.checked_word_runs(f, &ws).map_err(malformed)?;
        }
        Ok(())
    }

    /// Named input and output words cover the inputs and outputs.
    fn check_words(&self) -> Result<(), CircuitError> {
        for (kind, words, n) in [
            ("input", &self.input_words, self.num_inputs as u64),
            ("output", &self.output_words, self.outputs.len() as u64),
        ] {
            let bits: u64 = words.iter().map(|w| w.1 as u64).sum();
            if !words.is_empty() && bits != n {
                return Err(malformed(format!(
                    "{kind} words name {bits} bits, the circuit has {n}"
                )));
            }
        }
        Ok(())
    }
}
