//! The versioned binary file format of a [`Circuit`] (docs/circuit_format.md; specification in
//! `docs/circuit_format.md`).
//!
//! A file is a 40-byte header followed by the payload:
//!
//! | offset | size | field                                                  |
//! |--------|------|--------------------------------------------------------|
//! | 0      | 8    | magic `b"TCVARCIR"`                                     |
//! | 8      | 4    | format version (u32 LE), currently [`FORMAT_VERSION`]   |
//! | 12     | 4    | flags (u32 LE), must be 0                               |
//! | 16     | 8    | payload length in bytes (u64 LE)                        |
//! | 24     | 8    | FNV-1a 64 checksum of the payload (u64 LE)              |
//! | 32     | 8    | FNV-1a 64 checksum of header bytes 0..32 (u64 LE)       |
//!
//! The header layout is frozen across versions, so that a reader can always tell a corrupt file
//! (checksum mismatch) from a file of another version. The payload is a fixed sequence of
//! sections (`NODE`, `FORM`, `WRDI`, `WRDO`, `REGN`), each a 4-byte tag, a u64 length and its
//! contents; all integers are little-endian.
//!
//! Loading checks, in order: magic ([`FileError::NotACircuit`]), length of the header
//! ([`FileError::Truncated`]), header checksum ([`FileError::HeaderChecksum`]), version
//! ([`FileError::UnsupportedVersion`]), payload length ([`FileError::Truncated`]), payload
//! checksum ([`FileError::ChecksumMismatch`]), the payload's structure
//! ([`FileError::Malformed`]) and finally every invariant of [`Circuit`] and
//! [`super::netlist::Forms`] ([`FileError::Invalid`], see [`validate`]). A circuit that loads is
//! therefore safe to hand to any evaluator. Every length read from the file is checked against
//! the bytes that remain before anything is allocated, so loading never allocates more than a
//! small constant factor times the file's size.

use std::io::{BufRead, Read, Write};

use std::path::Path;

use rustc_hash::FxHashSet;
use thiserror::Error;

use super::builder::{MAX_NODES, MAX_WEIGHT_SUM};
use super::ids::{FormId, Lit, RegionId, Wire};
use super::netlist::{Circuit, Forms, Node, Region, Word};

/// The magic bytes that open every circuit file.
pub const MAGIC: [u8; 8] = *b"TCVARCIR";
/// The format version this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Size of the fixed header in bytes.
pub const HEADER_LEN: usize = 40;

const SECTIONS: [[u8; 4]; 5] = [*b"NODE", *b"FORM", *b"WRDI", *b"WRDO", *b"REGN"];
const KIND_FALSE: u8 = 0;
const KIND_INPUT: u8 = 1;
const KIND_GATE: u8 = 2;
const NO_PARENT: u32 = u32::MAX;

/// An error from saving or loading a circuit file. Loading never panics.
#[derive(Error, Debug)]
pub enum FileError {
    /// An I/O error of the underlying reader or writer.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The data does not start with the circuit magic bytes.
    #[error("not a tcvar circuit file (bad magic bytes)")]
    NotACircuit,
    /// The data ends before the length the header announces (or before the header ends).
    #[error("truncated circuit file: {needed} bytes needed, only {got} present")]
    Truncated {
        /// Bytes the file should hold.
        needed: u64,
        /// Bytes it holds.
        got: u64,
    },
    /// The header's checksum does not match: the header is corrupt.
    #[error(
        "corrupt circuit file header: checksum {stored:#018x} stored, {computed:#018x} computed"
    )]
    HeaderChecksum {
        /// The checksum in the file.
        stored: u64,
        /// The checksum of the bytes read.
        computed: u64,
    },
    /// The header is intact but names a version (or flags) this crate cannot read.
    #[error("unsupported circuit file version {found} (flags {flags:#x}); this build reads version {supported} with flags 0")]
    UnsupportedVersion {
        /// Version in the file.
        found: u32,
        /// Flags in the file.
        flags: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// The payload's checksum does not match: the file is corrupt.
    #[error(
        "corrupt circuit file: payload checksum {stored:#018x} stored, {computed:#018x} computed"
    )]
    ChecksumMismatch {
        /// The checksum in the header.
        stored: u64,
        /// The checksum of the payload read.
        computed: u64,
    },
    /// Bytes follow the payload.
    #[error("{extra} unexpected bytes after the end of the circuit")]
    TrailingData {
        /// Number of extra bytes.
        extra: u64,
    },
    /// The payload's checksum is right but its structure is not (a writer bug or a crafted file).
    #[error("malformed circuit payload at byte {offset}: {what}")]
    Malformed {
        /// Offset in the payload.
        offset: u64,
        /// What is wrong.
        what: String,
    },
    /// The path names something other than a regular file (a device, a pipe, a directory):
    /// its size cannot bound the read.
    #[error("not a regular file ({kind}): a circuit file's size must be known before reading")]
    NotARegularFile {
        /// What it is instead.
        kind: &'static str,
    },
    /// The payload parses but violates an invariant of the circuit.
    #[error("invalid circuit: {0}")]
    Invalid(String),
}

