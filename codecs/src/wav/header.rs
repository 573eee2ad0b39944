//! The header a written WAV file starts with: the fmt chunk the stream's
//! origin asks for (plain or WAVE_FORMAT_EXTENSIBLE with its channel mask),
//! byte for byte, which hound cannot write by itself.

use super::riff::{TAG_EXTENSIBLE, TAG_FLOAT, TAG_PCM};

/// The sample layout of the file being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileLayout {
    pub channels: u16,
    pub rate: u32,
    pub bits: u16,
    pub float: bool,
    /// `Some` writes WAVE_FORMAT_EXTENSIBLE with this mask.
    pub channel_mask: Option<u32>,
}

impl FileLayout {
    pub fn block_align(&self) -> u16 {
        self.channels * (self.bits / 8)
    }
}

/// Speaker mask Windows assumes for a channel count (KSAUDIO_SPEAKER_*:
/// mono, stereo, 3.0, quad, 5.0, 5.1, 6.1, 7.1); 0 (no positions) beyond.
pub(crate) fn default_channel_mask(channels: u16) -> u32 {
    match channels {
        1 => 0x4,
        2 => 0x3,
        3 => 0x7,
        4 => 0x33,
        5 => 0x37,
        6 => 0x3f,
        7 => 0x70f,
        8 => 0x63f,
        _ => 0,
    }
}

/// RIFF header, fmt chunk and data chunk header for an empty data chunk:
/// already a valid (empty) WAV file on its own. The data size field is the
/// last four bytes.
pub(crate) fn build(layout: &FileLayout) -> Vec<u8> {
    let mut fmt = Vec::with_capacity(40);
    let tag = match (layout.channel_mask, layout.float) {
        (Some(_), _) => TAG_EXTENSIBLE,
        (None, true) => TAG_FLOAT,
        (None, false) => TAG_PCM,
    };
    let align = layout.block_align();
    fmt.extend_from_slice(&tag.to_le_bytes());
    fmt.extend_from_slice(&layout.channels.to_le_bytes());
    fmt.extend_from_slice(&layout.rate.to_le_bytes());
    fmt.extend_from_slice(&(layout.rate.saturating_mul(align as u32)).to_le_bytes());
    fmt.extend_from_slice(&align.to_le_bytes());
    fmt.extend_from_slice(&layout.bits.to_le_bytes());
    match layout.channel_mask {
        Some(mask) => {
            fmt.extend_from_slice(&22u16.to_le_bytes());
            fmt.extend_from_slice(&layout.bits.to_le_bytes());
            fmt.extend_from_slice(&mask.to_le_bytes());
            let sub = if layout.float { TAG_FLOAT } else { TAG_PCM };
            fmt.extend_from_slice(&sub.to_le_bytes());
            fmt.extend_from_slice(&[
                0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71,
            ]);
        }
        // Non-PCM tags carry cbSize (WAVEFORMATEX); PCM keeps the classic 16 bytes.
        None if layout.float => fmt.extend_from_slice(&0u16.to_le_bytes()),
        None => {}
    }
    let mut h = Vec::with_capacity(12 + 8 + fmt.len() + 8);
    h.extend_from_slice(b"RIFF");
    let riff_size = 4 + 8 + fmt.len() as u32 + 8;
    h.extend_from_slice(&riff_size.to_le_bytes());
    h.extend_from_slice(b"WAVE");
    h.extend_from_slice(b"fmt ");
    h.extend_from_slice(&(fmt.len() as u32).to_le_bytes());
    h.extend_from_slice(&fmt);
    h.extend_from_slice(b"data");
    h.extend_from_slice(&0u32.to_le_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn headers_parse_back_to_the_same_layout() {
        for mask in [None, Some(0x3f)] {
            for (bits, float) in [
                (8, false),
                (16, false),
                (24, false),
                (32, false),
                (32, true),
            ] {
                let l = FileLayout {
                    channels: 6,
                    rate: 44_100,
                    bits,
                    float,
                    channel_mask: mask,
                };
                let h = build(&l);
                let fmt_len = u32::from_le_bytes([h[16], h[17], h[18], h[19]]) as usize;
                let f =
                    super::super::riff::parse_fmt(Path::new("t"), &h[20..20 + fmt_len]).unwrap();
                assert_eq!(
                    (f.channels, f.rate, f.bits, f.float, f.channel_mask),
                    (6, 44_100, bits, float, mask)
                );
            }
        }
    }
}
