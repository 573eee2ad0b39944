//! Opus packets as the engine's units: one unit per media frame, decoded
//! into exactly that frame's samples.
//!
//! The codec's output lags its input (encoder look-ahead, resamplers). So
//! that frame `n` of the output is frame `n` of the input, played at its
//! own time with nothing added at the receiver, the sender runs `shift`
//! (L) packets ahead: unit 0 carries packets `0..=L` (the pre-roll the
//! decoder needs to start where the encoder did), unit `n > 0` carries
//! packet `n + L`. L is the smallest shift after which decoding units
//! `0..=n` has produced every sample of frames `0..=n` for every `n`
//! (computed in integers, the same on both ends, and carried in the
//! catalog). What the decoder made beyond frame `n` waits for frame
//! `n + 1`. The cost is the codec's delay, paid at the sender: unit `n`
//! leaves once the input reaches about `L` frames past frame `n`'s start.
//!
//! A lost unit `n` is rebuilt from the in-band FEC (LBRR) of unit `n + 1`
//! when that one is here (its packet carries the LBRR of the one before),
//! else concealed by the decoder's PLC. Either way the decoder produces the
//! same number of samples, so the timeline never shifts.
//!
//! Unit bytes: a count `k` (1..=L+1), `k - 1` big-endian `u16` lengths,
//! then the `k` packets (the last one's length is the rest).

use serde::{Deserialize, Serialize};

use super::{Alignment, Decoded, OpusConfig, OpusDecoder, OpusEncoder, OpusHeader, Resample};
use crate::error::{Error, Result};

/// Largest shift a catalog may carry (a 2.5 ms frame through two
/// resamplers needs about 8).
pub const MAX_SHIFT: u8 = 32;

/// The Opus parameters of a substream, as the catalog carries them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpusParams {
    /// Mapping, pre-skip and frame duration (what Ogg Opus's header says).
    pub header: OpusHeader,
    /// Packets the units run ahead of the frames (L, see the module doc).
    pub shift: u8,
    /// The encoder's target bitrate, bit/s.
    pub bitrate: u32,
    /// The loss the encoder plans its in-band FEC for, percent (0: none).
    pub fec_loss_percent: u8,
}

fn bad(what: String) -> Error {
    Error::Opus { what }
}

/// Samples before media time `t_us` at `rate` Hz (the engine's frame
/// geometry: `ceil(t rate / 1e6)`).
fn before(t_us: u64, rate: u32) -> u64 {
    (t_us as u128 * rate as u128).div_ceil(1_000_000) as u64
}

/// The smallest shift after which decoding units `0..=n` covers frames
/// `0..=n`, for a decoder that drops `delay` output samples and resamples
/// in chunks of `c_in` samples at 48 kHz to `c_out` at `rate`.
fn shift_for(header: &OpusHeader, rate: u32, channels: usize) -> Result<usize> {
    let delay = Alignment::new(header, rate, channels)?.delay as u64;
    let f48 = (header.frame_us as u64 * 48) / 1000;
    let (c_in, c_out) = if rate == 48_000 {
        (1, 1)
    } else {
        let r = Resample::new(48_000, rate, f48 as usize, channels)?;
        (r.chunk_in() as u64, r.chunk_out() as u64)
    };
    // The pattern of frame lengths and chunk boundaries repeats within a
    // second of media; two cover every phase.
    let frames = 2_000_000 / header.frame_us as u64 + 2;
    let mut shift = 0u64;
    for n in 0..frames {
        let need = before((n + 1) * header.frame_us as u64, rate) + delay;
        // 48 kHz samples after which the resampler has put out `need`.
        let m = need.div_ceil(c_out) * c_in;
        let packets = m.div_ceil(f48);
        shift = shift.max(packets.saturating_sub(n + 1));
    }
    if shift > MAX_SHIFT as u64 {
        return Err(bad(format!(
            "a shift of {shift} packets (at most {MAX_SHIFT})"
        )));
    }
    Ok(shift as usize)
}

impl OpusParams {
    /// The encoder settings these parameters were made with.
    pub fn config(&self) -> OpusConfig {
        OpusConfig {
            bitrate: self.bitrate,
            frame_us: self.header.frame_us,
            fec: self.fec_loss_percent > 0,
            loss_percent: self.fec_loss_percent,
        }
    }

    /// The parameters an encoder for `channels` at `rate` Hz with `cfg`
    /// will use.
    pub fn new(channels: u16, rate: u32, cfg: &OpusConfig) -> Result<Self> {
        let enc = OpusEncoder::new(channels, rate, cfg)?;
        let header = enc.header().clone();
        let shift = shift_for(&header, rate, channels as usize)? as u8;
        Ok(Self {
            header,
            shift,
            bitrate: cfg.bitrate,
            fec_loss_percent: if cfg.fec { cfg.loss_percent } else { 0 },
        })
    }

