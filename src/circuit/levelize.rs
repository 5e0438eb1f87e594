//! Levelization: the circuit as per-level arrays grouped by gate kind, ready for an evaluator.

use super::ids::{FormId, Row, RowLit, Wire};
use super::netlist::{Circuit, Node};

/// The gates of one level, as index ranges into the arrays of [`Levelized`].
///
/// The level writes the rows `row_start .. row_start + num_rows()`: first one row per AND gate
/// (`and_start..or_start`), then one per OR gate (`or_start..or_end`), then one per threshold of
/// each form's bank (forms `form_start..form_end`, thresholds in bank order).
#[derive(Copy, Clone, PartialEq, Eq, Debug, Default)]
pub struct Level {
    /// First row written by this level.
    pub row_start: u32,
    /// First AND gate (index into `gate_offsets`).
    pub and_start: u32,
    /// First OR gate; AND gates are `and_start..or_start`.
    pub or_start: u32,
    /// End of the OR gates.
    pub or_end: u32,
    /// First form of this level (index into `form_offsets`).
    pub form_start: u32,
    /// End of this level's forms.
    pub form_end: u32,
    /// First threshold of this level (`bank_offsets[form_start]`).
    pub threshold_start: u32,
    /// End of this level's thresholds (`bank_offsets[form_end]`).
    pub threshold_end: u32,
}

impl Level {
    /// Number of AND and OR gates.
    pub fn num_logic(&self) -> u32 {
        self.or_end - self.and_start
    }

    /// Number of rows this level writes.
    pub fn num_rows(&self) -> u32 {
        self.num_logic() + (self.threshold_end - self.threshold_start)
    }

    /// Row of the first threshold output.
    pub fn threshold_row_start(&self) -> u32 {
        self.row_start + self.num_logic()
    }
}

/// A circuit levelized for evaluation: plain `u32`/`i64` arrays an evaluator uploads as they are.
///
/// Values live in *rows*: row 0 is constant false, rows `1..=num_inputs` are the inputs in input
/// order, and the gates of level `L` write a contiguous block of rows after those of level `L-1`.
/// A *literal* is a [`RowLit`], `row << 1 | complement`, over [`Row`]s.
///
/// Gate kinds:
/// - AND gate `g`: `AND` of the literals `gate_lits[gate_offsets[g]..gate_offsets[g+1]]`;
/// - OR gate `g`: `OR` of its literals (same arrays);
/// - form `f`: the weighted sum `S = sum_k w_k * value(form_rows[form_offsets[f] + k])` over its
///   `n_f = form_offsets[f+1] - form_offsets[f]` terms, compared against each threshold
///   `thresholds[bank_offsets[f]..bank_offsets[f+1]]` (sorted ascending): output `[S >= t]`.
///
/// Compact weights (at most 8 bytes per wire). The weights are not stored as one `i64`
/// per term but in the byte pool `form_weight_bytes`, each form at its own width: form `f`'s
/// weights are the bytes `form_weight_offsets[f]..form_weight_offsets[f+1]`, i.e. `n_f` weights of
/// `width_f = (form_weight_offsets[f+1] - form_weight_offsets[f]) / n_f` bytes each, little-endian
/// two's complement, where `width_f` in `1..=8` is the fewest bytes that hold every weight of the
/// form (1 for unit or small weights, 3 for weights up to 2^20, 8 only for forms that need 64
/// bits). The width is implied by the offsets, so there is no per-form flag; a form with no terms
/// has no bytes. Read them with [`Levelized::form_weights`], which checks this invariant and
/// sign-extends; nothing is lost: every `i64` weight round-trips exactly.
///
/// Invariants: every literal and form row of a level refers to a row written by an earlier level
/// (or an input or the constant); only gates in the cone of an output are kept; a form's terms
/// satisfy the builder's bounds (sum of |weights| <= 2^62), so `S` fits in `i64`; the weight
/// bytes of all forms total less than 2^32 (byte offsets are `u32`).
///
/// The fields are public plain data (the GPU uploads them as they are), so a value built or
/// edited by hand may break these invariants: [`Levelized::check`] verifies all of them once and
/// returns a [`CheckedLevelized`], which is what the evaluators compile from.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Levelized {
    /// Number of primary inputs.
    pub num_inputs: u32,
    /// Number of rows (1 + inputs + gates).
    pub num_rows: u32,
    /// The levels, level 1 first.
    pub levels: Vec<Level>,
    /// AND/OR gate `g` has literals `gate_offsets[g]..gate_offsets[g+1]`.
    pub gate_offsets: Vec<u32>,
    /// AND/OR gate literals.
    pub gate_lits: Vec<RowLit>,
    /// Form `f` has terms `form_offsets[f]..form_offsets[f+1]`.
    pub form_offsets: Vec<u32>,
    /// Row read by each form term.
    pub form_rows: Vec<Row>,
    /// Form `f`'s weights are the bytes `form_weight_offsets[f]..form_weight_offsets[f+1]` of
    /// `form_weight_bytes` (see the type's documentation for the encoding).
    pub form_weight_offsets: Vec<u32>,
    /// Form term weights, little-endian two's complement, at each form's own width (1..=8 bytes).
    pub form_weight_bytes: Vec<u8>,
    /// Form `f`'s thresholds are `bank_offsets[f]..bank_offsets[f+1]`.
    pub bank_offsets: Vec<u32>,
    /// Thresholds, ascending within each bank.
    pub thresholds: Vec<i64>,
    /// Output literals over rows, in output-word order.
    pub outputs: Vec<RowLit>,
    /// Names and widths of the input words, in order.
    pub input_words: Vec<(String, u32)>,
    /// Names and widths of the output words, in order.
    pub output_words: Vec<(String, u32)>,
    /// Form `f`'s word terms are `word_runs[form_run_offsets[f]..form_run_offsets[f+1]]`
    /// (empty, or one entry per form plus one; see [`WordRun`]).
    pub form_run_offsets: Vec<u32>,
    /// Word terms of all forms, in form order and, within a form, in term order.
    pub word_runs: Vec<WordRun>,
}

