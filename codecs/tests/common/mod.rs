//! Hand-built RIFF/WAVE files for the tests: any fmt layout, extra chunks
//! anywhere, deterministic sample bytes. Nothing large is committed.

#![allow(dead_code)]

/// A tiny deterministic generator (SplitMix64), so tests need no RNG crate.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// What goes into the fmt chunk.
#[derive(Debug, Clone, Copy)]
pub struct Fmt {
    pub tag: u16,
    pub channels: u16,
    pub rate: u32,
    /// wBitsPerSample.
    pub bits: u16,
    /// `Some((mask, sub_tag))` writes WAVE_FORMAT_EXTENSIBLE.
    pub extensible: Option<(u32, u16)>,
    /// Write the 18-byte WAVEFORMATEX (cbSize = 0) instead of 16 bytes.
    pub cb_size: bool,
    /// Bits of a container when wider than `bits` rounded up to bytes
    /// (24-bit samples in 32-bit containers).
    pub container: Option<u16>,
    /// wValidBitsPerSample of EXTENSIBLE when not `bits`.
    pub valid: Option<u16>,
}

impl Fmt {
    pub fn pcm(channels: u16, rate: u32, bits: u16, float: bool) -> Self {
        Self {
            tag: if float { 3 } else { 1 },
            channels,
            rate,
            bits,
            extensible: None,
            cb_size: float,
            container: None,
            valid: None,
        }
    }

    /// G.711: tag 6 (A-law) or 7 (mu-law), 8 bits, cbSize present.
    pub fn g711(tag: u16, channels: u16, rate: u32) -> Self {
        Self {
            tag,
            cb_size: true,
            ..Self::pcm(channels, rate, 8, false)
        }
    }

    pub fn container_bytes(&self) -> u16 {
        self.container.unwrap_or(self.bits).div_ceil(8)
    }

    pub fn block_align(&self) -> u16 {
        self.channels * self.container_bytes()
    }

    pub fn bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        let tag = if self.extensible.is_some() {
            0xfffe
        } else {
            self.tag
        };
        v.extend_from_slice(&tag.to_le_bytes());
        v.extend_from_slice(&self.channels.to_le_bytes());
        v.extend_from_slice(&self.rate.to_le_bytes());
        v.extend_from_slice(&(self.rate * self.block_align() as u32).to_le_bytes());
        v.extend_from_slice(&self.block_align().to_le_bytes());
        v.extend_from_slice(&self.bits.to_le_bytes());
        if let Some((mask, sub)) = self.extensible {
            v.extend_from_slice(&22u16.to_le_bytes());
            v.extend_from_slice(&self.valid.unwrap_or(self.bits).to_le_bytes());
            v.extend_from_slice(&mask.to_le_bytes());
            v.extend_from_slice(&sub.to_le_bytes());
            v.extend_from_slice(&[
                0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71,
            ]);
        } else if self.cb_size {
            v.extend_from_slice(&0u16.to_le_bytes());
        }
        v
    }
}

/// One RIFF chunk, padded to an even length as the standard says.
pub fn chunk(id: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(body.len() + 9);
    v.extend_from_slice(id);
    v.extend_from_slice(&(body.len() as u32).to_le_bytes());
    v.extend_from_slice(body);
    if body.len() % 2 == 1 {
        v.push(0);
    }
    v
}

/// A LIST/INFO chunk with an odd-sized title, the kind taggers add.
pub fn list_info() -> Vec<u8> {
    let mut info = b"INFO".to_vec();
    info.extend_from_slice(&chunk(b"INAM", b"isochron test tone"));
    info.extend_from_slice(&chunk(b"ISFT", b"hand-built RIFF"));
    info.push(b'!'); // make the LIST body odd-sized, so a pad byte follows
    chunk(b"LIST", &info)
}

/// An `id3 ` chunk as some taggers append after the data.
pub fn id3() -> Vec<u8> {
    let mut tag = b"ID3\x03\x00\x00\x00\x00\x00\x0b".to_vec();
    tag.extend_from_slice(b"TIT2\x00\x00\x00\x01\x00\x00\x00");
    chunk(b"id3 ", &tag)
}

/// A whole WAV file: RIFF header, `before` chunks, fmt, data, `after` chunks.
pub fn wav_bytes(fmt: &Fmt, data: &[u8], before: &[u8], after: &[u8]) -> Vec<u8> {
    wav_full(fmt, before, &[], data, after)
}

/// A whole WAV file: RIFF header, `before` chunks, fmt, `between` chunks
/// (fact, LIST...), data, `after` chunks.
pub fn wav_full(fmt: &Fmt, before: &[u8], between: &[u8], data: &[u8], after: &[u8]) -> Vec<u8> {
    let mut body = b"WAVE".to_vec();
    body.extend_from_slice(before);
    body.extend_from_slice(&chunk(b"fmt ", &fmt.bytes()));
    body.extend_from_slice(between);
    body.extend_from_slice(&chunk(b"data", data));
    body.extend_from_slice(after);
    let mut v = b"RIFF".to_vec();
    v.extend_from_slice(&(body.len() as u32).to_le_bytes());
    v.extend_from_slice(&body);
    v
}

