//! Walks the RIFF chunks of a WAV file and parses its fmt chunk.
//!
//! hound decodes the samples, but it neither exposes the channel mask nor
//! skips the pad byte after odd-sized chunks, and it reports unsupported
//! encodings without saying which. This walk does all three, and checks the
//! data chunk against the file length before any sample is read.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::error::{Error, Result};

/// Sub-format GUID tail shared by every KSDATAFORMAT_SUBTYPE_* of
/// WAVE_FORMAT_EXTENSIBLE; the first two bytes are the classic format tag.
const KS_GUID_TAIL: [u8; 14] = [
    0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71,
];

pub(crate) const TAG_PCM: u16 = 0x0001;
pub(crate) const TAG_FLOAT: u16 = 0x0003;
pub(crate) const TAG_EXTENSIBLE: u16 = 0xfffe;

/// What the fmt chunk says about the samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fmt {
    pub channels: u16,
    pub rate: u32,
    /// Bits of one channel sample (container = valid bits, checked).
    pub bits: u16,
    pub float: bool,
    /// Present when the file used WAVE_FORMAT_EXTENSIBLE.
    pub channel_mask: Option<u32>,
}

/// Where the samples are and how they are stored.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scan {
    pub fmt: Fmt,
    /// Byte offset of the first sample.
    pub data_offset: u64,
    /// Bytes of sample data.
    pub data_len: u64,
}

/// Reads the chunk list of `file` (positioned anywhere) up to the data chunk.
pub(crate) fn scan<F: Read + Seek>(path: &Path, file: &mut F, file_len: u64) -> Result<Scan> {
    let io = |e| Error::io(path, e);
    let not_wav = |reason: String| Error::NotWav {
        path: path.into(),
        reason,
    };
    let malformed = |what: String| Error::MalformedWav {
        path: path.into(),
        what,
    };
    if file_len == 0 {
        return Err(Error::Empty {
            path: path.into(),
            what: "the file has no bytes, so no RIFF/WAVE header".into(),
        });
    }
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    let mut head = [0u8; 12];
    let got = read_up_to(file, &mut head).map_err(io)?;
    if got < 12 || &head[0..4] != b"RIFF" {
        return Err(match &head[0..4] {
            b"RF64" | b"BW64" => Error::UnsupportedWav {
                path: path.into(),
                what: "RF64 (64-bit RIFF for files over 4 GiB)".into(),
            },
            b"RIFX" => Error::UnsupportedWav {
                path: path.into(),
                what: "RIFX (big-endian RIFF)".into(),
            },
            _ if got < 12 => not_wav(format!(
                "only {got} bytes, shorter than the 12-byte RIFF/WAVE header"
            )),
            magic => not_wav(format!(
                "it starts with {}{}, not 'RIFF'",
                show_id(magic),
                sniff(magic)
            )),
        });
    }
    if &head[8..12] != b"WAVE" {
        return Err(not_wav(format!(
            "the RIFF form type is {}, not 'WAVE'",
            show_id(&head[8..12])
        )));
    }

    let mut pos = 12u64;
    let mut fmt: Option<Fmt> = None;
    loop {
        if pos + 8 > file_len {
            return Err(malformed(match fmt {
                None => format!("no fmt chunk (the chunk list ends at byte {file_len})"),
                Some(_) => format!("no data chunk (the chunk list ends at byte {file_len})"),
            }));
        }
        let (id, size) = read_chunk_header(file, pos).map_err(io)?;
        let body = pos + 8;
        match &id {
            b"fmt " => {
                if size < 16 {
                    return Err(malformed(format!(
                        "the fmt chunk is {size} bytes, shorter than the 16 every WAV needs"
                    )));
                }
                if body + size as u64 > file_len {
                    return Err(Error::Truncated {
                        path: path.into(),
                        declared: size as u64,
                        available: file_len - body,
                    });
                }
                // Format-specific extra bytes beyond 40 are not needed.
                let mut raw = [0u8; 40];
                let n = (size as usize).min(raw.len());
                file.read_exact(&mut raw[..n]).map_err(io)?;
                fmt = Some(parse_fmt(path, &raw[..n])?);
            }
            b"data" => {
                let Some(fmt) = fmt else {
                    return Err(malformed(
                        "the data chunk comes before any fmt chunk".into(),
                    ));
                };
                let available = file_len - body;
                if size as u64 > available {
                    return Err(Error::Truncated {
                        path: path.into(),
                        declared: size as u64,
                        available,
                    });
                }
                let block = fmt.channels as u64 * (fmt.bits as u64 / 8);
                if size as u64 % block != 0 {
                    return Err(malformed(format!(
                        "the data chunk holds {size} bytes, not a whole number of \
                         {block}-byte samples ({} channels of {} bits)",
                        fmt.channels, fmt.bits
                    )));
                }
                return Ok(Scan {
                    fmt,
                    data_offset: body,
                    data_len: size as u64,
                });
            }
            _ => {}
        }
        pos = next_chunk(file, body, size, file_len).map_err(io)?;
    }
}

/// Position of the chunk after one whose body starts at `body`. RIFF pads
/// odd-sized chunks to an even length; some writers forget, so when the
/// padded position does not hold a chunk id but the unpadded one does, the
/// unpadded one wins.
fn next_chunk<F: Read + Seek>(
    file: &mut F,
    body: u64,
    size: u32,
    file_len: u64,
) -> std::io::Result<u64> {
    let unpadded = body + size as u64;
    if size % 2 == 0 {
        return Ok(unpadded);
    }
    let padded = unpadded + 1;
    let looks_like_id = |file: &mut F, at: u64| -> std::io::Result<bool> {
        if at + 8 > file_len {
            return Ok(false);
        }
        let (id, _) = read_chunk_header(file, at)?;
        Ok(id.iter().all(|&c| (0x20..0x7f).contains(&c)))
    };
    if !looks_like_id(file, padded)? && looks_like_id(file, unpadded)? {
        Ok(unpadded)
    } else {
        Ok(padded)
    }
}