/// A *word term*: terms `start .. start + len` of `form_rows` (all of one form) whose weights
/// are `c, 2c, 4c, ..., 2^(len-1) c`, i.e. `c` times the integer whose bit `j` is the value of
/// row `form_rows[start + j]`. An evaluator may add that integer (shifted by the set bits of
/// `|c|`) in one operation instead of `len` terms; the scalar arrays keep every term, so an
/// evaluator that ignores the runs is still exact.
///
/// Invariant (checked by [`Levelized::checked_word_runs`]): `len >= MIN_WORD_BITS`, the run is
/// inside its form, runs of a form are ascending and disjoint, and the weights double.
#[derive(Copy, Clone, PartialEq, Eq, Debug, Default)]
pub struct WordRun {
    /// First term (index into `form_rows`).
    pub start: u32,
    /// Number of bits (terms).
    pub len: u32,
}

/// Shortest run of doubling weights stored as a word term.
pub const MIN_WORD_BITS: u32 = 3;

impl Levelized {
    /// Depth: the number of levels.
    pub fn depth(&self) -> u32 {
        self.levels.len() as u32
    }

    /// Number of gates (AND, OR and bank thresholds).
    pub fn num_gates(&self) -> u64 {
        (self.num_rows - 1 - self.num_inputs) as u64
    }

    /// Number of output bits.
    pub fn num_outputs(&self) -> u32 {
        self.outputs.len() as u32
    }

    /// Fan-in summed over all AND/OR gates and form terms (each form term counted once: the
    /// evaluation cost, as opposed to the theoretical wire count of [`crate::circuit::stats`]).
    pub fn num_terms(&self) -> u64 {
        self.gate_lits.len() as u64 + self.form_rows.len() as u64
    }

    /// Number of word terms ([`WordRun`]s).
    pub fn num_word_terms(&self) -> u64 {
        self.word_runs.len() as u64
    }

    /// Number of form terms that are not part of a word term.
    pub fn num_scalar_form_terms(&self) -> u64 {
        let in_runs: u64 = self.word_runs.iter().map(|r| r.len as u64).sum();
        self.form_rows.len() as u64 - in_runs.min(self.form_rows.len() as u64)
    }

    /// Evaluation work per lane with word terms: AND/OR literals, scalar form terms and word
    /// terms (each word term counted once, whatever its width).
    pub fn work_per_lane(&self) -> u64 {
        self.gate_lits.len() as u64 + self.num_scalar_form_terms() + self.num_word_terms()
    }

