//! Certificate fingerprints: what a receiver prints and a sender pins.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

const PREFIX: &str = "sha256:";

/// SHA-256 of a certificate's DER encoding.
///
/// Displayed and parsed as `sha256:<64 lowercase hex>`, the form the receiver
/// prints and the sender pins. Parsing also takes uppercase hex and `:`
/// between byte pairs (the OpenSSL style), so a pasted fingerprint works.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER-encoded certificate.
    pub fn of(cert_der: &[u8]) -> Self {
        Self(Sha256::digest(cert_der).into())
    }

    /// The 32 digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(PREFIX)?;
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// Why a string is not a fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected sha256:<64 hex digits>, got {input:?}: {problem}")]
pub struct ParseFingerprintError {
    /// The input, shortened if long (it may come from anywhere).
    input: String,
    problem: String,
}

impl ParseFingerprintError {
    fn new(input: &str, problem: impl Into<String>) -> Self {
        const MAX: usize = 100;
        let input = match input.char_indices().nth(MAX) {
            Some((cut, _)) => format!("{}...", &input[..cut]),
            None => input.to_owned(),
        };
        Self {
            input,
            problem: problem.into(),
        }
    }
}

impl FromStr for Fingerprint {
    type Err = ParseFingerprintError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let input = s.trim();
        let err = |problem: String| ParseFingerprintError::new(input, problem);
        let hex = match input.get(..PREFIX.len()) {
            Some(p) if p.eq_ignore_ascii_case(PREFIX) => &input[PREFIX.len()..],
            _ => return Err(err("it does not start with \"sha256:\"".into())),
        };
        if let Some(bad) = hex.chars().find(|c| !c.is_ascii_hexdigit() && *c != ':') {
            return Err(err(format!("{bad:?} is not a hex digit")));
        }
        // From here on `hex` is ASCII.
        let mut bytes = [0u8; 32];
        if hex.contains(':') {
            let pairs: Vec<&str> = hex.split(':').collect();
            if pairs.len() != 32 || pairs.iter().any(|p| p.len() != 2) {
                return Err(err(format!(
                    "with ':' separators it must be 32 pairs of hex digits, found {} groups",
                    pairs.len()
                )));
            }
            for (byte, pair) in bytes.iter_mut().zip(pairs) {
                *byte = parse_pair(pair.as_bytes()).map_err(err)?;
            }
        } else {
            let digits = hex.as_bytes();
            if digits.len() != 64 {
                return Err(err(format!("{} hex digits", digits.len())));
            }
            for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
                *byte = parse_pair(pair).map_err(err)?;
            }
        }
        Ok(Self(bytes))
    }
}

fn parse_pair(pair: &[u8]) -> Result<u8, String> {
    let digit = |c: u8| {
        (c as char)
            .to_digit(16)
            .ok_or_else(|| format!("{:?} is not a hex digit", c as char))
    };
    // Two hex digits are at most 255.
    match pair {
        [hi, lo] => Ok((digit(*hi)? * 16 + digit(*lo)?) as u8),
        _ => Err("odd number of hex digits".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_parse_round_trip() {
        let fp = Fingerprint::of(b"not really a certificate");
        let text = fp.to_string();
        assert!(text.starts_with("sha256:"));
        assert_eq!(text.len(), 7 + 64);
        assert_eq!(text, text.to_lowercase());
        assert_eq!(text.parse::<Fingerprint>(), Ok(fp));
    }

    #[test]
    fn parse_accepts_uppercase_colons_and_whitespace() {
        let fp = Fingerprint::of(b"x");
        let hex = &fp.to_string()[7..];
        let colons: Vec<String> = hex
            .as_bytes()
            .chunks(2)
            .map(|p| String::from_utf8_lossy(p).to_uppercase())
            .collect();
        let openssl = format!("SHA256:{}", colons.join(":"));
        assert_eq!(openssl.parse::<Fingerprint>(), Ok(fp));
        assert_eq!(format!("  sha256:{hex}\n").parse::<Fingerprint>(), Ok(fp));
    }

    #[test]
    fn bad_strings_say_what_is_wrong() {
        let hex = "ab".repeat(32);
        let cases = [
            (hex.clone(), "does not start with"),
            (format!("md5:{hex}"), "does not start with"),
            ("sha256:abcd".to_string(), "4 hex digits"),
            (format!("sha256:{}zz", &hex[2..]), "'z' is not a hex digit"),
            (format!("sha256:{}é", &hex[1..]), "'é' is not a hex digit"),
            (format!("sha256:{hex}ab"), "66 hex digits"),
            (format!("sha256:ab:{}", &hex[2..]), "32 pairs"),
            ("sha256:".to_string() + &"a:b".repeat(32), "32 pairs"),
            (String::new(), "does not start with"),
        ];
        for (input, problem) in cases {
            let err = input.parse::<Fingerprint>().unwrap_err().to_string();
            assert!(
                err.starts_with("expected sha256:<64 hex digits>, got"),
                "{err}"
            );
            assert!(err.contains(problem), "{input:?}: {err}");
        }
    }

    #[test]
    fn long_garbage_is_shortened_in_the_error() {
        let err = "x".repeat(10_000).parse::<Fingerprint>().unwrap_err();
        assert!(err.to_string().len() < 300);
    }
}
