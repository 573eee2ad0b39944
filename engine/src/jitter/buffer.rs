//! Frame buffer of one substream: a ring of frame slots ahead of the
//! playout, each with a bitset of the samples that arrived.
//!
//! Payloads are placed by geometry recomputed from the catalog (fragments of
//! a frame, aggregated frames, or a lane of a sample-interleaved group,
//! de-interleaved here), so a payload whose length disagrees is refused.
//! Frames before the playout position are late; frames beyond the horizon
//! are overruns. Both are counted and dropped; memory never grows.

use isochron_codecs::SampleMask;
use isochron_codecs::conceal::Lookahead;
use thiserror::Error;

use crate::catalog::SubstreamDesc;
use crate::interleave::sample::locate;
use crate::layout::{fragment_range, lane_len, unit_samples};
use crate::wire::packet::SourceMeta;

/// A payload that contradicts the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum GeometryError {
    /// The media timestamp is not on a frame boundary (or absurdly far).
    #[error("media timestamp is not on a frame boundary")]
    Unaligned,
    /// Group or frame count disagrees with the substream's interleaving or
    /// aggregation.
    #[error("layout fields disagree with the catalog")]
    Layout,
    /// The payload is not the byte range the geometry gives.
    #[error("payload length disagrees with the frame geometry")]
    Length,
}

/// Receives a frame being played: its index, bytes, presence mask, and
/// the next frame if some of it has arrived.
pub type PlayFn<'f> = dyn FnMut(u64, &mut [u8], SampleMask<'_>, Option<Lookahead<'_>>) + 'f;

/// What happened to a payload's frames.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Placed {
    /// Frames (or parts) already played.
    pub late_frames: u32,
    /// Frames beyond the horizon, dropped.
    pub overrun_frames: u32,
}

const NO_FRAME: u64 = u64::MAX;

struct Slot {
    frame: u64,
    data: Vec<u8>,
    mask: Vec<u64>,
    /// Bytes of a coded unit in `data` (coded substreams only).
    len: usize,
    /// Earliest sender time of the media placed in it.
    sent_at: u64,
}

/// The first frame that starts at or after sample `n`, in closed form (no
/// search a peer's number could make endless): frame `f` starts at sample
/// `ceil(f F num / (1e6 den))`, which reaches `n` once `f F num > (n - 1)
/// 1e6 den`.
fn first_frame_from(desc: &SubstreamDesc, n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    let r = desc.format.rate;
    let per_frame = desc.frame_us as u128 * r.num().max(1) as u128;
    let before = (n - 1) as u128 * 1_000_000 * r.den() as u128;
    u64::try_from(before / per_frame + 1).unwrap_or(u64::MAX)
}

/// The jitter buffer of one substream: a fixed ring of frame slots from the
/// playout position forward, each with a presence bit per sample.
pub struct FrameBuffer {
    desc: SubstreamDesc,
    stride: usize,
    group: usize,
    slots: Vec<Slot>,
    next: u64,
    newest_end: u64,
    end_frame: Option<u64>,
    total_samples: Option<u64>,
    starts: Vec<usize>,
    /// Sender time of the payload being placed.
    placing_sent_at: u64,
}

impl FrameBuffer {
    /// `capacity` frames ahead of the playout position are kept.
    pub fn new(desc: &SubstreamDesc, capacity: usize) -> Self {
        let max = desc.max_frame_samples();
        let capacity = capacity.max(desc.hold_frames() as usize + 1);
        let mut b = Self {
            desc: desc.clone(),
            stride: desc.format.stride(),
            group: desc.sample_interleave as usize,
            slots: (0..capacity)
                .map(|_| Slot {
                    frame: NO_FRAME,
                    data: vec![0; slot_bytes(desc)],
                    mask: vec![0; max.div_ceil(64).max(1)],
                    len: 0,
                    sent_at: u64::MAX,
                })
                .collect(),
            next: 0,
            newest_end: 0,
            end_frame: None,
            total_samples: None,
            starts: Vec::with_capacity(desc.sample_interleave as usize + 1),
            placing_sent_at: u64::MAX,
        };
        if let Some(n) = desc.length {
            b.set_total_samples(n);
        }
        b
    }

