//! The session catalog: what each substream is and how it is cut into frames.
//!
//! Frame `n` of a substream covers media time `[n F, (n + 1) F)` and holds
//! the samples whose instants fall in it, so frames of every substream tile
//! one media clock exactly, whatever the rate (22.05 kHz at 10 ms alternates
//! 221 and 220 samples; a 1 Hz sensor has mostly empty frames).

use isochron_codecs::{Origin, StreamFormat};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use thiserror::Error;

use crate::codec::{MAX_UNIT, WireCodec};
use crate::wire::packet::REPAIR_SUBSTREAM;

/// At most this many substreams in one session.
pub const MAX_SUBSTREAMS: usize = 256;
/// Fragment and lane masks are 64-bit.
pub const MAX_FRAGMENTS: usize = 64;
/// Largest sample-interleave group and aggregation count.
pub const MAX_GROUP: u8 = 64;
/// A frame larger than this is refused: it would not fit the buffers.
pub const MAX_FRAME_BYTES: usize = 256 * 1024;
/// Shortest frame duration allowed (microseconds).
pub const MIN_FRAME_US: u32 = 250;
/// Longest frame duration allowed (microseconds).
pub const MAX_FRAME_US: u32 = 1_000_000;
/// Longest stream (media time, microseconds: about 35 years). A catalog
/// length or an end-of-stream total beyond it is refused, so every media
/// time fits comfortably in 64 bits and nothing a peer says about lengths
/// can make the receiver count (or wait) for ever.
pub const MAX_MEDIA_US: u64 = 1 << 50;
/// Frame duration of [`SubstreamDesc::audio`] and [`SubstreamDesc::sensor`]
/// (microseconds): 10 ms, the playout tick most audio apps use.
pub const DEFAULT_FRAME_US: u32 = 10_000;
/// How long [`SubstreamDesc::sensor`] lets small frames wait to share a
/// packet: 20 ms.
pub const DEFAULT_SENSOR_HOLD: Duration = Duration::from_millis(20);
/// Datagram size constructors plan aggregation for (the QUIC floor).
const PLANNED_DATAGRAM: usize = 1162;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
/// What a substream carries; decides concealment and how the tools write it out.
pub enum MediaKind {
    /// Audio samples (WAV in and out).
    #[default]
    Audio,
    /// Sensor readings (CSV in and out), usually sparse.
    Sensor,
}

/// One substream of a complex stream.
///
/// Build one with [`SubstreamDesc::audio`] or [`SubstreamDesc::sensor`]
/// (defaults: 10 ms frames, no sample interleaving, raw application
/// samples, length unknown) and adjust with the `with_*` methods:
///
/// ```
/// use isochron_codecs::{Encoding, Rate, StreamFormat};
/// use isochron_engine::SubstreamDesc;
/// use std::time::Duration;
///
/// let format = StreamFormat::new(Encoding::L16, 2, Rate::hz(48_000)?)?;
/// let mic = SubstreamDesc::audio(0, "mic.wav", format)
///     .with_frame(Duration::from_micros(2_500))
///     .with_sample_interleave(4);
/// assert_eq!((mic.frame_us, mic.sample_interleave, mic.length), (2_500, 4, None));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubstreamDesc {
    /// Unique in the session; also the packet header's substream id.
    pub id: u16,
    /// A hint for naming output (the receiver sanitises it).
    pub name: String,
    /// Audio or sensor.
    pub kind: MediaKind,
    /// Wire encoding, channel count and sample rate of the substream's bytes.
    pub format: StreamFormat,
    /// Frame duration in microseconds.
    pub frame_us: u32,
    /// Sample-interleave group G: samples of G frames dealt into G lanes.
    pub sample_interleave: u8,
    /// Whole frames one packet may carry when they are small (1: one each).
    pub frames_per_packet: u8,
    /// Where the samples came from (raw, WAV or CSV layout), so the receiver
    /// can rebuild the file bit-exact.
    pub origin: Origin,
    /// Total samples, when the source knows it (files).
    pub length: Option<u64>,
    /// Coded on the wire (Opus: one variable-size unit a frame) instead of
    /// as `format`'s samples; `format` is still what goes in and comes
    /// out. See [`crate::codec`].
    pub codec: Option<WireCodec>,
}

