//! Opus as a wire encoding, sans-IO: interleaved f32 at the stream's own
//! rate in, packets out, and back, aligned sample for sample.
//!
//! - Any channel count the multistream API carries (1 to 255).
//! - 48 kHz inside; other rates go through rubato's synchronous FFT
//!   resampler on both sides, so the output keeps the input's rate.
//! - Alignment: the decoder drops the whole chain's delay (resampler in,
//!   encoder look-ahead, resampler out) like Ogg Opus's pre-skip. The
//!   sender pads the 48 kHz stream so that delay is a whole number of
//!   samples at the stream rate too; the count out equals the count in
//!   once the decoder is told the total ([`OpusDecoder::finish`]).
//! - Loss: a lost packet is rebuilt from the next packet's in-band FEC
//!   (LBRR) when that packet is here, else by the decoder's PLC. LBRR only
//!   exists in SILK/hybrid modes (frames of 10 ms or more): at music
//!   bitrates libopus codes CELT and the FEC decode falls back to PLC.

mod multistream;
mod resample;
mod units;

pub use multistream::{Mapping, MsDecoder, MsEncoder};
pub use resample::Resample;
pub use units::{MAX_SHIFT, OpusParams, UnitDecoder, UnitEncoder};

use audiopus_sys as sys;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Frame durations Opus codes, in microseconds.
pub const FRAME_US: [u32; 4] = [2_500, 5_000, 10_000, 20_000];

/// Encoder settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusConfig {
    /// Target bitrate of the whole stream, bit/s.
    pub bitrate: u32,
    /// Frame duration (one of [`FRAME_US`]).
    pub frame_us: u32,
    /// In-band FEC (LBRR) in every packet, for the frame before it.
    pub fec: bool,
    /// The loss the encoder plans its FEC for, percent.
    pub loss_percent: u8,
}

impl Default for OpusConfig {
    fn default() -> Self {
        Self {
            bitrate: 96_000,
            frame_us: 10_000,
            fec: true,
            loss_percent: 5,
        }
    }
}

impl OpusConfig {
    /// Refuses settings libopus cannot honour.
    pub fn check(&self) -> Result<()> {
        if !FRAME_US.contains(&self.frame_us) {
            return Err(Error::Opus {
                what: format!(
                    "a {} us frame (Opus codes 2.5, 5, 10 or 20 ms)",
                    self.frame_us
                ),
            });
        }
        if !(6_000..=2_000_000).contains(&self.bitrate) || self.loss_percent > 100 {
            return Err(Error::Opus {
                what: format!(
                    "bitrate {} bit/s, loss {} % (6 kbit/s and up, 0 to 100 %)",
                    self.bitrate, self.loss_percent
                ),
            });
        }
        Ok(())
    }

    /// Samples per channel in one frame at 48 kHz.
    pub fn frame48(&self) -> usize {
        (self.frame_us as usize * 48) / 1000
    }
}

/// What the decoder needs from the sender (carried like an Ogg Opus
/// header): the mapping, the delay to drop, the frame duration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpusHeader {
    /// Channel mapping of the multistream packets.
    pub mapping: Mapping,
    /// Samples at 48 kHz the decoder drops at the start.
    pub pre_skip: u32,
    /// Frame duration, microseconds.
    pub frame_us: u32,
}

