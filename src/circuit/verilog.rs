//! Export of a [`Circuit`] to structural Verilog-2005, for simulation by an independent tool
//! (Icarus Verilog in the tests) (docs/circuit_format.md).
//!
//! The module has one port per non-empty input word (`in_<name>`, bit `j` = bit `j` of the word)
//! and per non-empty output word (`out_<name>`); names are reduced to `[A-Za-z0-9_]` and made
//! unique. Inside, every node `w` is a one-bit net `n<w>`; every linear form read by a gate is a
//! signed net `f<k>` of just enough bits to hold every value of its sum and every threshold
//! compared with it, written as a sum of `(n<x> ? W'sd<w> : W'sd0)` terms; every gate is one
//! `assign n<w> = (f<k> >= W'sd<t>);`.
//!
//! Signedness: in Verilog a comparison or a sum is unsigned as soon as one operand is unsigned,
//! and a one-bit net is unsigned. The export therefore never mixes a net into arithmetic: each
//! term is a conditional whose two value operands are sized *signed* literals (so the
//! conditional is signed), the form net is declared `signed`, and thresholds are signed
//! literals of the same width, so every sum and comparison is signed. Negative constants are
//! written as the negation of a positive signed literal (`-W'sd5`), which stays signed.
//!
//! The testbench module `<module>_tb` reads input vectors, one per line, from the file named by
//! the plusarg `+vectors=<path>` (default `vectors.txt`): each line is `max(1, num_inputs)`
//! binary digits, the *last* digit being input 0 (see [`format_input_vector`]). For each vector
//! it prints one line of `max(1, num_outputs)` binary digits, the last digit being output bit 0
//! in output-word order (see [`parse_output_line`]).

use std::fmt::Write as _;
use std::io::{self, Write};

use rustc_hash::FxHashSet;

use super::netlist::{Circuit, Node};

/// `prefix` followed by `name` with every character outside `[A-Za-z0-9_]` replaced by `_`;
/// a `_` is prepended when the result is empty or starts with a digit, and appended when it is a
/// Verilog keyword, so the result is always a legal simple identifier.
pub fn sanitize_identifier(prefix: &str, name: &str) -> String {
    let mut s = String::with_capacity(prefix.len() + name.len() + 1);
    s.push_str(prefix);
    for ch in name.chars() {
        s.push(if ch.is_ascii_alphanumeric() || ch == '_' {
            ch
        } else {
            '_'
        });
    }
    if s.is_empty() || s.as_bytes()[0].is_ascii_digit() {
        s.insert(0, '_');
    }
    if KEYWORDS.contains(&s.as_str()) {
        s.push('_');
    }
    s
}

/// Verilog-2005 keywords that a sanitized name could spell.
const KEYWORDS: &[&str] = &[
    "always",
    "and",
    "assign",
    "begin",
    "buf",
    "case",
    "casex",
    "casez",
    "cell",
    "config",
    "deassign",
    "default",
    "defparam",
    "design",
    "disable",
    "edge",
    "else",
    "end",
    "endcase",
    "endconfig",
    "endfunction",
    "endgenerate",
    "endmodule",
    "endprimitive",
    "endspecify",
    "endtable",
    "endtask",
    "event",
    "for",
    "force",
    "forever",
    "fork",
    "function",
    "generate",
    "genvar",
    "if",
    "initial",
    "inout",
    "input",
    "integer",
    "join",
    "localparam",
    "module",
    "nand",
    "negedge",
    "nor",
    "not",
    "or",
    "output",
    "parameter",
    "posedge",
    "real",
    "reg",
    "release",
    "repeat",
    "signed",
    "specify",
    "supply0",
    "supply1",
    "table",
    "task",
    "time",
    "tri",
    "unsigned",
    "wait",
    "while",
    "wire",
    "wor",
    "xnor",
    "xor",
];

/// Port names of the words, `<prefix><sanitized name>`, made unique by a numeric suffix.
fn port_names(prefix: &str, names: &[&str], taken: &mut FxHashSet<String>) -> Vec<String> {
    names
        .iter()
        .map(|n| {
            let base = sanitize_identifier(prefix, n);
            let mut cand = base.clone();
            let mut k = 1;
            while taken.contains(&cand) {
                cand = format!("{base}_{k}");
                k += 1;
            }
            taken.insert(cand.clone());
            cand
        })
        .collect()
}

/// Number of bits of `v` (0 for 0).
fn bit_len(v: u128) -> u32 {
    128 - v.leading_zeros()
}

