//! The circuit builder: structural hashing, constant folding, negation folding, levels.

use rustc_hash::FxHashMap;
use std::hash::{Hash, Hasher};

use super::error::{CircuitError, Result};
use super::ids::{FormId, Lit, RegionId, Wire};
use super::netlist::{Circuit, Forms, Node, Region, Word};

/// Largest sum of absolute weights (and largest |threshold|) of one form: 2^62, so that every
/// partial sum of a form fits in `i64` with room to spare.
pub const MAX_WEIGHT_SUM: i128 = 1 << 62;

/// Largest number of nodes (literals keep a complement bit in a `u32`).
pub const MAX_NODES: u64 = (1 << 31) - 1;

/// Builds a [`Circuit`] gate by gate.
///
/// Every gate-creating method normalises its gate before creating it:
/// - *negation folding*: a complemented input `!x` with weight `w` becomes weight `-w` on `x`
///   and `w` moved into the threshold (`w * (1 - x) = w - w * x`), so NOT is free and never
///   costs a level;
/// - *constant folding*: constant inputs move into the threshold; a gate whose value is fixed
///   whatever its inputs (threshold below the least or above the largest attainable sum)
///   becomes a constant literal; a gate of one term becomes that term's literal;
/// - *canonical form*: terms sorted by wire and merged, weights divided by their gcd, the first
///   weight made positive (a gate with a negative first weight is built as the complement of
///   `[-sum >= 1 - theta]` and returned complemented);
/// - *structural hashing*: identical forms are stored once (a gate with another threshold on
///   the same weighted sum joins that form's bank) and identical gates are returned again.
///
/// The level of each gate is known when it is created: `1 + max(level of its inputs)`.
#[derive(Debug)]
pub struct Builder {
    nodes: Vec<Node>,
    levels: Vec<u32>,
    forms: Forms,
    form_levels: Vec<u32>,
    form_index: FxHashMap<u64, u32>,
    form_chain: Vec<u32>,
    gate_index: FxHashMap<(u32, i64), Wire>,
    num_inputs: u32,
    inputs: Vec<Word<Wire>>,
    outputs: Vec<Word<Lit>>,
    regions: Vec<Region>,
    region_index: FxHashMap<(u32, String), RegionId>,
    region_stack: Vec<RegionId>,
    node_region: Vec<RegionId>,
    scratch: Vec<(u32, i128)>,
    /// Largest number of bytes the node and form arrays may reach ([`Builder::set_byte_limit`]).
    byte_limit: u64,
}

/// Bytes the builder holds per node (node, level, region, gate index entry), counted by
/// [`Builder::bytes`].
pub const BYTES_PER_NODE: u64 = 40;
/// Bytes the builder holds per term of a linear form (wire and weight), counted by
/// [`Builder::bytes`].
pub const BYTES_PER_TERM: u64 = 12;

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

const NO_FORM: u32 = u32::MAX;

fn hash_terms(wires: &[u32], weights: &[i64]) -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    wires.hash(&mut h);
    weights.hash(&mut h);
    h.finish()
}

/// Greatest common divisor (binary algorithm; `gcd(0, b) = b`).
fn gcd(mut a: u64, mut b: u64) -> u64 {
    if a == 0 {
        return b;
    }
    if b == 0 {
        return a;
    }
    let shift = (a | b).trailing_zeros();
    a >>= a.trailing_zeros();
    loop {
        b >>= b.trailing_zeros();
        if a > b {
            std::mem::swap(&mut a, &mut b);
        }
        b -= a;
        if b == 0 {
            return a << shift;
        }
    }
}

/// Ceiling division of `a` by a positive `b`.
fn div_ceil_i128(a: i128, b: i128) -> i128 {
    let q = a.div_euclid(b);
    if a.rem_euclid(b) == 0 {
        q
    } else {
        q + 1
    }
}

