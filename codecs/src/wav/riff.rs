//! Walks the chunks of a RIFF, RF64 or BW64 WAVE file, front to back, up to
//! the data chunk.
//!
//! The walk only reads forward, so it works on a pipe as well as on a file.
//! It keeps the channel mask, valid bits and the `fact` chunk, skips the pad
//! byte after odd-sized chunks (and copes with writers that forget it), and
//! says exactly what is wrong with a bad file. A file's data chunk is checked
//! against the file length before any sample is read. Sizes of 0 or
//! 0xFFFFFFFF written by streaming writers mean "until the end".

use std::path::Path;

use super::fmt::{self, FMT_READ, Fmt, FmtError};
use super::input::Input;
use crate::error::{Error, Result};
use crate::format::{RiffKind, WavLayout};

/// Where the samples are and how they are stored.
#[derive(Debug, Clone)]
pub(crate) struct Scan {
    /// The fmt chunk, with the RIFF kind and the fact chunk filled in.
    pub fmt: Fmt,
    /// Bytes of sample data: known, or `None` for "until the end of the
    /// stream" (a file's end is always known).
    pub data_len: Option<u64>,
    /// Bytes of an incomplete sample at the end of a file whose data runs to
    /// its end; they are not read.
    pub partial_tail: u64,
}

/// A size streaming writers put where they cannot know the real one.
fn placeholder(size: u32) -> bool {
    size == 0 || size == u32::MAX
}

/// The ds64 chunk of RF64/BW64: the 64-bit sizes.
#[derive(Debug, Clone, Copy)]
struct Ds64 {
    data: u64,
}