    /// Recompute the word terms of every form from its weights (maximal runs of at least
    /// [`MIN_WORD_BITS`] terms whose weights double). For a hand-made `Levelized`.
    pub fn find_word_runs(&mut self) {
        self.form_run_offsets = vec![0];
        self.word_runs.clear();
        for f in 0..self.num_forms() {
            let t0 = self.form_offsets[f as usize];
            if let Some(ws) = self.form_weights(f) {
                let ws: Vec<i64> = ws.collect();
                push_runs(&ws, t0, &mut self.word_runs);
            }
            self.form_run_offsets.push(self.word_runs.len() as u32);
        }
    }

    /// The word terms of form `f`, checked against the invariant of [`WordRun`] (the weights
    /// `ws` of the form, decoded). `Err` names what is wrong; an empty `form_run_offsets`
    /// means no word terms at all.
    pub fn checked_word_runs(&self, f: u32, ws: &[i64]) -> Result<&[WordRun], String> {
        if self.form_run_offsets.is_empty() {
            return Ok(&[]);
        }
        if self.form_run_offsets.len() != self.form_offsets.len() {
            return Err("form_run_offsets and form_offsets differ in length".into());
        }
        let fu = f as usize;
        let (r0, r1) = (
            self.form_run_offsets[fu] as usize,
            self.form_run_offsets[fu + 1] as usize,
        );
        let runs = self
            .word_runs
            .get(r0..r1)
            .ok_or_else(|| format!("form {f}: word runs out of range"))?;
        let t0 = self.form_offsets[fu] as u64;
        let mut next = t0;
        for r in runs {
            let (s, e) = (r.start as u64, r.start as u64 + r.len as u64);
            if r.len < MIN_WORD_BITS || s < next || e > t0 + ws.len() as u64 {
                return Err(format!("form {f}: word run {s}..{e} outside its form"));
            }
            let w = &ws[(s - t0) as usize..(e - t0) as usize];
            if w[0] == 0 || w.windows(2).any(|p| p[0].checked_mul(2) != Some(p[1])) {
                return Err(format!("form {f}: word run {s}..{e} weights do not double"));
            }
            next = e;
        }
        Ok(runs)
    }

    /// Bytes held by the arrays (the memory an evaluator uploads): `u32` offsets, literals, rows
    /// and weight offsets at 4 bytes, the weight pool at 1 byte per stored byte, thresholds at 8.
    pub fn bytes(&self) -> u64 {
        (self.levels.len() * std::mem::size_of::<Level>()
            + 4 * (self.gate_offsets.len()
                + self.gate_lits.len()
                + self.form_offsets.len()
                + self.form_rows.len()
                + self.form_weight_offsets.len()
                + self.bank_offsets.len()
                + self.outputs.len())
            + self.form_weight_bytes.len()
            + 4 * self.form_run_offsets.len()
            + 8 * self.word_runs.len()
            + 8 * self.thresholds.len()) as u64
    }

    /// Number of forms (banks).
    pub fn num_forms(&self) -> u32 {
        self.form_offsets.len().saturating_sub(1) as u32
    }