/// Samples per channel in a frame at `rate` for the resamplers' chunks.
fn frame_at(rate: u32, frame_us: u32) -> usize {
    ((rate as u64 * frame_us as u64).div_ceil(1_000_000)).max(1) as usize
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Encodes a stream: [`push`](Self::push) samples, packets come out as
/// frames fill; [`finish`](Self::finish) flushes the tail.
pub struct OpusEncoder {
    enc: MsEncoder,
    channels: usize,
    rate: u32,
    frame48: usize,
    resample: Option<Resample>,
    pcm48: Vec<f32>,
    packet: Vec<u8>,
    header: OpusHeader,
    input: u64,
    /// Packets coded so far.
    made: u64,
    /// Byte caps: the first `caps.0` packets at most `caps.1`, then `caps.2`.
    caps: (u64, usize, usize),
}

impl OpusEncoder {
    /// An encoder for `channels` at `rate` Hz.
    pub fn new(channels: u16, rate: u32, cfg: &OpusConfig) -> Result<Self> {
        cfg.check()?;
        if rate == 0 || rate > 768_000 {
            return Err(Error::Opus {
                what: format!("a rate of {rate} Hz"),
            });
        }
        let mut enc = MsEncoder::new(channels)?;
        enc.set(sys::OPUS_SET_BITRATE_REQUEST, cfg.bitrate as i32)?;
        enc.set(sys::OPUS_SET_SIGNAL_REQUEST, sys::OPUS_SIGNAL_MUSIC)?;
        enc.set(sys::OPUS_SET_INBAND_FEC_REQUEST, cfg.fec as i32)?;
        enc.set(
            sys::OPUS_SET_PACKET_LOSS_PERC_REQUEST,
            cfg.loss_percent as i32,
        )?;
        let lookahead = enc.lookahead()?;
        let ch = channels as usize;
        let resample = (rate != 48_000)
            .then(|| Resample::new(rate, 48_000, frame_at(rate, cfg.frame_us), ch))
            .transpose()?;
        let d1 = resample.as_ref().map_or(0, Resample::delay);
        // Pad so the 48 kHz delay is a whole number of samples at `rate`.
        let step = (48_000 / gcd(rate, 48_000)) as usize;
        let pad = (step - (d1 + lookahead) % step) % step;
        let header = OpusHeader {
            mapping: enc.mapping().clone(),
            pre_skip: (d1 + lookahead + pad) as u32,
            frame_us: cfg.frame_us,
        };
        Ok(Self {
            enc,
            channels: ch,
            rate,
            frame48: cfg.frame48(),
            resample,
            pcm48: vec![0.0; pad * ch],
            // The largest packet libopus writes per stream, times streams.
            packet: vec![0; 1275 * 3 * header.mapping.streams as usize + 7],
            header,
            input: 0,
            made: 0,
            caps: (0, usize::MAX, usize::MAX),
        })
    }

    /// Caps packet sizes: the first `first` packets at `first_cap` bytes,
    /// the others at `cap` (libopus lowers that frame's bitrate to fit).
    pub fn set_packet_caps(&mut self, first: u64, first_cap: usize, cap: usize) {
        self.caps = (first, first_cap.max(3), cap.max(3));
    }

    /// Packets coded so far.
    pub fn packets(&self) -> u64 {
        self.made
    }

    /// What the decoder needs.
    pub fn header(&self) -> &OpusHeader {
        &self.header
    }

    /// Samples per channel pushed so far.
    pub fn samples_in(&self) -> u64 {
        self.input
    }

    /// Feeds interleaved samples; `emit` gets each packet as it is coded.
    pub fn push(&mut self, pcm: &[f32], emit: &mut dyn FnMut(&[u8])) -> Result<()> {
        self.input += (pcm.len() / self.channels) as u64;
        match &mut self.resample {
            Some(r) => r.push(pcm, &mut self.pcm48)?,
            None => self.pcm48.extend_from_slice(pcm),
        }
        self.drain(emit)
    }

    /// Flushes the tail: enough silence that the decoder's output covers
    /// every input sample after its pre-skip, then a last whole frame.
    pub fn finish(&mut self, emit: &mut dyn FnMut(&[u8])) -> Result<()> {
        let out_side = Resample::new(48_000, self.rate, self.frame48, self.channels)?;
        let chunk_in = self.resample.as_ref().map_or(0, Resample::chunk_in);
        let tail = Alignment::new(&self.header, self.rate, self.channels)?.delay
            + out_side.chunk_out()
            + chunk_in
            + frame_at(self.rate, self.header.frame_us);
        let zeros = vec![0.0; tail * self.channels];
        match &mut self.resample {
            Some(r) => r.push(&zeros, &mut self.pcm48)?,
            None => self.pcm48.extend_from_slice(&zeros),
        }
        let whole = self.frame48 * self.channels;
        let len = self.pcm48.len().div_ceil(whole) * whole;
        self.pcm48.resize(len, 0.0);
        self.drain(emit)
    }

    fn drain(&mut self, emit: &mut dyn FnMut(&[u8])) -> Result<()> {
        let whole = self.frame48 * self.channels;
        let mut at = 0;
        while self.pcm48.len() - at >= whole {
            let cap = if self.made < self.caps.0 {
                self.caps.1
            } else {
                self.caps.2
            };
            let cap = cap.min(self.packet.len());
            let n = self
                .enc
                .encode(&self.pcm48[at..at + whole], &mut self.packet[..cap])?;
            self.made += 1;
            emit(&self.packet[..n]);
            at += whole;
        }
        self.pcm48.drain(..at);
        Ok(())
    }
}

/// The decoder's delay to drop, at the stream rate.
#[derive(Debug, Clone, Copy)]
pub struct Alignment {
    /// Output samples per channel dropped at the start.
    pub delay: usize,
}

impl Alignment {
    /// The delay of the whole chain for `header` at `rate`.
    pub fn new(header: &OpusHeader, rate: u32, channels: usize) -> Result<Self> {
        let pre = header.pre_skip as u64 * rate as u64;
        if pre % 48_000 != 0 || header.pre_skip > 48_000 {
            return Err(Error::Opus {
                what: format!("a pre-skip of {} at {rate} Hz", header.pre_skip),
            });
        }
        let d2 = if rate == 48_000 {
            0
        } else {
            let frame48 = (header.frame_us as usize * 48) / 1000;
            Resample::new(48_000, rate, frame48, channels)?.delay()
        };
        Ok(Self {
            delay: (pre / 48_000) as usize + d2,
        })
    }
}

/// How a frame was produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded {
    /// From its own packet.
    Packet,
    /// From the next packet's in-band FEC (LBRR; a SILK or hybrid packet
    /// may still have carried none, then libopus conceals).
    Fec,
    /// Concealed by the decoder's PLC.
    Plc,
    /// The packet did not decode (damaged or hostile): concealed by PLC.
    Corrupt,
}

