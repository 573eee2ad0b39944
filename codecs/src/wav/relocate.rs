//! Lets hound write the samples and keep the sizes while the file gets our
//! own header.
//!
//! hound always writes a fixed header (44 bytes, or 68 for
//! WAVE_FORMAT_EXTENSIBLE) with a channel mask it picks itself, and later
//! seeks back to patch the RIFF and data sizes. This writer sits between
//! hound and the file: it swallows hound's header, shifts the sample bytes to
//! follow ours, and redirects the two size patches to our header's fields, so
//! hound's periodic flush and its finalize-on-drop keep working unchanged.

use std::io::{self, Seek, SeekFrom, Write};

pub(crate) struct Relocate<W> {
    inner: W,
    /// Length of the header hound believes it wrote.
    hound_len: u64,
    /// Length of the header actually in the file.
    ours_len: u64,
    /// Position in hound's view of the file.
    pos: u64,
    /// Position of `inner`, to seek only when needed.
    phys: u64,
}

impl<W: Write + Seek> Relocate<W> {
    /// Writes `header` to `inner` (at offset 0) and relocates hound's
    /// `hound_len`-byte header onto it.
    pub fn new(mut inner: W, header: &[u8], hound_len: u64) -> io::Result<Self> {
        inner.write_all(header)?;
        Ok(Self {
            inner,
            hound_len,
            ours_len: header.len() as u64,
            pos: 0,
            phys: header.len() as u64,
        })
    }

    fn write_at(&mut self, phys: u64, buf: &[u8]) -> io::Result<()> {
        if self.phys != phys {
            self.inner.seek(SeekFrom::Start(phys))?;
        }
        self.inner.write_all(buf)?;
        self.phys = phys + buf.len() as u64;
        Ok(())
    }
}

impl<W: Write + Seek> Write for Relocate<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let len = buf.len() as u64;
        if self.pos >= self.hound_len {
            let phys = self.pos - self.hound_len + self.ours_len;
            self.write_at(phys, buf)?;
        } else if self.pos == 0 && len == self.hound_len {
            // hound's own header: ours is already in place.
        } else if self.pos == 4 && len == 4 {
            // RIFF size = data bytes + header bytes - 8, in either header.
            let hound_size = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as u64;
            let size = hound_size + self.ours_len - self.hound_len;
            let size = u32::try_from(size).unwrap_or(u32::MAX);
            self.write_at(4, &size.to_le_bytes())?;
        } else if self.pos == self.hound_len - 4 && len == 4 {
            let at = self.ours_len - 4;
            self.write_at(at, buf)?;
        } else {
            return Err(io::Error::other(format!(
                "unexpected header write of {len} bytes at offset {}",
                self.pos
            )));
        }
        self.pos += len;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Write + Seek> Seek for Relocate<W> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(_) => None,
        };
        self.pos = target.ok_or_else(|| io::Error::other("unsupported seek"))?;
        Ok(self.pos)
    }
}
