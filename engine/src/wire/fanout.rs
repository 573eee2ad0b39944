//! Fan-out messages: what a publisher and its listeners exchange through
//! routers besides media datagrams (see `net::zenoh`).
//!
//! Every message is a version byte then postcard, at most
//! [`MAX_FANOUT_MESSAGE`] bytes, checked after decoding ([`decode`]).
//! Catalogs, key requests and key answers travel inside a [`Signed`]
//! envelope; the end of stream and listener reports are sealed with the
//! stream's keys (`seal`), so routers can neither forge nor read them.

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use thiserror::Error;

use crate::wire::control::{Control, EndOfStream, Hello, Mode, Report, SessionDesc};

/// Fan-out protocol version; messages of another version are refused.
/// 2: the catalog's session carries [`FecParams::auto_depth`](crate::wire::control::FecParams::auto_depth)
/// (always off: a publisher's depth is fixed). 3: reports carry the
/// subscriber's latency in force ([`Report::latency_us`]).
pub const FANOUT_VERSION: u8 = 3;
/// Largest fan-out message, bytes.
pub const MAX_FANOUT_MESSAGE: usize = 64 * 1024;
/// Longest stream name, bytes.
pub const MAX_STREAM_NAME: usize = 200;
/// Most `/`-separated chunks in a stream name.
pub const MAX_NAME_CHUNKS: usize = 16;
/// Largest certificate a message may carry, bytes.
pub const MAX_CERT: usize = 16 * 1024;

/// Signature contexts: a signature made for one kind of message cannot
/// pass for another.
pub mod context {
    /// A publisher's catalog.
    pub const CATALOG: &[u8] = b"isochron fan-out catalog v1";
    /// A listener's key request.
    pub const KEY_REQUEST: &[u8] = b"isochron fan-out key request v1";
    /// A publisher's answer to a key request.
    pub const KEY_ANSWER: &[u8] = b"isochron fan-out key answer v1";
}

/// Why fan-out bytes are not a valid message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MessageError {
    /// Longer than [`MAX_FANOUT_MESSAGE`].
    #[error("message of {0} bytes exceeds the {MAX_FANOUT_MESSAGE}-byte limit")]
    TooLong(usize),
    /// The version byte (given) is not [`FANOUT_VERSION`].
    #[error("fan-out protocol version {0}, this build speaks {FANOUT_VERSION}")]
    Version(u8),
    /// postcard could not decode it.
    #[error("malformed message: {0}")]
    Decode(String),
    /// A decoded field breaks a limit (named).
    #[error("invalid message: {0}")]
    Invalid(String),
}

/// Check a stream name: 1..=[`MAX_STREAM_NAME`] bytes, chunks separated by
/// `/`, each non-empty and of `[A-Za-z0-9._-]` only (no wildcards, no
/// spaces), at most [`MAX_NAME_CHUNKS`].
pub fn validate_stream_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_STREAM_NAME {
        return Err(format!(
            "a stream name is 1 to {MAX_STREAM_NAME} bytes, not {}",
            name.len()
        ));
    }
    let chunks: Vec<&str> = name.split('/').collect();
    if chunks.len() > MAX_NAME_CHUNKS {
        return Err(format!(
            "a stream name has at most {MAX_NAME_CHUNKS} parts separated by '/'"
        ));
    }
    for c in chunks {
        if c.is_empty() {
            return Err(format!(
                "'{name}': empty part (leading, trailing or double '/')"
            ));
        }
        if let Some(bad) = c
            .chars()
            .find(|ch| !(ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | '-')))
        {
            return Err(format!(
                "'{}': {bad:?} is not allowed in a stream name (letters, digits, '.', '_', '-', parts separated by '/')",
                name.escape_default()
            ));
        }
    }
    Ok(())
}

/// How listeners can get the stream's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyOffer {
    /// HMAC of the session secret ([`key_check`](crate::seal::key_check)):
    /// a wrong passphrase or a substituted key is refused at once.
    pub check: [u8; 16],
    /// A passphrase opens the stream (PBKDF2 iterations), if set.
    pub passphrase_iterations: Option<u32>,
    /// The publisher wraps the key to listeners it authorises.
    pub wrapped: bool,
    /// The publisher gives the key to any listener that asks (opened up
    /// explicitly, loudly).
    pub open: bool,
}

