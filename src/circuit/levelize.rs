//! Levelization: the circuit as per-level arrays grouped by gate kind, ready for an evaluator.

use super::ids::{FormId, Wire};
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
/// A *literal* is `row << 1 | complement`.
///
/// Gate kinds:
/// - AND gate `g`: `AND` of the literals `gate_lits[gate_offsets[g]..gate_offsets[g+1]]`;
/// - OR gate `g`: `OR` of its literals (same arrays);
/// - form `f`: the weighted sum `S = sum_j form_weights[j] * value(form_rows[j])` over
///   `j in form_offsets[f]..form_offsets[f+1]`, compared against each threshold
///   `thresholds[bank_offsets[f]..bank_offsets[f+1]]` (sorted ascending): output `[S >= t]`.
///
/// Invariants: every literal and form row of a level refers to a row written by an earlier level
/// (or an input or the constant); only gates in the cone of an output are kept; a form's terms
/// satisfy the builder's bounds (sum of |weights| <= 2^62), so `S` fits in `i64`.
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
    pub gate_lits: Vec<u32>,
    /// Form `f` has terms `form_offsets[f]..form_offsets[f+1]`.
    pub form_offsets: Vec<u32>,
    /// Row read by each form term.
    pub form_rows: Vec<u32>,
    /// Weight of each form term.
    pub form_weights: Vec<i64>,
    /// Form `f`'s thresholds are `bank_offsets[f]..bank_offsets[f+1]`.
    pub bank_offsets: Vec<u32>,
    /// Thresholds, ascending within each bank.
    pub thresholds: Vec<i64>,
    /// Output literals over rows, in output-word order.
    pub outputs: Vec<u32>,
    /// Names and widths of the input words, in order.
    pub input_words: Vec<(String, u32)>,
    /// Names and widths of the output words, in order.
    pub output_words: Vec<(String, u32)>,
}

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

    /// Bytes held by the arrays (the memory an evaluator uploads).
    pub fn bytes(&self) -> u64 {
        (self.levels.len() * std::mem::size_of::<Level>()
            + 4 * (self.gate_offsets.len()
                + self.gate_lits.len()
                + self.form_offsets.len()
                + self.form_rows.len()
                + self.bank_offsets.len()
                + self.outputs.len())
            + 8 * (self.form_weights.len() + self.thresholds.len())) as u64
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

    /// [`Circuit::levelize`], also returning the row of every wire (`u32::MAX` for wires that
    /// were dropped as unused).
    pub fn levelize_with_rows(&self) -> (Levelized, Vec<u32>) {
        let n = self.nodes.len();
        // 1. Live cone of the outputs.
        let mut live = vec![false; n];
        for w in self.outputs.iter().flat_map(|w| w.bits.iter()) {
            live[w.wire().index()] = true;
        }
        for w in (0..n).rev() {
            if !live[w] {
                continue;
            }
            if let Node::Gate { form, .. } = self.nodes[w] {
                for x in self.forms.terms(form).0 {
                    live[x.index()] = true;
                }
            }
        }
        // 2. Rows of the constant and the inputs.
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
        let key = |w: &Wire| match self.nodes[w.index()] {
            Node::Gate { form, threshold } => (form.0, threshold),
            _ => (u32::MAX, 0),
        };

        let mut lv = Levelized {
            num_inputs,
            gate_offsets: vec![0],
            form_offsets: vec![0],
            bank_offsets: vec![0],
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
        let lit_of = |row: &Vec<u32>, w: Wire, neg: bool| (row[w.index()] << 1) | neg as u32;
        for l in 1..=depth {
            let gates = &mut by_level[count[l]..count[l + 1]];
            if gates.is_empty() {
                continue;
            }
            gates.sort_unstable_by_key(key);
            // Split into forms with their thresholds.
            let mut ands: Vec<Wire> = Vec::new();
            let mut ors: Vec<Wire> = Vec::new();
            let mut banks: Vec<(FormId, Vec<Wire>)> = Vec::new();
            let mut i = 0;
            while i < gates.len() {
                let (f, _) = key(&gates[i]);
                let mut j = i;
                while j < gates.len() && key(&gates[j]).0 == f {
                    j += 1;
                }
                let form = FormId(f);
                if j - i == 1 {
                    let (_, t) = key(&gates[i]);
                    match classify(self.forms.terms(form).1, t) {
                        Kind::And => ands.push(gates[i]),
                        Kind::Or => ors.push(gates[i]),
                        Kind::Form => banks.push((form, vec![gates[i]])),
                    }
                } else {
                    banks.push((form, gates[i..j].to_vec()));
                }
                i = j;
            }
            let mut level = Level {
                row_start: next_row,
                and_start: (lv.gate_offsets.len() - 1) as u32,
                form_start: (lv.form_offsets.len() - 1) as u32,
                threshold_start: lv.thresholds.len() as u32,
                ..Default::default()
            };
            // Rows are assigned after all literals of this level are read (they only read
            // earlier levels), so assign while pushing.
            for (k, group) in [&ands, &ors].into_iter().enumerate() {
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
                        lv.gate_lits.push(lit_of(&row, *x, w < 0));
                    }
                    lv.gate_offsets.push(lv.gate_lits.len() as u32);
                    row[g.index()] = next_row;
                    next_row += 1;
                }
            }
            level.or_end = (lv.gate_offsets.len() - 1) as u32;
            for (form, outs) in &banks {
                let (wires, weights) = self.forms.terms(*form);
                for (x, &w) in wires.iter().zip(weights) {
                    lv.form_rows.push(row[x.index()]);
                    lv.form_weights.push(w);
                }
                lv.form_offsets.push(lv.form_rows.len() as u32);
                for &g in outs {
                    lv.thresholds.push(key(&g).1);
                    row[g.index()] = next_row;
                    next_row += 1;
                }
                lv.bank_offsets.push(lv.thresholds.len() as u32);
            }
            level.form_end = (lv.form_offsets.len() - 1) as u32;
            level.threshold_end = lv.thresholds.len() as u32;
            lv.levels.push(level);
        }
        lv.num_rows = next_row;
        lv.outputs = self
            .outputs
            .iter()
            .flat_map(|w| w.bits.iter())
            .map(|l| lit_of(&row, l.wire(), l.is_complemented()))
            .collect();
        (lv, row)
    }
}
