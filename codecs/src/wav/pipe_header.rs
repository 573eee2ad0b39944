//! The header of a WAV written to a pipe: its length is not known up front,
//! so the RIFF and data sizes say 0xFFFFFFFF ("until the end"), as arecord,
//! sox and ffmpeg write them; players read on until the stream closes.

use super::header::{FileLayout, build};
use crate::error::{Error, Result};
use crate::format::{StreamFormat, WavLayout};

/// RIFF header, fmt chunk (the layout's, plain or extensible) and data
/// chunk header with both sizes 0xFFFFFFFF. `format` gives channels and
/// rate (a whole number of hertz).
pub fn streaming_header(format: StreamFormat, layout: &WavLayout) -> Result<Vec<u8>> {
    let rate = format.rate;
    if rate.den() != 1 {
        return Err(Error::Unwritable {
            path: "<stream>".into(),
            what: format!("a WAV rate must be whole hertz, not {} Hz", rate.as_f64()),
        });
    }
    let mut h = build(&FileLayout {
        channels: format.channels,
        rate: rate.num(),
        bits: layout.bits,
        float: layout.float,
        channel_mask: layout.channel_mask,
    });
    let n = h.len();
    h[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    h[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{Encoding, Rate};

    #[test]
    fn sizes_say_until_the_end() {
        let f = StreamFormat::new(Encoding::L16, 2, Rate::hz(48_000).unwrap()).unwrap();
        let l = WavLayout {
            bits: 16,
            float: false,
            channel_mask: None,
        };
        let h = streaming_header(f, &l).unwrap();
        assert_eq!(&h[..4], b"RIFF");
        assert_eq!(&h[4..8], &[0xff; 4]);
        assert_eq!(&h[h.len() - 8..h.len() - 4], b"data");
        assert_eq!(&h[h.len() - 4..], &[0xff; 4]);
        assert_eq!(h.len(), 44);
        let odd = StreamFormat::new(Encoding::L16, 1, Rate::new(30_000, 1_001).unwrap()).unwrap();
        assert!(streaming_header(odd, &l).is_err());
    }
}