/// A signed literal of width `w` for `v`: `W'sdN` or `-W'sdN`.
fn lit(w: u32, v: i128) -> String {
    if v < 0 {
        format!("-{w}'sd{}", v.unsigned_abs())
    } else {
        format!("{w}'sd{v}")
    }
}

/// The module's ports: (input port names, output port names), one per word (empty words too).
fn ports(c: &Circuit) -> (Vec<String>, Vec<String>) {
    let mut taken = FxHashSet::default();
    let ins: Vec<&str> = c.inputs.iter().map(|w| w.name.as_str()).collect();
    let outs: Vec<&str> = c.outputs.iter().map(|w| w.name.as_str()).collect();
    let i = port_names("in_", &ins, &mut taken);
    let o = port_names("out_", &outs, &mut taken);
    (i, o)
}

impl Circuit {
    /// Write the circuit as a structural Verilog module named `module` (sanitized) to `w`.
    ///
    /// Exports every node (also gates outside the outputs' cone), so net `n<w>` is wire `w`.
    pub fn write_verilog(&self, module: &str, mut w: impl Write) -> io::Result<()> {
        let module = sanitize_identifier("", module);
        let (in_names, out_names) = ports(self);
        let mut ports_decl: Vec<String> = Vec::new();
        for (word, name) in self.inputs.iter().zip(&in_names) {
            if !word.bits.is_empty() {
                ports_decl.push(format!("  input  wire [{}:0] {name}", word.bits.len() - 1));
            }
        }
        for (word, name) in self.outputs.iter().zip(&out_names) {
            if !word.bits.is_empty() {
                ports_decl.push(format!("  output wire [{}:0] {name}", word.bits.len() - 1));
            }
        }
        writeln!(
            w,
            "// Generated by tcvar: {} nodes, {} gates, depth {}.",
            self.nodes.len(),
            self.num_gates(),
            self.depth()
        )?;
        writeln!(
            w,
            "// Gate n<w> = [f<k> >= theta] over the signed weighted sum f<k>."
        )?;
        if ports_decl.is_empty() {
            writeln!(w, "module {module};")?;
        } else {
            writeln!(w, "module {module} (\n{}\n);", ports_decl.join(",\n"))?;
        }
        // Input wires: node of input number i -> (port, bit).
        let mut input_src: Vec<(usize, usize)> = Vec::with_capacity(self.num_inputs());
        for (k, word) in self.inputs.iter().enumerate() {
            for j in 0..word.bits.len() {
                input_src.push((k, j));
            }
        }
        // Width of each form: enough for +-(sum |w|) and every threshold compared with it.
        let nf = self.forms.len();
        let mut need = vec![0u128; nf];
        for (f, n) in need.iter_mut().enumerate() {
            let r = self.forms.offsets[f] as usize..self.forms.offsets[f + 1] as usize;
            *n = self.forms.weights[r]
                .iter()
                .map(|x| x.unsigned_abs() as u128)
                .sum();
        }
        for nd in &self.nodes {
            if let Node::Gate { form, threshold } = *nd {
                let n = &mut need[form.index()];
                *n = (*n).max(threshold.unsigned_abs() as u128);
            }
        }
        let mut declared = vec![false; nf];
        let mut s = String::new();
        for (wi, nd) in self.nodes.iter().enumerate() {
            s.clear();
            match *nd {
                Node::False => writeln!(s, "  wire n{wi} = 1'b0;").unwrap(),
                Node::Input(i) => match input_src.get(i as usize) {
                    Some(&(k, j)) => writeln!(s, "  wire n{wi} = {}[{j}];", in_names[k]).unwrap(),
                    None => {
                        writeln!(s, "  wire n{wi} = 1'b0; // input {i} not in any word").unwrap()
                    }
                },
                Node::Gate { form, threshold } => {
                    let f = form.index();
                    let width = bit_len(need[f]) + 1;
                    if !declared[f] {
                        declared[f] = true;
                        let (wires, weights) = self.forms.terms(form);
                        write!(s, "  wire signed [{}:0] f{f} =", width - 1).unwrap();
                        for (t, (x, &wt)) in wires.iter().zip(weights).enumerate() {
                            let sep = if t == 0 { "" } else { " +" };
                            write!(
                                s,
                                "{sep}\n    (n{} ? {} : {width}'sd0)",
                                x.0,
                                lit(width, wt as i128)
                            )
                            .unwrap();
                        }
                        if wires.is_empty() {
                            write!(s, " {width}'sd0").unwrap();
                        }
                        s.push_str(";\n");
                    }
                    writeln!(
                        s,
                        "  wire n{wi};\n  assign n{wi} = (f{f} >= {});",
                        lit(width, threshold as i128)
                    )
                    .unwrap();
                }
            }
            w.write_all(s.as_bytes())?;
        }
        for (word, name) in self.outputs.iter().zip(&out_names) {
            for (j, l) in word.bits.iter().enumerate() {
                let src = match l.const_value() {
                    Some(v) => format!("1'b{}", v as u8),
                    None if l.is_complemented() => format!("~n{}", l.wire().0),
                    None => format!("n{}", l.wire().0),
                };
                writeln!(w, "  assign {name}[{j}] = {src};")?;
            }
        }
        writeln!(w, "endmodule")?;
        Ok(())
    }