    /// The weights of form `f`, in term order, decoded exactly to `i64`.
    ///
    /// `None` when the arrays break the encoding invariant (offsets out of range or not
    /// ascending, or a byte count that is not `width * terms` with `width` in `1..=8`), so that an
    /// evaluator can reject a malformed `Levelized` instead of panicking.
    pub fn form_weights(&self, f: u32) -> Option<FormWeights<'_>> {
        let f = f as usize;
        let t0 = *self.form_offsets.get(f)? as usize;
        let t1 = *self.form_offsets.get(f + 1)? as usize;
        let b0 = *self.form_weight_offsets.get(f)? as usize;
        let b1 = *self.form_weight_offsets.get(f + 1)? as usize;
        if t1 < t0 || b1 < b0 || b1 > self.form_weight_bytes.len() {
            return None;
        }
        let (n, nb) = (t1 - t0, b1 - b0);
        let width = if n == 0 {
            if nb != 0 {
                return None;
            }
            1
        } else {
            if nb % n != 0 || !(1..=8).contains(&(nb / n)) {
                return None;
            }
            nb / n
        };
        Some(FormWeights {
            bytes: &self.form_weight_bytes[b0..b1],
            width,
        })
    }

    /// Largest |weight| over all forms (0 without forms or when the weights are malformed).
    pub fn max_abs_weight(&self) -> u64 {
        (0..self.num_forms())
            .filter_map(|f| self.form_weights(f))
            .flat_map(|ws| ws.map(i64::unsigned_abs))
            .max()
            .unwrap_or(0)
    }

    /// Replace form `f`'s weights by `weights` (re-encoded at their own width); the other forms'
    /// weights are kept. Returns `false` (and changes nothing) when `f` is not a form or
    /// `weights` does not have one weight per term of `f`. Bounds such as sum |w| <= 2^62 are not
    /// checked here (evaluators check them); this is for building and testing.
    pub fn set_form_weights(&mut self, f: u32, weights: &[i64]) -> bool {
        let fu = f as usize;
        if fu + 1 >= self.form_offsets.len()
            || fu + 1 >= self.form_weight_offsets.len()
            || self.form_weights(f).map(|w| w.len()) != Some(weights.len())
        {
            return false;
        }
        let mut enc = Vec::new();
        encode_weights(weights, &mut enc);
        let (b0, b1) = (
            self.form_weight_offsets[fu] as usize,
            self.form_weight_offsets[fu + 1] as usize,
        );
        let delta = enc.len() as i64 - (b1 - b0) as i64;
        self.form_weight_bytes.splice(b0..b1, enc);
        for o in &mut self.form_weight_offsets[fu + 1..] {
            *o = (*o as i64 + delta) as u32;
        }
        if !self.form_run_offsets.is_empty() {
            self.find_word_runs();
        }
        true
    }
}

/// The decoded weights of one form ([`Levelized::form_weights`]): an exact-size iterator of
/// `i64`.
#[derive(Clone, Debug)]
pub struct FormWeights<'a> {
    bytes: &'a [u8],
    width: usize,
}

impl FormWeights<'_> {
    /// Bytes per weight of this form (1..=8).
    pub fn width(&self) -> u32 {
        self.width as u32
    }
}

impl Iterator for FormWeights<'_> {
    type Item = i64;
    fn next(&mut self) -> Option<i64> {
        if self.bytes.is_empty() {
            return None;
        }
        let (head, rest) = self.bytes.split_at(self.width);
        self.bytes = rest;
        let mut le = [0u8; 8];
        le[..self.width].copy_from_slice(head);
        let shift = 64 - 8 * self.width as u32;
        Some((i64::from_le_bytes(le) << shift) >> shift)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.bytes.len() / self.width;
        (n, Some(n))
    }
}

impl ExactSizeIterator for FormWeights<'_> {}

/// Fewest bytes (1..=8) whose two's complement holds every weight.
fn weight_width(weights: &[i64]) -> usize {
    weights
        .iter()
        .map(|&w| {
            // Significant bits including the sign bit.
            let bits = 65 - (w ^ (w >> 63)).leading_zeros() as usize;
            bits.div_ceil(8).max(1)
        })
        .max()
        .unwrap_or(1)
}

/// Append `weights` to `out` at their common width (little-endian two's complement).
fn encode_weights(weights: &[i64], out: &mut Vec<u8>) {
    let width = weight_width(weights);
    for &w in weights {
        out.extend_from_slice(&w.to_le_bytes()[..width]);
    }
}

/// Append the maximal runs of at least [`MIN_WORD_BITS`] doubling weights of `ws` (a form
/// whose first term is `t0`).
fn push_runs(ws: &[i64], t0: u32, out: &mut Vec<WordRun>) {
    let mut i = 0;
    while i < ws.len() {
        let mut j = i + 1;
        while j < ws.len() && ws[j - 1] != 0 && ws[j - 1].checked_mul(2) == Some(ws[j]) {
            j += 1;
        }
        if (j - i) as u32 >= MIN_WORD_BITS {
            out.push(WordRun {
                start: t0 + i as u32,
                len: (j - i) as u32,
            });
        }
        i = j;
    }
}

/// How a single-threshold form is evaluated.
enum Kind {
    And,
    Or,
    Form,
}