/// What a publisher announces about its stream (served by a queryable,
/// signed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamCatalog {
    /// The stream's name.
    pub stream: String,
    /// The publisher's leaf certificate (DER); its SHA-256 is what
    /// listeners pin.
    pub publisher_cert: Vec<u8>,
    /// Random per publisher run: salts this run's keys, names its messages.
    pub instance: [u8; 16],
    /// Substreams, formats, FEC and interleaving (the window in force).
    pub session: SessionDesc,
    /// The smallest latency a listener can play it with: FEC window x depth
    /// + frame hold, microseconds.
    pub latency_floor_us: u32,
    /// Largest sealed datagram the publisher puts, bytes.
    pub max_datagram: u16,
    /// How to get the key.
    pub key: KeyOffer,
}

/// A listener asks for the stream key (signed by the listener).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRequest {
    /// The stream asked for.
    pub stream: String,
    /// The publisher run it asks for (from the catalog).
    pub instance: [u8; 16],
    /// The listener's leaf certificate (DER): its fingerprint is what the
    /// publisher authorises.
    pub listener_cert: Vec<u8>,
    /// The listener's ephemeral X25519 public key.
    pub ephemeral: [u8; 32],
    /// The listener's random id (its liveliness token and report key).
    pub listener: [u8; 16],
}

/// The publisher's answer (signed by the publisher).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyAnswer {
    /// The session secret, wrapped to the request's ephemeral key.
    Grant {
        /// The publisher run.
        instance: [u8; 16],
        /// The request's ephemeral key, echoed (binds the answer to it).
        listener_ephemeral: [u8; 32],
        /// The publisher's ephemeral X25519 public key.
        publisher_ephemeral: [u8; 32],
        /// The sealed 32-byte secret (48 bytes with its tag).
        sealed: Vec<u8>,
    },
    /// Not for this listener, and why.
    Refused {
        /// The request's ephemeral key, echoed.
        listener_ephemeral: [u8; 32],
        /// What to do about it, for people.
        reason: String,
    },
}

/// A message and its signature by the certificate named inside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signed {
    /// The encoded message ([`encode`] of a [`StreamCatalog`], [`KeyRequest`]
    /// or [`KeyAnswer`]).
    pub body: Vec<u8>,
    /// TLS signature scheme code point.
    pub scheme: u16,
    /// The signature over the context label and `body`.
    pub signature: Vec<u8>,
}

/// The publisher's control messages to every listener (sealed with the
/// control key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PublisherControl {
    /// All media is sent: per-substream totals.
    EndOfStream(EndOfStream),
}

/// A sealed message with the clear fields routing it needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedMessage {
    /// The publisher run it belongs to.
    pub instance: [u8; 16],
    /// Who sealed it: the listener id for reports, zeros for the publisher.
    pub sender: [u8; 16],
    /// The envelope ([`Sealer`](crate::seal::Sealer) output, nothing clear).
    pub sealed: Vec<u8>,
}

/// Checks serde cannot express.
pub trait Validate {
    /// Refuse what breaks a limit.
    fn validate(&self) -> Result<(), MessageError>;
}

fn invalid(what: impl Into<String>) -> MessageError {
    MessageError::Invalid(what.into())
}

impl Validate for StreamCatalog {
    fn validate(&self) -> Result<(), MessageError> {
        validate_stream_name(&self.stream).map_err(invalid)?;
        if self.publisher_cert.is_empty() || self.publisher_cert.len() > MAX_CERT {
            return Err(invalid("publisher certificate missing or over 16 KiB"));
        }
        if self.session.mode != Mode::Live {
            return Err(invalid("fan-out streams are live"));
        }
        // The session passes the same checks as a hello.
        Control::Hello(Hello {
            version: crate::wire::control::CONTROL_VERSION,
            token: None,
            session: self.session.clone(),
        })
        .validate()
        .map_err(|e| invalid(e.to_string()))?;
        if self.session.fec.enabled() && self.session.fec.window_us == 0 {
            return Err(invalid("a FEC window is required"));
        }
        let dg = self.max_datagram as usize;
        if !(crate::wire::packet::MIN_DATAGRAM..=crate::wire::packet::MAX_DATAGRAM).contains(&dg) {
            return Err(invalid("datagram size out of range"));
        }
        if let Some(n) = self.key.passphrase_iterations
            && !(1..=crate::seal::derive::MAX_PASSPHRASE_ITERATIONS).contains(&n)
        {
            return Err(invalid("passphrase iterations out of range"));
        }
        Ok(())
    }
}

