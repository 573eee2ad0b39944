//! Wire sample encodings: big-endian bytes of every [`Encoding`] to and from
//! the numbers applications and signal code work with.
//!
//! Two views of a sample are offered:
//! - **Full scale** ([`decode`] / [`encode`] with any [`Sample`] type): audio
//!   semantics. `f32`/`f64` are normalised (integer PCM divided by
//!   `2^(bits-1)`, G.711 by 32768; float encodings carry their value; scaled
//!   sensor encodings carry `integer / 10^decimals`). `i16` is 16-bit full
//!   scale and `i32` is 32-bit full scale whatever the encoding, so an app
//!   that thinks in `i16` never has to know the stream is 24-bit.
//! - **Native** ([`decode_native`] / [`encode_native`]): the integer as the
//!   encoding stores it (U8 centred to -128..=127, L24 as a 24-bit value,
//!   G.711 as its 16-bit linear level, scaled encodings as the raw integer).
//!
//! Widening is exact; narrowing rounds to nearest and saturates. A missing
//! sensor value is NaN in the float view; scaled encodings reserve their
//! minimum integer for it (see [`write_missing`]).

pub mod g711;

use crate::format::Encoding;

/// A sample in transit between two encodings: integers keep 32-bit full
/// scale so PCM-to-PCM conversions never touch floating point.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Value {
    /// 32-bit full-scale integer PCM.
    Int(i32),
    /// Normalised audio or a sensor value.
    Real(f64),
}

const I31: f64 = 2_147_483_648.0;

