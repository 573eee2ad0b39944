//! A safe shell over libopus's multistream encoder and decoder (through
//! `audiopus_sys`): one API for 1 to 255 channels. Mono and stereo use
//! mapping family 0, up to 8 channels the Vorbis surround order (family 1),
//! more channels family 255 (each channel its own stream), as Ogg Opus does.

use std::os::raw::c_int;
use std::ptr::NonNull;

use audiopus_sys as sys;

use crate::error::{Error, Result};

/// The channel mapping: how channels pair into coupled Opus streams.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mapping {
    /// Mapping family (0, 1 or 255).
    pub family: u8,
    /// Opus streams in each packet.
    pub streams: u8,
    /// Of which coupled (stereo) streams.
    pub coupled: u8,
    /// Output channel -> decoded stream channel.
    pub table: Vec<u8>,
}

/// A libopus error code in words.
fn opus_error(what: &str, code: c_int) -> Error {
    let text = match code {
        sys::OPUS_BAD_ARG => "bad argument",
        sys::OPUS_BUFFER_TOO_SMALL => "buffer too small",
        sys::OPUS_INTERNAL_ERROR => "internal error",
        sys::OPUS_INVALID_PACKET => "invalid packet",
        sys::OPUS_UNIMPLEMENTED => "unimplemented",
        sys::OPUS_INVALID_STATE => "invalid state",
        sys::OPUS_ALLOC_FAIL => "allocation failed",
        _ => "unknown error",
    };
    Error::Opus {
        what: format!("{what}: {text} ({code})"),
    }
}

/// An Opus multistream encoder at 48 kHz.
pub struct MsEncoder {
    st: NonNull<sys::OpusMSEncoder>,
    channels: usize,
    mapping: Mapping,
}

// SAFETY: the state is owned and only used through &mut self.
unsafe impl Send for MsEncoder {}

impl MsEncoder {
    /// A music encoder for `channels` (1..=255) at 48 kHz.
    pub fn new(channels: u16) -> Result<Self> {
        if channels == 0 || channels > 255 {
            return Err(Error::Opus {
                what: format!("{channels} channels (Opus multistream carries 1 to 255)"),
            });
        }
        let family = match channels {
            1 | 2 => 0,
            3..=8 => 1,
            _ => 255,
        };
        let (mut streams, mut coupled) = (0 as c_int, 0 as c_int);
        let mut table = vec![0u8; channels as usize];
        let mut err = 0 as c_int;
        // SAFETY: the out pointers are valid; `table` holds `channels` bytes.
        let st = unsafe {
            sys::opus_multistream_surround_encoder_create(
                48_000,
                channels as c_int,
                family,
                &mut streams,
                &mut coupled,
                table.as_mut_ptr(),
                sys::OPUS_APPLICATION_AUDIO,
                &mut err,
            )
        };
        let st = NonNull::new(st)
            .filter(|_| err == sys::OPUS_OK)
            .ok_or_else(|| opus_error("creating the encoder", err))?;
        Ok(Self {
            st,
            channels: channels as usize,
            mapping: Mapping {
                family: family as u8,
                streams: streams as u8,
                coupled: coupled as u8,
                table,
            },
        })
    }

    /// The mapping the decoder needs.
    pub fn mapping(&self) -> &Mapping {
        &self.mapping
    }

    /// Sets an integer encoder option (`OPUS_SET_*_REQUEST`).
    pub fn set(&mut self, request: c_int, value: i32) -> Result<()> {
        // SAFETY: SET requests take one opus_int32 by value.
        let r = unsafe { sys::opus_multistream_encoder_ctl(self.st.as_ptr(), request, value) };
        if r != sys::OPUS_OK {
            return Err(opus_error("setting an encoder option", r));
        }
        Ok(())
    }

