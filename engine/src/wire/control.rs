//! Control messages, carried on one reliable bidirectional stream.
//!
//! Each message is a frame: `u32` big-endian length, then a version byte,
//! then the message in postcard (compact serde). Frames longer than
//! [`MAX_CONTROL_FRAME`] are refused before anything is allocated, and every
//! decoded message is checked against its schema's limits.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::catalog::{self, CatalogError, SubstreamDesc};

/// Control protocol version; a peer with another version is rejected.
pub const CONTROL_VERSION: u8 = 1;
/// Largest control frame body.
pub const MAX_CONTROL_FRAME: usize = 64 * 1024;

/// How the sender paces media.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// Paced by real time; the receiver holds a fixed latency.
    Live,
    /// Read ahead, flow-controlled by the receiver's water marks: while
    /// resumed, the sender runs at `fill_percent` % of real time.
    File { fill_percent: u16 },
}

/// FEC and interleaving parameters of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FecParams {
    /// Source shards per block (1..=255).
    pub k: u8,
    /// Repair shards per block (0: FEC off).
    pub m: u8,
    /// Packet interleaving depth D: blocks sent column by column.
    pub depth: u8,
    /// Time budget of one block in microseconds; a block closes early when it
    /// runs out. 0: let the receiver choose from its latency.
    pub window_us: u32,
}

impl FecParams {
    pub const OFF: FecParams = FecParams {
        k: 0,
        m: 0,
        depth: 1,
        window_us: 0,
    };

    pub fn enabled(&self) -> bool {
        self.m > 0
    }
}