    /// Whether a peer's parameters fit a substream of `channels` at `rate`
    /// Hz: frame, mapping, pre-skip, and the shift both ends compute.
    pub fn check(&self, channels: u16, rate: u32) -> Result<()> {
        self.config().check()?;
        if self.header.mapping.table.len() != channels as usize {
            return Err(bad(format!(
                "a mapping of {} channels for a {channels}-channel substream",
                self.header.mapping.table.len()
            )));
        }
        if !(8_000..=768_000).contains(&rate) {
            return Err(bad(format!("a rate of {rate} Hz (8 to 768 kHz)")));
        }
        let want = shift_for(&self.header, rate, channels as usize)?;
        if want != self.shift as usize {
            return Err(bad(format!(
                "a shift of {} packets where the pre-skip needs {want}",
                self.shift
            )));
        }
        Ok(())
    }

    /// Largest unit a sender with `cap`-byte units sends.
    pub fn packet_caps(&self, max_unit: usize) -> (usize, usize) {
        let l = self.shift as usize;
        let first = max_unit.saturating_sub(1 + 2 * l) / (l + 1);
        (first, max_unit.saturating_sub(1))
    }
}

/// Samples at `rate` Hz, interleaved f32, in; units out, in order.
pub struct UnitEncoder {
    enc: OpusEncoder,
    params: OpusParams,
    channels: usize,
    rate: u32,
    /// Packets coded but not yet in a unit.
    packets: std::collections::VecDeque<Vec<u8>>,
    made: u64,
    units: u64,
    unit: Vec<u8>,
}

impl UnitEncoder {
    /// An encoder for `channels` at `rate` whose units are at most
    /// `max_unit` bytes (one datagram's payload).
    pub fn new(channels: u16, rate: u32, cfg: &OpusConfig, max_unit: usize) -> Result<Self> {
        let mut enc = OpusEncoder::new(channels, rate, cfg)?;
        let header = enc.header().clone();
        let shift = shift_for(&header, rate, channels as usize)?;
        let params = OpusParams {
            header,
            shift: shift as u8,
            bitrate: cfg.bitrate,
            fec_loss_percent: if cfg.fec { cfg.loss_percent } else { 0 },
        };
        let (first, rest) = params.packet_caps(max_unit);
        if first < 16 {
            return Err(bad(format!(
                "{max_unit}-byte units cannot hold {} packets",
                shift + 1
            )));
        }
        enc.set_packet_caps(shift as u64 + 1, first, rest);
        Ok(Self {
            enc,
            params,
            channels: channels as usize,
            rate,
            packets: Default::default(),
            made: 0,
            units: 0,
            unit: Vec::with_capacity(max_unit),
        })
    }

    /// What the catalog carries.
    pub fn params(&self) -> &OpusParams {
        &self.params
    }

    /// Units emitted so far.
    pub fn units(&self) -> u64 {
        self.units
    }

    /// Feeds interleaved samples; `emit` gets `(frame, unit)` for each unit
    /// complete.
    pub fn push(&mut self, pcm: &[f32], emit: &mut dyn FnMut(u64, &[u8])) -> Result<()> {
        let packets = &mut self.packets;
        self.enc.push(pcm, &mut |p| packets.push_back(p.to_vec()))?;
        self.made = self.enc.packets();
        self.emit_ready(u64::MAX, emit);
        Ok(())
    }

    /// The input ended after `frames` frames: codes the tail and emits the
    /// units up to that count.
    pub fn finish(&mut self, frames: u64, emit: &mut dyn FnMut(u64, &[u8])) -> Result<()> {
        let packets = &mut self.packets;
        self.enc.finish(&mut |p| packets.push_back(p.to_vec()))?;
        let zeros =
            vec![0.0; super::frame_at(self.rate, self.params.header.frame_us) * self.channels];
        while self.enc.packets() < frames + self.params.shift as u64 {
            let packets = &mut self.packets;
            self.enc
                .push(&zeros, &mut |p| packets.push_back(p.to_vec()))?;
        }
        self.made = self.enc.packets();
        self.emit_ready(frames, emit);
        Ok(())
    }

    fn emit_ready(&mut self, limit: u64, emit: &mut dyn FnMut(u64, &[u8])) {
        let l = self.params.shift as u64;
        while self.units < limit && self.made > self.units + l {
            let k = if self.units == 0 { l as usize + 1 } else { 1 };
            self.unit.clear();
            self.unit.push(k as u8);
            for p in self.packets.iter().take(k - 1) {
                self.unit.extend_from_slice(&(p.len() as u16).to_be_bytes());
            }
            for p in self.packets.drain(..k) {
                self.unit.extend_from_slice(&p);
            }
            emit(self.units, &self.unit);
            self.units += 1;
        }
    }
}

