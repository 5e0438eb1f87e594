//! What `tcvar run --out DIR` writes: `images.png` (a grid of up to 64 images), `tokens.json`
//! (per instance, per scale, the row-major token indices), `images.npy` (float32,
//! `N x C x H x W`, in [0, 1] as the reference implementation returns its images) and
//! `summary.json`.

use std::io::Write;
use std::path::Path;

use tcvar::float::Format;
use tcvar::model::var::config::VarConfig;
use tcvar::model::var::pass::VarOutput;

use crate::common::CliError;

/// Create `dir` and check that a file can be written in it (before any long computation).
pub fn check_writable(dir: &Path) -> Result<(), CliError> {
    let shown = dir.display();
    std::fs::create_dir_all(dir).map_err(|e| CliError::User(format!("--out {shown}: {e}")))?;
    let probe = dir.join(".tcvar-write-test");
    std::fs::write(&probe, b"")
        .map_err(|e| CliError::User(format!("--out {shown}: cannot write there: {e}")))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Decode an image of F(p, q) encodings; an invalid encoding is an error naming where it is
/// (never a silent NaN or zero).
pub fn decode(fmt: Format, bits: &[u64], what: &str) -> Result<Vec<f64>, CliError> {
    bits.iter()
        .enumerate()
        .map(|(i, &b)| {
            fmt.from_bits(b).map(|v| v.to_f64()).map_err(|e| {
                CliError::Failure(format!(
                    "{what}: value {i} ({b:#x}) is not an {fmt} encoding: {e}"
                ))
            })
        })
        .collect()
}

/// The largest `|x - y|` over an image of encodings and its f32 counterpart; an undecodable
/// value is an error.
pub fn max_abs_error(fmt: Format, bits: &[u64], f32s: &[f32], what: &str) -> Result<f64, CliError> {
    if bits.len() != f32s.len() {
        return Err(CliError::Failure(format!(
            "{what}: {} values against {} of the f32 model",
            bits.len(),
            f32s.len()
        )));
    }
    let xs = decode(fmt, bits, what)?;
    Ok(xs
        .iter()
        .zip(f32s)
        .map(|(&x, &f)| (x - f as f64).abs())
        .fold(0.0f64, f64::max))
}

/// The reference implementation's output value of a decoder value `x` (already clamped to
/// [-1, 1] by the pass): `(x + 1) * 0.5` in f32 (`add_(1).mul_(0.5)`), clamped to [0, 1].
pub fn unit(x: f64) -> f32 {
    ((x as f32 + 1.0) * 0.5).clamp(0.0, 1.0)
}

/// The `.npy` (version 1.0) header of a little-endian float32 array of `shape`, padded so that
/// the data starts at a multiple of 64 bytes.
pub fn npy_header(shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let tuple = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {tuple}, }}");
    let unpadded = 10 + dict.len() + 1;
    dict.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    dict.push('\n');
    let mut h = b"\x93NUMPY\x01\x00".to_vec();
    h.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    h.extend_from_slice(dict.as_bytes());
    h
}

fn create(path: &Path) -> Result<std::io::BufWriter<std::fs::File>, CliError> {
    std::fs::File::create(path)
        .map(std::io::BufWriter::new)
        .map_err(|e| CliError::User(format!("cannot write {}: {e}", path.display())))
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> CliError + '_ {
    move |e| CliError::Failure(format!("writing {}: {e}", path.display()))
}

/// Write `images.npy` (float32 `N x C x side x side`, values [`unit`]).
pub fn write_npy(path: &Path, cfg: &VarConfig, outs: &[VarOutput]) -> Result<(), CliError> {
    let side = cfg.image_side();
    let mut f = create(path)?;
    f.write_all(&npy_header(&[outs.len(), cfg.vae_out_ch, side, side]))
        .map_err(io(path))?;
    for (n, o) in outs.iter().enumerate() {
        let xs = decode(cfg.fmt, &o.image, &format!("image {n}"))?;
        for x in xs {
            f.write_all(&unit(x).to_le_bytes()).map_err(io(path))?;
        }
    }
    f.flush().map_err(io(path))
}

/// Write `tokens.json`: `[[scale 0 tokens], [scale 1 tokens], ...]` per instance.
pub fn write_tokens(path: &Path, outs: &[VarOutput]) -> Result<(), CliError> {
    let mut f = create(path)?;
    f.write_all(b"[\n").map_err(io(path))?;
    for (n, o) in outs.iter().enumerate() {
        let line = serde_json::to_string(&o.tokens)
            .map_err(|e| CliError::Failure(format!("tokens.json: {e}")))?;
        let sep = if n + 1 < outs.len() { "," } else { "" };
        writeln!(f, "  {line}{sep}").map_err(io(path))?;
    }
    f.write_all(b"]\n").map_err(io(path))?;
    f.flush().map_err(io(path))
}

/// Write the first (up to) 64 images as one PNG grid.
pub fn png_grid(path: &Path, cfg: &VarConfig, outs: &[VarOutput]) -> Result<(), CliError> {
    let side = cfg.image_side();
    let ch = cfg.vae_out_ch;
    // Small images are magnified (nearest neighbour) to at least 64 pixels a side.
    let zoom = (64 / side.max(1)).max(1);
    let cell = side * zoom;
    let n = outs.len().min(64);
    let cols = (n as f64).sqrt().ceil().max(1.0) as usize;
    let rows = n.div_ceil(cols).max(1);
    let (w, h) = (cols * (cell + 2) + 2, rows * (cell + 2) + 2);
    let mut px = vec![32u8; w * h * 3];
    for (k, o) in outs.iter().take(n).enumerate() {
        let img = decode(cfg.fmt, &o.image, &format!("image {k}"))?;
        let (gx, gy) = (2 + (k % cols) * (cell + 2), 2 + (k / cols) * (cell + 2));
        for y in 0..cell {
            for x in 0..cell {
                for c in 0..3 {
                    let v = img[(c.min(ch - 1)) * side * side + (y / zoom) * side + x / zoom];
                    let u = (unit(v) * 255.0).round() as u8;
                    px[((gy + y) * w + gx + x) * 3 + c] = u;
                }
            }
        }
    }
    let f = create(path)?;
    let mut enc = png::Encoder::new(f, w as u32, h as u32);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut wr = enc
        .write_header()
        .map_err(|e| CliError::Failure(format!("PNG: {e}")))?;
    wr.write_image_data(&px)
        .map_err(|e| CliError::Failure(format!("PNG: {e}")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_header_is_aligned_and_parsable() {
        let h = npy_header(&[4, 3, 8, 8]);
        assert_eq!(h.len() % 64, 0);
        assert_eq!(&h[..8], b"\x93NUMPY\x01\x00");
        let len = u16::from_le_bytes([h[8], h[9]]) as usize;
        assert_eq!(len + 10, h.len());
        let text = std::str::from_utf8(&h[10..]).unwrap();
        assert!(text.contains("'shape': (4, 3, 8, 8)"), "{text}");
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn an_undecodable_value_is_an_error_not_a_smaller_error() {
        let fmt = Format::new(4, 5).unwrap();
        // A nonzero word without the significand's leading one is not a value.
        let bad = 1u64;
        assert!(fmt.from_bits(bad).is_err());
        let good = fmt.from_f64(0.5).unwrap().to_bits();
        assert!(max_abs_error(fmt, &[good, bad], &[0.5, 100.0], "t").is_err());
        assert_eq!(max_abs_error(fmt, &[good], &[0.25], "t").ok(), Some(0.25));
    }
}