    /// Bytes [`new`](Self::new) allocates for `capacity` frames of `desc`.
    pub fn memory(desc: &SubstreamDesc, capacity: usize) -> u64 {
        let capacity = capacity.max(desc.hold_frames() as usize + 1) as u64;
        let max = desc.max_frame_samples() as u64;
        let per_slot = slot_bytes(desc) as u64
            + max.div_ceil(64).max(1) * 8
            + std::mem::size_of::<Slot>() as u64;
        capacity * per_slot
    }

    /// The substream this buffer holds.
    pub fn desc(&self) -> &SubstreamDesc {
        &self.desc
    }

    /// Next frame to play.
    pub fn next_frame(&self) -> u64 {
        self.next
    }

    /// Start playing at frame `frame` instead of 0 (a mid-stream join):
    /// earlier frames count as already played.
    pub fn start_at(&mut self, frame: u64) {
        self.next = frame;
        self.newest_end = self.newest_end.max(frame);
    }

    /// The stream holds `n` samples in all: playout ends after them.
    pub fn set_total_samples(&mut self, n: u64) {
        self.total_samples = Some(n);
        self.end_frame = Some(first_frame_from(&self.desc, n));
    }

    /// Frames of the whole stream, when known.
    pub fn end_frame(&self) -> Option<u64> {
        self.end_frame
    }

    /// The last frame has been played (false while the length is unknown).
    pub fn finished(&self) -> bool {
        self.end_frame.is_some_and(|e| self.next >= e)
    }

    /// Media buffered ahead of the playout position, in microseconds.
    pub fn level_us(&self) -> u64 {
        self.newest_end.saturating_sub(self.next) * self.desc.frame_us as u64
    }

    /// Media ahead of the playout position that is complete and gapless
    /// (microseconds): what can surely be played before anything missing.
    pub fn contiguous_us(&self) -> u64 {
        let mut f = self.next;
        while f < self.newest_end {
            let samples = self.samples_of(f);
            if samples > 0 {
                let slot = &self.slots[(f % self.slots.len() as u64) as usize];
                if slot.frame != f || !SampleMask::new(&slot.mask, samples).is_full() {
                    break;
                }
            }
            f += 1;
        }
        (f - self.next) * self.desc.frame_us as u64
    }

    /// Every frame of the stream has (some) data here: nothing more to wait for.
    pub fn all_received(&self) -> bool {
        self.end_frame.is_some_and(|e| self.newest_end >= e)
    }

    /// The frame after the newest one holding data (0: nothing yet).
    pub fn received_end(&self) -> u64 {
        self.newest_end
    }

    /// Samples of the stream, when known (catalog or end of stream).
    pub fn total_samples(&self) -> Option<u64> {
        self.total_samples
    }

    /// Some frame at or after the playout position holds data.
    pub fn has_data_ahead(&self) -> bool {
        self.newest_end > self.next
    }