    /// [`Circuit::write_verilog`] into a string.
    pub fn to_verilog(&self, module: &str) -> String {
        let mut v = Vec::new();
        self.write_verilog(module, &mut v)
            .expect("writing to a Vec cannot fail");
        String::from_utf8(v).expect("the exporter writes ASCII")
    }

    /// A testbench module `<module>_tb` for the module of [`Circuit::write_verilog`]: it reads
    /// vectors from `+vectors=<path>` (default `vectors.txt`) and prints the outputs, one line
    /// per vector (format in the module documentation).
    pub fn verilog_testbench(&self, module: &str) -> String {
        let module = sanitize_identifier("", module);
        let (in_names, out_names) = ports(self);
        let ni = self.num_inputs().max(1);
        let no = self.num_outputs().max(1);
        let mut conns = Vec::new();
        let mut at = 0;
        for (word, name) in self.inputs.iter().zip(&in_names) {
            let n = word.bits.len();
            if n > 0 {
                conns.push(format!("    .{name}(vec[{}:{at}])", at + n - 1));
            }
            at += n;
        }
        at = 0;
        for (word, name) in self.outputs.iter().zip(&out_names) {
            let n = word.bits.len();
            if n > 0 {
                conns.push(format!("    .{name}(o[{}:{at}])", at + n - 1));
            }
            at += n;
        }
        let mut s = String::new();
        writeln!(s, "// Testbench generated by tcvar for module {module}.").unwrap();
        writeln!(s, "module {module}_tb;").unwrap();
        writeln!(s, "  reg  [{}:0] vec;", ni - 1).unwrap();
        writeln!(s, "  wire [{}:0] o;", no - 1).unwrap();
        if self.num_outputs() == 0 {
            writeln!(s, "  assign o = 1'b0;").unwrap();
        }
        writeln!(s, "  integer fd, code;").unwrap();
        writeln!(s, "  reg [8*4096-1:0] path;").unwrap();
        if conns.is_empty() {
            writeln!(s, "  {module} dut();").unwrap();
        } else {
            writeln!(s, "  {module} dut (\n{}\n  );", conns.join(",\n")).unwrap();
        }
        s.push_str(
            r#"  initial begin
    if (!$value$plusargs("vectors=%s", path)) path = "vectors.txt";
    fd = $fopen(path, "r");
    if (fd == 0) begin
      $display("ERROR: cannot open vector file");
      $finish;
    end
    code = $fscanf(fd, "%b\n", vec);
    while (code == 1) begin
      #1;
      $display("%b", o);
      code = $fscanf(fd, "%b\n", vec);
    end
    $fclose(fd);
    $finish;
  end
endmodule
"#,
        );
        s
    }
}

/// One testbench input line for `inputs` (`inputs[i]` is input `i`): the last character is input
/// 0; a circuit without inputs uses the line `0`.
pub fn format_input_vector(inputs: &[bool]) -> String {
    if inputs.is_empty() {
        return "0".to_string();
    }
    inputs
        .iter()
        .rev()
        .map(|&b| if b { '1' } else { '0' })
        .collect()
}

/// Parse one testbench output line into `num_outputs` bits (output bit 0 first), or `None` when
/// the line is not `max(1, num_outputs)` binary digits (e.g. an `x` from an undriven net).
pub fn parse_output_line(line: &str, num_outputs: usize) -> Option<Vec<bool>> {
    let line = line.trim();
    if line.len() != num_outputs.max(1) {
        return None;
    }
    let bits: Option<Vec<bool>> = line
        .chars()
        .rev()
        .map(|c| match c {
            '0' => Some(false),
            '1' => Some(true),
            _ => None,
        })
        .collect();
    let mut bits = bits?;
    bits.truncate(num_outputs);
    Some(bits)
}
