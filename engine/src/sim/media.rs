//! Deterministic test media: a source whose every byte is a function of
//! (substream, sample index), and a checker that verifies what the playout
//! emits against it: bit-exact where samples arrived, in order, never twice.

use crate::catalog::SubstreamDesc;
use crate::playout::PlayedFrame;
use crate::sender::{FrameRead, FrameSource};

fn mix(mut z: u64) -> u64 {
    // splitmix64 finaliser
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Write the pattern bytes of samples `start..` of substream `id` into `out`.
pub fn fill_pattern(id: u16, start: u64, stride: usize, out: &mut [u8]) {
    for (s, sample) in out.chunks_exact_mut(stride).enumerate() {
        let h = mix((id as u64) << 48 ^ (start + s as u64));
        for (b, byte) in sample.iter_mut().enumerate() {
            *byte = (h >> ((b % 8) * 8)) as u8 ^ (b / 8) as u8;
        }
    }
}

/// Produces the pattern for each substream, `length` samples long (or
/// forever).
pub struct PatternSource {
    subs: Vec<(SubstreamDesc, Option<u64>)>,
}

impl PatternSource {
    /// A source for `subs`; `length` samples each overrides the catalog's
    /// lengths (`None` for both: endless).
    pub fn new(subs: &[SubstreamDesc], length: Option<u64>) -> Self {
        Self {
            subs: subs
                .iter()
                .map(|d| (d.clone(), length.or(d.length)))
                .collect(),
        }
    }
}

impl FrameSource for PatternSource {
    fn read_frame(&mut self, index: usize, frame: u64, out: &mut [u8]) -> FrameRead {
        let (d, total) = &self.subs[index];
        let start = d.frame_start(frame);
        let stride = d.format.stride();
        let mut samples = out.len() / stride;
        if let Some(total) = *total {
            if start >= total {
                return FrameRead::End;
            }
            samples = samples.min((total - start) as usize);
        }
        fill_pattern(d.id, start, stride, &mut out[..samples * stride]);
        FrameRead::Ready(samples)
    }
}

/// What the checker saw on one substream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckCounts {
    /// Frames played.
    pub frames: u64,
    /// Samples in those frames.
    pub samples: u64,
    /// Samples the mask marked missing.
    pub missing_samples: u64,
    /// Frames with a present sample that differs from the pattern.
    pub corrupt_frames: u64,
    /// Frames not in strict sequence (repeated, skipped or out of order).
    pub out_of_order: u64,
    /// Frames with missing samples.
    pub concealed_frames: u64,
}

/// Verifies played frames against the pattern.
pub struct PatternCheck {
    subs: Vec<(u16, usize, SubstreamDesc)>,
    counts: Vec<CheckCounts>,
    next: Vec<u64>,
    scratch: Vec<u8>,
    /// (frame, samples missing) of concealed frames per substream, in order.
    pub concealed: Vec<Vec<(u64, usize)>>,
}

impl PatternCheck {
    /// A checker for the substreams of this catalog.
    pub fn new(subs: &[SubstreamDesc]) -> Self {
        Self {
            subs: subs
                .iter()
                .map(|d| (d.id, d.format.stride(), d.clone()))
                .collect(),
            counts: vec![CheckCounts::default(); subs.len()],
            next: vec![0; subs.len()],
            scratch: Vec::new(),
            concealed: vec![Vec::new(); subs.len()],
        }
    }

    /// What was seen on the substream at catalog position `index`.
    pub fn counts(&self, index: usize) -> CheckCounts {
        self.counts[index]
    }

    /// Check one played frame (use it as, or inside, the sink).
    pub fn on_frame(&mut self, f: &PlayedFrame<'_>) {
        let i = f.index;
        let (id, stride, ref desc) = self.subs[i];
        let c = &mut self.counts[i];
        if f.frame != self.next[i] {
            c.out_of_order += 1;
        }
        self.next[i] = f.frame + 1;
        let samples = f.mask.len();
        c.frames += 1;
        c.samples += samples as u64;
        self.scratch.resize(samples * stride, 0);
        fill_pattern(id, desc.frame_start(f.frame), stride, &mut self.scratch);
        let mut missing = 0;
        let mut corrupt = false;
        for s in 0..samples {
            let range = s * stride..(s + 1) * stride;
            if f.mask.present(s) {
                corrupt |= f.data[range.clone()] != self.scratch[range];
            } else {
                missing += 1;
            }
        }
        c.missing_samples += missing as u64;
        c.corrupt_frames += corrupt as u64;
        if missing > 0 {
            c.concealed_frames += 1;
            self.concealed[i].push((f.frame, missing));
        }
    }
}