/// Classify `[sum w_j x_j >= t]`: AND of literals, OR of literals, or a general threshold.
///
/// With literals `l_j = x_j` (w_j > 0) or `!x_j` (w_j < 0) and `a_j = |w_j|`, the gate is
/// `[sum a_j l_j >= T]` with `T = t - sum_{w_j<0} w_j`. It is the AND of the literals when even
/// dropping the smallest `a_j` falls short (`T > S - min a`), and their OR when any single
/// literal suffices (`T <= min a`).
fn classify(weights: &[i64], t: i64) -> Kind {
    let neg: i128 = weights.iter().filter(|&&w| w < 0).map(|&w| w as i128).sum();
    let s: i128 = weights.iter().map(|&w| (w as i128).abs()).sum();
    let amin: i128 = weights
        .iter()
        .map(|&w| (w as i128).abs())
        .min()
        .unwrap_or(0);
    let big_t = t as i128 - neg;
    if big_t > s - amin && big_t <= s {
        Kind::And
    } else if big_t <= amin && big_t >= 1 {
        Kind::Or
    } else {
        Kind::Form
    }
}

impl Circuit {
    /// Levelize: keep the gates in the cone of the outputs, group them by level, and within a
    /// level into AND gates, OR gates (single-threshold forms that are AND or OR of literals)
    /// and banks of general threshold gates sharing a form.
    pub fn levelize(&self) -> Levelized {
        self.levelize_with_rows().0
    }

    /// The wires the outputs depend on (the live cone), one flag per node.
    fn live_cone(&self) -> Vec<bool> {
        let n = self.nodes.len();
        let mut live = vec![false; n];
        for w in self.outputs.iter().flat_map(|w| w.bits.iter()) {
            live[w.wire().index()] = true;
        }
        // A bank's thresholds share one form: visit each form once (a bank of k thresholds
        // over m terms costs m, not k * m).
        let mut form_seen = vec![false; self.forms.len()];
        for w in (0..n).rev() {
            if !live[w] {
                continue;
            }
            if let Node::Gate { form, .. } = self.nodes[w] {
                if std::mem::replace(&mut form_seen[form.0 as usize], true) {
                    continue;
                }
                for x in self.forms.terms(form).0 {
                    live[x.index()] = true;
                }
            }
        }
        live
    }

    /// The (form, threshold) sort key of gate `w`; `(u32::MAX, 0)` for any other node.
    fn gate_key(&self, w: &Wire) -> (u32, i64) {
        match self.nodes[w.index()] {
            Node::Gate { form, threshold } => (form.0, threshold),
            _ => (u32::MAX, 0),
        }
    }