/// Why a catalog was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CatalogError {
    /// The catalog lists no substreams.
    #[error("a session needs at least one substream")]
    Empty,
    /// More than [`MAX_SUBSTREAMS`] substreams (the count given).
    #[error("{0} substreams is more than the {MAX_SUBSTREAMS} allowed")]
    TooMany(usize),
    /// An id appears twice, or is the one reserved for repair packets.
    #[error("substream id {0} is used twice (or is the reserved 65535)")]
    DuplicateId(u16),
    /// The name is longer than 255 bytes.
    #[error("substream {id}: name longer than 255 bytes")]
    Name {
        /// The offending substream.
        id: u16,
    },
    /// The frame duration is outside [`MIN_FRAME_US`]..=[`MAX_FRAME_US`].
    #[error("substream {id}: frame duration {us} us is outside {MIN_FRAME_US}..={MAX_FRAME_US} us")]
    FrameDuration {
        /// The offending substream.
        id: u16,
        /// The duration asked for, in microseconds.
        us: u32,
    },
    /// The sample-interleave group is outside 1..=[`MAX_GROUP`].
    #[error("substream {id}: sample interleave group must be 1..={MAX_GROUP}")]
    Group {
        /// The offending substream.
        id: u16,
    },
    /// Frames per packet outside 1..=[`MAX_GROUP`], or above 1 together with
    /// sample interleaving.
    #[error(
        "substream {id}: frames per packet must be 1..={MAX_GROUP}, and 1 with sample interleaving"
    )]
    Aggregation {
        /// The offending substream.
        id: u16,
    },
    /// The largest frame is over [`MAX_FRAME_BYTES`].
    #[error(
        "substream {id}: a frame of {bytes} bytes is over the {MAX_FRAME_BYTES}-byte limit; use a shorter frame duration"
    )]
    FrameTooLarge {
        /// The offending substream.
        id: u16,
        /// Bytes in its largest frame.
        bytes: usize,
    },
    /// The origin describes a file layout that cannot be written.
    #[error("substream {id}: origin: {what}")]
    Origin {
        /// The offending substream.
        id: u16,
        /// What is wrong with it.
        what: String,
    },
    /// The format has zero channels.
    #[error("substream {id}: no channels")]
    Channels {
        /// The offending substream.
        id: u16,
    },
    /// The format is not one `StreamFormat::new` would make (a zero or
    /// unreduced rate, too many decimals), as only a hostile peer sends.
    #[error("substream {id}: invalid format: {what}")]
    Format {
        /// The offending substream.
        id: u16,
        /// What is wrong.
        what: String,
    },
    /// The wire codec does not fit the substream.
    #[error("substream {id}: codec: {what}")]
    Codec {
        /// The offending substream.
        id: u16,
        /// What is wrong.
        what: String,
    },
    /// The length is longer than [`MAX_MEDIA_US`] of media.
    #[error(
        "substream {id}: {samples} samples is longer than the {MAX_MEDIA_US} us a stream may last"
    )]
    Length {
        /// The offending substream.
        id: u16,
        /// The length given.
        samples: u64,
    },
}

impl SubstreamDesc {
    /// An audio substream of raw application samples in `format`: 10 ms
    /// frames ([`DEFAULT_FRAME_US`]), one frame a packet, no sample
    /// interleaving, length unknown (a live source).
    pub fn audio(id: u16, name: impl Into<String>, format: StreamFormat) -> Self {
        Self {
            id,
            name: name.into(),
            kind: MediaKind::Audio,
            format,
            frame_us: DEFAULT_FRAME_US,
            sample_interleave: 1,
            frames_per_packet: 1,
            origin: Origin::Raw,
            length: None,
            codec: None,
        }
    }

    /// A sensor substream of raw application readings in `format`: 10 ms
    /// frames, small frames sharing a packet for up to
    /// [`DEFAULT_SENSOR_HOLD`] (see [`aggregate_within`](Self::aggregate_within)),
    /// length unknown.
    pub fn sensor(id: u16, name: impl Into<String>, format: StreamFormat) -> Self {
        Self {
            kind: MediaKind::Sensor,
            ..Self::audio(id, name, format)
        }
        .aggregate_within(DEFAULT_SENSOR_HOLD)
    }