impl Builder {
    /// An empty builder holding only the constant-false wire.
    pub fn new() -> Self {
        Builder {
            nodes: vec![Node::False],
            levels: vec![0],
            forms: Forms::new(),
            form_levels: Vec::new(),
            form_index: FxHashMap::default(),
            form_chain: Vec::new(),
            gate_index: FxHashMap::default(),
            num_inputs: 0,
            inputs: Vec::new(),
            outputs: Vec::new(),
            regions: vec![Region {
                name: String::new(),
                parent: None,
            }],
            region_index: FxHashMap::default(),
            region_stack: vec![RegionId::ROOT],
            node_region: vec![RegionId::ROOT],
            scratch: Vec::new(),
            byte_limit: u64::MAX,
        }
    }

    // ----------------------------------------------------------------- inputs, outputs, names

    /// A new input word of `width` bits (least significant first), named `name`.
    pub fn input_word(&mut self, name: &str, width: u32) -> Result<Vec<Lit>> {
        if self.inputs.iter().any(|w| w.name == name) {
            return Err(CircuitError::DuplicateName {
                kind: "input",
                name: name.to_string(),
            });
        }
        let mut bits = Vec::with_capacity(width as usize);
        for _ in 0..width {
            let w = self.push_node(Node::Input(self.num_inputs), 0)?;
            self.num_inputs += 1;
            bits.push(w);
        }
        let lits = bits.iter().map(|w| w.lit()).collect();
        self.inputs.push(Word {
            name: name.to_string(),
            bits,
        });
        Ok(lits)
    }

    /// A new single-bit input named `name`.
    pub fn input(&mut self, name: &str) -> Result<Lit> {
        Ok(self.input_word(name, 1)?[0])
    }

    /// Declare an output word named `name` (least significant bit first).
    pub fn output_word(&mut self, name: &str, bits: &[Lit]) -> Result<()> {
        if self.outputs.iter().any(|w| w.name == name) {
            return Err(CircuitError::DuplicateName {
                kind: "output",
                name: name.to_string(),
            });
        }
        for &l in bits {
            self.check_lit(l)?;
        }
        self.outputs.push(Word {
            name: name.to_string(),
            bits: bits.to_vec(),
        });
        Ok(())
    }

    /// Open a nested region; gates created until the matching [`Builder::pop_region`] belong to it.
    /// Pushing the same name twice under the same parent reopens the same region.
    pub fn push_region(&mut self, name: &str) -> Result<()> {
        if name.is_empty() || name.contains('.') {
            return Err(CircuitError::InvalidRegionName(name.to_string()));
        }
        let parent = *self.region_stack.last().unwrap_or(&RegionId::ROOT);
        let key = (parent.0, name.to_string());
        let id = match self.region_index.get(&key) {
            Some(&id) => id,
            None => {
                let id = RegionId(self.regions.len() as u32);
                self.regions.push(Region {
                    name: name.to_string(),
                    parent: Some(parent),
                });
                self.region_index.insert(key, id);
                id
            }
        };
        self.region_stack.push(id);
        Ok(())
    }

    /// Close the innermost open region.
    pub fn pop_region(&mut self) -> Result<()> {
        if self.region_stack.len() <= 1 {
            return Err(CircuitError::RegionUnderflow);
        }
        self.region_stack.pop();
        Ok(())
    }

    /// Run `f` inside region `name` (the region is closed again even when `f` fails).
    pub fn region<T, E: From<CircuitError>>(
        &mut self,
        name: &str,
        f: impl FnOnce(&mut Builder) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        self.push_region(name)?;
        let r = f(self);
        self.pop_region()?;
        r
    }

    // ----------------------------------------------------------------- queries

    /// The level of a literal's wire (0 for inputs and constants); an error for a literal of
    /// another builder.
    pub fn level(&self, l: Lit) -> Result<u32> {
        self.check_lit(l)?;
        Ok(self.levels[l.wire().index()])
    }

    /// The largest level among `lits` (0 when empty); an error when one is unknown.
    pub fn max_level(&self, lits: &[Lit]) -> Result<u32> {
        lits.iter().try_fold(0, |m, &l| Ok(m.max(self.level(l)?)))
    }

    /// Refuse to grow past `bytes` bytes of nodes and linear forms (counted as [`Builder::bytes`]):
    /// a gate or input that would cross it fails with [`CircuitError::OverBudget`], so a
    /// construction too large for the memory at hand stops early instead of exhausting it.
    pub fn set_byte_limit(&mut self, bytes: u64) {
        self.byte_limit = bytes;
    }