/// The packets of a unit, if it is well formed.
fn split(unit: &[u8], want: usize, out: &mut Vec<(usize, usize)>) -> bool {
    out.clear();
    let Some((&k, rest)) = unit.split_first() else {
        return false;
    };
    let k = k as usize;
    if k == 0 || k != want || rest.len() < 2 * (k - 1) {
        return false;
    }
    let (lens, body) = rest.split_at(2 * (k - 1));
    let mut at = 0;
    for l in lens.chunks_exact(2) {
        let n = u16::from_be_bytes([l[0], l[1]]) as usize;
        if n == 0 || at + n >= body.len() {
            return false;
        }
        out.push((1 + lens.len() + at, n));
        at += n;
    }
    if at >= body.len() {
        return false;
    }
    out.push((1 + lens.len() + at, body.len() - at));
    true
}

/// Units in, each frame's samples out (interleaved f32 at the stream's
/// rate), aligned with the sender's input.
pub struct UnitDecoder {
    dec: OpusDecoder,
    channels: usize,
    shift: usize,
    fifo: Vec<f32>,
    parts: Vec<(usize, usize)>,
    next_parts: Vec<(usize, usize)>,
    short: u64,
}

impl UnitDecoder {
    /// A decoder for a substream's `params` at `rate` Hz.
    pub fn new(params: &OpusParams, rate: u32) -> Result<Self> {
        let channels = params.header.mapping.table.len();
        params.check(channels as u16, rate)?;
        Ok(Self {
            dec: OpusDecoder::new(&params.header, rate)?,
            channels,
            shift: params.shift as usize,
            fifo: Vec::new(),
            parts: Vec::new(),
            next_parts: Vec::new(),
            short: 0,
        })
    }

    /// Samples the decoder had not made when a frame was due (zeros were
    /// played instead): 0 unless the shift was wrong.
    pub fn short(&self) -> u64 {
        self.short
    }

    /// Decodes frame `frame` from its `unit` (None: lost), with the next
    /// frame's unit when it is here (for LBRR), into `out`: exactly the
    /// frame's samples, interleaved (`out.len()` says how many).
    pub fn decode(
        &mut self,
        frame: u64,
        unit: Option<&[u8]>,
        next: Option<&[u8]>,
        out: &mut [f32],
    ) -> Result<Decoded> {
        let want = if frame == 0 { self.shift + 1 } else { 1 };
        let how = match unit {
            Some(u) if split(u, want, &mut self.parts) => {
                let mut how = Decoded::Packet;
                for &(a, n) in &self.parts {
                    if self.dec.decode(Some(&u[a..a + n]), None, &mut self.fifo)? != Decoded::Packet
                    {
                        how = Decoded::Corrupt;
                    }
                }
                how
            }
            _ => {
                let next_first = next
                    .filter(|n| split(n, 1, &mut self.next_parts))
                    .map(|n| &n[self.next_parts[0].0..]);
                let mut how = if unit.is_some() {
                    Decoded::Corrupt
                } else {
                    Decoded::Plc
                };
                for i in 0..want {
                    // Only the last packet of the run is the one the next
                    // unit's LBRR covers.
                    let lbrr = if i + 1 == want { next_first } else { None };
                    let got = self.dec.decode(None, lbrr, &mut self.fifo)?;
                    if got == Decoded::Fec && unit.is_none() {
                        how = Decoded::Fec;
                    }
                }
                how
            }
        };
        let have = self.fifo.len().min(out.len());
        out[..have].copy_from_slice(&self.fifo[..have]);
        out[have..].fill(0.0);
        self.short += ((out.len() - have) / self.channels) as u64;
        self.fifo.drain(..have);
        Ok(how)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_split_back_into_their_packets() {
        let mut parts = Vec::new();
        assert!(split(&[1, 9, 9, 9], 1, &mut parts));
        assert_eq!(parts, vec![(1, 3)]);
        assert!(split(&[3, 0, 2, 0, 1, 5, 5, 6, 7, 7], 3, &mut parts));
        assert_eq!(parts, vec![(5, 2), (7, 1), (8, 2)]);
        for bad in [&[][..], &[0], &[1], &[2, 0, 5, 1], &[2, 0, 0, 1, 2]] {
            assert!(!split(
                bad,
                bad.first().map_or(1, |&k| k as usize),
                &mut parts
            ));
        }
        assert!(!split(&[1, 9], 2, &mut parts), "count must match");
    }

    #[test]
    fn shifts_are_small_for_every_frame_and_rate() {
        for frame_us in super::super::FRAME_US {
            for rate in [8_000, 22_050, 44_100, 48_000, 96_000] {
                let cfg = OpusConfig {
                    frame_us,
                    ..Default::default()
                };
                let p = OpusParams::new(2, rate, &cfg).unwrap();
                assert!(
                    p.shift >= 1 && p.shift <= 12,
                    "{frame_us} us {rate} Hz: {}",
                    p.shift
                );
                p.check(2, rate).unwrap();
            }
        }
    }
}