    /// Place a payload. `Err` if it contradicts the catalog.
    pub fn insert(&mut self, meta: &SourceMeta, payload: &[u8]) -> Result<Placed, GeometryError> {
        let f0 = self
            .desc
            .frame_of(meta.media_ts)
            .ok_or(GeometryError::Unaligned)?;
        let frames = meta.frames as u64;
        if f0 > u64::MAX / 4 {
            return Err(GeometryError::Unaligned);
        }
        if self.desc.codec.is_some() {
            return self.insert_unit(f0, meta, payload);
        }
        if payload.len() % self.stride != 0 {
            return Err(GeometryError::Length);
        }
        let n = payload.len() / self.stride;
        let mut placed = Placed::default();
        self.placing_sent_at = meta.sender_ts;
        if self.group == 1 {
            if meta.group != 1 || frames > self.desc.frames_per_packet as u64 {
                return Err(GeometryError::Layout);
            }
            if frames > 1 {
                if meta.frag_count != 1 || unit_samples(&self.desc, f0, frames) != n {
                    return Err(GeometryError::Length);
                }
                let mut at = 0;
                for f in f0..f0 + frames {
                    let len = self.desc.frame_samples(f);
                    self.write_run(
                        f,
                        0,
                        &payload[at * self.stride..(at + len) * self.stride],
                        &mut placed,
                    );
                    at += len;
                }
            } else {
                let total = self.desc.frame_samples(f0);
                let (a, len) =
                    fragment_range(total, meta.frag_index as usize, meta.frag_count as usize);
                if len != n {
                    return Err(GeometryError::Length);
                }
                self.write_run(f0, a, payload, &mut placed);
            }
        } else {
            if meta.group as usize != self.group || frames > self.group as u64 {
                return Err(GeometryError::Layout);
            }
            self.starts.clear();
            self.starts.push(0);
            for f in f0..f0 + frames {
                let s = self.starts[self.starts.len() - 1] + self.desc.frame_samples(f);
                self.starts.push(s);
            }
            let total = self.starts[frames as usize];
            let lane = meta.lane as usize;
            let l = lane_len(total, lane, self.group);
            let (a, len) = fragment_range(l, meta.frag_index as usize, meta.frag_count as usize);
            if len != n {
                return Err(GeometryError::Length);
            }
            // De-interleave: lane sample q is group sample lane + q * G.
            let mut last_frame = u64::MAX;
            for (i, sample) in payload.chunks_exact(self.stride).enumerate() {
                let j = lane + (a + i) * self.group;
                let (k, off) = locate(&self.starts, j);
                let f = f0 + k as u64;
                let count = f != last_frame;
                last_frame = f;
                self.write_sample(f, off, sample, &mut placed, count);
            }
        }
        Ok(placed)
    }

    /// A coded substream's unit: one packet, all of its frame's samples.
    fn insert_unit(
        &mut self,
        f: u64,
        meta: &SourceMeta,
        unit: &[u8],
    ) -> Result<Placed, GeometryError> {
        if meta.group != 1 || meta.frames != 1 || meta.frag_count != 1 || meta.frag_index != 0 {
            return Err(GeometryError::Layout);
        }
        if unit.is_empty() || unit.len() > self.slots[0].data.len() {
            return Err(GeometryError::Length);
        }
        let mut placed = Placed::default();
        if let Some(i) = self.admit(f, &mut placed, true) {
            let samples = self.desc.frame_samples(f);
            let slot = &mut self.slots[i];
            slot.data[..unit.len()].copy_from_slice(unit);
            slot.len = unit.len();
            set_bits(&mut slot.mask, 0, samples);
        }
        Ok(placed)
    }

    /// The earliest sender time of the media that arrived for the next
    /// frame to play (`None`: nothing has).
    pub fn next_sent_at(&self) -> Option<u64> {
        let slot = &self.slots[(self.next % self.slots.len() as u64) as usize];
        (slot.frame == self.next && slot.sent_at != u64::MAX).then_some(slot.sent_at)
    }

    /// Whether frame `f` can be written; counts it late or overrun if not.
    fn admit(&mut self, f: u64, placed: &mut Placed, count: bool) -> Option<usize> {
        if f < self.next {
            placed.late_frames += count as u32;
            return None;
        }
        if f >= self.next + self.slots.len() as u64 {
            placed.overrun_frames += count as u32;
            return None;
        }
        let i = (f % self.slots.len() as u64) as usize;
        let slot = &mut self.slots[i];
        if slot.frame != f {
            slot.frame = f;
            slot.mask.fill(0);
            slot.len = 0;
            slot.sent_at = u64::MAX;
        }
        slot.sent_at = slot.sent_at.min(self.placing_sent_at);
        self.newest_end = self.newest_end.max(f + 1);
        Some(i)
    }

    fn write_run(&mut self, f: u64, at: usize, bytes: &[u8], placed: &mut Placed) {
        let Some(i) = self.admit(f, placed, true) else {
            return;
        };
        let slot = &mut self.slots[i];
        slot.data[at * self.stride..at * self.stride + bytes.len()].copy_from_slice(bytes);
        set_bits(&mut slot.mask, at, bytes.len() / self.stride);
    }

