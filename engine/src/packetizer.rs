//! Packetizer: cuts one substream's frames into packet payloads.
//!
//! Frames arrive in order. Small frames are aggregated (up to
//! `frames_per_packet`, while they fit one payload); a frame larger than a
//! payload is split into fragments of whole samples; with sample interleaving
//! the samples of `G` frames are dealt into `G` lanes and each lane is a unit.
//! The receiver recomputes every byte range from the catalog (see
//! [`crate::layout`]).

use thiserror::Error;

use crate::catalog::SubstreamDesc;
use crate::interleave::sample::gather_lane;
use crate::layout::{fragment_range, fragments_for, lane_len};
use crate::wire::packet::SourceMeta;

/// Why a frame could not be packetized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum PacketizeError {
    /// Frames must be pushed in order, from 0, without gaps.
    #[error("frame {got} pushed where frame {expected} was due")]
    OutOfOrder {
        /// The frame due.
        expected: u64,
        /// The frame pushed.
        got: u64,
    },
    /// The frame's bytes are not exactly its samples x stride (raised for
    /// short frames too, despite the message).
    #[error("frame {frame} has {got} bytes where its duration holds exactly {max}")]
    FrameSize {
        /// The frame number.
        frame: u64,
        /// Bytes given.
        got: usize,
        /// Bytes the frame has.
        max: usize,
    },
    /// A unit would need more than 255 fragments.
    #[error(
        "a {bytes}-byte unit needs more than 255 packets at {max_payload}-byte payloads; use shorter frames"
    )]
    TooManyFragments {
        /// Bytes of the unit (or lane).
        bytes: usize,
        /// Payload size in force.
        max_payload: usize,
    },
    /// A coded unit is empty, or larger than a payload (units are never
    /// fragmented).
    #[error("a {bytes}-byte coded unit does not fit a {max_payload}-byte payload")]
    UnitSize {
        /// Bytes of the unit.
        bytes: usize,
        /// Payload size in force.
        max_payload: usize,
    },
    /// The payload size cannot hold a single sample.
    #[error("a payload of {max_payload} bytes cannot hold one {stride}-byte sample")]
    PayloadTooSmall {
        /// Payload size in force.
        max_payload: usize,
        /// Bytes per sample.
        stride: usize,
    },
}

/// State for one substream.
#[derive(Debug)]
pub struct Packetizer {
    desc: SubstreamDesc,
    stride: usize,
    group: usize,
    seq: u32,
    next_frame: u64,
    unit_first: u64,
    unit_frames: usize,
    unit: Vec<u8>,
    lane: Vec<u8>,
}

impl Packetizer {
    /// A packetizer for `desc`, buffers sized for its largest unit.
    pub fn new(desc: &SubstreamDesc) -> Self {
        let hold = desc.hold_frames() as usize;
        let cap = hold * desc.max_unit_bytes();
        Self {
            desc: desc.clone(),
            stride: desc.format.stride(),
            group: desc.sample_interleave as usize,
            seq: 0,
            next_frame: 0,
            unit_first: 0,
            unit_frames: 0,
            unit: Vec::with_capacity(cap),
            lane: Vec::with_capacity(cap.div_ceil(desc.sample_interleave as usize) + 64),
        }
    }

    /// The substream it packetizes.
    pub fn desc(&self) -> &SubstreamDesc {
        &self.desc
    }

    /// Packets emitted so far (the next sequence number).
    pub fn packets(&self) -> u32 {
        self.seq
    }

    /// Frames pushed so far.
    pub fn frames(&self) -> u64 {
        self.next_frame
    }

    /// Add frame `n` (`data` holds all its samples, exactly the frame's
    /// size; a short final frame is zero-padded by the caller). Emits the
    /// packets of every completed unit. `sender_ts`: microseconds on the
    /// sender's clock, stamped on the packets.
    pub fn push(
        &mut self,
        n: u64,
        data: &[u8],
        sender_ts: u64,
        max_payload: usize,
        emit: &mut dyn FnMut(&SourceMeta, &[u8]),
    ) -> Result<(), PacketizeError> {
        if n != self.next_frame {
            return Err(PacketizeError::OutOfOrder {
                expected: self.next_frame,
                got: n,
            });
        }
        if self.desc.codec.is_some() {
            return self.push_unit(n, data, sender_ts, max_payload, emit);
        }
        let max = self.desc.frame_samples(n) * self.stride;
        if data.len() != max {
            return Err(PacketizeError::FrameSize {
                frame: n,
                got: data.len(),
                max,
            });
        }
        if max_payload < self.stride {
            return Err(PacketizeError::PayloadTooSmall {
                max_payload,
                stride: self.stride,
            });
        }
        // An aggregate closes before a frame that would not fit beside it.
        if self.group == 1 && self.unit_frames > 0 && self.unit.len() + data.len() > max_payload {
            self.flush(sender_ts, max_payload, emit)?;
        }
        if self.unit_frames == 0 {
            self.unit_first = n;
        }
        self.unit.extend_from_slice(data);
        self.unit_frames += 1;
        self.next_frame = n + 1;
        if self.unit_frames >= self.desc.hold_frames() as usize {
            self.flush(sender_ts, max_payload, emit)?;
        }
        Ok(())
    }

