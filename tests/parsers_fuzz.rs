//! Mutation fuzzing of the parsers of untrusted files, bounded to a few hundred cases each so it
//! runs in CI: the circuit file reader (with the checksums recomputed after each mutation, so
//! that the structural parser and the invariant checks see the mutated bytes, not just the
//! checksum test) and the vector file reader. Properties: no panic; a result that is accepted
//! is safe to use (a circuit that loads levelizes and evaluates, and saves and loads back to
//! the same circuit; vectors have the declared width).

mod common;

use proptest::prelude::*;
use tcvar::circuit::serial::{parse_vectors, HEADER_LEN};
use tcvar::circuit::{Builder, Circuit, Lit};

use common::checksum::fnv;

/// A small circuit with words, a weighted bank, negative weights and nested regions.
fn sample() -> Circuit {
    let mut b = Builder::new();
    let x = b.input_word("x", 3).unwrap();
    let y = b.input_word("y", 2).unwrap();
    b.push_region("alu").unwrap();
    let a = b.and2(x[0], !x[1]).unwrap();
    let bank = b
        .bank(&[(x[0], 5), (x[1], -3), (x[2], 7), (y[0], 2)], &[-2, 1, 6])
        .unwrap();
    b.pop_region().unwrap();
    let m = b.majority(&[a, bank[0], bank[1], y[1], x[2]]).unwrap();
    b.output_word("out", &[m, !a, bank[2], Lit::TRUE]).unwrap();
    b.finish()
}

/// Rewrite the header's payload length and both checksums for the current payload.
fn reseal(bytes: &mut [u8]) {
    if bytes.len() < HEADER_LEN {
        return;
    }
    let len = (bytes.len() - HEADER_LEN) as u64;
    bytes[16..24].copy_from_slice(&len.to_le_bytes());
    let sum = fnv(&bytes[HEADER_LEN..]);
    bytes[24..32].copy_from_slice(&sum.to_le_bytes());
    let hs = fnv(&bytes[0..32]);
    bytes[32..40].copy_from_slice(&hs.to_le_bytes());
}

/// One mutation of a byte string.
#[derive(Clone, Debug)]
enum Mutation {
    Set(usize, u8),
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    /// A little-endian u32 (a count or an index) set to a boundary value.
    Word(usize, u32),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<usize>(), 0u8..8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, v)| Mutation::Insert(i, v)),
        (any::<usize>(), 1usize..32).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (
            any::<usize>(),
            prop_oneof![
                Just(0u32),
                Just(1),
                Just(u32::MAX),
                Just(u32::MAX - 1),
                Just(1 << 31),
                any::<u32>()
            ]
        )
            .prop_map(|(i, v)| Mutation::Word(i, v)),
    ]
}

/// Apply `m` to `v` at positions at or after `from` (positions taken modulo the length).
fn apply(v: &mut Vec<u8>, m: &Mutation, from: usize) {
    let span = v.len().saturating_sub(from);
    if span == 0 {
        return;
    }
    let at = |i: usize| from + i % span;
    match m {
        Mutation::Set(i, b) => {
            let k = at(*i);
            v[k] = *b;
        }
        Mutation::Flip(i, b) => {
            let k = at(*i);
            v[k] ^= 1 << b;
        }
        Mutation::Insert(i, bytes) => {
            let k = at(*i);
            v.splice(k..k, bytes.iter().copied());
        }
        Mutation::Delete(i, n) => {
            let k = at(*i);
            let e = (k + n).min(v.len());
            v.drain(k..e);
        }
        Mutation::Word(i, w) => {
            let k = at(*i);
            let e = (k + 4).min(v.len());
            v[k..e].copy_from_slice(&w.to_le_bytes()[..e - k]);
        }
    }
}

/// What an accepted circuit must allow: levelize, evaluate, save back identically.
fn check_accepted(c: &Circuit, bytes: &[u8]) {
    let lv = c.levelize();
    let _ = lv.depth();
    let inputs = vec![true; c.num_inputs()];
    let _ = c.eval_single(&inputs);
    // Saving is canonical, the file format is not quite (ignored fields such as a non-gate's
    // argument may hold anything): what was loaded saves and loads back to the same circuit.
    let again = c.to_bytes().expect("a loaded circuit saves");
    assert_eq!(
        &Circuit::from_bytes(&again).expect("a saved circuit loads"),
        c
    );
    let _ = bytes;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    /// Mutated payloads with valid checksums: the structural parser and the invariant checks.
    #[test]
    fn circuit_payload_mutations_never_panic(ms in prop::collection::vec(mutation(), 1..4)) {
        let mut bytes = sample().to_bytes().unwrap();
        for m in &ms {
            apply(&mut bytes, m, HEADER_LEN);
        }
        reseal(&mut bytes);
        if let Ok(c) = Circuit::from_bytes(&bytes) {
            check_accepted(&c, &bytes);
        }
    }

    /// Mutations anywhere, checksums left as they are: header checks, truncation, trailing data.
    #[test]
    fn circuit_file_mutations_never_panic(ms in prop::collection::vec(mutation(), 1..4)) {
        let mut bytes = sample().to_bytes().unwrap();
        for m in &ms {
            apply(&mut bytes, m, 0);
        }
        if let Ok(c) = Circuit::from_bytes(&bytes) {
            check_accepted(&c, &bytes);
        }
        // The streaming reader accepts whatever the whole-file reader accepts.
        if Circuit::from_bytes(&bytes).is_ok() {
            prop_assert!(Circuit::load(&bytes[..]).is_ok());
        }
    }

    /// Vector files: mutations of a valid file and arbitrary bytes. Accepted vectors have the
    /// declared width; an unmutated file reads back exactly.
    #[test]
    fn vector_file_mutations_never_panic(
        width in 0usize..24,
        rows in prop::collection::vec(any::<u32>(), 1..6),
        ms in prop::collection::vec(mutation(), 0..4),
    ) {
        let mut text = String::from("# vectors\n");
        let mut want = Vec::new();
        for r in &rows {
            let bits: Vec<bool> = (0..width).map(|i| r >> (i % 32) & 1 == 1).collect();
            let line: String = if width == 0 {
                "0".into()
            } else {
                bits.iter().rev().map(|&b| if b { '1' } else { '0' }).collect()
            };
            text.push_str(&line);
            text.push_str(if r % 3 == 0 { "\r\n" } else { "\n" });
            want.push(bits);
        }
        let mut bytes = text.into_bytes();
        for m in &ms {
            apply(&mut bytes, m, 0);
        }
        match parse_vectors(&bytes[..], width) {
            Ok(v) => {
                prop_assert!(v.iter().all(|x| x.len() == width));
                if ms.is_empty() {
                    prop_assert_eq!(v, want);
                }
            }
            Err(e) => {
                prop_assert!(!ms.is_empty(), "a valid file was refused: {}", e);
                prop_assert!(!e.to_string().contains('\n'));
            }
        }
    }

    #[test]
    fn vector_parser_on_arbitrary_bytes(width in 0usize..64, bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(v) = parse_vectors(&bytes[..], width) {
            prop_assert!(!v.is_empty() && v.iter().all(|x| x.len() == width));
        }
    }
}

/// Lines longer than the width plus the slack are refused without being read whole.
#[test]
fn endless_vector_line_is_refused() {
    let endless = std::io::repeat(b'0');
    let e = parse_vectors(std::io::BufReader::new(endless), 8).unwrap_err();
    assert!(e.to_string().contains("longer than"), "{e}");
}