    /// Bytes held by the nodes and forms built so far: [`BYTES_PER_NODE`] per node plus
    /// [`BYTES_PER_TERM`] per form term (hash tables and names not included).
    pub fn bytes(&self) -> u64 {
        self.nodes.len() as u64 * BYTES_PER_NODE + self.forms.wires.len() as u64 * BYTES_PER_TERM
    }

    fn check_budget(&self, extra_nodes: u64, extra_terms: u64) -> Result<()> {
        let after = self.bytes() + extra_nodes * BYTES_PER_NODE + extra_terms * BYTES_PER_TERM;
        if after > self.byte_limit {
            return Err(CircuitError::OverBudget {
                needed: after,
                limit: self.byte_limit,
            });
        }
        Ok(())
    }

    /// Number of nodes so far (constant, inputs and gates).
    pub fn num_nodes(&self) -> usize {
        self.nodes.len()
    }

    /// Number of gates so far.
    pub fn num_gates(&self) -> usize {
        self.nodes.len() - 1 - self.num_inputs as usize
    }

    /// Number of primary inputs so far.
    pub fn num_inputs(&self) -> usize {
        self.num_inputs as usize
    }

    // ----------------------------------------------------------------- gates

    /// The constant literal for `value`.
    pub fn constant(&self, value: bool) -> Lit {
        Lit::constant(value)
    }

    /// NOT: free, it only complements the literal.
    pub fn not(&self, a: Lit) -> Lit {
        !a
    }

    /// The threshold gate `[sum_i w_i * l_i >= theta]`.
    pub fn threshold(&mut self, terms: &[(Lit, i64)], theta: i64) -> Result<Lit> {
        Ok(self.bank(terms, &[theta])?[0])
    }

    /// A bank: the gates `[sum_i w_i * l_i >= theta_k]` for every `theta_k`, sharing one form.
    pub fn bank(&mut self, terms: &[(Lit, i64)], thetas: &[i64]) -> Result<Vec<Lit>> {
        let t128: Vec<i128> = thetas.iter().map(|&t| t as i128).collect();
        self.bank_i128(terms, &t128)
    }