    /// A coded substream's frame: one unit of any size up to a payload,
    /// one packet (the receiver takes its length from the datagram).
    fn push_unit(
        &mut self,
        n: u64,
        unit: &[u8],
        sender_ts: u64,
        max_payload: usize,
        emit: &mut dyn FnMut(&SourceMeta, &[u8]),
    ) -> Result<(), PacketizeError> {
        if unit.is_empty() || unit.len() > max_payload {
            return Err(PacketizeError::UnitSize {
                bytes: unit.len(),
                max_payload,
            });
        }
        let meta = SourceMeta {
            substream: self.desc.id,
            seq: self.seq,
            media_ts: self.desc.frame_ts(n),
            sender_ts,
            group: 1,
            lane: 0,
            frag_index: 0,
            frag_count: 1,
            frames: 1,
        };
        self.seq = self.seq.wrapping_add(1);
        self.next_frame = n + 1;
        emit(&meta, unit);
        Ok(())
    }

    /// Emit the pending unit, complete or not (end of stream, or a frame
    /// that does not fit beside it).
    pub fn flush(
        &mut self,
        sender_ts: u64,
        max_payload: usize,
        emit: &mut dyn FnMut(&SourceMeta, &[u8]),
    ) -> Result<(), PacketizeError> {
        if self.unit_frames == 0 {
            return Ok(());
        }
        let mut meta = SourceMeta {
            substream: self.desc.id,
            seq: 0,
            media_ts: self.desc.frame_ts(self.unit_first),
            sender_ts,
            group: self.group as u8,
            lane: 0,
            frag_index: 0,
            frag_count: 1,
            frames: self.unit_frames as u8,
        };
        let samples = self.unit.len() / self.stride;
        let result = if self.group == 1 {
            emit_run(
                &self.unit,
                self.stride,
                &mut self.seq,
                &mut meta,
                max_payload,
                emit,
            )
        } else {
            let mut r = Ok(());
            for lane in 0..self.group {
                if lane_len(samples, lane, self.group) == 0 {
                    continue;
                }
                meta.lane = lane as u8;
                gather_lane(&self.unit, self.stride, lane, self.group, &mut self.lane);
                r = emit_run(
                    &self.lane,
                    self.stride,
                    &mut self.seq,
                    &mut meta,
                    max_payload,
                    emit,
                );
                if r.is_err() {
                    break;
                }
            }
            r
        };
        self.unit.clear();
        self.unit_frames = 0;
        result
    }
}

/// Emit a run of whole samples (a unit, or a gathered lane) as fragments.
fn emit_run(
    run: &[u8],
    stride: usize,
    seq: &mut u32,
    meta: &mut SourceMeta,
    max_payload: usize,
    emit: &mut dyn FnMut(&SourceMeta, &[u8]),
) -> Result<(), PacketizeError> {
    let samples = run.len() / stride;
    if samples == 0 {
        return Ok(()); // empty frames are complete by construction
    }
    let count = fragments_for(samples, stride, max_payload);
    if count > 255 {
        return Err(PacketizeError::TooManyFragments {
            bytes: run.len(),
            max_payload,
        });
    }
    meta.frag_count = count as u8;
    for i in 0..count {
        let (a, n) = fragment_range(samples, i, count);
        meta.frag_index = i as u8;
        meta.seq = *seq;
        *seq = seq.wrapping_add(1);
        emit(meta, &run[a * stride..(a + n) * stride]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::tests::stereo48k;

    fn collect(p: &mut Packetizer, frames: u64, max_payload: usize) -> Vec<(SourceMeta, Vec<u8>)> {
        let mut out = Vec::new();
        for n in 0..frames {
            let len = p.desc().frame_samples(n) * p.desc().format.stride();
            let data: Vec<u8> = (0..len).map(|i| (i as u64 + n * 7) as u8).collect();
            p.push(n, &data, 0, max_payload, &mut |m, b| {
                out.push((*m, b.to_vec()))
            })
            .unwrap();
        }
        p.flush(0, max_payload, &mut |m, b| out.push((*m, b.to_vec())))
            .unwrap();
        out
    }

    #[test]
    fn large_frames_fragment_into_whole_samples() {
        let mut p = Packetizer::new(&stereo48k(1, 10_000)); // 1920 bytes a frame
        let pk = collect(&mut p, 2, 1000);
        assert_eq!(pk.len(), 4);
        assert!(
            pk.iter()
                .all(|(m, b)| m.frag_count == 2 && b.len() % 4 == 0)
        );
        assert_eq!(
            pk.iter().map(|(m, _)| m.seq).collect::<Vec<_>>(),
            vec![0, 1, 2, 3]
        );
        assert_eq!(pk[2].0.media_ts, 10_000);
    }

    #[test]
    fn small_frames_aggregate_while_they_fit() {
        let mut d = stereo48k(1, 1_000); // 192 bytes a frame
        d.frames_per_packet = 4;
        let mut p = Packetizer::new(&d);
        let pk = collect(&mut p, 10, 1000);
        let frames: Vec<u8> = pk.iter().map(|(m, _)| m.frames).collect();
        assert_eq!(frames, vec![4, 4, 2], "flush emits the short tail");
        let pk = collect(&mut Packetizer::new(&d), 8, 400);
        assert!(pk.iter().all(|(m, b)| m.frames == 2 && b.len() == 384));
    }

    #[test]
    fn interleaved_group_deals_lanes() {
        let mut d = stereo48k(1, 1_000); // 48 samples a frame
        d.sample_interleave = 4;
        let mut p = Packetizer::new(&d);
        let pk = collect(&mut p, 4, 1000);
        assert_eq!(pk.len(), 4);
        for (lane, (m, b)) in pk.iter().enumerate() {
            assert_eq!((m.group, m.lane as usize, m.frames), (4, lane, 4));
            assert_eq!(b.len(), 48 * 4 / 4 * 4);
        }
    }
}
