//! Coded substreams: audio carried as codec packets (Opus) instead of
//! samples.
//!
//! A coded substream keeps its `format` (what the application pushes and
//! the receiver writes back: same rate, layout and encoding) and adds a
//! [`WireCodec`]. Its frames are still the catalog's frames (one media
//! clock for every substream), but each frame travels as one *unit* of
//! variable size (at most [`MAX_UNIT`] bytes, one packet, never
//! fragmented). The packetizer, the FEC blocks (shards are whole packets,
//! short ones zero-padded) and the jitter buffer carry units as they are;
//! presence is still counted per sample (a unit is all of its frame's
//! samples), so loss and concealment figures compare with PCM's directly.
//!
//! The codec runs at the ends of the core, off the network path: the
//! sender codes the frames its source produced ([`UnitSource`]), the
//! playout decodes each frame when it is due ([`FrameDecoder`]), with the
//! next frame's unit when it is here (Opus LBRR), else the decoder's PLC.

use isochron_codecs::SampleMask;
use isochron_codecs::encoding::{decode, encode};
use isochron_codecs::opus::{Decoded, OpusConfig, OpusParams, UnitDecoder, UnitEncoder};
use isochron_codecs::{Encoding, StreamFormat};
use serde::{Deserialize, Serialize};

use crate::catalog::{MediaKind, SubstreamDesc};

/// Largest unit (one packet's payload at the datagram size every path
/// carries, 1162 bytes).
pub const MAX_UNIT: usize = crate::wire::packet::max_payload(1162);

/// How a coded substream's frames are coded on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireCodec {
    /// Opus (libopus), with the parameters the decoder needs.
    Opus(OpusParams),
}

impl WireCodec {
    /// Opus for `format` with `cfg` (bitrate, frame, in-band FEC).
    pub fn opus(format: StreamFormat, cfg: &OpusConfig) -> Result<Self, String> {
        let rate = integer_rate(format)?;
        OpusParams::new(format.channels, rate, cfg)
            .map(WireCodec::Opus)
            .map_err(|e| e.to_string())
    }