mod sealed {
    /// Keeps [`super::Sample`] closed: only the four buffer types apps use.
    pub trait Sealed {}
    impl Sealed for i16 {}
    impl Sealed for i32 {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// A number type applications hand samples in: `i16`, `i32` (full-scale
/// PCM), `f32`, `f64` (normalised audio or sensor values).
pub trait Sample:
    sealed::Sealed + Copy + Default + PartialEq + std::fmt::Debug + Send + Sync + 'static
{
    #[doc(hidden)]
    fn from_full_scale(v: i32) -> Self;
    #[doc(hidden)]
    fn from_real(v: f64) -> Self;
    #[doc(hidden)]
    fn is_integer() -> bool;
    #[doc(hidden)]
    fn to_full_scale(self) -> i32;
    #[doc(hidden)]
    fn to_real(self) -> f64;
}

impl Sample for i16 {
    fn from_full_scale(v: i32) -> Self {
        round_shift(v, 16).clamp(i16::MIN as i64, i16::MAX as i64) as i16
    }
    fn from_real(v: f64) -> Self {
        real_to_int(v, 32_768.0, i16::MIN as i64, i16::MAX as i64) as i16
    }
    fn is_integer() -> bool {
        true
    }
    fn to_full_scale(self) -> i32 {
        (self as i32) << 16
    }
    fn to_real(self) -> f64 {
        self as f64 / 32_768.0
    }
}

impl Sample for i32 {
    fn from_full_scale(v: i32) -> Self {
        v
    }
    fn from_real(v: f64) -> Self {
        real_to_int(v, I31, i32::MIN as i64, i32::MAX as i64) as i32
    }
    fn is_integer() -> bool {
        true
    }
    fn to_full_scale(self) -> i32 {
        self
    }
    fn to_real(self) -> f64 {
        self as f64 / I31
    }
}

impl Sample for f32 {
    fn from_full_scale(v: i32) -> Self {
        (v as f64 / I31) as f32
    }
    fn from_real(v: f64) -> Self {
        v as f32
    }
    fn is_integer() -> bool {
        false
    }
    fn to_full_scale(self) -> i32 {
        real_to_int(self as f64, I31, i32::MIN as i64, i32::MAX as i64) as i32
    }
    fn to_real(self) -> f64 {
        self as f64
    }
}

impl Sample for f64 {
    fn from_full_scale(v: i32) -> Self {
        v as f64 / I31
    }
    fn from_real(v: f64) -> Self {
        v
    }
    fn is_integer() -> bool {
        false
    }
    fn to_full_scale(self) -> i32 {
        real_to_int(self, I31, i32::MIN as i64, i32::MAX as i64) as i32
    }
    fn to_real(self) -> f64 {
        self
    }
}

/// `v / 2^shift`, rounded half up, in i64 so it cannot overflow.
fn round_shift(v: i32, shift: u32) -> i64 {
    (v as i64 + (1i64 << (shift - 1))) >> shift
}

/// `round(v * scale)` saturated to `[min, max]`; NaN becomes 0.
fn real_to_int(v: f64, scale: f64, min: i64, max: i64) -> i64 {
    if v.is_nan() {
        return 0;
    }
    // `as` saturates, and the bounds keep us inside i64.
    ((v * scale).round() as i64).clamp(min, max)
}

fn pow10(decimals: u8) -> f64 {
    10f64.powi(decimals as i32)
}

/// Reads one channel sample of `enc` from the start of `b`.
fn get(enc: Encoding, b: &[u8]) -> Value {
    match enc {
        Encoding::U8 => Value::Int(((b[0] as i32) - 128) << 24),
        Encoding::L16 => Value::Int((i16::from_be_bytes([b[0], b[1]]) as i32) << 16),
        Encoding::L24 => Value::Int(i32::from_be_bytes([b[0], b[1], b[2], 0])),
        Encoding::L32 => Value::Int(i32::from_be_bytes([b[0], b[1], b[2], b[3]])),
        Encoding::MuLaw => Value::Int((g711::mulaw_to_linear(b[0]) as i32) << 16),
        Encoding::ALaw => Value::Int((g711::alaw_to_linear(b[0]) as i32) << 16),
        Encoding::F32 => Value::Real(f32::from_be_bytes([b[0], b[1], b[2], b[3]]) as f64),
        Encoding::F64 => Value::Real(f64::from_be_bytes([
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
        ])),
        Encoding::Scaled16 { decimals } => {
            let raw = i16::from_be_bytes([b[0], b[1]]);
            Value::Real(if raw == i16::MIN {
                f64::NAN
            } else {
                raw as f64 / pow10(decimals)
            })
        }
        Encoding::Scaled32 { decimals } => {
            let raw = i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
            Value::Real(if raw == i32::MIN {
                f64::NAN
            } else {
                raw as f64 / pow10(decimals)
            })
        }
    }
}

/// Writes one channel sample of `enc` to the start of `b`.
fn put(enc: Encoding, v: Value, b: &mut [u8]) {
    let int_pcm = |bits: u32| -> i64 {
        match v {
            Value::Int(x) => {
                let lo = -(1i64 << (bits - 1));
                round_shift_any(x, 32 - bits).clamp(lo, -lo - 1)
            }
            Value::Real(r) => {
                let lo = -(1i64 << (bits - 1));
                real_to_int(r, -(lo as f64), lo, -lo - 1)
            }
        }
    };
    let real = || match v {
        Value::Int(x) => x as f64 / I31,
        Value::Real(r) => r,
    };
    match enc {
        Encoding::U8 => b[0] = (int_pcm(8) + 128) as u8,
        Encoding::L16 => b[..2].copy_from_slice(&(int_pcm(16) as i16).to_be_bytes()),
        Encoding::L24 => {
            let x = (int_pcm(24) as i32).to_be_bytes();
            b[..3].copy_from_slice(&x[1..]);
        }
        Encoding::L32 => b[..4].copy_from_slice(&(int_pcm(32) as i32).to_be_bytes()),
        Encoding::MuLaw => b[0] = g711::linear_to_mulaw(int_pcm(16) as i16),
        Encoding::ALaw => b[0] = g711::linear_to_alaw(int_pcm(16) as i16),
        Encoding::F32 => b[..4].copy_from_slice(&(real() as f32).to_be_bytes()),
        Encoding::F64 => b[..8].copy_from_slice(&real().to_be_bytes()),
        Encoding::Scaled16 { decimals } => {
            let r = real();
            let raw = if r.is_nan() {
                i16::MIN
            } else {
                real_to_int(r, pow10(decimals), -(i16::MAX as i64), i16::MAX as i64) as i16
            };
            b[..2].copy_from_slice(&raw.to_be_bytes());
        }
        Encoding::Scaled32 { decimals } => {
            let r = real();
            let raw = if r.is_nan() {
                i32::MIN
            } else {
                real_to_int(r, pow10(decimals), -(i32::MAX as i64), i32::MAX as i64) as i32
            };
            b[..4].copy_from_slice(&raw.to_be_bytes());
        }
    }
}

/// Like [`round_shift`] but a shift of zero is the identity.
fn round_shift_any(v: i32, shift: u32) -> i64 {
    if shift == 0 {
        v as i64
    } else {
        round_shift(v, shift)
    }
}

/// Decodes wire bytes into `dst`, one value per channel sample, at full
/// scale (see the module doc). Returns how many values were written: the
/// smaller of `dst.len()` and the whole samples in `src`.
pub fn decode<T: Sample>(enc: Encoding, src: &[u8], dst: &mut [T]) -> usize {
    let w = enc.bytes();
    let mut n = 0;
    for (b, d) in src.chunks_exact(w).zip(dst.iter_mut()) {
        *d = match get(enc, b) {
            Value::Int(x) => T::from_full_scale(x),
            Value::Real(r) => T::from_real(r),
        };
        n += 1;
    }
    n
}

/// Encodes `src` into wire bytes, rounding and saturating where the encoding
/// is narrower. Returns how many values were written.
pub fn encode<T: Sample>(enc: Encoding, src: &[T], dst: &mut [u8]) -> usize {
    let w = enc.bytes();
    let mut n = 0;
    for (s, b) in src.iter().zip(dst.chunks_exact_mut(w)) {
        let v = if T::is_integer() {
            Value::Int(s.to_full_scale())
        } else {
            Value::Real(s.to_real())
        };
        put(enc, v, b);
        n += 1;
    }
    n
}

/// Decodes wire bytes into the integers the encoding stores (see the module
/// doc); float encodings give their value rounded and saturated.
pub fn decode_native(enc: Encoding, src: &[u8], dst: &mut [i32]) -> usize {
    let w = enc.bytes();
    let mut n = 0;
    for (b, d) in src.chunks_exact(w).zip(dst.iter_mut()) {
        *d = match enc {
            Encoding::U8 => b[0] as i32 - 128,
            Encoding::L16 | Encoding::Scaled16 { .. } => i16::from_be_bytes([b[0], b[1]]) as i32,
            Encoding::L24 => i32::from_be_bytes([b[0], b[1], b[2], 0]) >> 8,
            Encoding::L32 | Encoding::Scaled32 { .. } => {
                i32::from_be_bytes([b[0], b[1], b[2], b[3]])
            }
            Encoding::MuLaw => g711::mulaw_to_linear(b[0]) as i32,
            Encoding::ALaw => g711::alaw_to_linear(b[0]) as i32,
            Encoding::F32 | Encoding::F64 => match get(enc, b) {
                Value::Real(r) => real_to_int(r, 1.0, i32::MIN as i64, i32::MAX as i64) as i32,
                Value::Int(x) => x,
            },
        };
        n += 1;
    }
    n
}

/// Encodes native integers (see [`decode_native`]), saturating to the
/// encoding's range. G.711 takes 16-bit linear levels.
pub fn encode_native(enc: Encoding, src: &[i32], dst: &mut [u8]) -> usize {
    let w = enc.bytes();
    let mut n = 0;
    for (&s, b) in src.iter().zip(dst.chunks_exact_mut(w)) {
        let sat = |bits: u32| (s as i64).clamp(-(1i64 << (bits - 1)), (1i64 << (bits - 1)) - 1);
        match enc {
            Encoding::U8 => b[0] = (sat(8) + 128) as u8,
            Encoding::L16 | Encoding::Scaled16 { .. } => {
                b[..2].copy_from_slice(&(sat(16) as i16).to_be_bytes())
            }
            Encoding::L24 => b[..3].copy_from_slice(&(sat(24) as i32).to_be_bytes()[1..]),
            Encoding::L32 | Encoding::Scaled32 { .. } => b[..4].copy_from_slice(&s.to_be_bytes()),
            Encoding::MuLaw => b[0] = g711::linear_to_mulaw(sat(16) as i16),
            Encoding::ALaw => b[0] = g711::linear_to_alaw(sat(16) as i16),
            Encoding::F32 => b[..4].copy_from_slice(&(s as f32).to_be_bytes()),
            Encoding::F64 => b[..8].copy_from_slice(&(s as f64).to_be_bytes()),
        }
        n += 1;
    }
    n
}

/// Converts wire bytes of one encoding into another, sample by sample
/// (identical encodings are a copy). Returns the channel samples converted.
pub fn transcode(from: Encoding, src: &[u8], to: Encoding, dst: &mut [u8]) -> usize {
    let (wf, wt) = (from.bytes(), to.bytes());
    let n = (src.len() / wf).min(dst.len() / wt);
    if from == to {
        dst[..n * wt].copy_from_slice(&src[..n * wf]);
        return n;
    }
    for (s, d) in src.chunks_exact(wf).zip(dst.chunks_exact_mut(wt)).take(n) {
        put(to, get(from, s), d);
    }
    n
}

/// Reads one channel sample in the float view (see [`decode`]).
pub fn read_f64(enc: Encoding, b: &[u8]) -> f64 {
    match get(enc, b) {
        Value::Int(x) => x as f64 / I31,
        Value::Real(r) => r,
    }
}

/// Writes one channel sample from the float view (see [`encode`]).
pub fn write_f64(enc: Encoding, v: f64, b: &mut [u8]) {
    put(enc, Value::Real(v), b)
}

/// Marks one channel sample as "no value" where the encoding can say so:
/// NaN for F32/F64, the reserved minimum integer for scaled encodings.
/// Returns false (and leaves the bytes alone) for audio PCM and G.711.
pub fn write_missing(enc: Encoding, b: &mut [u8]) -> bool {
    match enc {
        Encoding::F32 | Encoding::F64 | Encoding::Scaled16 { .. } | Encoding::Scaled32 { .. } => {
            put(enc, Value::Real(f64::NAN), b);
            true
        }
        _ => false,
    }
}

/// Bits of the NaN that stands for a value written as NaN (a cell that
/// said `NaN`), distinct from [`write_missing`]'s canonical NaN: a quiet
/// NaN with payload 1.
const NAN_VALUE_F64: u64 = 0x7ff8_0000_0000_0001;
const NAN_VALUE_F32: u32 = 0x7fc0_0001;

/// Writes a NaN *value* (the sensor said NaN), which stays apart from a
/// missing one; returns false where the encoding cannot tell them apart
/// (everything but F32 and F64).
pub fn write_nan(enc: Encoding, b: &mut [u8]) -> bool {
    match enc {
        Encoding::F64 => b[..8].copy_from_slice(&NAN_VALUE_F64.to_be_bytes()),
        Encoding::F32 => b[..4].copy_from_slice(&NAN_VALUE_F32.to_be_bytes()),
        _ => return false,
    }
    true
}

/// Whether one channel sample holds the NaN value of [`write_nan`].
pub fn is_nan_value(enc: Encoding, b: &[u8]) -> bool {
    match enc {
        Encoding::F64 => b[..8] == NAN_VALUE_F64.to_be_bytes(),
        Encoding::F32 => b[..4] == NAN_VALUE_F32.to_be_bytes(),
        _ => false,
    }
}

/// Whether one channel sample holds the "no value" marker of [`write_missing`].
pub fn is_missing(enc: Encoding, b: &[u8]) -> bool {
    match enc {
        Encoding::F32 | Encoding::F64 | Encoding::Scaled16 { .. } | Encoding::Scaled32 { .. } => {
            read_f64(enc, b).is_nan() && !is_nan_value(enc, b)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_scale_views_agree() {
        let mut b = [0u8; 3];
        encode(Encoding::L24, &[0x123456i32 << 8], &mut b);
        assert_eq!(b, [0x12, 0x34, 0x56]);
        let mut i = [0i16; 1];
        decode(Encoding::L24, &b, &mut i);
        assert_eq!(i[0], 0x1234, "0x56 of 0x100 rounds down");
        decode(Encoding::L24, &[0x12, 0x34, 0x80], &mut i);
        assert_eq!(i[0], 0x1235, "a half rounds up");
        let mut n = [0i32; 1];
        decode_native(Encoding::L24, &b, &mut n);
        assert_eq!(n[0], 0x123456);
        let mut f = [0f64; 1];
        decode(Encoding::U8, &[0u8], &mut f);
        assert_eq!(f[0], -1.0);
    }

    #[test]
    fn narrowing_saturates_instead_of_wrapping() {
        let mut b = [0u8; 2];
        encode(Encoding::L16, &[1.5f64], &mut b);
        assert_eq!(i16::from_be_bytes(b), i16::MAX);
        encode(Encoding::L16, &[i32::MAX], &mut b);
        assert_eq!(i16::from_be_bytes(b), i16::MAX);
        let mut b = [0u8; 1];
        encode(Encoding::U8, &[-2.0f32], &mut b);
        assert_eq!(b[0], 0);
    }

    #[test]
    fn scaled_keeps_decimals_and_reserves_missing() {
        let enc = Encoding::Scaled16 { decimals: 2 };
        let mut b = [0u8; 2];
        encode(enc, &[-1.25f64], &mut b);
        assert_eq!(i16::from_be_bytes(b), -125);
        assert!(!is_missing(enc, &b));
        assert!(write_missing(enc, &mut b));
        assert!(is_missing(enc, &b));
        encode(enc, &[-1e9f64], &mut b);
        assert_eq!(
            i16::from_be_bytes(b),
            -i16::MAX,
            "saturates short of the marker"
        );
        assert!(!write_missing(Encoding::L16, &mut b));
    }

    #[test]
    fn a_nan_value_is_not_a_missing_one() {
        for enc in [Encoding::F32, Encoding::F64] {
            let mut b = [0u8; 8];
            assert!(write_nan(enc, &mut b));
            assert!(read_f64(enc, &b).is_nan() && is_nan_value(enc, &b));
            assert!(!is_missing(enc, &b));
            write_missing(enc, &mut b);
            assert!(is_missing(enc, &b) && !is_nan_value(enc, &b));
        }
    }

    #[test]
    fn transcode_goes_through_16_bit_for_g711() {
        let src = 1000i16.to_be_bytes();
        let mut mu = [0u8; 1];
        transcode(Encoding::L16, &src, Encoding::MuLaw, &mut mu);
        assert_eq!(mu[0], g711::linear_to_mulaw(1000));
        let mut back = [0u8; 3];
        transcode(Encoding::MuLaw, &mu, Encoding::L24, &mut back);
        let mut n = [0i32; 1];
        decode_native(Encoding::L24, &back, &mut n);
        assert_eq!(n[0], (g711::mulaw_to_linear(mu[0]) as i32) << 8);
    }
}
