//! Interleaved sample buffers with their format, for applications that push
//! or receive media.
//!
//! A [`Frame`] holds wire bytes (big-endian, interleaved, in its
//! [`StreamFormat`]'s encoding) in a [`Bytes`]: building one from received
//! or already-encoded bytes, cloning it and slicing it by samples never copy.
//! Numeric buffers (`&[i16]`, `&[i32]`, `&[f32]`, `&[f64]`, interleaved) are
//! encoded on the way in and decoded on the way out, with the full-scale
//! semantics of [`crate::encoding`].

use std::ops::Range;

use bytes::{Bytes, BytesMut};

use crate::encoding::{self, Sample};
use crate::error::{Error, Result};
use crate::format::{Encoding, StreamFormat};

/// Interleaved samples of one substream and the format that says what they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    format: StreamFormat,
    data: Bytes,
}

impl Frame {
    /// Wraps wire bytes without copying; they must be whole samples.
    pub fn new(format: StreamFormat, data: impl Into<Bytes>) -> Result<Self> {
        let data = data.into();
        let stride = format.stride();
        if data.len() % stride != 0 {
            return Err(Error::Ragged {
                len: data.len(),
                stride,
            });
        }
        Ok(Self { format, data })
    }

    /// A frame with no samples.
    pub fn empty(format: StreamFormat) -> Self {
        Self {
            format,
            data: Bytes::new(),
        }
    }

    /// Encodes interleaved numeric samples (`channels` values per sample).
    pub fn from_samples<T: Sample>(format: StreamFormat, samples: &[T]) -> Result<Self> {
        let mut buf = BytesMut::new();
        Self::from_samples_in(format, samples, &mut buf)
    }

    /// Like [`from_samples`](Self::from_samples), encoding into `buf`'s
    /// spare capacity, so a caller that keeps `buf` (and drops old frames)
    /// reuses one allocation.
    pub fn from_samples_in<T: Sample>(
        format: StreamFormat,
        samples: &[T],
        buf: &mut BytesMut,
    ) -> Result<Self> {
        let ch = format.channels as usize;
        if samples.len() % ch != 0 {
            return Err(Error::Ragged {
                len: samples.len(),
                stride: ch,
            });
        }
        let len = samples.len() * format.encoding.bytes();
        buf.clear();
        buf.resize(len, 0);
        encoding::encode(format.encoding, samples, &mut buf[..]);
        Ok(Self {
            format,
            data: buf.split().freeze(),
        })
    }

    /// Encodes interleaved 16-bit full-scale samples.
    pub fn from_i16(format: StreamFormat, samples: &[i16]) -> Result<Self> {
        Self::from_samples(format, samples)
    }

    /// Encodes interleaved 32-bit full-scale samples.
    pub fn from_i32(format: StreamFormat, samples: &[i32]) -> Result<Self> {
        Self::from_samples(format, samples)
    }

    /// Encodes interleaved normalised (or sensor) `f32` samples.
    pub fn from_f32(format: StreamFormat, samples: &[f32]) -> Result<Self> {
        Self::from_samples(format, samples)
    }

    /// Encodes interleaved normalised (or sensor) `f64` samples.
    pub fn from_f64(format: StreamFormat, samples: &[f64]) -> Result<Self> {
        Self::from_samples(format, samples)
    }

    /// What the bytes are.
    pub fn format(&self) -> StreamFormat {
        self.format
    }

    /// Samples (all channels at one instant) in the frame.
    pub fn samples(&self) -> usize {
        self.data.len() / self.format.stride()
    }

