//! The header a written WAV file starts with, and the size fields that are
//! brought up to date as samples follow.
//!
//! RIFF sizes are 32-bit, so a file ends at 4 GiB. A writer that may go
//! beyond reserves a 28-byte `JUNK` chunk where RF64's `ds64` goes (EBU Tech
//! 3306's recipe); if the data outgrows RIFF, the header becomes RF64 in
//! place: `RIFF` turns into `RF64`, `JUNK` into `ds64` with the 64-bit
//! sizes, and the 32-bit fields into 0xFFFFFFFF. A file that stays small
//! remains plain RIFF that every reader knows.

use super::fmt;
use crate::format::{RiffKind, WavLayout};

/// Body bytes of a ds64 chunk without a table (riff, data and sample
/// counts as u64, table length u32).
const DS64_LEN: usize = 28;

/// A built header and where its size fields are.
#[derive(Debug, Clone)]
pub(crate) struct Header {
    pub bytes: Vec<u8>,
    /// Offset of the ds64 (or reserved JUNK) chunk's id.
    ds64_at: Option<usize>,
    /// Offset of the fact chunk's sample count.
    fact_at: Option<usize>,
    /// Currently RF64/BW64 (64-bit sizes in ds64).
    wide: bool,
    kind: RiffKind,
}

/// One write the header needs: `bytes` at `offset`.
pub(crate) type Patch = (usize, Vec<u8>);

impl Header {
    /// The header for `layout`, describing an empty data chunk (already a
    /// valid, empty WAV file). `reserve`: room to become RF64 later.
    pub fn build(channels: u16, rate: u32, layout: &WavLayout, reserve: bool) -> Self {
        let wide = layout.riff != RiffKind::Riff;
        let mut h = Vec::with_capacity(128);
        h.extend_from_slice(match layout.riff {
            RiffKind::Riff => b"RIFF",
            RiffKind::Rf64 => b"RF64",
            RiffKind::Bw64 => b"BW64",
        });
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(b"WAVE");
        let ds64_at = (wide || reserve).then(|| {
            let at = h.len();
            h.extend_from_slice(if wide { b"ds64" } else { b"JUNK" });
            h.extend_from_slice(&(DS64_LEN as u32).to_le_bytes());
            h.extend_from_slice(&[0; DS64_LEN]);
            at
        });
        let body = fmt::build(channels, rate, layout);
        h.extend_from_slice(b"fmt ");
        h.extend_from_slice(&(body.len() as u32).to_le_bytes());
        h.extend_from_slice(&body);
        let fact_at = layout.fact.as_ref().map(|extra| {
            let len = 4 + extra.len();
            h.extend_from_slice(b"fact");
            h.extend_from_slice(&(len as u32).to_le_bytes());
            let at = h.len();
            h.extend_from_slice(&0u32.to_le_bytes());
            h.extend_from_slice(extra);
            if len % 2 == 1 {
                h.push(0);
            }
            at
        });
        h.extend_from_slice(b"data");
        h.extend_from_slice(&0u32.to_le_bytes());
        let mut header = Self {
            bytes: h,
            ds64_at,
            fact_at,
            wide,
            kind: layout.riff,
        };
        for (at, b) in header.sizes(0, 0, 0) {
            header.bytes[at..at + b.len()].copy_from_slice(&b);
        }
        header
    }

    pub fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// Largest data (bytes) the header can describe: RIFF's 4 GiB less
    /// the header and a pad byte, unbounded once it can become RF64.
    pub fn max_data(&self, riff_limit: u64) -> u64 {
        if self.wide || self.ds64_at.is_some() {
            u64::MAX / 2
        } else {
            riff_limit.saturating_sub(self.len() - 8 + 1)
        }
    }

    /// The writes that make the header describe `data` bytes of `samples`
    /// samples followed by `pad` bytes; becomes RF64 when the sizes outgrow
    /// `riff_limit` (u32::MAX outside tests).
    pub fn sizes(&mut self, data: u64, samples: u64, pad: u64) -> Vec<Patch> {
        self.sizes_within(data, samples, pad, u32::MAX as u64)
    }