    /// [`Builder::bank`] with `i128` weights accumulation and thresholds, for callers whose
    /// thresholds are computed with offsets that may leave `i64` before normalisation.
    pub fn bank_i128(&mut self, terms: &[(Lit, i64)], thetas: &[i128]) -> Result<Vec<Lit>> {
        // 1. Negation and constant folding into (wire, weight) pairs plus a constant offset.
        let mut offset: i128 = 0;
        let mut sc = std::mem::take(&mut self.scratch);
        sc.clear();
        for &(l, w) in terms {
            if let Err(e) = self.check_lit(l) {
                self.scratch = sc;
                return Err(e);
            }
            let w = w as i128;
            if w == 0 {
                continue;
            }
            match l.const_value() {
                Some(true) => offset += w,
                Some(false) => {}
                None if l.is_complemented() => {
                    offset += w;
                    sc.push((l.wire().0, -w));
                }
                None => sc.push((l.wire().0, w)),
            }
        }
        // 2. Sort and merge equal wires; drop zero weights.
        sc.sort_unstable_by_key(|t| t.0);
        let mut merged: Vec<(u32, i128)> = Vec::with_capacity(sc.len());
        for &(w, x) in sc.iter() {
            match merged.last_mut() {
                Some(last) if last.0 == w => last.1 += x,
                _ => merged.push((w, x)),
            }
        }
        self.scratch = sc;
        merged.retain(|t| t.1 != 0);
        let sum_abs: i128 = merged
            .iter()
            .fold(0i128, |a, t| a.saturating_add(t.1.abs()));
        let (min_sum, max_sum) = merged.iter().fold((0i128, 0i128), |(lo, hi), t| {
            if t.1 < 0 {
                (lo + t.1, hi)
            } else {
                (lo, hi + t.1)
            }
        });
        // 3. Per threshold: constant results, or a real gate.
        let mut out = vec![Lit::FALSE; thetas.len()];
        let mut live: Vec<(usize, i128)> = Vec::new();
        for (k, &theta) in thetas.iter().enumerate() {
            // Saturation keeps extreme i128 thresholds on the correct (constant) side.
            let t = theta.saturating_sub(offset);
            if t <= min_sum {
                out[k] = Lit::TRUE;
            } else if t > max_sum {
                out[k] = Lit::FALSE;
            } else if merged.len() == 1 {
                // [w x >= t] with min < t <= max is x (w > 0) or !x (w < 0).
                let (w, x) = merged[0];
                out[k] = Lit::new(Wire(w), x < 0);
            } else {
                live.push((k, t));
            }
        }
        if live.is_empty() {
            return Ok(out);
        }
        if sum_abs > MAX_WEIGHT_SUM {
            return Err(CircuitError::WeightOverflow {
                sum_abs,
                limit: MAX_WEIGHT_SUM,
            });
        }
        // 4. Canonical form: divide by the gcd, make the first weight positive.
        // Every |weight| <= sum_abs <= 2^62 here, so the gcd is taken in u64 (stopping at 1,
        // the common case).
        let mut g = 0u64;
        for t in &merged {
            g = gcd(g, t.1.unsigned_abs() as u64);
            if g == 1 {
                break;
            }
        }
        let g = g as i128;
        let flip = merged[0].1 < 0;
        let wires: Vec<u32> = merged.iter().map(|t| t.0).collect();
        let weights: Vec<i64> = merged
            .iter()
            .map(|t| {
                let w = if g == 1 { t.1 } else { t.1 / g };
                (if flip { -w } else { w }) as i64
            })
            .collect();
        let form = self.intern_form(&wires, &weights)?;
        let level = self.form_levels[form.index()] + 1;
        for (k, t) in live {
            let t = if g == 1 { t } else { div_ceil_i128(t, g) };
            // [sum >= t]  ==  ![-sum >= 1 - t]
            let (theta, complement) = if flip { (1 - t, true) } else { (t, false) };
            // min < t <= max guarantees |theta| <= sum_abs <= 2^62.
            let theta = theta as i64;
            let wire = match self.gate_index.get(&(form.0, theta)) {
                Some(&w) => w,
                None => {
                    let w = self.push_node(
                        Node::Gate {
                            form,
                            threshold: theta,
                        },
                        level,
                    )?;
                    self.gate_index.insert((form.0, theta), w);
                    w
                }
            };
            out[k] = Lit::new(wire, complement);
        }
        Ok(out)
    }

    /// AND of all literals (true when empty).
    pub fn and(&mut self, lits: &[Lit]) -> Result<Lit> {
        let terms: Vec<(Lit, i64)> = lits.iter().map(|&l| (l, 1)).collect();
        self.threshold(&terms, lits.len() as i64)
    }

    /// OR of all literals (false when empty).
    pub fn or(&mut self, lits: &[Lit]) -> Result<Lit> {
        let terms: Vec<(Lit, i64)> = lits.iter().map(|&l| (l, 1)).collect();
        self.threshold(&terms, 1)
    }

    /// Two-input AND.
    pub fn and2(&mut self, a: Lit, b: Lit) -> Result<Lit> {
        self.and(&[a, b])
    }

    /// Two-input OR.
    pub fn or2(&mut self, a: Lit, b: Lit) -> Result<Lit> {
        self.or(&[a, b])
    }

    /// MAJORITY: true when at least half of the literals are true (`[2 * sum >= n]`).
    pub fn majority(&mut self, lits: &[Lit]) -> Result<Lit> {
        let terms: Vec<(Lit, i64)> = lits.iter().map(|&l| (l, 2)).collect();
        self.threshold(&terms, lits.len() as i64)
    }

