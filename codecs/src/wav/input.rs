//! The bytes a WAV reader walks: a file (seekable, known length) or any
//! stream (a pipe: read once, front to back, length unknown), with a few
//! bytes of push-back for the chunk walk's look-ahead.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek};

enum Src {
    File(BufReader<File>),
    Stream(Box<dyn Read + Send>),
}

/// A forward-only reader over a file or a stream.
pub(crate) struct Input {
    src: Src,
    /// Pushed-back bytes, served before `src`, from `back_at`.
    back: Vec<u8>,
    back_at: usize,
    /// Bytes consumed so far.
    pos: u64,
}

impl Input {
    pub fn file(f: File) -> Self {
        Self::new(Src::File(BufReader::with_capacity(64 * 1024, f)))
    }

    pub fn stream(r: Box<dyn Read + Send>) -> Self {
        Self::new(Src::Stream(r))
    }

    fn new(src: Src) -> Self {
        Self {
            src,
            back: Vec::new(),
            back_at: 0,
            pos: 0,
        }
    }

    /// Bytes consumed so far (the offset in the file or stream).
    pub fn pos(&self) -> u64 {
        self.pos
    }

    /// Fills `buf` as far as the input goes; returns the bytes read (fewer
    /// only at the end).
    pub fn read_up_to(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            match self.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    /// Serves `bytes` again before anything else (look-ahead undone).
    pub fn unread(&mut self, bytes: &[u8]) {
        let mut v = bytes.to_vec();
        v.extend_from_slice(&self.back[self.back_at..]);
        self.back = v;
        self.back_at = 0;
        self.pos -= bytes.len() as u64;
    }

    /// Skips `n` bytes (a chunk the reader does not need); returns how many
    /// there were. Files seek; streams read and discard.
    pub fn skip(&mut self, mut n: u64) -> io::Result<u64> {
        let buffered = ((self.back.len() - self.back_at) as u64).min(n);
        self.back_at += buffered as usize;
        self.pos += buffered;
        n -= buffered;
        let skipped = match &mut self.src {
            Src::File(f) => {
                // Never seek past the end: the walk must see where it ends.
                let here = f.stream_position()?;
                let len = f.get_ref().metadata()?.len();
                let k = n.min(len.saturating_sub(here));
                f.seek_relative(k as i64)?;
                k
            }
            Src::Stream(r) => io::copy(&mut r.by_ref().take(n), &mut io::sink())?,
        };
        self.pos += skipped;
        Ok(buffered + skipped)
    }
}

impl Read for Input {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = if self.back_at < self.back.len() {
            let n = (self.back.len() - self.back_at).min(buf.len());
            buf[..n].copy_from_slice(&self.back[self.back_at..self.back_at + n]);
            self.back_at += n;
            if self.back_at == self.back.len() {
                self.back.clear();
                self.back_at = 0;
            }
            n
        } else {
            match &mut self.src {
                Src::File(f) => f.read(buf)?,
                Src::Stream(r) => r.read(buf)?,
            }
        };
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_back_and_skip_keep_the_position() {
        let data: Vec<u8> = (0..100).collect();
        let mut i = Input::stream(Box::new(io::Cursor::new(data)));
        let mut b = [0u8; 10];
        assert_eq!(i.read_up_to(&mut b).unwrap(), 10);
        i.unread(&b[6..]);
        assert_eq!(i.pos(), 6);
        assert_eq!(i.skip(2).unwrap(), 2);
        assert_eq!(i.read_up_to(&mut b[..3]).unwrap(), 3);
        assert_eq!(&b[..3], &[8, 9, 10]);
        assert_eq!(i.skip(1000).unwrap(), 89);
        assert_eq!(i.pos(), 100);
        assert_eq!(i.read_up_to(&mut b).unwrap(), 0);
    }
}
