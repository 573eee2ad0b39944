//! The fmt chunk: parsed into a [`WavLayout`] (refusing, by name, what
//! cannot be carried) and built back from one, byte for byte.

use crate::format::{RiffKind, WavCoding, WavLayout};

/// Sub-format GUID tail shared by every KSDATAFORMAT_SUBTYPE_* of
/// WAVE_FORMAT_EXTENSIBLE; the first two bytes are the classic format tag.
const KS_GUID_TAIL: [u8; 14] = [
    0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71,
];

const TAG_PCM: u16 = 0x0001;
const TAG_FLOAT: u16 = 0x0003;
const TAG_ALAW: u16 = 0x0006;
const TAG_MULAW: u16 = 0x0007;
const TAG_EXTENSIBLE: u16 = 0xfffe;

/// Longest fmt body read (WAVE_FORMAT_EXTENSIBLE is 40 bytes; the rest is
/// format-specific and not needed).
pub(crate) const FMT_READ: usize = 40;

/// What the fmt chunk says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fmt {
    pub channels: u16,
    pub rate: u32,
    /// Everything but the RIFF kind and the fact chunk, which live elsewhere.
    pub layout: WavLayout,
}

impl Fmt {
    /// Bytes of one multichannel sample in the file.
    pub fn block_align(&self) -> u64 {
        self.channels as u64 * self.layout.container_bytes() as u64
    }
}

/// Why a fmt chunk was refused: the file cannot be carried (`Unsupported`)
/// or contradicts itself (`Malformed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FmtError {
    Unsupported(String),
    Malformed(String),
}

