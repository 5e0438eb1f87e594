//! The circuit file format: round trips, and a clear error (never a panic) for truncated,
//! corrupted, wrong-version, foreign and crafted files.

mod common;

use tcvar::circuit::serial::{validate, FileError, FORMAT_VERSION, HEADER_LEN, MAGIC};
use tcvar::circuit::{Builder, Circuit, FormId, Lit, Node, RegionId, Wire};

use common::checksum::fnv;

/// A small circuit with inputs, AND/OR/majority/xor, a weighted bank, negative weights,
/// constant and complemented outputs, and nested regions.
fn sample() -> Circuit {
    let mut b = Builder::new();
    let x = b.input_word("x", 4).unwrap();
    let y = b.input_word("y", 2).unwrap();
    b.push_region("alu").unwrap();
    let a = b.and2(x[0], !x[1]).unwrap();
    b.push_region("cmp").unwrap();
    let terms = [
        (x[0], 5),
        (x[1], -3),
        (x[2], 7),
        (y[0], 1 << 40),
        (y[1], -(1 << 39)),
    ];
    let bank = b.bank(&terms, &[-2, 1, 6, 1 << 39]).unwrap();
    b.pop_region().unwrap();
    let m = b.majority(&[a, bank[0], bank[1], x[3], y[1]]).unwrap();
    b.pop_region().unwrap();
    let p = b.xor(&[x[0], x[2], y[0]]).unwrap();
    let q = b.mux(y[1], m, p).unwrap();
    b.output_word("out", &[q, !m, bank[2], bank[3], Lit::TRUE, !a])
        .unwrap();
    b.output_word("z", &[Lit::FALSE]).unwrap();
    b.finish()
}

fn with_checksums(mut file: Vec<u8>) -> Vec<u8> {
    let pl = fnv(&file[HEADER_LEN..]);
    file[24..32].copy_from_slice(&pl.to_le_bytes());
    let hc = fnv(&file[0..32]);
    file[32..40].copy_from_slice(&hc.to_le_bytes());
    file
}

/// A file around an arbitrary payload, with correct header and checksums.
fn wrap(payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&MAGIC);
    f.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    f.extend_from_slice(&0u32.to_le_bytes());
    f.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    f.extend_from_slice(&[0; 16]);
    f.extend_from_slice(payload);
    with_checksums(f)
}

fn all_inputs(n: usize) -> impl Iterator<Item = Vec<bool>> {
    (0u64..1 << n).map(move |v| (0..n).map(|i| v >> i & 1 == 1).collect())
}

/// Exercise a loaded circuit the way evaluators do: it must not panic.
fn exercise(c: &Circuit) {
    let lv = c.levelize();
    assert_eq!(lv.depth(), c.depth());
    let _ = c.stats();
    let _ = c.region_stats();
    let n = c.num_inputs();
    if n <= 8 {
        for v in all_inputs(n) {
            c.eval_single(&v).unwrap();
        }
    }
}

#[test]
fn round_trip_bytes_reader_and_file() {
    let c = sample();
    validate(&c).unwrap();
    let bytes = c.to_bytes().unwrap();
    assert_eq!(&bytes[..8], b"TCVARCIR");
    let back = Circuit::from_bytes(&bytes).unwrap();
    assert_eq!(back, c);
    for v in all_inputs(c.num_inputs()) {
        assert_eq!(back.eval_single(&v), c.eval_single(&v));
    }
    // save() writes exactly to_bytes(); load() reads one circuit and stops at its end.
    let mut stream = Vec::new();
    c.save(&mut stream).unwrap();
    assert_eq!(stream, bytes);
    c.save(&mut stream).unwrap();
    stream.extend_from_slice(b"tail");
    let mut r = std::io::Cursor::new(&stream);
    assert_eq!(Circuit::load(&mut r).unwrap(), c);
    assert_eq!(Circuit::load(&mut r).unwrap(), c);
    assert_eq!(r.position() as usize, 2 * bytes.len());
    let path = std::env::temp_dir().join(format!("tcvar_serial_{}.tcc", std::process::id()));
    c.save_file(&path).unwrap();
    assert_eq!(Circuit::load_file(&path).unwrap(), c);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn round_trip_empty_and_input_only_circuits() {
    let c = Builder::new().finish();
    assert_eq!(Circuit::from_bytes(&c.to_bytes().unwrap()).unwrap(), c);
    let mut b = Builder::new();
    let x = b.input_word("", 0).unwrap();
    assert!(x.is_empty());
    let y = b.input_word("ünïcode ✓", 3).unwrap();
    b.output_word("o", &[y[2], !y[0]]).unwrap();
    let c = b.finish();
    assert_eq!(Circuit::from_bytes(&c.to_bytes().unwrap()).unwrap(), c);
}

#[test]
fn the_documented_header_layout() {
    let c = sample();
    let bytes = c.to_bytes().unwrap();
    let u64_at = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().unwrap());
    assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), 1);
    assert_eq!(u32::from_le_bytes(bytes[12..16].try_into().unwrap()), 0);
    assert_eq!(u64_at(16) as usize, bytes.len() - HEADER_LEN);
    assert_eq!(u64_at(24), fnv(&bytes[HEADER_LEN..]));
    assert_eq!(u64_at(32), fnv(&bytes[..32]));
    assert_eq!(&bytes[40..44], b"NODE");
    // FNV-1a 64 of "a", a published test vector.
    assert_eq!(fnv(b"a"), 0xaf63dc4c8601ec8c);
    assert_eq!(tcvar::circuit::serial::fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
}

