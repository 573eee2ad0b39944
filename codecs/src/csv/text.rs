//! How names and decimals look in a sensor CSV: decimals read from cells,
//! header fields quoted, the decimals a rate's times need.

/// How a numeric cell was written: `Some(d)` for plain decimal notation
/// with `d` digits after the point, `None` for exponent notation or words
/// such as `inf`.
pub(crate) fn decimals_of(cell: &str) -> Option<u8> {
    let cell = cell.trim();
    if cell
        .bytes()
        .any(|c| matches!(c, b'e' | b'E' | b'i' | b'I' | b'n' | b'N'))
    {
        return None;
    }
    Some(match cell.find('.') {
        Some(dot) => (cell.len() - dot - 1).min(u8::MAX as usize) as u8,
        None => 0,
    })
}

/// Merges the decimals seen so far in a column with one more cell's.
/// Plain notation keeps the widest; any exponent cell switches the column
/// to shortest round-trip printing.
pub(crate) fn merge_decimals(seen: Option<Option<u8>>, cell: Option<u8>) -> Option<Option<u8>> {
    match (seen, cell) {
        (None, c) => Some(c),
        (Some(Some(a)), Some(b)) => Some(Some(a.max(b))),
        _ => Some(None),
    }
}

/// Appends a header field, quoted when it holds a quote, a line break or
/// any separator a reader might guess (so the guess stays right).
pub(crate) fn push_field(out: &mut String, field: &str) {
    let needs_quotes = field
        .bytes()
        .any(|c| matches!(c, b',' | b';' | b'\t' | b'"' | b'\r' | b'\n'));
    if needs_quotes {
        out.push('"');
        out.push_str(&field.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(field);
    }
}

/// Decimal places that print every instant `i * den / num` of a rate
/// exactly, when some up to 9 do; 9 otherwise.
pub(crate) fn time_decimals(num: u32, den: u32) -> u8 {
    let mut scale = den as u128;
    for d in 0..=9u8 {
        if scale % num as u128 == 0 {
            return d;
        }
        scale *= 10;
    }
    9
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_follow_the_text() {
        assert_eq!(decimals_of("1.250"), Some(3));
        assert_eq!(decimals_of(" -7 "), Some(0));
        assert_eq!(decimals_of("1e-5"), None);
        assert_eq!(decimals_of("inf"), None);
        assert_eq!(merge_decimals(Some(Some(2)), Some(4)), Some(Some(4)));
        assert_eq!(merge_decimals(Some(Some(2)), None), Some(None));
    }

    #[test]
    fn fields_are_quoted_only_when_needed() {
        let mut s = String::new();
        push_field(&mut s, " acc x");
        s.push(',');
        push_field(&mut s, "a,\"b\"");
        s.push(',');
        push_field(&mut s, "a;b");
        assert_eq!(s, " acc x,\"a,\"\"b\"\"\",\"a;b\"");
    }

    #[test]
    fn time_decimals_cover_the_period() {
        assert_eq!(time_decimals(100, 1), 2);
        assert_eq!(time_decimals(1, 1), 0);
        assert_eq!(time_decimals(8, 1), 3);
        assert_eq!(time_decimals(1, 60), 0);
        assert_eq!(time_decimals(30_000, 1_001), 9);
    }
}