impl Validate for KeyRequest {
    fn validate(&self) -> Result<(), MessageError> {
        validate_stream_name(&self.stream).map_err(invalid)?;
        if self.listener_cert.is_empty() || self.listener_cert.len() > MAX_CERT {
            return Err(invalid("listener certificate missing or over 16 KiB"));
        }
        Ok(())
    }
}

impl Validate for KeyAnswer {
    fn validate(&self) -> Result<(), MessageError> {
        match self {
            KeyAnswer::Grant { sealed, .. } if sealed.len() != 48 => {
                Err(invalid("a wrapped key is 48 bytes"))
            }
            KeyAnswer::Refused { reason, .. } if reason.len() > 1024 => {
                Err(invalid("refusal reason longer than 1024 bytes"))
            }
            _ => Ok(()),
        }
    }
}

impl Validate for Signed {
    fn validate(&self) -> Result<(), MessageError> {
        if self.signature.len() > 1024 {
            return Err(invalid("signature longer than 1024 bytes"));
        }
        Ok(())
    }
}

impl Validate for PublisherControl {
    fn validate(&self) -> Result<(), MessageError> {
        let PublisherControl::EndOfStream(e) = self;
        Control::EndOfStream(e.clone())
            .validate()
            .map_err(|e| invalid(e.to_string()))
    }
}

impl Validate for SealedMessage {
    fn validate(&self) -> Result<(), MessageError> {
        Ok(())
    }
}

impl Validate for Report {
    fn validate(&self) -> Result<(), MessageError> {
        Ok(())
    }
}

/// Encode a message: version byte, then postcard.
pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    postcard::to_extend(msg, vec![FANOUT_VERSION]).expect("serialising to a Vec succeeds")
}

/// Decode and check a message; never panics, allocates within the limit.
pub fn decode<T: DeserializeOwned + Validate>(bytes: &[u8]) -> Result<T, MessageError> {
    if bytes.len() > MAX_FANOUT_MESSAGE {
        return Err(MessageError::TooLong(bytes.len()));
    }
    let (&version, rest) = bytes
        .split_first()
        .ok_or_else(|| MessageError::Decode("empty".into()))?;
    if version != FANOUT_VERSION {
        return Err(MessageError::Version(version));
    }
    let (msg, tail) =
        postcard::take_from_bytes::<T>(rest).map_err(|e| MessageError::Decode(e.to_string()))?;
    if !tail.is_empty() {
        return Err(MessageError::Decode("trailing bytes".into()));
    }
    msg.validate()?;
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names() {
        for ok in ["a", "studio/a/mix", "x-1.2_3"] {
            assert!(validate_stream_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "a//b", "/a", "a/", "a/*", "a/**", "a b", "a$b", "a?b", "é",
        ] {
            assert!(validate_stream_name(bad).is_err(), "{bad}");
        }
        assert!(validate_stream_name(&["a"; 16].join("/")).is_ok());
        assert!(validate_stream_name(&["a"; 17].join("/")).is_err());
        assert!(validate_stream_name(&"a".repeat(201)).is_err());
    }

    #[test]
    fn round_trip_and_limits() {
        let m = SealedMessage {
            instance: [1; 16],
            sender: [2; 16],
            sealed: vec![3; 40],
        };
        assert_eq!(decode::<SealedMessage>(&encode(&m)).unwrap(), m);
        let mut b = encode(&m);
        b[0] = 9;
        assert_eq!(decode::<SealedMessage>(&b), Err(MessageError::Version(9)));
        let mut b = encode(&m);
        b.push(0);
        assert!(decode::<SealedMessage>(&b).is_err());
        assert!(matches!(
            decode::<SealedMessage>(&vec![1; MAX_FANOUT_MESSAGE + 1]),
            Err(MessageError::TooLong(_))
        ));
        let a = KeyAnswer::Grant {
            instance: [0; 16],
            listener_ephemeral: [0; 32],
            publisher_ephemeral: [0; 32],
            sealed: vec![0; 10],
        };
        assert!(
            decode::<KeyAnswer>(&encode(&a)).is_err(),
            "short wrapped key"
        );
    }

    proptest::proptest! {
        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = decode::<StreamCatalog>(&bytes);
            let _ = decode::<Signed>(&bytes);
            let _ = decode::<KeyRequest>(&bytes);
            let _ = decode::<KeyAnswer>(&bytes);
            let _ = decode::<PublisherControl>(&bytes);
            let _ = decode::<SealedMessage>(&bytes);
            let _ = decode::<Report>(&bytes);
        }
    }
}