#[test]
fn every_truncation_is_reported_as_truncated() {
    let bytes = sample().to_bytes().unwrap();
    for len in 0..bytes.len() {
        let e = Circuit::from_bytes(&bytes[..len]).unwrap_err();
        assert!(
            matches!(e, FileError::Truncated { got, .. } if got == len as u64),
            "length {len}: {e}"
        );
        let e = Circuit::load(&bytes[..len]).unwrap_err();
        assert!(
            matches!(e, FileError::Truncated { .. }),
            "load, length {len}: {e}"
        );
    }
}

#[test]
fn every_flipped_byte_is_detected() {
    let bytes = sample().to_bytes().unwrap();
    for i in 0..bytes.len() {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut f = bytes.clone();
            f[i] ^= mask;
            let e = Circuit::from_bytes(&f).unwrap_err();
            let ok = match i {
                0..8 => matches!(e, FileError::NotACircuit),
                8..40 => matches!(e, FileError::HeaderChecksum { .. }),
                _ => matches!(e, FileError::ChecksumMismatch { .. }),
            };
            assert!(ok, "byte {i} ^ {mask:#x}: {e}");
            assert!(Circuit::load(&f[..]).is_err());
        }
    }
}

#[test]
fn wrong_version_foreign_file_and_trailing_data() {
    let bytes = sample().to_bytes().unwrap();
    for (version, flags) in [(2u32, 0u32), (0, 0), (u32::MAX, 0), (1, 1)] {
        let mut f = bytes.clone();
        f[8..12].copy_from_slice(&version.to_le_bytes());
        f[12..16].copy_from_slice(&flags.to_le_bytes());
        let e = Circuit::from_bytes(&with_checksums(f)).unwrap_err();
        assert!(
            matches!(e, FileError::UnsupportedVersion { found, flags: fl, supported: 1 } if found == version && fl == flags),
            "{e}"
        );
    }
    for foreign in [
        &b"\x89PNG\r\n\x1a\n0000000000000000000000000000000000000000"[..],
        b"hello, world",
        b"TCVARCIX",
        b"\0",
    ] {
        let e = Circuit::from_bytes(foreign).unwrap_err();
        assert!(matches!(e, FileError::NotACircuit), "{e}");
    }
    let mut f = bytes.clone();
    f.push(0);
    assert!(matches!(
        Circuit::from_bytes(&f),
        Err(FileError::TrailingData { extra: 1 })
    ));
    let e = Circuit::load_file("/nonexistent/tcvar/file.tcc").unwrap_err();
    assert!(matches!(e, FileError::Io(_)));
}