    /// The encoder's look-ahead in samples at 48 kHz (the decoder's output
    /// lags the input by this much: Ogg Opus's pre-skip).
    pub fn lookahead(&mut self) -> Result<usize> {
        let mut v: i32 = 0;
        // SAFETY: GET requests take a pointer to an opus_int32.
        let r = unsafe {
            sys::opus_multistream_encoder_ctl(
                self.st.as_ptr(),
                sys::OPUS_GET_LOOKAHEAD_REQUEST,
                &mut v as *mut i32,
            )
        };
        if r != sys::OPUS_OK {
            return Err(opus_error("reading the look-ahead", r));
        }
        Ok(v.max(0) as usize)
    }

    /// Encodes one frame (`pcm`: interleaved, a legal Opus frame size) into
    /// `out`; returns the packet's length.
    pub fn encode(&mut self, pcm: &[f32], out: &mut [u8]) -> Result<usize> {
        let frame = pcm.len() / self.channels;
        // SAFETY: `pcm` holds `frame` interleaved samples, `out` its length.
        let n = unsafe {
            sys::opus_multistream_encode_float(
                self.st.as_ptr(),
                pcm.as_ptr(),
                frame as c_int,
                out.as_mut_ptr(),
                out.len().min(i32::MAX as usize) as i32,
            )
        };
        if n < 0 {
            return Err(opus_error("encoding", n));
        }
        Ok(n as usize)
    }
}

impl Drop for MsEncoder {
    fn drop(&mut self) {
        // SAFETY: created by opus_multistream_surround_encoder_create.
        unsafe { sys::opus_multistream_encoder_destroy(self.st.as_ptr()) }
    }
}

/// An Opus multistream decoder at 48 kHz.
pub struct MsDecoder {
    st: NonNull<sys::OpusMSDecoder>,
    channels: usize,
}

// SAFETY: the state is owned and only used through &mut self.
unsafe impl Send for MsDecoder {}

impl MsDecoder {
    /// A decoder for the encoder's `mapping` (from the catalog, so checked).
    pub fn new(mapping: &Mapping) -> Result<Self> {
        let channels = mapping.table.len();
        let bad = mapping.streams == 0
            || mapping.coupled > mapping.streams
            || channels == 0
            || mapping
                .table
                .iter()
                .any(|&m| m != 255 && m as usize >= (mapping.streams + mapping.coupled) as usize);
        if bad {
            return Err(Error::Opus {
                what: format!("an inconsistent channel mapping: {mapping:?}"),
            });
        }
        let mut err = 0 as c_int;
        // SAFETY: `table` holds `channels` bytes.
        let st = unsafe {
            sys::opus_multistream_decoder_create(
                48_000,
                channels as c_int,
                mapping.streams as c_int,
                mapping.coupled as c_int,
                mapping.table.as_ptr(),
                &mut err,
            )
        };
        let st = NonNull::new(st)
            .filter(|_| err == sys::OPUS_OK)
            .ok_or_else(|| opus_error("creating the decoder", err))?;
        Ok(Self { st, channels })
    }

    /// Decodes into `pcm` (interleaved; its length sets the frame size):
    /// `packet` None is packet loss concealment; `fec` decodes the in-band
    /// FEC (LBRR) of the *next* packet for the lost one (PLC where the
    /// packet carries none). Returns the samples per channel written.
    pub fn decode(&mut self, packet: Option<&[u8]>, pcm: &mut [f32], fec: bool) -> Result<usize> {
        let frame = pcm.len() / self.channels;
        let (ptr, len) = match packet {
            Some(p) => (p.as_ptr(), p.len().min(i32::MAX as usize) as i32),
            None => (std::ptr::null(), 0),
        };
        // SAFETY: `ptr` is null or `len` readable bytes; `pcm` holds `frame`
        // interleaved samples.
        let n = unsafe {
            sys::opus_multistream_decode_float(
                self.st.as_ptr(),
                ptr,
                len,
                pcm.as_mut_ptr(),
                frame as c_int,
                fec as c_int,
            )
        };
        if n < 0 {
            return Err(opus_error("decoding", n));
        }
        Ok(n as usize)
    }
}

impl Drop for MsDecoder {
    fn drop(&mut self) {
        // SAFETY: created by opus_multistream_decoder_create.
        unsafe { sys::opus_multistream_decoder_destroy(self.st.as_ptr()) }
    }
}