fn read_chunk_header<F: Read + Seek>(file: &mut F, pos: u64) -> std::io::Result<([u8; 4], u32)> {
    file.seek(SeekFrom::Start(pos))?;
    let mut h = [0u8; 8];
    file.read_exact(&mut h)?;
    let id = [h[0], h[1], h[2], h[3]];
    Ok((id, u32::from_le_bytes([h[4], h[5], h[6], h[7]])))
}

fn read_up_to<F: Read>(file: &mut F, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Parses the fmt chunk body and refuses, by name, what cannot be carried.
pub(crate) fn parse_fmt(path: &Path, raw: &[u8]) -> Result<Fmt> {
    let u16_at = |i: usize| u16::from_le_bytes([raw[i], raw[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes([raw[i], raw[i + 1], raw[i + 2], raw[i + 3]]);
    let unsupported = |what: String| Error::UnsupportedWav {
        path: path.into(),
        what,
    };
    let malformed = |what: String| Error::MalformedWav {
        path: path.into(),
        what,
    };
    let tag = u16_at(0);
    let channels = u16_at(2);
    let rate = u32_at(4);
    let block_align = u16_at(12);
    let bits = u16_at(14);

    let (format_tag, valid_bits, channel_mask) = if tag == TAG_EXTENSIBLE {
        if raw.len() < 40 || u16_at(16) < 22 {
            return Err(malformed(
                "WAVE_FORMAT_EXTENSIBLE with a fmt chunk shorter than 40 bytes".into(),
            ));
        }
        let guid = &raw[24..40];
        if guid[2..] != KS_GUID_TAIL {
            return Err(unsupported(format!(
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

    match format_tag {
        TAG_PCM | TAG_FLOAT => {}
        other => return Err(unsupported(tag_name(other))),
    }
    let float = format_tag == TAG_FLOAT;
    if channels == 0 {
        return Err(malformed("the fmt chunk declares zero channels".into()));
    }
    if rate == 0 {
        return Err(malformed(
            "the fmt chunk declares a sample rate of 0 Hz".into(),
        ));
    }
    let kind = if float { "float" } else { "PCM" };
    if float && bits != 32 {
        return Err(unsupported(format!(
            "{bits}-bit float (only 32-bit float is supported)"
        )));
    }
    if !matches!(bits, 8 | 16 | 24 | 32) {
        return Err(unsupported(format!(
            "{bits}-bit {kind} (supported: 8, 16, 24 and 32-bit PCM, 32-bit float)"
        )));
    }
    if valid_bits != 0 && valid_bits != bits {
        return Err(unsupported(format!(
            "{valid_bits}-bit {kind} in {bits}-bit containers"
        )));
    }
    let expected_align = channels as u32 * bits as u32 / 8;
    if block_align as u32 != expected_align {
        return Err(malformed(format!(
            "block align is {block_align} bytes, but {channels} channels of {bits} bits take \
             {expected_align}"
        )));
    }
    Ok(Fmt {
        channels,
        rate,
        bits,
        float,
        channel_mask,
    })
}

/// A readable name for a WAV format tag.
fn tag_name(tag: u16) -> String {
    let name = match tag {
        0x0000 => "unknown format",
        0x0002 => "ADPCM",
        0x0006 => "A-law",
        0x0007 => "mu-law",
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

/// Shows a four-byte id as text when it is text, as hex otherwise.
fn show_id(id: &[u8]) -> String {
    if id.iter().all(|&c| (0x20..0x7f).contains(&c)) {
        format!("'{}'", String::from_utf8_lossy(id))
    } else {
        format!(
            "bytes {}",
            id.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        )
    }
}

/// A hint at what the file really is, from its first bytes.
fn sniff(magic: &[u8]) -> &'static str {
    match magic {
        [b'I', b'D', b'3', _] | [0xff, 0xfb | 0xf3 | 0xf2, ..] => " (an MP3 file?)",
        b"fLaC" => " (a FLAC file?)",
        b"OggS" => " (an Ogg file?)",
        b"FORM" => " (an AIFF file?)",
        [b'%', b'P', b'D', b'F'] => " (a PDF?)",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt_bytes(tag: u16, ch: u16, bits: u16) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&tag.to_le_bytes());
        v.extend_from_slice(&ch.to_le_bytes());
        v.extend_from_slice(&8000u32.to_le_bytes());
        let align = ch * bits.div_ceil(8);
        v.extend_from_slice(&(8000 * align as u32).to_le_bytes());
        v.extend_from_slice(&align.to_le_bytes());
        v.extend_from_slice(&bits.to_le_bytes());
        v
    }

    #[test]
    fn names_what_it_refuses() {
        let p = Path::new("x.wav");
        let e = parse_fmt(p, &fmt_bytes(2, 1, 4)).unwrap_err().to_string();
        assert!(e.contains("ADPCM (format tag 2)"), "{e}");
        let e = parse_fmt(p, &fmt_bytes(1, 1, 12)).unwrap_err().to_string();
        assert!(e.contains("12-bit PCM"), "{e}");
        let e = parse_fmt(p, &fmt_bytes(3, 2, 64)).unwrap_err().to_string();
        assert!(e.contains("64-bit float"), "{e}");
        let e = parse_fmt(p, &fmt_bytes(7, 1, 8)).unwrap_err().to_string();
        assert!(e.contains("mu-law (format tag 7)"), "{e}");
    }
}