    /// The live gates bucketed by level (counting sort, stable in wire order) and the depth:
    /// level `l`'s gates are `by_level[count[l]..count[l + 1]]` for `l` in `1..=depth`.
    fn gates_by_level(&self, live: &[bool]) -> (Vec<Wire>, Vec<usize>, usize) {
        let n = self.nodes.len();
        let depth = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(w, nd)| live[*w] && matches!(nd, Node::Gate { .. }))
            .map(|(w, _)| self.levels[w])
            .max()
            .unwrap_or(0) as usize;
        let live_gate = |w: usize| live[w] && matches!(self.nodes[w], Node::Gate { .. });
        let mut count = vec![0usize; depth + 2];
        for w in (0..n).filter(|&w| live_gate(w)) {
            count[self.levels[w] as usize + 1] += 1;
        }
        for l in 1..count.len() {
            count[l] += count[l - 1];
        }
        let mut by_level = vec![Wire(0); count[depth + 1]];
        let mut fill = count.clone();
        for w in (0..n).filter(|&w| live_gate(w)) {
            let l = self.levels[w] as usize;
            by_level[fill[l]] = Wire(w as u32);
            fill[l] += 1;
        }
        (by_level, count, depth)
    }

    /// One level's gates, sorted by (form, threshold), split into AND gates, OR gates and
    /// threshold banks (each bank: a form and its gates in threshold order). A form with a
    /// single gate is an AND or OR when [`classify`] says so.
    fn split_level(&self, gates: &[Wire]) -> LevelGroups {
        let mut groups = LevelGroups::default();
        let mut i = 0;
        while i < gates.len() {
            let (f, _) = self.gate_key(&gates[i]);
            let mut j = i;
            while j < gates.len() && self.gate_key(&gates[j]).0 == f {
                j += 1;
            }
            let form = FormId(f);
            if j - i == 1 {
                let (_, t) = self.gate_key(&gates[i]);
                match classify(self.forms.terms(form).1, t) {
                    Kind::And => groups.ands.push(gates[i]),
                    Kind::Or => groups.ors.push(gates[i]),
                    Kind::Form => groups.banks.push((form, vec![gates[i]])),
                }
            } else {
                groups.banks.push((form, gates[i..j].to_vec()));
            }
            i = j;
        }
        groups
    }

    /// Append one level's `groups` to `lv` (ANDs, then ORs, then banks) and return its
    /// [`Level`]. Each gate gets the next row (`*next_row`, incremented) after its literals are
    /// read: a level only reads rows of earlier levels.
    fn push_level(
        &self,
        lv: &mut Levelized,
        row: &mut [u32],
        next_row: &mut u32,
        groups: &LevelGroups,
    ) -> Level {
        let lit_of = |row: &[u32], w: Wire, neg: bool| Row(row[w.index()]).lit(neg);
        let mut level = Level {
            row_start: *next_row,
            and_start: (lv.gate_offsets.len() - 1) as u32,
            form_start: (lv.form_offsets.len() - 1) as u32,
            threshold_start: lv.thresholds.len() as u32,
            ..Default::default()
        };
        // Rows are assigned after all literals of this level are read (they only read
        // earlier levels), so assign while pushing.
        for (k, group) in [&groups.ands, &groups.ors].into_iter().enumerate() {
            if k == 1 {
                level.or_start = (lv.gate_offsets.len() - 1) as u32;
            }
            for &g in group.iter() {
                let (wires, weights) = match self.nodes[g.index()] {
                    Node::Gate { form, .. } => self.forms.terms(form),
                    _ => unreachable!("only gates are bucketed"),
                };
                // AND of l_j / OR of l_j with l_j = x_j (w > 0) or !x_j (w < 0).
                for (x, &w) in wires.iter().zip(weights) {
                    lv.gate_lits.push(lit_of(row, *x, w < 0));
                }
                lv.gate_offsets.push(lv.gate_lits.len() as u32);
                row[g.index()] = *next_row;
                *next_row += 1;
            }
        }
        level.or_end = (lv.gate_offsets.len() - 1) as u32;
        for (form, outs) in &groups.banks {
            let (wires, weights) = self.forms.terms(*form);
            for x in wires {
                lv.form_rows.push(Row(row[x.index()]));
            }
            push_runs(
                weights,
                lv.form_rows.len() as u32 - wires.len() as u32,
                &mut lv.word_runs,
            );
            lv.form_run_offsets.push(lv.word_runs.len() as u32);
            lv.form_offsets.push(lv.form_rows.len() as u32);
            encode_weights(weights, &mut lv.form_weight_bytes);
            let nb = u32::try_from(lv.form_weight_bytes.len())
                .expect("levelize: more than 2^32 bytes of form weights");
            lv.form_weight_offsets.push(nb);
            for &g in outs {
                lv.thresholds.push(self.gate_key(&g).1);
                row[g.index()] = *next_row;
                *next_row += 1;
            }
            lv.bank_offsets.push(lv.thresholds.len() as u32);
        }
        level.form_end = (lv.form_offsets.len() - 1) as u32;
        level.threshold_end = lv.thresholds.len() as u32;
        level
    }

    /// [`Circuit::levelize`], also returning the row of every wire (`u32::MAX` for wires that
    /// were dropped as unused).
    pub fn levelize_with_rows(&self) -> (Levelized, Vec<u32>) {
        let n = self.nodes.len();
        // 1. The live cone; 2. rows of the constant and the inputs.
        let live = self.live_cone();
        let mut row = vec![u32::MAX; n];
        row[0] = 0;
        let mut num_inputs = 0u32;
        for (w, node) in self.nodes.iter().enumerate() {
            if let Node::Input(i) = node {
                row[w] = 1 + i;
                num_inputs += 1;
            }
        }
        // 3. Live gates bucketed by level (counting sort), then by (form, threshold).
        let (mut by_level, count, depth) = self.gates_by_level(&live);

        let mut lv = Levelized {
            num_inputs,
            gate_offsets: vec![0],
            form_offsets: vec![0],
            form_weight_offsets: vec![0],
            bank_offsets: vec![0],
            form_run_offsets: vec![0],
            input_words: self
                .inputs
                .iter()
                .map(|w| (w.name.clone(), w.bits.len() as u32))
                .collect(),
            output_words: self
                .outputs
                .iter()
                .map(|w| (w.name.clone(), w.bits.len() as u32))
                .collect(),
            ..Default::default()
        };
        let mut next_row = 1 + num_inputs;
        for l in 1..=depth {
            let gates = &mut by_level[count[l]..count[l + 1]];
            if gates.is_empty() {
                continue;
            }
            gates.sort_unstable_by_key(|w| self.gate_key(w));
            // Split into forms with their thresholds.
            let groups = self.split_level(gates);
            let level = self.push_level(&mut lv, &mut row, &mut next_row, &groups);
            lv.levels.push(level);
        }
        lv.num_rows = next_row;
        lv.outputs = self
            .outputs
            .iter()
            .flat_map(|w| w.bits.iter())
            .map(|l| Row(row[l.wire().index()]).lit(l.is_complemented()))
            .collect();
        (lv, row)
    }
}