/// 64-bit FNV-1a offset basis.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// 64-bit FNV-1a prime.
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The 64-bit FNV-1a hash of `data`, continuing from state `h` (start with [`fnv1a64`]).
///
/// Every step `h = (h ^ byte) * prime` is a bijection of `h`, so changing any single byte of the
/// data always changes the checksum.
pub fn fnv1a64_update(mut h: u64, data: &[u8]) -> u64 {
    for &b in data {
        h ^= b as u64;
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// The 64-bit FNV-1a hash of `data`.
pub fn fnv1a64(data: &[u8]) -> u64 {
    fnv1a64_update(FNV_OFFSET, data)
}

// ------------------------------------------------------------------------------------ writing

fn put_u32(o: &mut Vec<u8>, v: u32) {
    o.extend_from_slice(&v.to_le_bytes());
}
fn put_u64(o: &mut Vec<u8>, v: u64) {
    o.extend_from_slice(&v.to_le_bytes());
}
fn put_i64(o: &mut Vec<u8>, v: i64) {
    o.extend_from_slice(&v.to_le_bytes());
}
fn put_len(o: &mut Vec<u8>, n: usize, what: &str) -> Result<(), FileError> {
    let v = u32::try_from(n).map_err(|_| FileError::Invalid(format!("{what} too long: {n}")))?;
    put_u32(o, v);
    Ok(())
}
fn put_str(o: &mut Vec<u8>, s: &str) -> Result<(), FileError> {
    put_len(o, s.len(), "name")?;
    o.extend_from_slice(s.as_bytes());
    Ok(())
}

/// Append section `tag` whose contents `body` writes.
fn section(
    o: &mut Vec<u8>,
    tag: [u8; 4],
    body: impl FnOnce(&mut Vec<u8>) -> Result<(), FileError>,
) -> Result<(), FileError> {
    o.extend_from_slice(&tag);
    let len_at = o.len();
    put_u64(o, 0);
    let start = o.len();
    body(o)?;
    let len = (o.len() - start) as u64;
    o[len_at..len_at + 8].copy_from_slice(&len.to_le_bytes());
    Ok(())
}

fn payload(c: &Circuit) -> Result<Vec<u8>, FileError> {
    let n = c.nodes.len();
    let mut o =
        Vec::with_capacity(64 + 17 * n + 12 * c.forms.wires.len() + 4 * c.forms.offsets.len() + 64);
    section(&mut o, SECTIONS[0], |o| {
        put_len(o, n, "node array")?;
        for nd in &c.nodes {
            o.push(match nd {
                Node::False => KIND_FALSE,
                Node::Input(_) => KIND_INPUT,
                Node::Gate { .. } => KIND_GATE,
            });
        }
        for nd in &c.nodes {
            put_u32(
                o,
                match *nd {
                    Node::False => 0,
                    Node::Input(i) => i,
                    Node::Gate { form, .. } => form.0,
                },
            );
        }
        for nd in &c.nodes {
            if let Node::Gate { threshold, .. } = *nd {
                put_i64(o, threshold);
            }
        }
        for &l in &c.levels {
            put_u32(o, l);
        }
        for r in &c.node_region {
            put_u32(o, r.0);
        }
        Ok(())
    })?;
    section(&mut o, SECTIONS[1], |o| {
        put_len(o, c.forms.len(), "form array")?;
        put_len(o, c.forms.wires.len(), "form term array")?;
        for &x in &c.forms.offsets {
            put_u32(o, x);
        }
        for w in &c.forms.wires {
            put_u32(o, w.0);
        }
        for &w in &c.forms.weights {
            put_i64(o, w);
        }
        Ok(())
    })?;
    section(&mut o, SECTIONS[2], |o| {
        put_len(o, c.inputs.len(), "input word list")?;
        for w in &c.inputs {
            put_str(o, &w.name)?;
            put_len(o, w.bits.len(), "input word")?;
            for b in &w.bits {
                put_u32(o, b.0);
            }
        }
        Ok(())
    })?;
    section(&mut o, SECTIONS[3], |o| {
        put_len(o, c.outputs.len(), "output word list")?;
        for w in &c.outputs {
            put_str(o, &w.name)?;
            put_len(o, w.bits.len(), "output word")?;
            for b in &w.bits {
                put_u32(o, b.0);
            }
        }
        Ok(())
    })?;
    section(&mut o, SECTIONS[4], |o| {
        put_len(o, c.regions.len(), "region list")?;
        for r in &c.regions {
            put_str(o, &r.name)?;
            put_u32(o, r.parent.map_or(NO_PARENT, |p| p.0));
        }
        Ok(())
    })?;
    Ok(o)
}

fn header(payload: &[u8]) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&0u32.to_le_bytes());
    h[16..24].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    h[24..32].copy_from_slice(&fnv1a64(payload).to_le_bytes());
    let hc = fnv1a64(&h[0..32]);
    h[32..40].copy_from_slice(&hc.to_le_bytes());
    h
}