    /// Frames of `frame` (rounded to microseconds; [`validate`](Self::validate)
    /// checks the range). A sensor substream re-plans its aggregation for
    /// the new frame within [`DEFAULT_SENSOR_HOLD`]; call
    /// [`with_frames_per_packet`](Self::with_frames_per_packet) after this to
    /// choose otherwise.
    pub fn with_frame(mut self, frame: Duration) -> Self {
        self.frame_us = u32::try_from(frame.as_micros()).unwrap_or(u32::MAX);
        if self.kind == MediaKind::Sensor && self.sample_interleave == 1 {
            self = self.aggregate_within(DEFAULT_SENSOR_HOLD);
        }
        self
    }

    /// The total number of samples, when the source knows it (a file): the
    /// receiver then knows where the stream ends before the end of stream.
    pub fn with_length(mut self, samples: u64) -> Self {
        self.length = Some(samples);
        self
    }

    /// Deal the samples of `group` frames into `group` packets (1: off), so
    /// a lost packet costs every `group`-th sample rather than a whole frame.
    pub fn with_sample_interleave(mut self, group: u8) -> Self {
        self.sample_interleave = group;
        if group > 1 {
            self.frames_per_packet = 1;
        }
        self
    }

    /// Let `frames` whole small frames share one packet (1: one each).
    pub fn with_frames_per_packet(mut self, frames: u8) -> Self {
        self.frames_per_packet = frames;
        self
    }

    /// Code the frames with `codec` on the wire (the frame duration becomes
    /// the codec's; one frame a packet, no sample interleaving).
    pub fn with_codec(mut self, codec: WireCodec) -> Self {
        let WireCodec::Opus(p) = &codec;
        self.frame_us = p.header.frame_us;
        self.sample_interleave = 1;
        self.frames_per_packet = 1;
        self.codec = Some(codec);
        self
    }

    /// Largest bytes one frame takes on the wire: its samples, or for a
    /// coded substream one unit.
    pub fn max_unit_bytes(&self) -> usize {
        match self.codec {
            Some(_) => MAX_UNIT,
            None => self.max_frame_bytes(),
        }
    }

    /// Where the samples came from (a WAV or CSV layout), so the receiver
    /// can rebuild that file bit-exact; [`Origin::Raw`] by default.
    pub fn with_origin(mut self, origin: Origin) -> Self {
        self.origin = origin;
        self
    }

    /// Pack as many whole frames a packet as fit one datagram and wait at
    /// most `hold` (at least one, at most 8): small sensor frames then do
    /// not each cost a packet.
    pub fn aggregate_within(mut self, hold: Duration) -> Self {
        let frame = self.max_frame_bytes().max(1);
        let fit = crate::wire::packet::max_payload(PLANNED_DATAGRAM) / frame;
        let by_time = (hold.as_micros() / (self.frame_us.max(1) as u128)) as usize;
        self.frames_per_packet = fit.min(by_time).clamp(1, 8) as u8;
        self
    }

