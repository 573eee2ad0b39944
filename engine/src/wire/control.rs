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
/// 2: senders present a client certificate and may be refused as
/// [`RejectReason::Unauthorized`]; WAV origins carry their coding;
/// file mode is paced by [`Credit`]; reports carry `expected`, and a
/// final report precedes bye. The session names its loss [`Recovery`];
/// reports carry the loss pattern (bursts, outages) adaptive FEC models.
/// 3: a sender may ask for automatic interleaving depth
/// ([`FecParams::auto_depth`]); the accept grants the most it may use
/// ([`Accept::max_depth`]). 4: reports carry the receiver's latency in
/// force ([`Report::latency_us`]).
pub const CONTROL_VERSION: u8 = 4;
/// Deepest packet interleaving a session may propose or be granted.
pub const MAX_DEPTH: u8 = 64;
/// Largest control frame body in bytes (after the 4-byte length prefix).
pub const MAX_CONTROL_FRAME: usize = 64 * 1024;
/// Largest [`Credit::position_us`] accepted (exact in an `f64`; 142 years).
pub const MAX_CREDIT_US: u64 = 1 << 52;

/// How the sender paces media.
///
/// The mode follows the source. A source that can read ahead (a file) is
/// sent in file mode: faster than real time until it is a lead ahead of the
/// receiver's playout (the receiver's [`Credit`]s), then at real time along
/// it, so the receiver's buffer stays deep and a jitter spike, a loss burst
/// or a lost control message never starves playback. A source that produces media as it happens (an
/// application pushing what it captures, a pipe, a sound device) is live:
/// paced by real time from its first sample, played at a fixed latency.
/// The library's default is [`Mode::Live`], for
/// [`Sender::push`](crate::net::Sender::push); the `isochron send` command uses file mode
/// for files ([`Mode::file`] at 2x) and live for pipes and devices.
///
/// File mode does not make a transfer faster than real time end to end:
/// the receiver still plays every frame at its instant, so a 10 s file takes
/// about 10 s (plus the latency) whatever the fill rate; the fill rate only
/// decides how fast the receiver's buffer is refilled after a gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Mode {
    /// Paced by real time; the receiver holds a fixed latency.
    #[default]
    Live,
    /// Read ahead, flow-controlled by the receiver's [`Credit`]: while
    /// behind its credit, the sender runs at `fill_percent` % of real time.
    File {
        /// Sending speed below the credit, in percent of real time (101..=10000).
        fill_percent: u16,
    },
}

impl Mode {
    /// Lowest file-mode fill rate on the wire, in percent of real time.
    pub const MIN_FILL_PERCENT: u16 = 101;
    /// Highest file-mode fill rate on the wire, in percent of real time.
    pub const MAX_FILL_PERCENT: u16 = 10_000;

    /// File mode, refilling at `fill` times real time (clamped to
    /// 1.01..=100; `isochron send` uses 2).
    pub fn file(fill: f64) -> Mode {
        let pct = if fill.is_finite() {
            fill * 100.0
        } else {
            200.0
        };
        Mode::File {
            fill_percent: pct
                .round()
                .clamp(Self::MIN_FILL_PERCENT as f64, Self::MAX_FILL_PERCENT as f64)
                as u16,
        }
    }

    /// Paced by real time.
    pub fn is_live(&self) -> bool {
        matches!(self, Mode::Live)
    }
}

/// FEC and interleaving parameters of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FecParams {
    /// Source shards per block (1..=255).
    pub k: u8,
    /// Repair shards per block (0: FEC off).
    pub m: u8,
    /// Packet interleaving depth D: blocks sent column by column. With
    /// [`auto_depth`](Self::auto_depth), the most the sender asks for;
    /// after accept, the most the receiver granted (what it sized for).
    pub depth: u8,
    /// Time budget of one block in microseconds; a block closes early when it
    /// runs out. 0: let the receiver choose from its latency.
    pub window_us: u32,
    /// The sender's adaptive FEC picks the depth in force, 1 to the depth
    /// granted, from the loss it measures (bursts call for depth, random
    /// loss for none), changing it only between groups. A group's time
    /// budget stays `window x depth granted` whatever depth is in force,
    /// so the receiver's latency check and buffers hold for all of them.
    pub auto_depth: bool,
}