    fn write_sample(&mut self, f: u64, at: usize, bytes: &[u8], placed: &mut Placed, count: bool) {
        let Some(i) = self.admit(f, placed, count) else {
            return;
        };
        let slot = &mut self.slots[i];
        slot.data[at * self.stride..(at + 1) * self.stride].copy_from_slice(bytes);
        slot.mask[at / 64] |= 1 << (at % 64);
    }

    fn samples_of(&self, n: u64) -> usize {
        let samples = self.desc.frame_samples(n);
        match self.total_samples {
            Some(total) => samples.min(total.saturating_sub(self.desc.frame_start(n)) as usize),
            None => samples,
        }
    }

    /// Play the next frame: `play` sees its bytes (missing samples zeroed,
    /// to be concealed in place), which samples arrived, and the following
    /// frame when some of it is already here (concealment looks ahead at no
    /// cost in latency).
    pub fn pop(&mut self, play: &mut PlayFn<'_>) {
        let n = self.next;
        let samples = self.samples_of(n);
        let next_samples = self.samples_of(n + 1);
        let cap = self.slots.len() as u64;
        let (i, j) = ((n % cap) as usize, ((n + 1) % cap) as usize);
        // Capacity is at least two, so the two slots are distinct.
        let (slot, next) = if i < j {
            let (a, b) = self.slots.split_at_mut(j);
            (&mut a[i], &b[0])
        } else {
            let (a, b) = self.slots.split_at_mut(i);
            (&mut b[0], &a[j])
        };
        if slot.frame != n {
            slot.mask.fill(0);
            slot.len = 0;
        }
        // A coded frame is its unit (empty when lost), decoded by the playout.
        let coded = self.desc.codec.is_some();
        let bytes = if coded {
            &mut slot.data[..slot.len]
        } else {
            let bytes = &mut slot.data[..samples * self.stride];
            zero_missing(bytes, &slot.mask, samples, self.stride);
            bytes
        };
        let ahead = (next.frame == n + 1).then(|| Lookahead {
            bytes: if coded {
                &next.data[..next.len]
            } else {
                &next.data[..next_samples * self.stride]
            },
            mask: SampleMask::new(&next.mask, next_samples),
        });
        play(n, bytes, SampleMask::new(&slot.mask, samples), ahead);
        slot.frame = NO_FRAME;
        self.next = n + 1;
    }
}

/// Bytes of one slot: a frame's samples, or one coded unit.
fn slot_bytes(desc: &SubstreamDesc) -> usize {
    match desc.codec {
        Some(_) => desc.max_unit_bytes(),
        None => desc.max_frame_samples() * desc.format.stride(),
    }
}

fn set_bits(mask: &mut [u64], at: usize, n: usize) {
    for b in at..at + n {
        mask[b / 64] |= 1 << (b % 64);
    }
}