/// Whether a packet can carry in-band FEC: its (first stream's) TOC says
/// SILK or hybrid; CELT-only packets have no LBRR, so their FEC decode
/// would be PLC under another name.
fn carries_lbrr(packet: &[u8]) -> bool {
    packet.first().is_some_and(|toc| toc >> 3 < 16)
}

/// Decodes a stream of packets, one per frame in order, with losses.
pub struct OpusDecoder {
    dec: MsDecoder,
    channels: usize,
    frame48: usize,
    resample: Option<Resample>,
    pcm48: Vec<f32>,
    staged: Vec<f32>,
    skip: usize,
    emitted: u64,
}

impl OpusDecoder {
    /// A decoder for a sender's `header`, writing at `rate` Hz.
    pub fn new(header: &OpusHeader, rate: u32) -> Result<Self> {
        let channels = header.mapping.table.len();
        let cfg = OpusConfig {
            frame_us: header.frame_us,
            ..Default::default()
        };
        cfg.check()?;
        let align = Alignment::new(header, rate, channels)?;
        let frame48 = cfg.frame48();
        let resample = (rate != 48_000)
            .then(|| Resample::new(48_000, rate, frame48, channels))
            .transpose()?;
        Ok(Self {
            dec: MsDecoder::new(&header.mapping)?,
            channels,
            frame48,
            resample,
            pcm48: vec![0.0; frame48 * channels],
            staged: Vec::new(),
            skip: align.delay,
            emitted: 0,
        })
    }

    /// Decodes the next frame: its `packet`, or if it was lost, from the
    /// `next` packet's FEC when that one is here, else PLC. Appends the
    /// aligned samples that are ready to `out` (not one per frame: the
    /// resampler works in chunks and the pre-skip is dropped first).
    pub fn decode(
        &mut self,
        packet: Option<&[u8]>,
        next: Option<&[u8]>,
        out: &mut Vec<f32>,
    ) -> Result<Decoded> {
        let how = match (packet, next) {
            (Some(p), _) => match self.dec.decode(Some(p), &mut self.pcm48, false) {
                Ok(n) if n == self.frame48 => Decoded::Packet,
                // A packet of another duration than the stream's frame is
                // not ours: conceal instead of shifting the timeline.
                _ => {
                    self.dec.decode(None, &mut self.pcm48, false)?;
                    Decoded::Corrupt
                }
            },
            (None, Some(n)) if carries_lbrr(n) => {
                match self.dec.decode(Some(n), &mut self.pcm48, true) {
                    Ok(k) if k == self.frame48 => Decoded::Fec,
                    _ => {
                        self.dec.decode(None, &mut self.pcm48, false)?;
                        Decoded::Plc
                    }
                }
            }
            (None, _) => {
                self.dec.decode(None, &mut self.pcm48, false)?;
                Decoded::Plc
            }
        };
        self.staged.clear();
        match &mut self.resample {
            Some(r) => r.push(&self.pcm48, &mut self.staged)?,
            None => self.staged.extend_from_slice(&self.pcm48),
        }
        let frames = self.staged.len() / self.channels;
        let drop = self.skip.min(frames);
        self.skip -= drop;
        out.extend_from_slice(&self.staged[drop * self.channels..]);
        self.emitted += (frames - drop) as u64;
        Ok(how)
    }

    /// Samples per channel handed out so far.
    pub fn samples_out(&self) -> u64 {
        self.emitted
    }

    /// The end: how many samples per channel of `out` (everything this
    /// decoder appended) are the stream's, given the sender's count.
    pub fn finish(&self, total: u64) -> u64 {
        total.min(self.emitted)
    }
}