impl FecParams {
    /// No FEC, no packet interleaving.
    pub const OFF: FecParams = FecParams {
        k: 0,
        m: 0,
        depth: 1,
        window_us: 0,
        auto_depth: false,
    };

    /// FEC is on: `m > 0`.
    pub fn enabled(&self) -> bool {
        self.m > 0
    }

    /// Most repair shards a block of this session may carry: adaptive FEC
    /// may raise `m` up to `k` (100 % overhead for full blocks), never past
    /// 256 shards, and never below the configured `m`. The receiver sizes
    /// its FEC slots for `k + max_repair()` and refuses larger codes.
    pub fn max_repair(&self) -> u8 {
        let k = self.k as u16;
        k.min(256 - k).max(self.m as u16).min(255) as u8
    }
}

/// How lost packets are recovered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Recovery {
    /// Forward error correction alone: nothing is asked for again (what
    /// fan-out publishers send: their listeners have no way back).
    Fec,
    /// Retransmission alone: the receiver asks (NACK) for what is missing
    /// while its deadline leaves a round trip; no FEC is sent.
    Arq,
    /// Both: FEC sized for what one round trip cannot recover, and
    /// retransmission for what FEC does not rebuild in time. The default.
    #[default]
    Hybrid,
}

impl Recovery {
    /// The receiver asks for missing packets again.
    pub fn retransmits(self) -> bool {
        !matches!(self, Recovery::Fec)
    }

    /// The name used on the command line and in statistics.
    pub fn name(self) -> &'static str {
        match self {
            Recovery::Fec => "fec",
            Recovery::Arq => "arq",
            Recovery::Hybrid => "hybrid",
        }
    }
}

/// The session a sender proposes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionDesc {
    /// A label for logs and reports.
    pub name: String,
    /// Live or file mode (file mode carries the fill rate).
    pub mode: Mode,
    /// Speed factor both ends scale their clocks by (1.0: real time).
    pub speed: f64,
    /// FEC and packet interleaving; after accept, the code and window in
    /// force at the start.
    pub fec: FecParams,
    /// The catalog: every substream, in the order substream indices refer to.
    pub substreams: Vec<SubstreamDesc>,
    /// How losses are recovered (NACKs flow only when it retransmits).
    pub recovery: Recovery,
}

impl SessionDesc {
    /// The session as the receiver holds it after `accept`: sized for the
    /// depth granted (with automatic depth, the most the sender may use).
    pub fn accepted(&self, accept: &Accept) -> SessionDesc {
        let mut s = self.clone();
        s.fec.depth = accept.max_depth.clamp(1, MAX_DEPTH);
        s
    }
}

/// Sender to receiver, first message: who it is and what it will send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// [`CONTROL_VERSION`] of the sender; another version is rejected.
    pub version: u8,
    /// Shared secret, when the receiver requires one.
    pub token: Option<String>,
    /// The proposed session.
    pub session: SessionDesc,
}

/// Receiver to sender: the session is accepted, on these terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accept {
    /// Unique among the receiver's sessions.
    pub session_id: u64,
    /// The receiver's target latency in microseconds (live mode); the
    /// sender's datagram deadlines are derived from it.
    pub latency_us: u32,
    /// Low-water mark in microseconds of buffered media; in file mode the
    /// sender sends this much at once, and playback starts once at least
    /// this much is buffered.
    pub low_water_us: u32,
    /// High-water mark in microseconds of buffered media. In file mode the
    /// lead of the sender's first credit: until a credit comes, it may run
    /// this far ahead of a playout assumed to start at once.
    pub high_water_us: u32,
    /// The FEC block time budget in force (chosen by the receiver if the
    /// sender left it to it).
    pub fec_window_us: u32,
    /// Deepest packet interleaving the receiver sized for (1..=[`MAX_DEPTH`]):
    /// the session's depth, or with [`FecParams::auto_depth`] the most its
    /// latency (live) or buffer limit (file mode) allows, at most what was
    /// asked. Repairs of a deeper group are dropped and counted.
    pub max_depth: u8,
}