    /// Whether the frame has no samples.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The wire bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.data
    }

    /// The wire bytes, without copying.
    pub fn into_bytes(self) -> Bytes {
        self.data
    }

    /// Samples `range` of the frame, sharing its memory.
    pub fn slice(&self, range: Range<usize>) -> Result<Self> {
        let n = self.samples();
        if range.start > range.end || range.end > n {
            return Err(Error::Size {
                what: "a sample range inside the frame",
                expected: n,
                found: range.end,
            });
        }
        let s = self.format.stride();
        Ok(Self {
            format: self.format,
            data: self.data.slice(range.start * s..range.end * s),
        })
    }

    /// Decodes into `out` (interleaved, `channels` values per sample);
    /// returns the values written. `out` must hold the whole frame.
    pub fn to_samples<T: Sample>(&self, out: &mut [T]) -> Result<usize> {
        let values = self.samples() * self.format.channels as usize;
        if out.len() < values {
            return Err(Error::Size {
                what: "the output buffer (values)",
                expected: values,
                found: out.len(),
            });
        }
        Ok(encoding::decode(
            self.format.encoding,
            &self.data,
            &mut out[..values],
        ))
    }

    /// Decodes the whole frame into a new vector.
    pub fn to_vec<T: Sample>(&self) -> Vec<T> {
        let mut v = vec![T::default(); self.samples() * self.format.channels as usize];
        encoding::decode(self.format.encoding, &self.data, &mut v);
        v
    }

    /// The same samples in another encoding (no copy when it is the same).
    pub fn convert(&self, encoding: Encoding) -> Result<Self> {
        if encoding == self.format.encoding {
            return Ok(self.clone());
        }
        let format = StreamFormat::new(encoding, self.format.channels, self.format.rate)?;
        let mut out = vec![0u8; self.samples() * format.stride()];
        encoding::transcode(self.format.encoding, &self.data, encoding, &mut out);
        Ok(Self {
            format,
            data: out.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Rate;

    fn fmt(enc: Encoding) -> StreamFormat {
        StreamFormat::new(enc, 2, Rate::hz(48_000).unwrap()).unwrap()
    }

    #[test]
    fn wire_bytes_are_shared_not_copied() {
        let bytes = Bytes::from(vec![0u8; 40]);
        let f = Frame::new(fmt(Encoding::L16), bytes.clone()).unwrap();
        assert_eq!(f.samples(), 10);
        assert_eq!(f.bytes().as_ptr(), bytes.as_ptr());
        let s = f.slice(2..5).unwrap();
        assert_eq!(s.samples(), 3);
        assert_eq!(s.bytes().as_ptr(), bytes[8..].as_ptr());
        assert!(f.slice(5..11).is_err());
        assert!(Frame::new(fmt(Encoding::L16), vec![0u8; 6]).is_err());
        assert_eq!(
            f.convert(Encoding::L16).unwrap().bytes().as_ptr(),
            bytes.as_ptr()
        );
    }

    #[test]
    fn numeric_buffers_round_trip() {
        let pcm: Vec<i16> = vec![0, 1, -1, i16::MAX, i16::MIN, 1234];
        let f = Frame::from_i16(fmt(Encoding::L16), &pcm).unwrap();
        assert_eq!(f.to_vec::<i16>(), pcm);
        let wide = f.convert(Encoding::L24).unwrap();
        assert_eq!(wide.to_vec::<i16>(), pcm);
        assert_eq!(wide.to_vec::<i32>()[3], (i16::MAX as i32) << 16);
        let x = [0.5f32, -0.25, 0.125, 1.0];
        let f = Frame::from_f32(fmt(Encoding::F32), &x).unwrap();
        assert_eq!(f.to_vec::<f32>(), x);
        assert_eq!(f.to_vec::<f64>(), [0.5, -0.25, 0.125, 1.0]);
        let f = Frame::from_f64(fmt(Encoding::L16), &[0.5, -0.5]).unwrap();
        assert_eq!(f.to_vec::<i16>(), [16384, -16384]);
        let f = Frame::from_i32(fmt(Encoding::L32), &[7, -7]).unwrap();
        let mut out = [0i32; 1];
        assert!(f.to_samples(&mut out).is_err());
        assert!(Frame::from_i16(fmt(Encoding::L16), &[1, 2, 3]).is_err());
    }

    #[test]
    fn a_kept_buffer_is_reused() {
        let mut buf = BytesMut::with_capacity(1024);
        let ptr = buf.as_ptr();
        let f = Frame::from_samples_in(fmt(Encoding::L16), &[1i16; 64], &mut buf).unwrap();
        assert_eq!(f.bytes().as_ptr(), ptr);
        drop(f);
        let g = Frame::from_samples_in(fmt(Encoding::L16), &[2i16; 64], &mut buf).unwrap();
        assert_eq!(g.to_vec::<i16>(), vec![2i16; 64]);
    }
}