    /// Parity (XOR) of all literals, depth 2: a staircase on their count,
    /// `[sum_k (-1)^(k+1) [count >= k] >= 1]`.
    pub fn xor(&mut self, lits: &[Lit]) -> Result<Lit> {
        let terms: Vec<(Lit, i64)> = lits.iter().map(|&l| (l, 1)).collect();
        let thetas: Vec<i64> = (1..=lits.len() as i64).collect();
        let steps = self.bank(&terms, &thetas)?;
        let stair: Vec<(Lit, i64)> = steps
            .iter()
            .enumerate()
            .map(|(k, &g)| (g, if k % 2 == 0 { 1 } else { -1 }))
            .collect();
        self.threshold(&stair, 1)
    }

    /// Two-input XOR (depth 2).
    pub fn xor2(&mut self, a: Lit, b: Lit) -> Result<Lit> {
        self.xor(&[a, b])
    }

    /// Multiplexer: `if sel { a } else { b }` (depth 2).
    pub fn mux(&mut self, sel: Lit, a: Lit, b: Lit) -> Result<Lit> {
        if a == b {
            return Ok(a);
        }
        let x = self.and2(sel, a)?;
        let y = self.and2(!sel, b)?;
        self.or2(x, y)
    }

    /// Consume the builder and return the circuit.
    pub fn finish(self) -> Circuit {
        Circuit {
            nodes: self.nodes,
            levels: self.levels,
            forms: self.forms,
            inputs: self.inputs,
            outputs: self.outputs,
            regions: self.regions,
            node_region: self.node_region,
        }
    }

    // ----------------------------------------------------------------- internals

    fn check_lit(&self, l: Lit) -> Result<()> {
        if l.wire().index() >= self.nodes.len() {
            return Err(CircuitError::UnknownWire {
                wire: l.wire().0,
                nodes: self.nodes.len() as u32,
            });
        }
        Ok(())
    }

    fn push_node(&mut self, node: Node, level: u32) -> Result<Wire> {
        if self.nodes.len() as u64 >= MAX_NODES {
            return Err(CircuitError::TooManyNodes { limit: MAX_NODES });
        }
        self.check_budget(1, 0)?;
        let w = Wire(self.nodes.len() as u32);
        self.nodes.push(node);
        self.levels.push(level);
        self.node_region
            .push(*self.region_stack.last().unwrap_or(&RegionId::ROOT));
        Ok(w)
    }

    fn intern_form(&mut self, wires: &[u32], weights: &[i64]) -> Result<FormId> {
        let h = hash_terms(wires, weights);
        let mut cur = self.form_index.get(&h).copied().unwrap_or(NO_FORM);
        while cur != NO_FORM {
            let (ws, wt) = self.forms.terms(FormId(cur));
            if wt == weights && ws.iter().map(|w| w.0).eq(wires.iter().copied()) {
                return Ok(FormId(cur));
            }
            cur = self.form_chain[cur as usize];
        }
        if self.forms.wires.len() as u64 + wires.len() as u64 > u32::MAX as u64 {
            return Err(CircuitError::TooManyNodes {
                limit: u32::MAX as u64,
            });
        }
        self.check_budget(0, wires.len() as u64)?;
        let id = self.forms.len() as u32;
        let prev = self.form_index.insert(h, id).unwrap_or(NO_FORM);
        self.form_chain.push(prev);
        let level = wires
            .iter()
            .map(|&w| self.levels[w as usize])
            .max()
            .unwrap_or(0);
        self.form_levels.push(level);
        self.forms.wires.extend(wires.iter().map(|&w| Wire(w)));
        self.forms.weights.extend_from_slice(weights);
        self.forms.offsets.push(self.forms.wires.len() as u32);
        Ok(FormId(id))
    }
}

#[cfg(test)]
mod gcd_tests {
    use super::gcd;

    #[test]
    fn binary_gcd_equals_euclid() {
        fn euclid(mut a: u64, mut b: u64) -> u64 {
            while b != 0 {
                (a, b) = (b, a % b);
            }
            a
        }
        let vals = [
            0u64,
            1,
            2,
            3,
            4,
            6,
            12,
            18,
            35,
            64,
            96,
            1 << 40,
            (1 << 62) - 1,
            1 << 62,
        ];
        for &a in &vals {
            for &b in &vals {
                assert_eq!(gcd(a, b), euclid(a, b), "gcd({a}, {b})");
            }
        }
    }
}