/// Why a receiver refused a hello (the [`Reject`] message says more).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RejectReason {
    /// The sender speaks another [`CONTROL_VERSION`].
    Version,
    /// The token is missing or wrong.
    Token,
    /// The catalog is invalid.
    Catalog,
    /// The receiver's latency cannot cover the FEC window, interleaving and
    /// frame hold (see [`ConfigError`](crate::config::ConfigError)).
    Latency,
    /// The receiver has no room for another session.
    Busy,
    /// Anything else (e.g. the application refused the session).
    Other,
    /// The receiver does not admit this sender's identity (the message
    /// names the command that would admit it).
    Unauthorized,
    /// The session would take more than one of the receiver's limits
    /// allows (buffers, sessions, speed: the message names the limit).
    Limit,
    /// The receiver cannot write the stream (disk full, an output limit,
    /// no output for it): at the hello, or instead of a bye at the end.
    Output,
}

/// Receiver to sender: the session is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reject {
    /// The category, for programs.
    pub reason: RejectReason,
    /// Says what to change, for the sender to print.
    pub message: String,
}

/// Periodic receiver report (about once a second). Counters are cumulative
/// since the session started, summed over substreams (see
/// [`PacketCounts`](crate::stats::PacketCounts)); the sender's adaptive FEC
/// uses the difference between two reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Report {
    /// Unique source packets that arrived (on time or late).
    pub received: u64,
    /// Source packets final and not arrived directly in time.
    pub lost: u64,
    /// Of the lost, rebuilt by FEC in time.
    pub recovered: u64,
    /// Of the lost, not there when due: the residual loss.
    pub unrecovered: u64,
    /// Source packets that arrived after their frame was played.
    pub late: u64,
    /// Frames played with at least one sample missing.
    pub concealed_frames: u64,
    /// RFC 3550 interarrival jitter over all substreams, microseconds.
    pub jitter_us: u32,
    /// Buffered media ahead of the playout, microseconds (the session's
    /// level, as [`Playout::level_us`](crate::playout::Playout::level_us)).
    pub buffer_us: u32,
    /// Runs of consecutive lost packets among the final ones (`lost /
    /// loss_runs` is the mean burst length adaptive FEC models).
    pub loss_runs: u64,
    /// Of the lost, those in runs longer than the latency (outages): no
    /// code within the budget could rebuild them, so the loss model leaves
    /// them out.
    pub outage_lost: u64,
    /// Of the runs, those longer than the latency.
    pub outage_runs: u64,
    /// Retransmitted packets that arrived in time and were needed.
    pub retransmit_useful: u64,
    /// Source packets whose fate is final: the denominator of residual loss
    /// (`unrecovered / expected`), as in the receiver's own statistics.
    pub expected: u64,
    /// The latency above the fastest path retransmission can count on,
    /// microseconds (live; 0: not told, file mode): the playout's target;
    /// with an adaptive latency on a retransmitting session, the target
    /// with the round trip that loss adds to it (if that fits the bounds).
    /// The sender plans FEC and retransmission for it, not for the most
    /// the accept allows.
    pub latency_us: u32,
}

/// What the sender sent on one substream, for the receiver's final account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubstreamTotals {
    /// The substream's catalog id.
    pub id: u16,
    /// Source packets (the next sequence number).
    pub packets: u64,
    /// Frames produced, including a short final one.
    pub frames: u64,
    /// Samples the source really gave (padding of the last frame excluded):
    /// the playout stops after exactly this many.
    pub samples: u64,
}

/// Sender to receiver, once everything is queued: the final account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndOfStream {
    /// One entry per substream, in catalog order.
    pub totals: Vec<SubstreamTotals>,
    /// Repair packets produced over the session.
    pub repair_packets: u64,
}

/// Every control message, either way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Control {
    /// Sender to receiver: the opening proposal.
    Hello(Hello),
    /// Receiver to sender: the session is on.
    Accept(Accept),
    /// Receiver to sender: the session is refused.
    Reject(Reject),
    /// Receiver to sender: stop producing media whatever the credit, until
    /// [`Control::Resume`] (a hold; file mode paces by [`Control::Credit`]).
    Pause,
    /// Receiver to sender: end a [`Control::Pause`].
    Resume,
    /// Receiver to sender: periodic statistics, every
    /// [`REPORT_INTERVAL`](crate::receiver::REPORT_INTERVAL).
    Report(Report),
    /// Sender to receiver: all media is sent; here are the totals.
    EndOfStream(EndOfStream),
    /// Receiver to sender: the stream was played to its end; close.
    Bye,
    /// Receiver to sender, file mode: how far ahead of the playout the
    /// sender may produce media.
    Credit(Credit),
}