// ------------------------------------------------------------------------------------ reading

/// A bounds-checked little-endian reader over the payload.
struct Cur<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cur<'a> {
    fn err(&self, what: impl Into<String>) -> FileError {
        FileError::Malformed {
            offset: self.pos as u64,
            what: what.into(),
        }
    }
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    fn bytes(&mut self, n: usize, what: &str) -> Result<&'a [u8], FileError> {
        if n > self.remaining() {
            return Err(self.err(format!(
                "{what}: {n} bytes needed, {} remain",
                self.remaining()
            )));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u32(&mut self, what: &str) -> Result<u32, FileError> {
        let b = self.bytes(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self, what: &str) -> Result<u64, FileError> {
        let b = self.bytes(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    /// `n` elements of `size` bytes each, checked against the remaining bytes before use.
    fn array(&mut self, n: usize, size: usize, what: &str) -> Result<&'a [u8], FileError> {
        let total = n
            .checked_mul(size)
            .ok_or_else(|| self.err(format!("{what}: length {n} overflows")))?;
        self.bytes(total, what)
    }
    fn u32s(&mut self, n: usize, what: &str) -> Result<Vec<u32>, FileError> {
        let b = self.array(n, 4, what)?;
        Ok(b.chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
    fn i64s(&mut self, n: usize, what: &str) -> Result<Vec<i64>, FileError> {
        let b = self.array(n, 8, what)?;
        Ok(b.chunks_exact(8)
            .map(|c| {
                let mut a = [0u8; 8];
                a.copy_from_slice(c);
                i64::from_le_bytes(a)
            })
            .collect())
    }
    fn string(&mut self, what: &str) -> Result<String, FileError> {
        let n = self.u32(what)? as usize;
        let at = self.pos;
        let b = self.bytes(n, what)?;
        String::from_utf8(b.to_vec()).map_err(|_| FileError::Malformed {
            offset: at as u64,
            what: format!("{what} is not valid UTF-8"),
        })
    }
    /// Enter the next section, which must be `tag`; returns a cursor over its contents.
    fn section(&mut self, tag: [u8; 4]) -> Result<Cur<'a>, FileError> {
        let t = self.bytes(4, "section tag")?;
        if t != tag {
            return Err(self.err(format!(
                "expected section {:?}, found {:?}",
                String::from_utf8_lossy(&tag),
                String::from_utf8_lossy(t)
            )));
        }
        let len = self.u64("section length")?;
        let len = usize::try_from(len).map_err(|_| self.err("section length overflows"))?;
        let body = self.bytes(len, "section contents")?;
        Ok(Cur { buf: body, pos: 0 })
    }
    fn end(&self, tag: [u8; 4]) -> Result<(), FileError> {
        if self.remaining() != 0 {
            return Err(self.err(format!(
                "{} unread bytes at the end of section {:?}",
                self.remaining(),
                String::from_utf8_lossy(&tag)
            )));
        }
        Ok(())
    }
}

/// Parse a version-1 payload into a circuit (structure only; [`validate`] checks invariants).
fn parse_payload(p: &[u8]) -> Result<Circuit, FileError> {
    let mut top = Cur { buf: p, pos: 0 };

    let mut s = top.section(SECTIONS[0])?;
    let n = s.u32("node count")? as usize;
    let kinds = s.array(n, 1, "node kinds")?;
    let args = s.u32s(n, "node arguments")?;
    let num_gates = kinds.iter().filter(|&&k| k == KIND_GATE).count();
    let thresholds = s.i64s(num_gates, "thresholds")?;
    let levels = s.u32s(n, "levels")?;
    let regions_of = s.u32s(n, "node regions")?;
    s.end(SECTIONS[0])?;
    let mut nodes = Vec::with_capacity(n);
    let mut ti = 0;
    for (i, (&k, &a)) in kinds.iter().zip(&args).enumerate() {
        nodes.push(match k {
            KIND_FALSE => Node::False,
            KIND_INPUT => Node::Input(a),
            KIND_GATE => {
                ti += 1;
                Node::Gate {
                    form: FormId(a),
                    threshold: thresholds[ti - 1],
                }
            }
            _ => {
                return Err(FileError::Malformed {
                    offset: 4 + i as u64,
                    what: format!("node {i} has unknown kind {k}"),
                })
            }
        });
    }

    let mut s = top.section(SECTIONS[1])?;
    let nf = s.u32("form count")? as usize;
    let nt = s.u32("term count")? as usize;
    let offsets = s.u32s(
        nf.checked_add(1)
            .ok_or_else(|| s.err("form count overflows"))?,
        "form offsets",
    )?;
    let wires = s.u32s(nt, "form wires")?.into_iter().map(Wire).collect();
    let weights = s.i64s(nt, "form weights")?;
    s.end(SECTIONS[1])?;
    let forms = Forms {
        offsets,
        wires,
        weights,
    };

    let mut words = |tag: [u8; 4], kind: &str| -> Result<Vec<Word<u32>>, FileError> {
        let mut s = top.section(tag)?;
        let nw = s.u32(kind)? as usize;
        // Each word needs at least 8 bytes (name length and bit count).
        if nw > s.remaining() / 8 {
            return Err(s.err(format!("{kind}: {nw} words cannot fit")));
        }
        let mut out = Vec::with_capacity(nw);
        for _ in 0..nw {
            let name = s.string("word name")?;
            let nb = s.u32("word width")? as usize;
            let bits = s.u32s(nb, "word bits")?;
            out.push(Word { name, bits });
        }
        s.end(tag)?;
        Ok(out)
    };
    let inputs = words(SECTIONS[2], "input words")?
        .into_iter()
        .map(|w| Word {
            name: w.name,
            bits: w.bits.into_iter().map(Wire).collect(),
        })
        .collect();
    let outputs = words(SECTIONS[3], "output words")?
        .into_iter()
        .map(|w| Word {
            name: w.name,
            bits: w.bits.into_iter().map(Lit).collect(),
        })
        .collect();

    let mut s = top.section(SECTIONS[4])?;
    let nr = s.u32("region count")? as usize;
    if nr > s.remaining() / 8 {
        return Err(s.err(format!("{nr} regions cannot fit")));
    }
    let mut regions = Vec::with_capacity(nr);
    for _ in 0..nr {
        let name = s.string("region name")?;
        let parent = s.u32("region parent")?;
        regions.push(Region {
            name,
            parent: (parent != NO_PARENT).then_some(RegionId(parent)),
        });
    }
    s.end(SECTIONS[4])?;
    if top.remaining() != 0 {
        return Err(top.err("unknown data after the last section"));
    }

    Ok(Circuit {
        nodes,
        levels,
        forms,
        inputs,
        outputs,
        regions,
        node_region: regions_of.into_iter().map(RegionId).collect(),
    })
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

/// Check every invariant of a [`Circuit`] (see its documentation and that of
/// [`super::netlist::Forms`]), so that evaluators, the levelizer and the statistics can rely on
/// them without checking again:
///
/// - at least one node and at most [`MAX_NODES`]; `levels` and `node_region` have one entry per
///   node; node 0 and only node 0 is `False`; inputs are numbered `0, 1, 2, ...` in node order;
/// - forms: `offsets` starts at 0, never decreases and ends at the term count; every form has
///   at least one term, wires strictly increasing, none is wire 0 or out of range, no zero
///   weight, the first weight positive, gcd of the weights 1, sum of |weights| at most 2^62;
/// - every gate reads an existing form whose wires all precede the gate (so node order is a
///   topological order), its |threshold| is at most 2^62, and its level is `1 + max` of its
///   inputs' levels; inputs and the constant have level 0;
/// - input words list exactly the input wires in input-number order; input word names are
///   distinct, output word names are distinct, output literals name existing wires;
/// - region 0 is the root (empty name, no parent); every other region has a non-empty name
///   without '.', a parent with a smaller index, and a name unique among its siblings; every
///   node's region exists.
pub fn validate(c: &Circuit) -> Result<(), FileError> {
    check_arrays(c)?;
    let form_max_wire = check_forms(c)?;
    let input_wires = check_nodes(c, &form_max_wire)?;
    check_words(c, &input_wires)?;
    check_regions(c)
}

fn bad<T>(m: String) -> Result<T, FileError> {
    Err(FileError::Invalid(m))
}

/// Node count and the per-node arrays' lengths.
fn check_arrays(c: &Circuit) -> Result<(), FileError> {
    let n = c.nodes.len();
    if n == 0 {
        return bad("no nodes (node 0 must be the constant false)".into());
    }
    if n as u64 > MAX_NODES {
        return bad(format!("{n} nodes exceed the limit of {MAX_NODES}"));
    }
    if c.levels.len() != n || c.node_region.len() != n {
        return bad(format!(
            "{n} nodes but {} levels and {} node regions",
            c.levels.len(),
            c.node_region.len()
        ));
    }
    Ok(())
}

/// Every form's invariants; returns each form's largest wire.
fn check_forms(c: &Circuit) -> Result<Vec<u32>, FileError> {
    let n = c.nodes.len();
    // Forms.
    let f = &c.forms;
    let nf = f.offsets.len().wrapping_sub(1);
    if f.offsets.is_empty() || f.offsets[0] != 0 {
        return bad("form offsets must start with 0".into());
    }
    if f.wires.len() != f.weights.len() || f.offsets[nf] as usize != f.wires.len() {
        return bad(format!(
            "form offsets end at {} but there are {} wires and {} weights",
            f.offsets[nf],
            f.wires.len(),
            f.weights.len()
        ));
    }
    let mut form_max_wire = Vec::with_capacity(nf);
    for k in 0..nf {
        let (a, b) = (f.offsets[k] as usize, f.offsets[k + 1] as usize);
        if b <= a || b > f.wires.len() {
            return bad(format!("form {k} has no terms or offsets out of order"));
        }
        let (ws, wt) = (&f.wires[a..b], &f.weights[a..b]);
        let mut sum: u128 = 0;
        let mut g = 0u64;
        for j in 0..ws.len() {
            if ws[j].0 == 0 || ws[j].index() >= n {
                return bad(format!("form {k} reads wire {} (of {n})", ws[j].0));
            }
            if j > 0 && ws[j] <= ws[j - 1] {
                return bad(format!("form {k}'s wires are not strictly increasing"));
            }
            if wt[j] == 0 {
                return bad(format!("form {k} has a zero weight"));
            }
            sum += wt[j].unsigned_abs() as u128;
            g = gcd(g, wt[j].unsigned_abs());
        }
        if wt[0] < 0 {
            return bad(format!("form {k}'s first weight is negative"));
        }
        if g != 1 {
            return bad(format!("form {k}'s weights have gcd {g}, not 1"));
        }
        if sum > MAX_WEIGHT_SUM as u128 {
            return bad(format!("form {k}'s sum of |weights| {sum} exceeds 2^62"));
        }
        form_max_wire.push(ws[ws.len() - 1].0);
    }
    Ok(form_max_wire)
}

/// Node kinds, input numbering, gates' forms, thresholds and levels; returns the input wires.
fn check_nodes(c: &Circuit, form_max_wire: &[u32]) -> Result<Vec<u32>, FileError> {
    let f = &c.forms;
    let nf = form_max_wire.len();
    let mut form_level = vec![u32::MAX; nf];
    // Nodes.
    if c.nodes[0] != Node::False {
        return bad("node 0 is not the constant false".into());
    }
    let mut next_input = 0u32;
    let mut input_wires = Vec::new();
    for (w, nd) in c.nodes.iter().enumerate() {
        match *nd {
            Node::False if w == 0 => {}
            Node::False => return bad(format!("node {w} is a second constant false")),
            Node::Input(i) => {
                if i != next_input {
                    return bad(format!(
                        "node {w} is input {i}, expected input {next_input}"
                    ));
                }
                next_input += 1;
                input_wires.push(w as u32);
            }
            Node::Gate { form, threshold } => {
                if form.index() >= nf {
                    return bad(format!("gate {w} reads form {} of {nf}", form.0));
                }
                if form_max_wire[form.index()] as usize >= w {
                    return bad(format!(
                        "gate {w} reads wire {} that does not precede it",
                        form_max_wire[form.index()]
                    ));
                }
                if threshold.unsigned_abs() as u128 > MAX_WEIGHT_SUM as u128 {
                    return bad(format!("gate {w}'s threshold {threshold} exceeds 2^62"));
                }
                // A bank's thresholds share the form: its input level is computed once.
                let lv = match form_level[form.index()] {
                    u32::MAX => {
                        let lv = f
                            .terms(form)
                            .0
                            .iter()
                            .map(|x| c.levels[x.index()])
                            .max()
                            .unwrap_or(0);
                        form_level[form.index()] = lv;
                        lv
                    }
                    lv => lv,
                };
                if c.levels[w] != lv + 1 {
                    return bad(format!(
                        "gate {w} has level {}, its inputs give {}",
                        c.levels[w],
                        lv + 1
                    ));
                }
                continue;
            }
        }
        if c.levels[w] != 0 {
            return bad(format!(
                "node {w} is not a gate but has level {}",
                c.levels[w]
            ));
        }
    }
    Ok(input_wires)
}

/// Input words list exactly the inputs; word names are distinct; outputs read existing wires.
fn check_words(c: &Circuit, input_wires: &[u32]) -> Result<(), FileError> {
    let n = c.nodes.len();
    // Words.
    let mut names = FxHashSet::default();
    let mut k = 0usize;
    for word in &c.inputs {
        if !names.insert(word.name.as_str()) {
            return bad(format!("duplicate input word name {:?}", word.name));
        }
        for b in &word.bits {
            if input_wires.get(k) != Some(&b.0) {
                return bad(format!(
                    "input word {:?} lists wire {}, expected input {k}'s wire",
                    word.name, b.0
                ));
            }
            k += 1;
        }
    }
    if k != input_wires.len() {
        return bad(format!(
            "input words list {k} bits but there are {} inputs",
            input_wires.len()
        ));
    }
    names.clear();
    for word in &c.outputs {
        if !names.insert(word.name.as_str()) {
            return bad(format!("duplicate output word name {:?}", word.name));
        }
        if let Some(l) = word.bits.iter().find(|l| l.wire().index() >= n) {
            return bad(format!(
                "output word {:?} reads wire {} (of {n})",
                word.name,
                l.wire().0
            ));
        }
    }
    Ok(())
}

/// The region tree and every node's region.
fn check_regions(c: &Circuit) -> Result<(), FileError> {
    // Regions.
    let nr = c.regions.len();
    if nr == 0 || !c.regions[0].name.is_empty() || c.regions[0].parent.is_some() {
        return bad("region 0 must be the root (empty name, no parent)".into());
    }
    let mut siblings = FxHashSet::default();
    for (r, reg) in c.regions.iter().enumerate().skip(1) {
        let Some(p) = reg.parent else {
            return bad(format!("region {r} has no parent"));
        };
        if p.index() >= r {
            return bad(format!("region {r}'s parent {} does not precede it", p.0));
        }
        if reg.name.is_empty() || reg.name.contains('.') {
            return bad(format!("region {r} has invalid name {:?}", reg.name));
        }
        if !siblings.insert((p.0, reg.name.as_str())) {
            return bad(format!(
                "region name {:?} repeated under one parent",
                reg.name
            ));
        }
    }
    if let Some(r) = c.node_region.iter().find(|r| r.index() >= nr) {
        return bad(format!("a node is in region {} of {nr}", r.0));
    }
    Ok(())
}

/// Parse and check the 40-byte header; returns the payload length and checksum.
fn check_header(h: &[u8]) -> Result<(u64, u64), FileError> {
    let m = h.len().min(MAGIC.len());
    if h[..m] != MAGIC[..m] {
        return Err(FileError::NotACircuit);
    }
    if h.len() < HEADER_LEN {
        return Err(FileError::Truncated {
            needed: HEADER_LEN as u64,
            got: h.len() as u64,
        });
    }
    let u32_at = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    let u64_at = |i: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&h[i..i + 8]);
        u64::from_le_bytes(a)
    };
    let stored = u64_at(32);
    let computed = fnv1a64(&h[0..32]);
    if stored != computed {
        return Err(FileError::HeaderChecksum { stored, computed });
    }
    let (version, flags) = (u32_at(8), u32_at(12));
    if version != FORMAT_VERSION || flags != 0 {
        return Err(FileError::UnsupportedVersion {
            found: version,
            flags,
            supported: FORMAT_VERSION,
        });
    }
    Ok((u64_at(16), u64_at(24)))
}

fn finish_load(payload: &[u8], len: u64, sum: u64) -> Result<Circuit, FileError> {
    if (payload.len() as u64) < len {
        return Err(FileError::Truncated {
            needed: HEADER_LEN as u64 + len,
            got: HEADER_LEN as u64 + payload.len() as u64,
        });
    }
    let computed = fnv1a64(payload);
    if computed != sum {
        return Err(FileError::ChecksumMismatch {
            stored: sum,
            computed,
        });
    }
    let c = parse_payload(payload)?;
    validate(&c)?;
    Ok(c)
}

impl Circuit {
    /// The circuit as the bytes of a file (header and payload). Fails with
    /// [`FileError::Invalid`] when the circuit violates an invariant (see [`validate`]).
    pub fn to_bytes(&self) -> Result<Vec<u8>, FileError> {
        validate(self)?;
        let p = payload(self)?;
        let mut out = Vec::with_capacity(HEADER_LEN + p.len());
        out.extend_from_slice(&header(&p));
        out.extend_from_slice(&p);
        Ok(out)
    }

    /// Write the circuit in the binary file format to `w`.
    pub fn save(&self, mut w: impl Write) -> Result<(), FileError> {
        validate(self)?;
        let p = payload(self)?;
        w.write_all(&header(&p))?;
        w.write_all(&p)?;
        w.flush()?;
        Ok(())
    }

    /// Read one circuit from `r`, reading no byte past its end. Every check of the module
    /// documentation applies; the payload buffer grows only as bytes actually arrive.
    pub fn load(mut r: impl Read) -> Result<Circuit, FileError> {
        let mut h = [0u8; HEADER_LEN];
        let mut got = 0;
        while got < HEADER_LEN {
            match r.read(&mut h[got..]) {
                Ok(0) => break,
                Ok(k) => got += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        let (len, sum) = check_header(&h[..got])?;
        let mut p = Vec::new();
        r.take(len).read_to_end(&mut p)?;
        finish_load(&p, len, sum)
    }

    /// Parse a circuit from the complete bytes of a file; bytes after the circuit are an error
    /// ([`FileError::TrailingData`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Circuit, FileError> {
        let hl = bytes.len().min(HEADER_LEN);
        let (len, sum) = check_header(&bytes[..hl])?;
        let rest = &bytes[HEADER_LEN..];
        if (rest.len() as u64) > len {
            // Checked after the payload checksum would also do; trailing data is reported
            // first only when the payload itself is intact.
            let p = &rest[..len as usize];
            let computed = fnv1a64(p);
            if computed != sum {
                return Err(FileError::ChecksumMismatch {
                    stored: sum,
                    computed,
                });
            }
            return Err(FileError::TrailingData {
                extra: rest.len() as u64 - len,
            });
        }
        finish_load(rest, len, sum)
    }

    /// Save to the file at `path` (created or truncated).
    pub fn save_file(&self, path: impl AsRef<Path>) -> Result<(), FileError> {
        let f = std::fs::File::create(path)?;
        self.save(std::io::BufWriter::new(f))
    }

    /// Load the file at `path`; the whole file must be one circuit. The header is read and
    /// checked first, the payload length it announces is checked against the file's size, and
    /// only then is the payload read (exactly that many bytes): a large file that is not a
    /// circuit is refused after 40 bytes, and a path that is not a regular file (`/dev/zero`, a
    /// pipe, a directory) is refused before anything is read.
    pub fn load_file(path: impl AsRef<Path>) -> Result<Circuit, FileError> {
        let mut f = std::fs::File::open(path)?;
        let size = regular_file_size(&f)?;
        let mut h = [0u8; HEADER_LEN];
        let got = (size.min(HEADER_LEN as u64)) as usize;
        f.read_exact(&mut h[..got])?;
        let (len, sum) = check_header(&h[..got])?;
        let needed = (HEADER_LEN as u64).saturating_add(len);
        if size < needed {
            return Err(FileError::Truncated { needed, got: size });
        }
        // `len <= size`, and the file's bytes exist: the buffer is bounded by the file.
        let mut p = vec![0u8; len as usize];
        f.read_exact(&mut p)?;
        if size > needed {
            let computed = fnv1a64(&p);
            if computed != sum {
                return Err(FileError::ChecksumMismatch {
                    stored: sum,
                    computed,
                });
            }
            return Err(FileError::TrailingData {
                extra: size - needed,
            });
        }
        finish_load(&p, len, sum)
    }
}

/// The size of `f` when it is a regular file; [`FileError::NotARegularFile`] otherwise.
pub fn regular_file_size(f: &std::fs::File) -> Result<u64, FileError> {
    let m = f.metadata()?;
    if m.is_file() {
        return Ok(m.len());
    }
    let kind = if m.is_dir() {
        "a directory"
    } else {
        special_kind(m.file_type())
    };
    Err(FileError::NotARegularFile { kind })
}

#[cfg(unix)]
fn special_kind(t: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_fifo() {
        "a pipe"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

#[cfg(not(unix))]
fn special_kind(_: std::fs::FileType) -> &'static str {
    "not a file"
}

// ------------------------------------------------------------------------------ vector files

/// Longest line of a vector file accepted besides its bits (comments, spaces, a `\r`).
pub const VECTOR_LINE_SLACK: usize = 4096;

/// An error in a vector file (the text format of `tcvar eval` and the Verilog testbench).
#[derive(Error, Debug)]
pub enum VectorError {
    /// An I/O error of the underlying reader.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A line longer than the bits plus [`VECTOR_LINE_SLACK`].
    #[error("line {line} is longer than {max} bytes (the circuit has {width} inputs)")]
    LineTooLong {
        /// 1-based line number.
        line: usize,
        /// The longest line accepted.
        max: usize,
        /// The number of bits per instance.
        width: usize,
    },
    /// A line that is not UTF-8.
    #[error("line {0} is not valid UTF-8")]
    NotUtf8(usize),
    /// A line that is not `width` binary digits.
    #[error(
        "line {line}: expected {expected} binary digits, found {found} characters {shown:?}{more}"
    )]
    BadLine {
        /// 1-based line number.
        line: usize,
        /// Digits expected.
        expected: usize,
        /// Characters found.
        found: usize,
        /// The line's first 40 characters.
        shown: String,
        /// "..." when the line is longer than what is shown.
        more: &'static str,
    },
    /// No vector at all.
    #[error("no input vectors (one line of {0} binary digits per instance)")]
    Empty(usize),
}

/// Parse a vector file of `width`-bit instances: one instance per line, one character `0`/`1`
/// per bit, the last character being bit 0; empty lines and lines starting with `#` are
/// skipped; an instance of a circuit without inputs is a line holding a single `0` (or `1`).
/// At least one vector is required. Never reads a line longer than `width + `
/// [`VECTOR_LINE_SLACK`] bytes into memory, so memory stays within a small multiple of the
/// vectors themselves whatever the input.
pub fn parse_vectors(
    mut r: impl std::io::BufRead,
    width: usize,
) -> Result<Vec<Vec<bool>>, VectorError> {
    let max = width.max(1) + VECTOR_LINE_SLACK;
    let mut out = Vec::new();
    let mut buf = Vec::new();
    for line in 1.. {
        buf.clear();
        let n = (&mut r).take(max as u64 + 1).read_until(b'\n', &mut buf)?;
        if n == 0 {
            break;
        }
        if buf.len() > max && buf.last() != Some(&b'\n') {
            return Err(VectorError::LineTooLong { line, max, width });
        }
        let text = std::str::from_utf8(&buf).map_err(|_| VectorError::NotUtf8(line))?;
        let t = text.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        out.push(
            parse_vector_line(t, width).ok_or_else(|| VectorError::BadLine {
                line,
                expected: width.max(1),
                found: t.chars().count(),
                shown: t.chars().take(40).collect(),
                more: if t.chars().nth(40).is_some() {
                    "..."
                } else {
                    ""
                },
            })?,
        );
    }
    if out.is_empty() {
        return Err(VectorError::Empty(width.max(1)));
    }
    Ok(out)
}

/// One instance: exactly `max(width, 1)` characters `0`/`1`, the last one bit 0.
fn parse_vector_line(t: &str, width: usize) -> Option<Vec<bool>> {
    if t.len() != width.max(1) {
        return None;
    }
    let mut bits: Vec<bool> = t
        .bytes()
        .rev()
        .map(|c| match c {
            b'0' => Some(false),
            b'1' => Some(true),
            _ => None,
        })
        .collect::<Option<_>>()?;
    bits.truncate(width);
    Some(bits)
}
