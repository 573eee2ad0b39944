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
    pub bits: u16,
    /// `Some((mask, sub_tag))` writes WAVE_FORMAT_EXTENSIBLE.
    pub extensible: Option<(u32, u16)>,
    /// Write the 18-byte WAVEFORMATEX (cbSize = 0) instead of 16 bytes.
    pub cb_size: bool,
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
        }
    }

    pub fn block_align(&self) -> u16 {
        self.channels * self.bits.div_ceil(8)
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
            v.extend_from_slice(&self.bits.to_le_bytes());
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

/// A whole WAV file: RIFF header, `before` chunks, fmt, `between` chunks,
/// data, `after` chunks.
pub fn wav_bytes(fmt: &Fmt, data: &[u8], before: &[u8], after: &[u8]) -> Vec<u8> {
    let mut body = b"WAVE".to_vec();
    body.extend_from_slice(before);
    body.extend_from_slice(&chunk(b"fmt ", &fmt.bytes()));
    body.extend_from_slice(&chunk(b"data", data));
    body.extend_from_slice(after);
    let mut v = b"RIFF".to_vec();
    v.extend_from_slice(&(body.len() as u32).to_le_bytes());
    v.extend_from_slice(&body);
    v
}

/// The fmt body and data bytes of a file, found by walking its chunks.
pub fn fmt_and_data(file: &[u8]) -> (Vec<u8>, Vec<u8>) {
    assert_eq!(&file[0..4], b"RIFF");
    assert_eq!(&file[8..12], b"WAVE");
    let riff_size = u32::from_le_bytes(file[4..8].try_into().unwrap()) as usize;
    assert!(riff_size + 8 <= file.len() + 1, "RIFF size beyond the file");
    let (mut fmt, mut data) = (None, None);
    let mut pos = 12;
    while pos + 8 <= file.len() {
        let id = &file[pos..pos + 4];
        let size = u32::from_le_bytes(file[pos + 4..pos + 8].try_into().unwrap()) as usize;
        let body = file[pos + 8..pos + 8 + size].to_vec();
        match id {
            b"fmt " => fmt = Some(body),
            b"data" => data = Some(body),
            _ => {}
        }
        pos += 8 + size + size % 2;
    }
    (fmt.expect("fmt chunk"), data.expect("data chunk"))
}