    /// [`sizes`](Self::sizes) with another RIFF limit (tests).
    pub fn sizes_within(
        &mut self,
        data: u64,
        samples: u64,
        pad: u64,
        riff_limit: u64,
    ) -> Vec<Patch> {
        let riff = self.len() - 8 + data + pad;
        let mut out = Vec::with_capacity(5);
        if let Some(at) = self.ds64_at
            && !self.wide
            && riff > riff_limit
        {
            // Outgrew RIFF: become RF64 in place (JUNK -> ds64).
            self.wide = true;
            self.kind = RiffKind::Rf64;
            out.push((0, b"RF64".to_vec()));
            out.push((at, b"ds64".to_vec()));
        }
        let u32_or_max = |v: u64| {
            u32::try_from(v)
                .ok()
                .filter(|v| *v <= riff_limit as u32)
                .unwrap_or(u32::MAX)
        };
        let data_at = self.bytes.len() - 4;
        if self.wide {
            let at = self.ds64_at.expect("wide headers have a ds64") + 8;
            let mut ds = Vec::with_capacity(DS64_LEN);
            ds.extend_from_slice(&riff.to_le_bytes());
            ds.extend_from_slice(&data.to_le_bytes());
            ds.extend_from_slice(&samples.to_le_bytes());
            ds.extend_from_slice(&0u32.to_le_bytes());
            out.push((at, ds));
            out.push((4, u32::MAX.to_le_bytes().to_vec()));
            out.push((data_at, u32::MAX.to_le_bytes().to_vec()));
            if let Some(at) = self.fact_at {
                out.push((at, u32_or_max(samples).to_le_bytes().to_vec()));
            }
        } else {
            out.push((4, u32_or_max(riff).to_le_bytes().to_vec()));
            out.push((data_at, u32_or_max(data).to_le_bytes().to_vec()));
            if let Some(at) = self.fact_at {
                out.push((at, u32_or_max(samples).to_le_bytes().to_vec()));
            }
        }
        out
    }

    /// The RIFF variant the header is now.
    pub fn kind(&self) -> RiffKind {
        self.kind
    }

    /// Sizes for a stream whose end is unknown (streaming writers' 0xFFFFFFFF).
    pub fn stream_sizes(&mut self) {
        let max = u32::MAX.to_le_bytes();
        let data_at = self.bytes.len() - 4;
        self.bytes[4..8].copy_from_slice(&max);
        self.bytes[data_at..].copy_from_slice(&max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wav::fmt::parse;

    #[test]
    fn headers_parse_back_to_the_same_layout() {
        for mask in [None, Some(0x3f)] {
            for l in [WavLayout::pcm(16), WavLayout::float(64)] {
                let l = WavLayout {
                    channel_mask: mask,
                    ..l
                };
                let h = Header::build(6, 44_100, &l, false);
                let fmt_len =
                    u32::from_le_bytes([h.bytes[16], h.bytes[17], h.bytes[18], h.bytes[19]])
                        as usize;
                let f = parse(&h.bytes[20..20 + fmt_len]).unwrap();
                assert_eq!((f.channels, f.rate, &f.layout), (6, 44_100, &l));
            }
        }
    }

    #[test]
    fn a_reserved_header_turns_rf64_when_it_outgrows_riff() {
        let mut h = Header::build(2, 48_000, &WavLayout::pcm(16), true);
        let len = h.len();
        assert_eq!(&h.bytes[12..16], b"JUNK");
        let p = h.sizes_within(1000, 250, 0, 2000);
        assert!(p.iter().all(|(at, _)| *at != 0), "still RIFF: {p:?}");
        assert_eq!(h.kind(), RiffKind::Riff);
        let p = h.sizes_within(4000, 1000, 0, 2000);
        assert_eq!(h.kind(), RiffKind::Rf64);
        assert!(p.contains(&(0, b"RF64".to_vec())));
        assert!(p.contains(&(12, b"ds64".to_vec())));
        let ds = &p.iter().find(|(at, _)| *at == 20).unwrap().1;
        assert_eq!(
            u64::from_le_bytes(ds[0..8].try_into().unwrap()),
            len - 8 + 4000
        );
        assert_eq!(u64::from_le_bytes(ds[8..16].try_into().unwrap()), 4000);
    }
}