/// File-mode flow control: where the receiver's playout is, and how far
/// ahead of it the sender may produce. The playout runs at real time, so
/// the sender extrapolates its position between credits, from the credit
/// that came fastest (a late one, resent after a loss, changes nothing):
/// a lost or late credit costs nothing but freshness, unlike an
/// edge-triggered RESUME, whose loss starves the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Credit {
    /// Media time (microseconds) the receiver was playing as it sent this.
    pub position_us: u64,
    /// Media (microseconds) the sender may produce ahead of that position.
    pub lead_us: u32,
}

/// Why control bytes are not a valid message. The session ends on any.
#[derive(Debug, Error)]
pub enum ControlError {
    /// The length prefix (given) is over [`MAX_CONTROL_FRAME`].
    #[error("control frame of {0} bytes exceeds the {MAX_CONTROL_FRAME}-byte limit")]
    TooLong(usize),
    /// A frame with no version byte.
    #[error("control frame is empty")]
    Empty,
    /// The frame's version byte (given) is not [`CONTROL_VERSION`].
    #[error("control protocol version {0}, this build speaks {CONTROL_VERSION}")]
    Version(u8),
    /// postcard could not decode the body.
    #[error("malformed control message: {0}")]
    Decode(#[from] postcard::Error),
    /// A hello's catalog failed validation.
    #[error("invalid catalog: {0}")]
    Catalog(#[from] CatalogError),
    /// A decoded message breaks a schema limit (named).
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

    /// One length-prefixed frame in a new buffer.
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

    /// The message's name, for logs (never its peer-chosen contents).
    pub fn kind(&self) -> &'static str {
        match self {
            Control::Hello(_) => "hello",
            Control::Accept(_) => "accept",
            Control::Reject(_) => "reject",
            Control::Pause => "pause",
            Control::Resume => "resume",
            Control::Report(_) => "report",
            Control::EndOfStream(_) => "end of stream",
            Control::Bye => "bye",
            Control::Credit(_) => "credit",
        }
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
                    && !(Mode::MIN_FILL_PERCENT..=Mode::MAX_FILL_PERCENT).contains(&fill_percent)
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
                if !(1..=MAX_DEPTH).contains(&f.depth) {
                    return Err(ControlError::Invalid("interleave depth must be 1..=64"));
                }
                catalog::validate(&s.substreams)?;
            }
            Control::Reject(r) if r.message.len() > 4096 => {
                return Err(ControlError::Invalid(
                    "reject message longer than 4096 bytes",
                ));
            }
            // A credit only bounds how far ahead the sender reads (at its
            // own fill rate): any value is safe, but keep it representable
            // in the sender's arithmetic.
            Control::Credit(c) if c.position_us > MAX_CREDIT_US => {
                return Err(ControlError::Invalid(
                    "credit position beyond 2^52 microseconds",
                ));
            }
            Control::EndOfStream(e) if e.totals.len() > catalog::MAX_SUBSTREAMS => {
                return Err(ControlError::Invalid(
                    "end of stream lists too many substreams",
                ));
            }
            Control::Accept(a) if a.latency_us == 0 || a.low_water_us >= a.high_water_us => {
                return Err(ControlError::Invalid(
                    "accept with zero latency or marks out of order",
                ));
            }
            Control::Accept(a) if !(1..=MAX_DEPTH).contains(&a.max_depth) => {
                return Err(ControlError::Invalid(
                    "accept grants an interleave depth outside 1..=64",
                ));
            }
            _ => {}
        }
        Ok(())
    }
}

/// Splits a byte stream into control messages. Holds at most four maximal
/// frames of unread bytes; more is an error.
#[derive(Debug, Default)]
pub struct ControlDecoder {
    buf: Vec<u8>,
}

impl ControlDecoder {
    /// An empty decoder.
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
    fn credits_round_trip_and_absurd_ones_are_refused() {
        let c = Control::Credit(Credit {
            position_us: 1_234_567,
            lead_us: 160_000,
        });
        let f = c.to_frame();
        assert_eq!(Control::decode_body(&f[4..]).unwrap(), c);
        let bad = Control::Credit(Credit {
            position_us: MAX_CREDIT_US + 1,
            lead_us: 0,
        })
        .to_frame();
        let e = Control::decode_body(&bad[4..]).unwrap_err();
        assert!(e.to_string().contains("credit"), "{e}");
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