/// The session a sender proposes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionDesc {
    /// A label for logs and reports.
    pub name: String,
    pub mode: Mode,
    /// Speed factor both ends scale their clocks by (1.0: real time).
    pub speed: f64,
    pub fec: FecParams,
    pub substreams: Vec<SubstreamDesc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    pub version: u8,
    /// Shared secret, when the receiver requires one.
    pub token: Option<String>,
    pub session: SessionDesc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accept {
    pub session_id: u64,
    pub latency_us: u32,
    pub low_water_us: u32,
    pub high_water_us: u32,
    /// The FEC block time budget in force (chosen by the receiver if the
    /// sender left it to it).
    pub fec_window_us: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RejectReason {
    Version,
    Token,
    Catalog,
    Latency,
    Busy,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reject {
    pub reason: RejectReason,
    /// Says what to change, for the sender to print.
    pub message: String,
}

/// Periodic receiver report (about once a second).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Report {
    pub received: u64,
    pub lost: u64,
    pub recovered: u64,
    pub unrecovered: u64,
    pub late: u64,
    pub concealed_frames: u64,
    pub jitter_us: u32,
    pub buffer_us: u32,
}

/// What the sender sent on one substream, for the receiver's final account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubstreamTotals {
    pub id: u16,
    /// Source packets (the next sequence number).
    pub packets: u64,
    pub frames: u64,
    pub samples: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndOfStream {
    pub totals: Vec<SubstreamTotals>,
    pub repair_packets: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Control {
    Hello(Hello),
    Accept(Accept),
    Reject(Reject),
    /// Receiver to sender: buffer at the high-water mark, stop sending.
    Pause,
    /// Receiver to sender: buffer at the low-water mark, send again.
    Resume,
    Report(Report),
    EndOfStream(EndOfStream),
    Bye,
}

#[derive(Debug, Error)]
pub enum ControlError {
    #[error("control frame of {0} bytes exceeds the {MAX_CONTROL_FRAME}-byte limit")]
    TooLong(usize),
    #[error("control frame is empty")]
    Empty,
    #[error("control protocol version {0}, this build speaks {CONTROL_VERSION}")]
    Version(u8),
    #[error("malformed control message: {0}")]
    Decode(#[from] postcard::Error),
    #[error("invalid catalog: {0}")]
    Catalog(#[from] CatalogError),
    #[error("invalid control message: {0}")]
    Invalid(&'static str),
}

impl Control {
    /// Append one length-prefixed frame to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0, 0, 0, 0, CONTROL_VERSION]);
        let body =
            postcard::to_extend(self, std::mem::take(out)).expect("serialising to a Vec succeeds");
        *out = body;
        let len = (out.len() - start - 4) as u32;
        out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    }

    pub fn to_frame(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode_into(&mut v);
        v
    }

    /// Decode one frame body (after the length prefix) and check it.
    pub fn decode_body(body: &[u8]) -> Result<Control, ControlError> {
        if body.len() > MAX_CONTROL_FRAME {
            return Err(ControlError::TooLong(body.len()));
        }
        let (&version, rest) = body.split_first().ok_or(ControlError::Empty)?;
        if version != CONTROL_VERSION {
            return Err(ControlError::Version(version));
        }
        let (msg, tail) = postcard::take_from_bytes::<Control>(rest)?;
        if !tail.is_empty() {
            return Err(ControlError::Invalid("trailing bytes after the message"));
        }
        msg.validate()?;
        Ok(msg)
    }

    /// Schema limits serde cannot express.
    pub fn validate(&self) -> Result<(), ControlError> {
        match self {
            Control::Hello(h) => {
                let s = &h.session;
                if h.token.as_ref().is_some_and(|t| t.len() > 1024) {
                    return Err(ControlError::Invalid("token longer than 1024 bytes"));
                }
                if s.name.len() > 255 {
                    return Err(ControlError::Invalid("session name longer than 255 bytes"));
                }
                if !(s.speed.is_finite() && (0.01..=1000.0).contains(&s.speed)) {
                    return Err(ControlError::Invalid("speed factor outside 0.01..=1000"));
                }
                if let Mode::File { fill_percent } = s.mode
                    && !(101..=10_000).contains(&fill_percent)
                {
                    return Err(ControlError::Invalid(
                        "file-mode fill rate must be 101..=10000 % of real time",
                    ));
                }
                let f = s.fec;
                if f.m > 0 && (f.k == 0 || f.k as usize + f.m as usize > 256) {
                    return Err(ControlError::Invalid(
                        "FEC needs k >= 1 and k + m <= 256 shards",
                    ));
                }
                if !(1..=64).contains(&f.depth) {
                    return Err(ControlError::Invalid("interleave depth must be 1..=64"));
                }
                catalog::validate(&s.substreams)?;
            }
            Control::Reject(r) if r.message.len() > 4096 => {
                return Err(ControlError::Invalid(
                    "reject message longer than 4096 bytes",
                ));
            }
            Control::EndOfStream(e) if e.totals.len() > catalog::MAX_SUBSTREAMS => {
                return Err(ControlError::Invalid(
                    "end of stream lists too many substreams",
                ));
            }
            _ => {}
        }
        Ok(())
    }
}

/// Splits a byte stream into control messages, holding at most one frame.
#[derive(Debug, Default)]
pub struct ControlDecoder {
    buf: Vec<u8>,
}

impl ControlDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add received bytes. The caller pops messages as they complete, so
    /// more than a few maximal frames pending means a misbehaving peer.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), ControlError> {
        if let Some(len) = self.pending_len()
            && len > MAX_CONTROL_FRAME
        {
            return Err(ControlError::TooLong(len));
        }
        if self.buf.len() + bytes.len() > 4 * (MAX_CONTROL_FRAME + 4) {
            return Err(ControlError::Invalid(
                "control data arrives faster than it is read",
            ));
        }
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    fn pending_len(&self) -> Option<usize> {
        let h: [u8; 4] = self.buf.get(..4)?.try_into().ok()?;
        Some(u32::from_be_bytes(h) as usize)
    }

    /// The next complete message, if any.
    pub fn next_message(&mut self) -> Result<Option<Control>, ControlError> {
        let Some(len) = self.pending_len() else {
            return Ok(None);
        };
        if len > MAX_CONTROL_FRAME {
            return Err(ControlError::TooLong(len));
        }
        if self.buf.len() < 4 + len {
            return Ok(None);
        }
        let msg = Control::decode_body(&self.buf[4..4 + len]);
        self.buf.drain(..4 + len);
        msg.map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoder_handles_split_and_joined_frames() {
        let mut bytes = Control::Pause.to_frame();
        Control::Resume.encode_into(&mut bytes);
        let mut d = ControlDecoder::new();
        d.push(&bytes[..3]).unwrap();
        assert_eq!(d.next_message().unwrap(), None);
        d.push(&bytes[3..]).unwrap();
        assert_eq!(d.next_message().unwrap(), Some(Control::Pause));
        assert_eq!(d.next_message().unwrap(), Some(Control::Resume));
        assert_eq!(d.next_message().unwrap(), None);
    }

    #[test]
    fn oversized_frame_is_refused_before_buffering() {
        let mut d = ControlDecoder::new();
        d.push(&u32::MAX.to_be_bytes()).unwrap();
        assert!(matches!(d.next_message(), Err(ControlError::TooLong(_))));
    }

    #[test]
    fn wrong_version_is_named() {
        let mut f = Control::Bye.to_frame();
        f[4] = 9;
        let mut d = ControlDecoder::new();
        d.push(&f).unwrap();
        let e = d.next_message().unwrap_err();
        assert!(e.to_string().contains("version 9"), "{e}");
    }
}