    /// How its media travels, as the stats name it: the codec (`opus`),
    /// else the samples' wire encoding (`l16`, `f32`, `mulaw`, ...).
    pub fn wire_encoding(&self) -> &'static str {
        use isochron_codecs::Encoding as E;
        match (&self.codec, self.format.encoding) {
            (Some(WireCodec::Opus(_)), _) => "opus",
            (None, E::U8) => "u8",
            (None, E::L16) => "l16",
            (None, E::L24) => "l24",
            (None, E::L32) => "l32",
            (None, E::F32) => "f32",
            (None, E::F64) => "f64",
            (None, E::MuLaw) => "mulaw",
            (None, E::ALaw) => "alaw",
            (None, E::Scaled16 { .. }) => "scaled16",
            (None, E::Scaled32 { .. }) => "scaled32",
        }
    }

    /// [`frame_us`](Self::frame_us) as a [`Duration`].
    pub fn frame_duration(&self) -> Duration {
        Duration::from_micros(self.frame_us as u64)
    }

    /// Index of the first sample of frame `n`.
    pub fn frame_start(&self, n: u64) -> u64 {
        self.format
            .rate
            .samples_before(n.saturating_mul(self.frame_us as u64))
    }

    /// Samples in frame `n`.
    pub fn frame_samples(&self, n: u64) -> usize {
        (self.frame_start(n + 1) - self.frame_start(n)) as usize
    }

    /// Upper bound on samples in any frame.
    pub fn max_frame_samples(&self) -> usize {
        let r = self.format.rate;
        let num = self.frame_us as u128 * r.num() as u128;
        let den = 1_000_000u128 * r.den() as u128;
        num.div_ceil(den) as usize
    }

    /// Upper bound on the bytes of any frame (max samples x stride).
    pub fn max_frame_bytes(&self) -> usize {
        self.max_frame_samples() * self.format.stride()
    }

    /// Media timestamp of frame `n`.
    pub fn frame_ts(&self, n: u64) -> u64 {
        n.saturating_mul(self.frame_us as u64)
    }

    /// Frame index of a media timestamp, if it is on a frame boundary.
    /// Beyond [`MAX_MEDIA_US`] there are no frames (a peer's timestamp
    /// there is invalid).
    pub fn frame_of(&self, media_ts: u64) -> Option<u64> {
        let f = self.frame_us as u64;
        (media_ts % f == 0 && media_ts <= MAX_MEDIA_US).then_some(media_ts / f)
    }

    /// Frames the sender holds back before the first of them can leave:
    /// a whole interleave group, or a whole aggregate.
    pub fn hold_frames(&self) -> u64 {
        self.sample_interleave.max(self.frames_per_packet).max(1) as u64
    }

    /// How long the packetizer may hold a frame (group or aggregate).
    pub fn unit_delay(&self) -> Duration {
        self.frame_duration() * self.hold_frames() as u32
    }

    /// Check this substream's own limits (id, name, frame duration, group,
    /// aggregation, channels, frame size); uniqueness is [`validate`]'s job.
    pub fn validate(&self) -> Result<(), CatalogError> {
        let id = self.id;
        if id == REPAIR_SUBSTREAM {
            return Err(CatalogError::DuplicateId(id));
        }
        if self.name.len() > 255 {
            return Err(CatalogError::Name { id });
        }
        if !(MIN_FRAME_US..=MAX_FRAME_US).contains(&self.frame_us) {
            return Err(CatalogError::FrameDuration {
                id,
                us: self.frame_us,
            });
        }
        if !(1..=MAX_GROUP).contains(&self.sample_interleave) {
            return Err(CatalogError::Group { id });
        }
        if !(1..=MAX_GROUP).contains(&self.frames_per_packet)
            || (self.sample_interleave > 1 && self.frames_per_packet > 1)
        {
            return Err(CatalogError::Aggregation { id });
        }
        if self.format.channels == 0 {
            return Err(CatalogError::Channels { id });
        }
        check_format(self.format).map_err(|what| CatalogError::Format { id, what })?;
        if let Some(samples) = self.length
            && !self.fits_media(samples)
        {
            return Err(CatalogError::Length { id, samples });
        }
        match &self.origin {
            Origin::Wav(l) => l.check(),
            Origin::Csv(l) => l.check(),
            Origin::Raw => Ok(()),
        }
        .map_err(|what| CatalogError::Origin { id, what })?;
        let bytes = self.max_frame_bytes();
        if bytes > MAX_FRAME_BYTES {
            return Err(CatalogError::FrameTooLarge { id, bytes });
        }
        if let Some(c) = &self.codec {
            c.check(self)
                .map_err(|what| CatalogError::Codec { id, what })?;
        }
        Ok(())
    }
}

impl SubstreamDesc {
    /// Whether `samples` of this substream last at most [`MAX_MEDIA_US`].
    pub fn fits_media(&self, samples: u64) -> bool {
        // Rates are checked first; a rate of zero fits nothing.
        let r = self.format.rate;
        r.num() > 0
            && samples as u128 * 1_000_000 * r.den() as u128
                <= MAX_MEDIA_US as u128 * r.num() as u128
    }
}