/// Reads the header of `input` (at its start). `file_len`: the length of a
/// file; `None` for a stream.
pub(crate) fn scan(path: &Path, input: &mut Input, file_len: Option<u64>) -> Result<Scan> {
    let io = |e| Error::io(path, e);
    let not_wav = |reason: String| Error::NotWav {
        path: path.into(),
        reason,
    };
    let malformed = |what: String| Error::MalformedWav {
        path: path.into(),
        what,
    };
    let what_ends = if file_len.is_some() {
        "the file"
    } else {
        "the stream"
    };
    let mut head = [0u8; 12];
    let got = input.read_up_to(&mut head).map_err(io)?;
    if got == 0 {
        return Err(Error::Empty {
            path: path.into(),
            what: format!("{what_ends} has no bytes, so no RIFF/WAVE header"),
        });
    }
    let riff = match &head[0..4] {
        b"RIFF" => RiffKind::Riff,
        b"RF64" => RiffKind::Rf64,
        b"BW64" => RiffKind::Bw64,
        b"RIFX" => {
            return Err(Error::UnsupportedWav {
                path: path.into(),
                what: "RIFX (big-endian RIFF)".into(),
            });
        }
        _ if got < 12 => {
            return Err(not_wav(format!(
                "only {got} bytes, shorter than the 12-byte RIFF/WAVE header"
            )));
        }
        magic => {
            return Err(not_wav(format!(
                "it starts with {}{}, not 'RIFF'",
                show_id(magic),
                sniff(magic)
            )));
        }
    };
    if got < 12 {
        return Err(not_wav(format!(
            "only {got} bytes, shorter than the 12-byte RIFF/WAVE header"
        )));
    }
    if &head[8..12] != b"WAVE" {
        return Err(not_wav(format!(
            "the RIFF form type is {}, not 'WAVE'",
            show_id(&head[8..12])
        )));
    }
    let riff_size = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);

    let mut ds64: Option<Ds64> = None;
    let mut fmt: Option<Fmt> = None;
    let mut fact: Option<Vec<u8>> = None;
    loop {
        let mut h = [0u8; 8];
        if input.read_up_to(&mut h).map_err(io)? < 8 {
            let end = file_len.unwrap_or(input.pos());
            return Err(malformed(match fmt {
                None => format!("no fmt chunk (the chunk list ends at byte {end})"),
                Some(_) => format!("no data chunk (the chunk list ends at byte {end})"),
            }));
        }
        let id = [h[0], h[1], h[2], h[3]];
        let size = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
        let body = input.pos();
        let available = file_len.map(|l| l.saturating_sub(body));
        if riff != RiffKind::Riff && ds64.is_none() {
            if &id != b"ds64" || size < 24 {
                return Err(malformed(format!(
                    "an {} file must start with a ds64 chunk of at least 24 bytes, found {} \
                     ({size} bytes)",
                    if riff == RiffKind::Rf64 {
                        "RF64"
                    } else {
                        "BW64"
                    },
                    show_id(&id)
                )));
            }
            let mut raw = [0u8; 24];
            if input.read_up_to(&mut raw).map_err(io)? < 24 {
                return Err(malformed("the ds64 chunk is cut short".into()));
            }
            ds64 = Some(Ds64 {
                data: u64::from_le_bytes(raw[8..16].try_into().expect("8 bytes")),
            });
            input.skip(size as u64 - 24).map_err(io)?;
            skip_pad(input, size).map_err(io)?;
            continue;
        }
        match &id {
            b"fmt " => {
                if size < 16 {
                    return Err(malformed(format!(
                        "the fmt chunk is {size} bytes, shorter than the 16 every WAV needs"
                    )));
                }
                if let Some(a) = available
                    && size as u64 > a
                {
                    return Err(Error::Truncated {
                        path: path.into(),
                        declared: size as u64,
                        available: a,
                    });
                }
                let mut raw = [0u8; FMT_READ];
                let n = (size as usize).min(FMT_READ);
                if input.read_up_to(&mut raw[..n]).map_err(io)? < n {
                    return Err(malformed("the fmt chunk is cut short".into()));
                }
                fmt = Some(fmt::parse(&raw[..n]).map_err(|e| match e {
                    FmtError::Unsupported(what) => Error::UnsupportedWav {
                        path: path.into(),
                        what,
                    },
                    FmtError::Malformed(what) => malformed(what),
                })?);
                input.skip(size as u64 - n as u64).map_err(io)?;
            }
            b"fact" if size >= 4 => {
                let keep = (size as usize - 4).min(WavLayout::MAX_FACT_EXTRA);
                let mut raw = vec![0u8; 4 + keep];
                let n = input.read_up_to(&mut raw).map_err(io)?;
                raw.truncate(n.max(4));
                fact = Some(raw.split_off(4));
                input
                    .skip((size as u64).saturating_sub(n as u64))
                    .map_err(io)?;
            }
            b"data" => {
                let Some(mut fmt) = fmt else {
                    return Err(malformed(
                        "the data chunk comes before any fmt chunk".into(),
                    ));
                };
                fmt.layout.riff = riff;
                fmt.layout.fact = fact;
                let block = fmt.block_align();
                let declared = match ds64 {
                    Some(d) if size == u32::MAX && d.data > 0 => Some(d.data),
                    _ if size == u32::MAX => None,
                    _ if size == 0 && placeholder(riff_size) && riff == RiffKind::Riff => None,
                    _ => Some(size as u64),
                };
                let (data_len, partial_tail) = match (declared, available) {
                    (Some(d), Some(a)) if d > a => {
                        return Err(Error::Truncated {
                            path: path.into(),
                            declared: d,
                            available: a,
                        });
                    }
                    (Some(d), _) if d % block != 0 => {
                        return Err(malformed(format!(
                            "the data chunk holds {d} bytes, not a whole number of \
                             {block}-byte samples ({} channels of {} bits)",
                            fmt.channels, fmt.layout.container_bits
                        )));
                    }
                    (Some(d), _) => (Some(d), 0),
                    (None, Some(a)) => (Some(a - a % block), a % block),
                    (None, None) => (None, 0),
                };
                return Ok(Scan {
                    fmt,
                    data_len,
                    partial_tail,
                });
            }
            _ => {
                input.skip(size as u64).map_err(io)?;
            }
        }
        skip_pad(input, size).map_err(io)?;
    }
}

/// RIFF pads odd-sized chunks to an even length; some writers forget, so
/// when the padded position does not hold a chunk id but the unpadded one
/// does, the unpadded one wins.
fn skip_pad(input: &mut Input, size: u32) -> std::io::Result<()> {
    if size % 2 == 0 {
        return Ok(());
    }
    let mut peek = [0u8; 9];
    let n = input.read_up_to(&mut peek)?;
    let looks_like_id =
        |b: &[u8]| b.len() >= 8 && b[..4].iter().all(|&c| (0x20..0x7f).contains(&c));
    let padded = n >= 9 && looks_like_id(&peek[1..9]);
    let unpadded = looks_like_id(&peek[..n.min(8)]);
    let skip = if !padded && unpadded { 0 } else { 1.min(n) };
    input.unread(&peek[skip..n]);
    Ok(())
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
