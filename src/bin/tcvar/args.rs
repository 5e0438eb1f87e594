//! Validated parsers of numeric options: a value clap accepts is one the command can use, so a
//! `NaN`, an infinity, a zero count or an absurd budget is refused while parsing, with one line.

/// Bytes in a GiB.
pub const GIB: f64 = (1u64 << 30) as f64;

/// A finite number above zero (`--max-gates`).
pub fn positive_finite(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number"))?;
    if !v.is_finite() || v <= 0.0 {
        return Err(format!("{s:?}: expected a finite number above 0"));
    }
    Ok(v)
}

/// A memory budget in GiB: finite, above zero, at most 2^20 GiB (so that it converts to bytes
/// exactly enough and no product with it overflows).
pub fn gibibytes(s: &str) -> Result<f64, String> {
    let v = positive_finite(s)?;
    if v > (1u64 << 20) as f64 {
        return Err(format!("{s:?}: at most {} GiB", 1u64 << 20));
    }
    Ok(v)
}

/// The bytes of a budget given in GiB.
pub fn budget_bytes(gib: f64) -> u64 {
    (gib * GIB) as u64
}

/// An operand count of a gadget: 1 ..= 2^24.
pub fn operand_count(s: &str) -> Result<usize, String> {
    let v: usize = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number"))?;
    if v == 0 || v > MAX_OPERANDS {
        return Err(format!("{s:?}: expected 1 ..= {MAX_OPERANDS}"));
    }
    Ok(v)
}

/// Largest operand count any command accepts (the memory estimate refuses most of these
/// long before; the bound keeps every product of counts far from overflow).
pub const MAX_OPERANDS: usize = 1 << 24;

/// A whole number in `1 ..= max`, for `what`.
fn bounded(s: &str, max: usize, what: &str) -> Result<usize, String> {
    let v: usize = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number"))?;
    if v == 0 || v > max {
        return Err(format!("{s:?}: {what} must be in 1 ..= {max}"));
    }
    Ok(v)
}

/// Largest transformer width (`--width`): the released models stop at 1920.
pub const MAX_WIDTH: usize = 1 << 16;
/// Largest patch size of a token map (`--scales`): the released schedule stops at 16.
pub const MAX_PATCH: usize = 1 << 10;
/// Largest block count (`--blocks`): the released models stop at 30.
pub const MAX_BLOCKS: usize = 1 << 10;

/// A transformer width.
pub fn width(s: &str) -> Result<usize, String> {
    bounded(s, MAX_WIDTH, "a width")
}

/// One patch size of a token-map schedule.
pub fn patch(s: &str) -> Result<usize, String> {
    bounded(s, MAX_PATCH, "a patch size")
}

/// A number of transformer blocks.
pub fn blocks(s: &str) -> Result<usize, String> {
    bounded(s, MAX_BLOCKS, "a block count")
}

/// A comma-separated list of whole numbers in `1 ..= max` (`--ns 1,4,16`), for option `what`.
pub fn list(s: &str, max: usize, what: &str) -> Result<Vec<usize>, String> {
    let v: Result<Vec<usize>, String> = s.split(',').map(|t| bounded(t, max, what)).collect();
    match v {
        Ok(v) if !v.is_empty() => Ok(v),
        Ok(_) => Err(format!("{what}: empty list")),
        Err(e) => Err(format!("{what}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_and_non_positive_numbers_are_refused() {
        for bad in ["NaN", "nan", "inf", "-inf", "0", "-1", "1e400", "", "x"] {
            assert!(positive_finite(bad).is_err(), "{bad}");
        }
        assert_eq!(positive_finite("4e7"), Ok(4e7));
        assert!(gibibytes("1e9").is_err());
        assert!(operand_count("0").is_err());
        assert!(operand_count("18446744073709551615").is_err());
        assert_eq!(operand_count("16"), Ok(16));
    }
}