/// One level's gates grouped by kernel (`Circuit::split_level`).
#[derive(Default)]
struct LevelGroups {
    /// Single-gate forms that are ANDs of literals.
    ands: Vec<Wire>,
    /// Single-gate forms that are ORs of literals.
    ors: Vec<Wire>,
    /// Threshold banks: a form and its gates in threshold order.
    banks: Vec<(FormId, Vec<Wire>)>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::circuit::builder::Builder;

    #[test]
    fn weight_encoding_round_trips_at_the_smallest_width() {
        let mut vals: Vec<i64> = vec![0, 1, -1, i64::MAX, i64::MIN];
        for k in 0..63 {
            let p = 1i64 << k;
            vals.extend([p, p - 1, p + 1, -p, -p - 1, -p + 1]);
        }
        for &v in &vals {
            let mut bytes = Vec::new();
            encode_weights(&[v, 1], &mut bytes);
            let width = bytes.len() / 2;
            // Smallest width: v fits in `width` bytes of two's complement and not in one fewer.
            let fits = |b: usize| {
                let half = 1i128 << (8 * b - 1);
                (-half..half).contains(&(v as i128))
            };
            assert!(fits(width), "{v}: width {width}");
            assert!(
                width == 1 || !fits(width - 1),
                "{v}: width {width} not minimal"
            );
            let ws = FormWeights {
                bytes: &bytes,
                width,
            };
            assert_eq!(ws.collect::<Vec<_>>(), vec![v, 1]);
        }
    }