    /// Whether it fits `desc` (from a peer: checked like everything else).
    pub fn check(&self, desc: &SubstreamDesc) -> Result<(), String> {
        let WireCodec::Opus(p) = self;
        if desc.kind != MediaKind::Audio
            || desc.sample_interleave != 1
            || desc.frames_per_packet != 1
        {
            return Err(
                "Opus needs an audio substream, one frame a packet, no sample interleaving".into(),
            );
        }
        if desc.frame_us != p.header.frame_us {
            return Err(format!(
                "frames of {} us where the Opus frame is {} us",
                desc.frame_us, p.header.frame_us
            ));
        }
        if matches!(
            desc.format.encoding,
            Encoding::Scaled16 { .. } | Encoding::Scaled32 { .. }
        ) {
            return Err("Opus carries audio samples, not scaled sensor values".into());
        }
        // The decoder checks the parameters and libopus takes the mapping.
        UnitDecoder::new(p, integer_rate(desc.format)?)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

fn integer_rate(format: StreamFormat) -> Result<u32, String> {
    let r = format.rate;
    if r.den() != 1 {
        return Err(format!(
            "Opus needs a whole rate in Hz, not {}/{}",
            r.num(),
            r.den()
        ));
    }
    Ok(r.num())
}

/// Sender side: the source's frames (wire-encoded samples) in, units out.
pub struct UnitSource {
    enc: UnitEncoder,
    encoding: Encoding,
    f32s: Vec<f32>,
    frames_in: u64,
}

impl UnitSource {
    /// An encoder for coded substream `desc` (None if it is not coded).
    pub fn new(desc: &SubstreamDesc) -> Option<Result<Self, String>> {
        let WireCodec::Opus(p) = desc.codec.as_ref()?;
        let rate = match integer_rate(desc.format) {
            Ok(r) => r,
            Err(e) => return Some(Err(e)),
        };
        let cfg = p.config();
        Some(
            UnitEncoder::new(desc.format.channels, rate, &cfg, MAX_UNIT)
                .map_err(|e| e.to_string())
                .and_then(|enc| {
                    if enc.params() != p {
                        Err("the Opus parameters differ from this libopus's".into())
                    } else {
                        Ok(Self {
                            enc,
                            encoding: desc.format.encoding,
                            f32s: Vec::new(),
                            frames_in: 0,
                        })
                    }
                }),
        )
    }

    /// Frames taken from the source so far.
    pub fn frames_in(&self) -> u64 {
        self.frames_in
    }

    /// Codes one frame of samples; `emit(frame, unit)` for each unit ready
    /// (they trail the input by the codec's delay).
    pub fn push(&mut self, bytes: &[u8], emit: &mut dyn FnMut(u64, &[u8])) -> Result<(), String> {
        self.frames_in += 1;
        self.f32s.resize(bytes.len() / self.encoding.bytes(), 0.0);
        decode(self.encoding, bytes, &mut self.f32s);
        self.enc.push(&self.f32s, emit).map_err(|e| e.to_string())
    }

    /// The source ended: the remaining units, one per frame taken.
    pub fn finish(&mut self, emit: &mut dyn FnMut(u64, &[u8])) -> Result<(), String> {
        self.enc
            .finish(self.frames_in, emit)
            .map_err(|e| e.to_string())
    }
}

/// How the decoder produced the frames it played.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecodeCounts {
    /// Rebuilt from the next unit's in-band FEC (LBRR).
    pub fec: u64,
    /// Concealed by the decoder's PLC (lost, or damaged).
    pub plc: u64,
}

/// Receiver side: each due frame's unit in, the frame's samples out in the
/// substream's encoding.
pub struct FrameDecoder {
    /// None if libopus refused the parameters: frames play as silence.
    dec: Option<UnitDecoder>,
    encoding: Encoding,
    channels: usize,
    f32s: Vec<f32>,
    pcm: Vec<u8>,
    full: Vec<u64>,
    counts: DecodeCounts,
}

impl FrameDecoder {
    /// A decoder for coded substream `desc` (None if it is not coded).
    /// The catalog was validated, so libopus takes its parameters.
    pub fn new(desc: &SubstreamDesc) -> Option<Self> {
        let WireCodec::Opus(p) = desc.codec.as_ref()?;
        let dec = integer_rate(desc.format)
            .ok()
            .and_then(|rate| UnitDecoder::new(p, rate).ok());
        let max = desc.max_frame_samples();
        Some(Self {
            dec,
            encoding: desc.format.encoding,
            channels: desc.format.channels as usize,
            f32s: vec![0.0; max * desc.format.channels as usize],
            pcm: vec![0; max * desc.format.stride()],
            full: vec![u64::MAX; max.div_ceil(64).max(1)],
            counts: DecodeCounts::default(),
        })
    }

    /// How frames were produced so far.
    pub fn counts(&self) -> DecodeCounts {
        self.counts
    }

    /// Decodes frame `frame` of `samples` samples from its `unit` (empty:
    /// lost) and the next frame's (for LBRR). Returns the samples, every
    /// one of them present (what was lost is concealed already).
    pub fn decode(
        &mut self,
        frame: u64,
        unit: &[u8],
        next: Option<&[u8]>,
        samples: usize,
    ) -> (&mut [u8], SampleMask<'_>) {
        let vals = samples * self.channels;
        let out = &mut self.f32s[..vals];
        let unit = (!unit.is_empty()).then_some(unit);
        let next = next.filter(|n| !n.is_empty());
        let how = match &mut self.dec {
            Some(d) => d.decode(frame, unit, next, out),
            None => Ok(Decoded::Corrupt),
        };
        match how {
            Ok(Decoded::Packet) => {}
            Ok(Decoded::Fec) => self.counts.fec += 1,
            Ok(Decoded::Plc) => self.counts.plc += 1,
            Ok(Decoded::Corrupt) | Err(_) => {
                out.fill(0.0);
                self.counts.plc += 1;
            }
        }
        let bytes = vals * self.encoding.bytes();
        encode(self.encoding, &self.f32s[..vals], &mut self.pcm[..bytes]);
        (&mut self.pcm[..bytes], SampleMask::new(&self.full, samples))
    }
}
