//! Byte counts and durations as the command line writes them: `64K`, `0.5`.

use std::time::Duration;

/// The largest `--buffer`: a GiB per connection is already absurd.
const MAX_BUFFER: usize = 1 << 30;

/// Parses a byte count with an optional binary suffix: `512`, `64K`, `64KiB`, `1M`.
pub(crate) fn parse_bytes(text: &str) -> Result<usize, String> {
    let lower = text.trim().to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (digits, suffix) = lower.split_at(digits_end);
    let unit: usize = match suffix.trim() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => {
            return Err(format!(
                "unknown unit {other:?}: use a number of bytes, or K, M, G"
            ));
        }
    };
    let count: usize = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a byte count like 65536 or 64K"))?;
    match count.checked_mul(unit) {
        Some(0) => Err("the buffer must hold at least 1 byte".into()),
        Some(bytes) if bytes <= MAX_BUFFER => Ok(bytes),
        _ => Err(format!("{text} is more than the 1G a connection may hold")),
    }
}

/// Parses a non-negative number of seconds, fractions allowed: `5`, `0.5`.
pub(crate) fn parse_secs(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    Duration::try_from_secs_f64(secs)
        .map_err(|_| format!("{text:?} is not a non-negative, finite number of seconds"))
}

#[cfg(test)]
mod tests {
    use super::{parse_bytes, parse_secs};
    use std::time::Duration;

    #[test]
    fn byte_counts_take_binary_suffixes() {
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("64K"), Ok(65536));
        assert_eq!(parse_bytes("64KiB"), Ok(65536));
        assert_eq!(parse_bytes("1m"), Ok(1 << 20));
        assert!(parse_bytes("0").is_err());
        assert!(parse_bytes("2G").is_err());
        assert!(parse_bytes("12 parsecs").is_err());
        assert!(parse_bytes("").is_err());
        assert!(parse_bytes("-1").is_err());
    }

    #[test]
    fn seconds_may_be_fractions_but_not_negative() {
        assert_eq!(parse_secs("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_secs("0.25"), Ok(Duration::from_millis(250)));
        assert!(parse_secs("-1").is_err());
        assert!(parse_secs("soon").is_err());
        assert!(parse_secs("inf").is_err());
    }
}