#[test]
fn crafted_payloads_with_valid_checksums_are_malformed_not_panics() {
    // Huge counts must be rejected before allocation.
    let mut p = Vec::new();
    p.extend_from_slice(b"NODE");
    p.extend_from_slice(&8u64.to_le_bytes());
    p.extend_from_slice(&u32::MAX.to_le_bytes());
    p.extend_from_slice(&[0; 4]);
    let e = Circuit::from_bytes(&wrap(&p)).unwrap_err();
    assert!(matches!(e, FileError::Malformed { .. }), "{e}");
    // A section length beyond the payload.
    let mut p = Vec::new();
    p.extend_from_slice(b"NODE");
    p.extend_from_slice(&u64::MAX.to_le_bytes());
    let e = Circuit::from_bytes(&wrap(&p)).unwrap_err();
    assert!(matches!(e, FileError::Malformed { .. }), "{e}");
    // Empty payload, wrong section tag.
    assert!(matches!(
        Circuit::from_bytes(&wrap(&[])),
        Err(FileError::Malformed { .. })
    ));
    let mut p = sample().to_bytes().unwrap()[HEADER_LEN..].to_vec();
    p[0] = b'X';
    assert!(matches!(
        Circuit::from_bytes(&wrap(&p)),
        Err(FileError::Malformed { .. })
    ));
    // Every single-byte change of the payload, with checksums fixed up: an error or a circuit
    // that passes validation and can be levelized and evaluated without panicking.
    let base = sample().to_bytes().unwrap()[HEADER_LEN..].to_vec();
    let mut accepted = 0;
    for i in 0..base.len() {
        for mask in [0x01u8, 0x40, 0xff] {
            let mut p = base.clone();
            p[i] ^= mask;
            match Circuit::from_bytes(&wrap(&p)) {
                Ok(c) => {
                    validate(&c).unwrap();
                    exercise(&c);
                    accepted += 1;
                }
                Err(FileError::Malformed { .. }) | Err(FileError::Invalid(_)) => {}
                Err(e) => panic!("byte {i} ^ {mask:#x}: unexpected {e}"),
            }
        }
    }
    // Some changes (names, thresholds) legitimately give another valid circuit.
    assert!(accepted > 0);
}

#[test]
fn a_wrong_level_in_a_file_is_invalid() {
    let c = sample();
    let mut f = c.to_bytes().unwrap();
    // NODE section: tag, u64 length, u32 n, n kinds, n u32 args, gates i64 thresholds, levels.
    let n = c.nodes.len();
    let gates = c.num_gates();
    let levels_at = HEADER_LEN + 16 + n + 4 * n + 8 * gates;
    let last = levels_at + 4 * (n - 1);
    let lv = u32::from_le_bytes(f[last..last + 4].try_into().unwrap());
    assert_eq!(lv, c.levels[n - 1]);
    f[last..last + 4].copy_from_slice(&(lv + 1).to_le_bytes());
    let e = Circuit::from_bytes(&with_checksums(f)).unwrap_err();
    assert!(
        matches!(e, FileError::Invalid(ref m) if m.contains("level")),
        "{e}"
    );
}