/// Parses a fmt body (at least 16 bytes; at most [`FMT_READ`] are looked at).
pub(crate) fn parse(raw: &[u8]) -> Result<Fmt, FmtError> {
    use FmtError::{Malformed, Unsupported};
    if raw.len() < 16 {
        return Err(Malformed(format!(
            "the fmt chunk is {} bytes, shorter than the 16 every WAV needs",
            raw.len()
        )));
    }
    let u16_at = |i: usize| u16::from_le_bytes([raw[i], raw[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes([raw[i], raw[i + 1], raw[i + 2], raw[i + 3]]);
    let tag = u16_at(0);
    let channels = u16_at(2);
    let rate = u32_at(4);
    let block_align = u16_at(12);
    let bits = u16_at(14);

    let (format_tag, valid_bits, channel_mask) = if tag == TAG_EXTENSIBLE {
        if raw.len() < 40 || u16_at(16) < 22 {
            return Err(Malformed(
                "WAVE_FORMAT_EXTENSIBLE with a fmt chunk shorter than 40 bytes".into(),
            ));
        }
        let guid = &raw[24..40];
        if guid[2..] != KS_GUID_TAIL {
            return Err(Unsupported(format!(
                "WAVE_FORMAT_EXTENSIBLE with the non-standard sub-format GUID {}",
                guid.iter().map(|b| format!("{b:02x}")).collect::<String>()
            )));
        }
        (
            u16::from_le_bytes([guid[0], guid[1]]),
            u16_at(18),
            Some(u32_at(20)),
        )
    } else {
        (tag, bits, None)
    };
    let coding = match format_tag {
        TAG_PCM => WavCoding::Pcm,
        TAG_FLOAT => WavCoding::Float,
        TAG_ALAW => WavCoding::ALaw,
        TAG_MULAW => WavCoding::MuLaw,
        other => return Err(Unsupported(tag_name(other))),
    };
    if channels == 0 {
        return Err(Malformed("the fmt chunk declares zero channels".into()));
    }
    if rate == 0 {
        return Err(Malformed(
            "the fmt chunk declares a sample rate of 0 Hz".into(),
        ));
    }
    if block_align == 0 || block_align % channels != 0 {
        return Err(Malformed(format!(
            "block align is {block_align} bytes, not a whole number of bytes for each of \
             {channels} channels"
        )));
    }
    let container_bits = (block_align / channels) as u32 * 8;
    if (bits as u32) > container_bits || bits == 0 {
        return Err(Malformed(format!(
            "block align is {block_align} bytes, but {channels} channels of {bits} bits take \
             {}",
            channels as u32 * (bits as u32).div_ceil(8)
        )));
    }
    let container_bits = container_bits as u16;
    let supported = match coding {
        WavCoding::Pcm => matches!(container_bits, 8 | 16 | 24 | 32),
        WavCoding::Float => bits == container_bits && matches!(bits, 32 | 64),
        WavCoding::ALaw | WavCoding::MuLaw => bits == 8 && container_bits == 8,
    };
    if !supported {
        let kind = match coding {
            WavCoding::Pcm => "PCM",
            WavCoding::Float => "float",
            WavCoding::ALaw => "A-law",
            WavCoding::MuLaw => "mu-law",
        };
        let what = if bits == container_bits {
            format!("{bits}-bit {kind}")
        } else {
            format!("{bits}-bit {kind} in {container_bits}-bit containers")
        };
        return Err(Unsupported(format!(
            "{what} (supported: PCM in 8, 16, 24 or 32-bit containers, 32 and 64-bit float, \
             8-bit A-law and mu-law)"
        )));
    }
    if valid_bits > container_bits {
        return Err(Malformed(format!(
            "{valid_bits} valid bits do not fit {container_bits}-bit containers"
        )));
    }
    Ok(Fmt {
        channels,
        rate,
        layout: WavLayout {
            coding,
            container_bits,
            bits,
            valid_bits,
            channel_mask,
            riff: RiffKind::Riff,
            fact: None,
        },
    })
}

/// The fmt body for `layout` (plain: 16 bytes for PCM, 18 with cbSize for
/// the others; WAVE_FORMAT_EXTENSIBLE: 40).
pub(crate) fn build(channels: u16, rate: u32, layout: &WavLayout) -> Vec<u8> {
    let sub = match layout.coding {
        WavCoding::Pcm => TAG_PCM,
        WavCoding::Float => TAG_FLOAT,
        WavCoding::ALaw => TAG_ALAW,
        WavCoding::MuLaw => TAG_MULAW,
    };
    let tag = if layout.channel_mask.is_some() {
        TAG_EXTENSIBLE
    } else {
        sub
    };
    let align = channels as u32 * layout.container_bytes() as u32;
    let mut fmt = Vec::with_capacity(40);
    fmt.extend_from_slice(&tag.to_le_bytes());
    fmt.extend_from_slice(&channels.to_le_bytes());
    fmt.extend_from_slice(&rate.to_le_bytes());
    fmt.extend_from_slice(&rate.saturating_mul(align).to_le_bytes());
    fmt.extend_from_slice(&(align as u16).to_le_bytes());
    fmt.extend_from_slice(&layout.bits.to_le_bytes());
    match layout.channel_mask {
        Some(mask) => {
            fmt.extend_from_slice(&22u16.to_le_bytes());
            fmt.extend_from_slice(&layout.valid_bits.to_le_bytes());
            fmt.extend_from_slice(&mask.to_le_bytes());
            fmt.extend_from_slice(&sub.to_le_bytes());
            fmt.extend_from_slice(&KS_GUID_TAIL);
        }
        // Non-PCM tags carry cbSize (WAVEFORMATEX); PCM keeps the classic 16 bytes.
        None if sub != TAG_PCM => fmt.extend_from_slice(&0u16.to_le_bytes()),
        None => {}
    }
    fmt
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

/// A readable name for a WAV format tag.
fn tag_name(tag: u16) -> String {
    let name = match tag {
        0x0000 => "unknown format",
        0x0002 => "ADPCM",
        0x0011 => "IMA ADPCM",
        0x0022 => "TrueSpeech",
        0x0031 => "GSM 6.10",
        0x0040 => "G.721 ADPCM",
        0x0050 => "MPEG",
        0x0055 => "MPEG Layer 3",
        0x0160..=0x0163 => "Windows Media Audio",
        0x1610 => "AAC",
        0xf1ac => "FLAC",
        _ => "compressed audio",
    };
    format!("{name} (format tag {tag})")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt_bytes(tag: u16, ch: u16, bits: u16, align: u16) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&tag.to_le_bytes());
        v.extend_from_slice(&ch.to_le_bytes());
        v.extend_from_slice(&8000u32.to_le_bytes());
        v.extend_from_slice(&(8000 * align as u32).to_le_bytes());
        v.extend_from_slice(&align.to_le_bytes());
        v.extend_from_slice(&bits.to_le_bytes());
        v
    }

    fn unsupported(raw: &[u8]) -> String {
        match parse(raw) {
            Err(FmtError::Unsupported(s)) => s,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn names_what_it_refuses() {
        assert!(unsupported(&fmt_bytes(2, 1, 4, 1)).contains("ADPCM (format tag 2)"));
        assert!(unsupported(&fmt_bytes(3, 2, 16, 4)).contains("16-bit float"));
        assert!(unsupported(&fmt_bytes(7, 1, 16, 2)).contains("16-bit mu-law"));
        assert!(unsupported(&fmt_bytes(1, 1, 40, 5)).contains("40-bit PCM"));
        assert!(matches!(
            parse(&fmt_bytes(1, 2, 16, 3)),
            Err(FmtError::Malformed(_))
        ));
    }

    #[test]
    fn every_layout_builds_and_parses_back() {
        let mut layouts = vec![
            WavLayout::pcm(8),
            WavLayout::pcm(16),
            WavLayout::pcm(24),
            WavLayout::pcm(32),
            WavLayout::float(32),
            WavLayout::float(64),
            WavLayout {
                fact: None,
                ..WavLayout::g711(WavCoding::ALaw)
            },
            WavLayout {
                fact: None,
                ..WavLayout::g711(WavCoding::MuLaw)
            },
            // 24-bit samples in 32-bit containers, as some writers put it.
            WavLayout {
                bits: 24,
                valid_bits: 24,
                ..WavLayout::pcm(32)
            },
        ];
        let ext: Vec<WavLayout> = layouts
            .iter()
            .map(|l| l.clone().with_channel_mask(0x3f))
            .chain([WavLayout {
                valid_bits: 20,
                ..WavLayout::pcm(24).with_channel_mask(0)
            }])
            .collect();
        layouts.extend(ext);
        for l in layouts {
            let raw = build(6, 44_100, &l);
            let f = parse(&raw).unwrap_or_else(|e| panic!("{l:?}: {e:?}"));
            assert_eq!((f.channels, f.rate), (6, 44_100));
            assert_eq!(f.layout, l);
        }
    }
}