fn zero_missing(bytes: &mut [u8], mask: &[u64], samples: usize, stride: usize) {
    for (w, &word) in mask.iter().enumerate() {
        let base = w * 64;
        if base >= samples {
            break;
        }
        if word == u64::MAX {
            continue;
        }
        let end = (base + 64).min(samples);
        for s in base..end {
            if word >> (s - base) & 1 == 0 {
                bytes[s * stride..(s + 1) * stride].fill(0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::tests::stereo48k;
    use crate::packetizer::Packetizer;

    #[test]
    fn the_end_frame_is_exact_and_any_length_is_one_step() {
        use isochron_codecs::Rate;
        for (num, den, frame_us) in [
            (48_000, 1, 10_000),
            (22_050, 1, 10_000),
            (30_000, 1001, 2_500),
            (1, 3, 250_000),
        ] {
            let mut d = stereo48k(0, frame_us);
            d.format.rate = Rate::new(num, den).unwrap();
            for n in 0..500u64 {
                // The first frame whose start is at or after n, by search.
                let want = (0..).find(|&f| d.frame_start(f) >= n).unwrap();
                assert_eq!(
                    first_frame_from(&d, n),
                    want,
                    "{num}/{den} at {frame_us} us, n {n}"
                );
            }
        }
        // u64::MAX samples: answered at once (it used to double a bound until it wrapped).
        let d = stereo48k(0, 250);
        assert!(first_frame_from(&d, u64::MAX) > 1 << 50);
    }

    fn frame_bytes(n: u64, len: usize) -> Vec<u8> {
        (0..len).map(|i| (i as u64 * 31 + n * 7) as u8).collect()
    }

    /// Packetize `frames` frames and return the packets.
    fn packets(d: &SubstreamDesc, frames: u64, max_payload: usize) -> Vec<(SourceMeta, Vec<u8>)> {
        let mut p = Packetizer::new(d);
        let mut out = Vec::new();
        for n in 0..frames {
            let data = frame_bytes(n, d.frame_samples(n) * d.format.stride());
            p.push(n, &data, 0, max_payload, &mut |m, b| {
                out.push((*m, b.to_vec()))
            })
            .unwrap();
        }
        p.flush(0, max_payload, &mut |m, b| out.push((*m, b.to_vec())))
            .unwrap();
        out
    }

    fn play_all(b: &mut FrameBuffer, frames: u64) -> Vec<(Vec<u8>, usize)> {
        let mut out = Vec::new();
        for _ in 0..frames {
            b.pop(&mut |_, bytes, mask, _| out.push((bytes.to_vec(), mask.count_present())));
        }
        out
    }

    #[test]
    fn every_layout_reassembles_bit_exact() {
        for (g, fpp, payload) in [(1, 1, 1000), (1, 4, 1000), (4, 1, 1000), (3, 1, 100)] {
            let mut d = stereo48k(1, 2_500);
            d.sample_interleave = g;
            d.frames_per_packet = fpp;
            let mut b = FrameBuffer::new(&d, 32);
            for (m, p) in packets(&d, 12, payload).iter().rev() {
                assert_eq!(b.insert(m, p), Ok(Placed::default()));
            }
            for (n, (bytes, present)) in play_all(&mut b, 12).into_iter().enumerate() {
                assert_eq!(
                    bytes,
                    frame_bytes(n as u64, 480),
                    "g={g} fpp={fpp} frame {n}"
                );
                assert_eq!(present, 120);
            }
        }
    }

    #[test]
    fn a_lost_lane_leaves_every_gth_sample_missing() {
        let mut d = stereo48k(1, 1_000);
        d.sample_interleave = 4;
        let mut b = FrameBuffer::new(&d, 16);
        for (m, p) in packets(&d, 4, 1000) {
            if m.lane != 2 {
                b.insert(&m, &p).unwrap();
            }
        }
        let mut seen = Vec::new();
        b.pop(&mut |_, bytes, mask, _| {
            seen = (0..mask.len()).map(|i| mask.present(i)).collect();
            assert!(
                bytes[8..12].iter().all(|&x| x == 0),
                "missing sample zeroed"
            );
        });
        assert_eq!(seen.len(), 48);
        assert!(seen.iter().enumerate().all(|(i, &p)| p == (i % 4 != 2)));
    }

    #[test]
    fn late_overrun_and_bad_lengths_are_refused() {
        let d = stereo48k(1, 1_000);
        let mut b = FrameBuffer::new(&d, 4);
        let pk = packets(&d, 8, 1000);
        b.pop(&mut |_, _, _, _| {});
        assert_eq!(b.insert(&pk[0].0, &pk[0].1).unwrap().late_frames, 1);
        assert_eq!(b.insert(&pk[7].0, &pk[7].1).unwrap().overrun_frames, 1);
        assert_eq!(
            b.insert(&pk[2].0, &pk[2].1[1..]),
            Err(GeometryError::Length)
        );
        let mut m = pk[2].0;
        m.media_ts += 1;
        assert_eq!(b.insert(&m, &pk[2].1), Err(GeometryError::Unaligned));
    }

    #[test]
    fn total_samples_truncate_the_last_frame() {
        let mut d = stereo48k(1, 10_000);
        d.length = Some(1000);
        let b = FrameBuffer::new(&d, 8);
        assert_eq!(b.end_frame(), Some(3));
        let mut b = b;
        let lens: Vec<usize> = (0..3)
            .map(|_| {
                let mut l = 0;
                b.pop(&mut |_, bytes, _, _| l = bytes.len() / 4);
                l
            })
            .collect();
        assert_eq!(lens, vec![480, 480, 40]);
        assert!(b.finished());
    }
}