/// Mutate a valid circuit in memory; `validate` (and therefore `save`) must reject each.
#[test]
fn validate_rejects_every_broken_invariant() {
    let c = sample();
    let first_gate = c
        .nodes
        .iter()
        .position(|n| matches!(n, Node::Gate { .. }))
        .unwrap();
    let Node::Gate { form, .. } = c.nodes[first_gate] else {
        unreachable!()
    };
    let r0 = c.forms.offsets[form.index()] as usize;
    type Mutation = Box<dyn Fn(&mut Circuit)>;
    let cases: Vec<(&str, Mutation)> = vec![
        ("no nodes", Box::new(|c| c.nodes.clear())),
        (
            "levels length",
            Box::new(|c| {
                c.levels.pop();
            }),
        ),
        (
            "node 0 not false",
            Box::new(|c| c.nodes[0] = Node::Input(0)),
        ),
        (
            "second false",
            Box::new(move |c| c.nodes[first_gate] = Node::False),
        ),
        ("input numbering", Box::new(|c| c.nodes[2] = Node::Input(5))),
        (
            "gate form out of range",
            Box::new(move |c| {
                c.nodes[first_gate] = Node::Gate {
                    form: FormId(9999),
                    threshold: 1,
                }
            }),
        ),
        (
            "forward wire",
            Box::new(move |c| {
                let last = c.nodes.len() as u32 - 1;
                let e = c.forms.offsets[form.index() + 1] as usize - 1;
                c.forms.wires[e] = Wire(last);
            }),
        ),
        (
            "wire 0 in a form",
            Box::new(move |c| c.forms.wires[r0] = Wire(0)),
        ),
        (
            "unsorted wires",
            Box::new(move |c| c.forms.wires.swap(r0, r0 + 1)),
        ),
        (
            "zero weight",
            Box::new(move |c| c.forms.weights[r0 + 1] = 0),
        ),
        (
            "negative first weight",
            Box::new(move |c| c.forms.weights[r0] = -c.forms.weights[r0]),
        ),
        (
            "gcd",
            Box::new(move |c| {
                let e = c.forms.offsets[form.index() + 1] as usize;
                for w in &mut c.forms.weights[r0..e] {
                    *w *= 2;
                }
            }),
        ),
        (
            "weight sum",
            Box::new(move |c| c.forms.weights[r0 + 1] = 1 << 62),
        ),
        (
            "threshold",
            Box::new(move |c| {
                c.nodes[first_gate] = Node::Gate {
                    form,
                    threshold: i64::MIN,
                }
            }),
        ),
        ("offsets", Box::new(|c| c.forms.offsets[0] = 1)),
        (
            "empty form",
            Box::new(|c| {
                let last = *c.forms.offsets.last().unwrap();
                c.forms.offsets.push(last);
            }),
        ),
        ("level", Box::new(move |c| c.levels[first_gate] += 1)),
        ("input level", Box::new(|c| c.levels[1] = 1)),
        (
            "input word wire",
            Box::new(|c| c.inputs[0].bits[0] = Wire(2)),
        ),
        (
            "input word missing",
            Box::new(|c| {
                c.inputs.pop();
            }),
        ),
        (
            "duplicate input name",
            Box::new(|c| c.inputs[1].name = "x".into()),
        ),
        (
            "duplicate output name",
            Box::new(|c| c.outputs[1].name = "out".into()),
        ),
        (
            "output wire",
            Box::new(|c| c.outputs[0].bits[0] = Lit(u32::MAX)),
        ),
        ("root", Box::new(|c| c.regions[0].name = "r".into())),
        (
            "region parent",
            Box::new(|c| c.regions[1].parent = Some(RegionId(1))),
        ),
        (
            "region name",
            Box::new(|c| c.regions[1].name = "a.b".into()),
        ),
        (
            "region sibling",
            Box::new(|c| {
                c.regions[2].parent = Some(RegionId(0));
                c.regions[2].name = c.regions[1].name.clone();
            }),
        ),
        ("node region", Box::new(|c| c.node_region[3] = RegionId(77))),
    ];
    for (what, m) in cases {
        let mut b = c.clone();
        m(&mut b);
        assert!(validate(&b).is_err(), "{what} not detected");
        assert!(matches!(b.to_bytes(), Err(FileError::Invalid(_))), "{what}");
    }
}

/// `load_file` reads the header before anything else and bounds the payload by the file's size:
/// a device is refused without reading (it once grew without bound), and a large file that is
/// not a circuit is refused after its first bytes.
#[test]
fn load_file_refuses_devices_and_checks_the_header_first() {
    #[cfg(unix)]
    assert!(matches!(
        Circuit::load_file("/dev/zero"),
        Err(FileError::NotARegularFile { .. })
    ));
    let dir = std::env::temp_dir().join(format!("tcvar-serial-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    assert!(matches!(
        Circuit::load_file(&dir),
        Err(FileError::NotARegularFile { .. }) | Err(FileError::Io(_))
    ));
    let big = dir.join("big.bin");
    std::fs::File::create(&big)
        .and_then(|f| f.set_len(1 << 40))
        .unwrap();
    assert!(matches!(
        Circuit::load_file(&big),
        Err(FileError::NotACircuit)
    ));
    // A valid header announcing a payload longer than the file.
    let mut bytes = sample().to_bytes().unwrap();
    bytes.truncate(bytes.len() - 3);
    let short = dir.join("short.tcc");
    std::fs::write(&short, &bytes).unwrap();
    assert!(matches!(
        Circuit::load_file(&short),
        Err(FileError::Truncated { .. })
    ));
    // Round trip and trailing data, as from_bytes.
    let good = dir.join("good.tcc");
    sample().save_file(&good).unwrap();
    assert_eq!(Circuit::load_file(&good).unwrap(), sample());
    let mut bytes = sample().to_bytes().unwrap();
    bytes.push(0);
    std::fs::write(&good, &bytes).unwrap();
    assert!(matches!(
        Circuit::load_file(&good),
        Err(FileError::TrailingData { extra: 1 })
    ));
    let _ = std::fs::remove_dir_all(&dir);
}