/// Formats arrive through serde, past the constructors that check them:
/// check again what they would have (a rate of 0/x or x/0 would divide by
/// zero further on).
fn check_format(f: StreamFormat) -> Result<(), String> {
    let rate = isochron_codecs::Rate::new(f.rate.num(), f.rate.den()).map_err(|e| e.to_string())?;
    if rate != f.rate {
        return Err(format!(
            "rate {}/{} is not in lowest terms",
            f.rate.num(),
            f.rate.den()
        ));
    }
    StreamFormat::new(f.encoding, f.channels, f.rate)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Check a whole catalog: each substream, and ids unique.
pub fn validate(subs: &[SubstreamDesc]) -> Result<(), CatalogError> {
    if subs.is_empty() {
        return Err(CatalogError::Empty);
    }
    if subs.len() > MAX_SUBSTREAMS {
        return Err(CatalogError::TooMany(subs.len()));
    }
    let mut seen = std::collections::HashSet::new();
    for s in subs {
        s.validate()?;
        if !seen.insert(s.id) {
            return Err(CatalogError::DuplicateId(s.id));
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use isochron_codecs::{Encoding, Rate};

    pub fn stereo48k(id: u16, frame_us: u32) -> SubstreamDesc {
        SubstreamDesc {
            id,
            name: format!("audio{id}"),
            kind: MediaKind::Audio,
            format: StreamFormat::new(Encoding::L16, 2, Rate::hz(48_000).unwrap()).unwrap(),
            frame_us,
            sample_interleave: 1,
            frames_per_packet: 1,
            origin: Origin::Raw,
            length: None,
            codec: None,
        }
    }

    #[test]
    fn constructors_fill_the_defaults() {
        let stereo = StreamFormat::new(Encoding::L16, 2, Rate::hz(48_000).unwrap()).unwrap();
        assert_eq!(
            SubstreamDesc::audio(0, "audio0", stereo),
            stereo48k(0, 10_000)
        );
        let imu = StreamFormat::new(Encoding::F64, 3, Rate::hz(200).unwrap()).unwrap();
        let s = SubstreamDesc::sensor(1, "imu.csv", imu);
        assert_eq!(
            (s.kind, s.frame_us, s.frames_per_packet),
            (MediaKind::Sensor, 10_000, 2)
        );
        assert!(validate(std::slice::from_ref(&s)).is_ok());
        // 2 ms frames of a 200 Hz sensor: ten share a packet within 20 ms,
        // capped at eight.
        let s = s.with_frame(Duration::from_millis(2)).with_length(1_000);
        assert_eq!(
            (s.frame_us, s.frames_per_packet, s.length),
            (2_000, 8, Some(1_000))
        );
        let a = SubstreamDesc::audio(2, "a", stereo)
            .with_frames_per_packet(3)
            .with_sample_interleave(4);
        assert_eq!((a.sample_interleave, a.frames_per_packet), (4, 1));
        assert!(validate(&[a]).is_ok());
    }

    #[test]
    fn frame_geometry() {
        let s = stereo48k(0, 10_000);
        assert_eq!(s.frame_samples(0), 480);
        assert_eq!(s.max_frame_bytes(), 1920);
        assert_eq!(s.frame_of(20_000), Some(2));
        assert_eq!(s.frame_of(20_001), None);
        let mut slow = s.clone();
        slow.format.rate = Rate::hz(1).unwrap();
        assert_eq!(slow.max_frame_samples(), 1);
        let n: usize = (0..100).map(|i| slow.frame_samples(i)).sum();
        assert_eq!(n, 1, "one sample a second, one second of frames");
    }

    #[test]
    fn validation_names_the_problem() {
        let mut s = stereo48k(1, 10_000);
        s.sample_interleave = 4;
        s.frames_per_packet = 2;
        assert_eq!(
            validate(&[s.clone()]).unwrap_err(),
            CatalogError::Aggregation { id: 1 }
        );
        s.frames_per_packet = 1;
        assert!(validate(&[s.clone(), s.clone()]).is_err());
        assert!(validate(&[s.clone()]).is_ok());
        // A peer's WAV layout is checked before a file is written from it.
        let mut bad = isochron_codecs::WavLayout::pcm(16);
        bad.valid_bits = 40;
        s.origin = Origin::Wav(bad);
        assert!(matches!(
            validate(&[s.clone()]),
            Err(CatalogError::Origin { id: 1, .. })
        ));
        let mut tail = isochron_codecs::WavLayout::pcm(16);
        tail.fact = Some(vec![0; 65]);
        s.origin = Origin::Wav(tail);
        assert!(validate(&[s]).is_err());
    }
}