/// The chunks of a file that say what it is: RIFF id, fmt body, fact body
/// and data bytes, found by walking its chunks (RF64: sizes from ds64).
pub struct Parts {
    pub riff: [u8; 4],
    pub fmt: Vec<u8>,
    pub fact: Option<Vec<u8>>,
    pub data: Vec<u8>,
}

pub fn parts(file: &[u8]) -> Parts {
    let riff: [u8; 4] = file[0..4].try_into().unwrap();
    assert!(matches!(&riff, b"RIFF" | b"RF64" | b"BW64"), "{riff:?}");
    assert_eq!(&file[8..12], b"WAVE");
    let riff_size = u32::from_le_bytes(file[4..8].try_into().unwrap()) as usize;
    let mut ds64_data = None;
    if &riff == b"RIFF" {
        assert!(riff_size + 8 <= file.len() + 1, "RIFF size beyond the file");
    } else {
        assert_eq!(riff_size, u32::MAX as usize);
        assert_eq!(&file[12..16], b"ds64");
        let riff64 = u64::from_le_bytes(file[20..28].try_into().unwrap()) as usize;
        assert_eq!(riff64 + 8, file.len(), "ds64 RIFF size");
        ds64_data = Some(u64::from_le_bytes(file[28..36].try_into().unwrap()) as usize);
    }
    let (mut fmt, mut fact, mut data) = (None, None, None);
    let mut pos = 12;
    while pos + 8 <= file.len() {
        let id = &file[pos..pos + 4];
        let mut size = u32::from_le_bytes(file[pos + 4..pos + 8].try_into().unwrap()) as usize;
        if id == b"data" && size == u32::MAX as usize {
            size = ds64_data.expect("data size in ds64");
        }
        let body = file[pos + 8..pos + 8 + size].to_vec();
        match id {
            b"fmt " => fmt = Some(body),
            b"fact" => fact = Some(body),
            b"data" => data = Some(body),
            _ => {}
        }
        pos += 8 + size + size % 2;
    }
    Parts {
        riff,
        fmt: fmt.expect("fmt chunk"),
        fact,
        data: data.expect("data chunk"),
    }
}

/// The fmt body and data bytes of a file.
pub fn fmt_and_data(file: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let p = parts(file);
    (p.fmt, p.data)
}

/// An RF64 (or BW64) file: ds64 first, then fmt, `between` chunks, data with
/// size 0xFFFFFFFF.
pub fn rf64_bytes(id: &[u8; 4], fmt: &Fmt, data: &[u8], between: &[u8]) -> Vec<u8> {
    let mut rest = chunk(b"fmt ", &fmt.bytes());
    rest.extend_from_slice(between);
    rest.extend_from_slice(b"data");
    rest.extend_from_slice(&u32::MAX.to_le_bytes());
    rest.extend_from_slice(data);
    if data.len() % 2 == 1 {
        rest.push(0);
    }
    let riff = 4 + 8 + 28 + rest.len() as u64;
    let mut ds = Vec::new();
    ds.extend_from_slice(&riff.to_le_bytes());
    ds.extend_from_slice(&(data.len() as u64).to_le_bytes());
    ds.extend_from_slice(&((data.len() / fmt.block_align() as usize) as u64).to_le_bytes());
    ds.extend_from_slice(&0u32.to_le_bytes());
    let mut v = id.to_vec();
    v.extend_from_slice(&u32::MAX.to_le_bytes());
    v.extend_from_slice(b"WAVE");
    v.extend_from_slice(&chunk(b"ds64", &ds));
    v.extend_from_slice(&rest);
    v
}

/// A fact chunk holding `samples` and `extra` bytes.
pub fn fact(samples: u32, extra: &[u8]) -> Vec<u8> {
    chunk(b"fact", &[&samples.to_le_bytes()[..], extra].concat())
}

/// A WAV as a streaming writer leaves it: RIFF and data sizes `size`
/// (0 or 0xFFFFFFFF), data to the end.
pub fn streamed_bytes(fmt: &Fmt, data: &[u8], size: u32) -> Vec<u8> {
    let mut v = b"RIFF".to_vec();
    v.extend_from_slice(&size.to_le_bytes());
    v.extend_from_slice(b"WAVE");
    v.extend_from_slice(&chunk(b"fmt ", &fmt.bytes()));
    v.extend_from_slice(b"data");
    v.extend_from_slice(&size.to_le_bytes());
    v.extend_from_slice(data);
    v
}

/// A reader that hands out at most a few bytes a call, as a pipe does.
pub struct Trickle<R> {
    pub inner: R,
    pub rng: Rng,
    pub max: usize,
}

impl<R: std::io::Read> std::io::Read for Trickle<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = 1 + (self.rng.next_u64() as usize) % self.max.max(1);
        let n = n.min(buf.len());
        self.inner.read(&mut buf[..n])
    }
}
pub mod flac;
