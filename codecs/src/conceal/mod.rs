//! What to play for samples that never arrived.
//!
//! A [`Concealer`] is built once per substream and sees every frame in
//! order, in place on the wire bytes, with the frame's [`SampleMask`].
//! Complete frames pass untouched (they only feed its
//! history); missing samples are filled by the substream's [`Method`] and
//! counted. It does not allocate after construction, so it can run on the
//! playout thread.
//!
//! Look-ahead without latency: when the next frame is already in the jitter
//! buffer at the tick (the usual case at any useful target latency), pass
//! its bytes and mask as a [`Lookahead`]. Interpolation then spans frame
//! boundaries and a waveform fill can cross-fade into what follows. Without
//! it, a gap at the end of a frame is extrapolated (audio) or held (sensors).
//!
//! Measured quality (music-like signal, 2 % of 10 ms frames lost) is in
//! `codecs/CONCEALMENT.md`.

mod audio;
mod concealer;
mod pitch;
mod sensor;

pub use concealer::Concealer;

use serde::{Deserialize, Serialize};

use crate::mask::SampleMask;

/// How a substream's missing samples are filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Method {
    /// Audio (the default): short gaps (the lost lanes of sample
    /// interleaving, up to 4 samples) are interpolated from two neighbours
    /// on each side; longer gaps and lost frames continue the recent
    /// waveform: the last stretch is repeated at the lag (2 to 50 ms) where
    /// the signal best repeats itself, cross-faded in from the real signal,
    /// scaled by how well it repeated, held for 10 ms then faded to silence
    /// over 50 ms. When real signal follows the gap (later in the frame or in
    /// the [`Lookahead`]), the past stretch that best leads into it is
    /// cross-faded in towards the gap's end, so the fill meets it without a
    /// click.
    #[default]
    Waveform,
    /// Audio: zeros, the plain option.
    Silence,
    /// Sensors: the last value seen, per channel.
    Hold,
    /// Sensors: a straight line from the last value to the next one (in the
    /// frame or its [`Lookahead`]); holds the last value when the next one
    /// is not known yet.
    Linear,
    /// Sensors: no value. F32/F64 get NaN and scaled encodings their
    /// reserved minimum, which the CSV writer prints as an empty cell (it
    /// also takes the mask); other encodings are left as they are.
    Empty,
}

impl Method {
    /// The default for audio substreams.
    pub const AUDIO: Method = Method::Waveform;
    /// The default for sensor substreams.
    pub const SENSOR: Method = Method::Linear;

    /// Every method, for tables and command-line help.
    pub const ALL: [Method; 5] = [
        Method::Waveform,
        Method::Silence,
        Method::Hold,
        Method::Linear,
        Method::Empty,
    ];

    /// The method's name as parsed by [`str::parse`].
    pub const fn name(self) -> &'static str {
        match self {
            Method::Waveform => "waveform",
            Method::Silence => "silence",
            Method::Hold => "hold",
            Method::Linear => "linear",
            Method::Empty => "empty",
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The name is not one of [`Method::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown concealment method '{0}' (expected waveform, silence, hold, linear or empty)")]
pub struct UnknownMethod(pub String);

impl std::str::FromStr for Method {
    type Err = UnknownMethod;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Method::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownMethod(s.into()))
    }
}

/// The frame after the one being concealed, when it has already arrived
/// (completely or partly): read, never modified.
#[derive(Debug, Clone, Copy)]
pub struct Lookahead<'a> {
    /// Its wire bytes (whole samples; absent samples may hold anything).
    pub bytes: &'a [u8],
    /// Which of its samples arrived.
    pub mask: SampleMask<'a>,
}

/// What one call concealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Concealed {
    /// Samples filled in this frame.
    pub samples: usize,
    /// Concealment events that started in this frame (a gap continuing from
    /// the previous frame is not a new event).
    pub events: usize,
}

/// Running totals of a [`Concealer`], for the session statistics (the
/// W3C webrtc-stats notions of concealed samples and concealment events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ConcealStats {
    /// Frames seen.
    pub frames: u64,
    /// Frames with some but not all samples.
    pub frames_partial: u64,
    /// Frames with no sample at all.
    pub frames_lost: u64,
    /// Samples filled in.
    pub samples: u64,
    /// Distinct gaps filled (a gap spanning frames counts once).
    pub events: u64,
    /// Of `samples`, those interpolated between known neighbours.
    pub interpolated: u64,
    /// Of `samples`, those synthesised by waveform continuation.
    pub synthesized: u64,
}