    /// A form needing 64-bit weights next to small ones: exact values after levelization.
    #[test]
    fn wide_and_narrow_forms_levelize_exactly() {
        let mut b = Builder::new();
        let x = b.input_word("x", 5).unwrap();
        let wide: Vec<(crate::circuit::Lit, i64)> = vec![
            (x[0], 1 << 61),
            (!x[1], 1 << 40),
            (x[2], -(1 << 20)),
            (x[3], 3),
            (!x[4], -1),
        ];
        let narrow: Vec<(crate::circuit::Lit, i64)> =
            vec![(x[0], 2), (x[1], -3), (x[2], 1), (x[3], 1)];
        let thw = [(1i64 << 61) - (1 << 20), 1 << 40, (1 << 61) + 2];
        let gw = b.bank(&wide, &thw).unwrap();
        let gn = b.bank(&narrow, &[0, 2]).unwrap();
        let outs: Vec<_> = gw.iter().chain(&gn).copied().collect();
        b.output_word("y", &outs).unwrap();
        let lv = b.finish().levelize();
        let widths: Vec<u32> = (0..lv.num_forms())
            .map(|f| lv.form_weights(f).unwrap().width())
            .collect();
        assert!(widths.contains(&8) && widths.contains(&1), "{widths:?}");
        assert_eq!(lv.max_abs_weight(), 1 << 61);
        for v in 0u32..32 {
            let bit = |i: usize| v >> i & 1 == 1;
            let lit = |l: crate::circuit::Lit| bit(l.wire().index() - 1) ^ l.is_complemented();
            let sum = |t: &[(crate::circuit::Lit, i64)]| -> i128 {
                t.iter()
                    .filter(|(l, _)| lit(*l))
                    .map(|&(_, w)| w as i128)
                    .sum()
            };
            let mut want: Vec<bool> = thw.iter().map(|&t| sum(&wide) >= t as i128).collect();
            want.extend([0i128, 2].iter().map(|&t| sum(&narrow) >= t));
            // Interpret the levelized arrays.
            let mut row = vec![false; lv.num_rows as usize];
            for i in 0..5 {
                row[1 + i] = bit(i);
            }
            let litv = |row: &[bool], l: RowLit| row[l.row().index()] ^ l.is_complemented();
            for l in &lv.levels {
                let mut out = l.row_start as usize;
                for g in l.and_start..l.or_end {
                    let ls = &lv.gate_lits[lv.gate_offsets[g as usize] as usize
                        ..lv.gate_offsets[g as usize + 1] as usize];
                    row[out] = if g < l.or_start {
                        ls.iter().all(|&q| litv(&row, q))
                    } else {
                        ls.iter().any(|&q| litv(&row, q))
                    };
                    out += 1;
                }
                for f in l.form_start..l.form_end {
                    let r0 = lv.form_offsets[f as usize] as usize;
                    let s: i128 = lv
                        .form_weights(f)
                        .unwrap()
                        .enumerate()
                        .filter(|&(k, _)| row[lv.form_rows[r0 + k].index()])
                        .map(|(_, w)| w as i128)
                        .sum();
                    for j in lv.bank_offsets[f as usize]..lv.bank_offsets[f as usize + 1] {
                        row[out] = s >= lv.thresholds[j as usize] as i128;
                        out += 1;
                    }
                }
            }
            let got: Vec<bool> = lv.outputs.iter().map(|&o| litv(&row, o)).collect();
            assert_eq!(got, want, "x = {v:05b}");
        }
    }

    #[test]
    fn word_runs_are_maximal_doubling_runs() {
        let ws = [
            1, 2, 4, 8, 3, 6, 12, -1, -2, -4, 5, 1, 2, 0, 0, 7, 14, 28, 56,
        ];
        let mut runs = Vec::new();
        push_runs(&ws, 10, &mut runs);
        let got: Vec<(u32, u32)> = runs.iter().map(|r| (r.start, r.len)).collect();
        // 1,2,4,8 | 3,6,12 | -1,-2,-4 | 5 | 1,2 (too short) | 0 | 0 | 7,14,28,56.
        assert_eq!(got, vec![(10, 4), (14, 3), (17, 3), (25, 4)]);
        // Overflowing doubling ends a run.
        let big = [1i64 << 61, 1 << 62, i64::MIN];
        runs.clear();
        push_runs(&big, 0, &mut runs);
        assert!(runs.is_empty());
    }

    #[test]
    fn malformed_weight_bytes_are_rejected_and_set_form_weights_reencodes() {
        let mut b = Builder::new();
        let x = b.input_word("x", 3).unwrap();
        let g = b.threshold(&[(x[0], 2), (x[1], 3), (x[2], -1)], 2).unwrap();
        b.output_word("y", &[g]).unwrap();
        let mut lv = b.finish().levelize();
        assert_eq!(lv.num_forms(), 1);
        let ws: Vec<i64> = lv.form_weights(0).unwrap().collect();
        assert_eq!(lv.form_weight_bytes.len(), 3);
        let mut big = ws.clone();
        big[0] = -(1 << 40);
        assert!(lv.set_form_weights(0, &big));
        assert_eq!(lv.form_weights(0).unwrap().collect::<Vec<_>>(), big);
        assert_eq!(lv.form_weights(0).unwrap().width(), 6);
        assert!(!lv.set_form_weights(0, &big[..2]));
        assert!(!lv.set_form_weights(1, &big));
        let mut bad = lv.clone();
        bad.form_weight_offsets[1] += 1;
        assert!(bad.form_weights(0).is_none());
        let mut bad = lv.clone();
        bad.form_weight_bytes.truncate(5);
        assert!(bad.form_weights(0).is_none());
        assert_eq!(lv.max_abs_weight(), 1 << 40);
    }
}
