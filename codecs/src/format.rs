//! Format descriptors shared by the codecs and the engine's catalog.

use serde::{Deserialize, Serialize};

/// Why a format descriptor was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// A zero numerator or denominator.
    #[error("sample rate {num}/{den} Hz is not positive")]
    BadRate {
        /// The numerator given.
        num: u32,
        /// The denominator given.
        den: u32,
    },
    /// Zero channels.
    #[error("a stream needs at least one channel")]
    NoChannels,
    /// A scaled encoding with more decimals than an i32 can hold.
    #[error("{0} decimal places is more than a 32-bit scaled integer can carry (at most 9)")]
    BadScale(u8),
}

/// Samples per second as an exact ratio, so 48 kHz and a 29.97 Hz sensor are
/// both exact and frame boundaries never drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Rate {
    num: u32,
    den: u32,
}

impl Rate {
    /// A whole number of hertz.
    pub fn hz(hz: u32) -> Result<Self, FormatError> {
        Self::new(hz, 1)
    }

    /// `num / den` hertz, reduced to lowest terms.
    pub fn new(num: u32, den: u32) -> Result<Self, FormatError> {
        if num == 0 || den == 0 {
            return Err(FormatError::BadRate { num, den });
        }
        let g = gcd(num, den);
        Ok(Self {
            num: num / g,
            den: den / g,
        })
    }

    /// Numerator in lowest terms.
    pub fn num(self) -> u32 {
        self.num
    }

    /// Denominator in lowest terms.
    pub fn den(self) -> u32 {
        self.den
    }

    /// The rate in hertz as a float, for display and signal maths.
    pub fn as_f64(self) -> f64 {
        self.num as f64 / self.den as f64
    }

    /// Number of samples whose instant `i / rate` lies strictly before `t_us`
    /// microseconds: `ceil(t_us * rate / 1e6)`. Frame `n` of duration `F`
    /// holds samples `[before(n F), before((n + 1) F))`, exact in integers.
    pub fn samples_before(self, t_us: u64) -> u64 {
        let n = t_us as u128 * self.num as u128;
        let d = 1_000_000u128 * self.den as u128;
        n.div_ceil(d) as u64
    }

    /// Media time in microseconds of sample `i` (rounded down).
    pub fn sample_time_us(self, i: u64) -> u64 {
        (i as u128 * 1_000_000 * self.den as u128 / self.num as u128) as u64
    }
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// How one sample of one channel travels on the wire (network byte order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Encoding {
    /// 8-bit unsigned PCM (offset binary, as WAV stores it).
    U8,
    /// 16-bit signed PCM, big-endian.
    L16,
    /// 24-bit signed PCM, big-endian.
    L24,
    /// 32-bit signed PCM, big-endian.
    L32,
    /// IEEE 754 binary32, big-endian.
    F32,
    /// IEEE 754 binary64, big-endian (lossless sensor values).
    F64,
    /// G.711 mu-law, 8 bits per sample (lossy 2:1 against L16).
    MuLaw,
    /// G.711 A-law, 8 bits per sample (lossy 2:1 against L16).
    ALaw,
    /// Signed 16-bit integer holding `value * 10^decimals`, big-endian.
    Scaled16 {
        /// Decimal places kept (the value is multiplied by `10^decimals`).
        decimals: u8,
    },
    /// Signed 32-bit integer holding `value * 10^decimals`, big-endian.
    Scaled32 {
        /// Decimal places kept (the value is multiplied by `10^decimals`).
        decimals: u8,
    },
}

impl Encoding {
    /// IEEE floating point on the wire (F32, F64).
    pub const fn is_float(self) -> bool {
        matches!(self, Encoding::F32 | Encoding::F64)
    }

    /// Linear integer PCM and the bits it carries (U8, L16, L24, L32).
    pub const fn pcm_bits(self) -> Option<u16> {
        match self {
            Encoding::U8 => Some(8),
            Encoding::L16 => Some(16),
            Encoding::L24 => Some(24),
            Encoding::L32 => Some(32),
            _ => None,
        }
    }

    /// Decimal places of a scaled-integer encoding.
    pub const fn decimals(self) -> Option<u8> {
        match self {
            Encoding::Scaled16 { decimals } | Encoding::Scaled32 { decimals } => Some(decimals),
            _ => None,
        }
    }
}

impl Encoding {
    /// Bytes one sample of one channel takes on the wire.
    pub const fn bytes(self) -> usize {
        match self {
            Encoding::U8 | Encoding::MuLaw | Encoding::ALaw => 1,
            Encoding::L16 | Encoding::Scaled16 { .. } => 2,
            Encoding::L24 => 3,
            Encoding::L32 | Encoding::F32 | Encoding::Scaled32 { .. } => 4,
            Encoding::F64 => 8,
        }
    }
}

/// What a substream's bytes are: encoding, channel count and rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StreamFormat {
    /// How each channel sample is written on the wire.
    pub encoding: Encoding,
    /// Channels per sample (audio channels, or sensor value columns).
    pub channels: u16,
    /// Samples per second.
    pub rate: Rate,
}

impl StreamFormat {
    /// A checked format: at least one channel, scaled encodings within i32 range.
    pub fn new(encoding: Encoding, channels: u16, rate: Rate) -> Result<Self, FormatError> {
        if channels == 0 {
            return Err(FormatError::NoChannels);
        }
        match encoding {
            Encoding::Scaled16 { decimals } | Encoding::Scaled32 { decimals } if decimals > 9 => {
                return Err(FormatError::BadScale(decimals));
            }
            _ => {}
        }
        Ok(Self {
            encoding,
            channels,
            rate,
        })
    }

    /// Bytes of one multichannel sample (all channels at one instant), the
    /// unit the engine frames, interleaves and conceals.
    pub const fn stride(&self) -> usize {
        self.encoding.bytes() * self.channels as usize
    }
}

/// Where a substream came from, carried in the catalog so the receiver can
/// write the same kind of file back (same WAV layout, same CSV header).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub enum Origin {
    /// Raw samples pushed by an application.
    #[default]
    Raw,
    /// A WAV file.
    Wav(WavLayout),
    /// A sensor CSV file.
    Csv(CsvLayout),
}

/// How a WAV file codes its samples (the format tag, or the sub-format of
/// WAVE_FORMAT_EXTENSIBLE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WavCoding {
    /// Linear integer PCM (tag 1): unsigned at 8 bits, signed beyond.
    Pcm,
    /// IEEE float (tag 3), 32 or 64-bit.
    Float,
    /// G.711 A-law (tag 6), 8 bits.
    ALaw,
    /// G.711 mu-law (tag 7), 8 bits.
    MuLaw,
}

/// Which RIFF variant holds the chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum RiffKind {
    /// Classic RIFF, 32-bit sizes (files up to 4 GiB).
    #[default]
    Riff,
    /// RF64 (EBU Tech 3306): 64-bit sizes in a ds64 chunk.
    Rf64,
    /// BW64 (ITU-R BS.2088): RF64 under another name.
    Bw64,
}

/// The WAV header fields needed to reproduce a file bit-exact: sample
/// coding, container and valid bits, plain or WAVE_FORMAT_EXTENSIBLE with
/// its channel mask, RIFF or RF64, and the `fact` chunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WavLayout {
    /// How samples are coded.
    pub coding: WavCoding,
    /// Bits of one channel sample's container (block align / channels x 8):
    /// 8, 16, 24, 32 or 64.
    pub container_bits: u16,
    /// `wBitsPerSample` as the file has it: usually the container, but some
    /// writers put 24 there for 24-bit samples in 32-bit containers.
    pub bits: u16,
    /// Bits that carry the signal, most significant first in the container
    /// (WAVE_FORMAT_EXTENSIBLE's `wValidBitsPerSample`; `bits` otherwise).
    pub valid_bits: u16,
    /// Speaker positions of WAVE_FORMAT_EXTENSIBLE, when the file had one.
    pub channel_mask: Option<u32>,
    /// RIFF, RF64 or BW64.
    pub riff: RiffKind,
    /// The `fact` chunk, when the file had one: the bytes after its sample
    /// count (usually none; at most [`WavLayout::MAX_FACT_EXTRA`]).
    pub fact: Option<Vec<u8>>,
}

impl WavLayout {
    /// Longest tail of a `fact` chunk kept (bytes after the sample count).
    pub const MAX_FACT_EXTRA: usize = 64;

    /// Plain integer PCM of `bits` (8, 16, 24, 32) in containers as wide.
    pub fn pcm(bits: u16) -> Self {
        Self::plain(WavCoding::Pcm, bits)
    }

    /// Plain IEEE float of `bits` (32 or 64).
    pub fn float(bits: u16) -> Self {
        Self::plain(WavCoding::Float, bits)
    }

    /// G.711 (A-law or mu-law, 8 bits) with the `fact` chunk the format asks for.
    pub fn g711(coding: WavCoding) -> Self {
        Self {
            fact: Some(Vec::new()),
            ..Self::plain(coding, 8)
        }
    }

    fn plain(coding: WavCoding, bits: u16) -> Self {
        Self {
            coding,
            container_bits: bits,
            bits,
            valid_bits: bits,
            channel_mask: None,
            riff: RiffKind::Riff,
            fact: None,
        }
    }

    /// The same layout as WAVE_FORMAT_EXTENSIBLE with this speaker mask.
    pub fn with_channel_mask(mut self, mask: u32) -> Self {
        self.channel_mask = Some(mask);
        self
    }

    /// IEEE float samples.
    pub fn is_float(&self) -> bool {
        self.coding == WavCoding::Float
    }

    /// Bytes of one channel sample in the file.
    pub fn container_bytes(&self) -> usize {
        self.container_bits as usize / 8
    }

    /// The wire encoding that carries these samples losslessly: the whole
    /// container (padding bits included), so any file comes back bit-exact.
    pub fn lossless_encoding(&self) -> Option<Encoding> {
        match (self.coding, self.container_bits) {
            (WavCoding::Pcm, 8) => Some(Encoding::U8),
            (WavCoding::Pcm, 16) => Some(Encoding::L16),
            (WavCoding::Pcm, 24) => Some(Encoding::L24),
            (WavCoding::Pcm, 32) => Some(Encoding::L32),
            (WavCoding::Float, 32) => Some(Encoding::F32),
            (WavCoding::Float, 64) => Some(Encoding::F64),
            (WavCoding::ALaw, 8) => Some(Encoding::ALaw),
            (WavCoding::MuLaw, 8) => Some(Encoding::MuLaw),
            _ => None,
        }
    }

    /// Whether a layout from a peer is one the writer can reproduce: a
    /// supported coding and container, bits within the container, a fact
    /// tail within [`Self::MAX_FACT_EXTRA`]. Says what is wrong otherwise.
    pub fn check(&self) -> Result<(), String> {
        if self.lossless_encoding().is_none() {
            return Err(format!(
                "{:?} in {}-bit containers is not a WAV layout",
                self.coding, self.container_bits
            ));
        }
        if self.bits == 0
            || self.bits > self.container_bits
            || self.valid_bits > self.container_bits
        {
            return Err(format!(
                "{} bits ({} valid) do not fit {}-bit containers",
                self.bits, self.valid_bits, self.container_bits
            ));
        }
        if self
            .fact
            .as_ref()
            .is_some_and(|f| f.len() > Self::MAX_FACT_EXTRA)
        {
            return Err(format!(
                "a fact chunk tail over {} bytes",
                Self::MAX_FACT_EXTRA
            ));
        }
        Ok(())
    }

    /// The layout that stores a wire encoding losslessly (G.711 as G.711,
    /// scaled sensor integers as 32-bit float).
    pub fn for_encoding(enc: Encoding) -> Self {
        match enc {
            Encoding::U8 => Self::pcm(8),
            Encoding::L16 => Self::pcm(16),
            Encoding::L24 => Self::pcm(24),
            Encoding::L32 => Self::pcm(32),
            Encoding::F64 => Self::float(64),
            Encoding::F32 | Encoding::Scaled16 { .. } | Encoding::Scaled32 { .. } => {
                Self::float(32)
            }
            Encoding::MuLaw => Self::g711(WavCoding::MuLaw),
            Encoding::ALaw => Self::g711(WavCoding::ALaw),
        }
    }
}

/// The CSV header fields needed to reproduce a sensor file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CsvLayout {
    /// Names of the value columns, in file order.
    pub columns: Vec<String>,
    /// The time column, when the file had one.
    pub time: Option<TimeColumn>,
    /// Decimal places each value column was written with (`None`: exponent
    /// notation or unknown, printed as the shortest text that reads back
    /// the same value). Empty means unknown for every column.
    #[serde(default)]
    pub decimals: Vec<Option<u8>>,
    /// Field separator of the file (`,`, `;` or tab).
    #[serde(default = "comma")]
    pub delimiter: u8,
    /// How the file's text looks beyond the decimals: each column's number
    /// style, the spellings of NaN and infinity, line ends.
    #[serde(default)]
    pub text: CsvText,
}

impl CsvLayout {
    /// A layout naming `columns`, with no time column, plain defaults.
    pub fn new(columns: Vec<String>) -> Self {
        Self {
            columns,
            time: None,
            decimals: Vec::new(),
            delimiter: b',',
            text: CsvText::default(),
        }
    }

    /// Whether a layout from a peer is one the writer can reproduce
    /// (spellings short and free of separators, styles in range).
    pub fn check(&self) -> Result<(), String> {
        let word = |w: &Option<String>, what: &str| match w {
            Some(w) if w.len() > CsvText::MAX_WORD || w.is_empty() => Err(format!(
                "the {what} spelling is not 1..={} bytes",
                CsvText::MAX_WORD
            )),
            Some(w)
                if w.bytes()
                    .any(|c| matches!(c, b',' | b';' | b'\t' | b'"' | b'\r' | b'\n')) =>
            {
                Err(format!("the {what} spelling holds a separator"))
            }
            _ => Ok(()),
        };
        word(&self.text.nan, "NaN")?;
        word(&self.text.inf, "infinity")?;
        if self.text.styles.iter().any(|s| !s.is_sane()) {
            return Err("a number style beyond 255 digits or 4 exponent digits".into());
        }
        if let Some(t) = &self.time {
            if t.decimals > 9 {
                return Err(format!("{} decimals of time (at most 9)", t.decimals));
            }
            if !t.start.is_finite() {
                // NaN is not even equal to itself: a hello carrying it
                // would not re-encode to itself (fuzz target control).
                return Err(format!("a time column starting at {}", t.start));
            }
            if let TimeStyle::Iso(iso) = &t.style
                && !iso.is_sane()
            {
                return Err("an ISO 8601 time style that cannot be printed".into());
            }
        }
        Ok(())
    }
}

fn comma() -> u8 {
    b','
}

/// The text details of a sensor CSV that numbers alone do not say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CsvText {
    /// Number style of each value column (empty: from `decimals`).
    pub styles: Vec<NumberStyle>,
    /// How NaN cells were spelled (`NaN`, `nan`...), when the file had any.
    pub nan: Option<String>,
    /// How infinite cells were spelled without their sign (`inf`, `Infinity`...).
    pub inf: Option<String>,
    /// Lines end with CR LF (Windows loggers) rather than LF.
    pub crlf: bool,
}

impl CsvText {
    /// Longest NaN or infinity spelling kept.
    pub const MAX_WORD: usize = 16;
}

/// How a column prints its numbers; the reader keeps a style only if it
/// reproduces every cell of the column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NumberStyle {
    /// Plain notation with exactly `decimals` digits after the point
    /// (printf `%.Nf`); `plus`: non-negative numbers carry a `+`.
    Fixed {
        /// Digits after the point (0: no point).
        decimals: u8,
        /// A `+` before non-negative numbers.
        plus: bool,
    },
    /// Exponent notation with `decimals` mantissa digits (printf `%.Ne`).
    Exp {
        /// Mantissa digits after the point.
        decimals: u8,
        /// `E` rather than `e`.
        upper: bool,
        /// The exponent has at least this many digits (C: 2).
        exp_digits: u8,
        /// Non-negative exponents carry a `+` (C does).
        exp_plus: bool,
    },
    /// The shortest plain text that reads back the same value;
    /// `point`: whole numbers keep a `.0`.
    Shortest {
        /// `1.0` rather than `1`.
        point: bool,
    },
    /// Python's `repr` of a float (pandas, numpy writers): shortest digits,
    /// exponent notation below 1e-4 and from 1e16 on (`1e-05`, `1.5e+16`).
    Repr,
}

impl NumberStyle {
    fn is_sane(&self) -> bool {
        match *self {
            NumberStyle::Exp { exp_digits, .. } => exp_digits <= 4,
            _ => true,
        }
    }
}

/// A CSV time column: its name, position and how its values were written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeColumn {
    /// Header text of the column, as in the file.
    pub name: String,
    /// Index of the time column among all columns of the file.
    pub index: usize,
    /// Time of the first row in seconds (ISO 8601 times: seconds after the
    /// style's `epoch`).
    pub start: f64,
    /// Decimal places to print times with.
    pub decimals: u8,
    /// Seconds, or ISO 8601 date and time.
    #[serde(default)]
    pub style: TimeStyle,
    /// The timestamps jitter around the nominal grid: each row's exact
    /// offset from it travels as one more channel, after the values (in
    /// units of the last printed digit), so times come out as they went in.
    #[serde(default)]
    pub jitter: bool,
}

impl TimeColumn {
    /// A time column in seconds, regular (no jitter).
    pub fn seconds(name: impl Into<String>, index: usize, start: f64, decimals: u8) -> Self {
        Self {
            name: name.into(),
            index,
            start,
            decimals,
            style: TimeStyle::Seconds,
            jitter: false,
        }
    }

    /// The first row's time in units of `10^-decimals` s from the epoch.
    pub fn start_units(&self) -> i64 {
        (self.start * 10f64.powi(self.decimals as i32)).round() as i64
    }
}

/// How a time column writes its times.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum TimeStyle {
    /// A number of seconds (`12.345`).
    #[default]
    Seconds,
    /// ISO 8601 date and time (`2024-05-01T12:00:00.125Z`).
    Iso(IsoTime),
}

/// The shape of ISO 8601 times: `YYYY-MM-DD`, a separator, `hh:mm:ss`, the
/// column's decimals, and the same zone suffix on every row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IsoTime {
    /// Between date and time: `T` or a space.
    pub separator: u8,
    /// What follows the time, as written: nothing, `Z`, `+02:00`, `-0500`...
    pub suffix: String,
    /// Unix seconds (of the wall-clock time as written) that
    /// [`TimeColumn::start`] counts from.
    pub epoch: i64,
}

impl IsoTime {
    fn is_sane(&self) -> bool {
        matches!(self.separator, b'T' | b' ')
            && self.suffix.len() <= 6
            && self
                .suffix
                .bytes()
                .all(|c| c.is_ascii_digit() || matches!(c, b'Z' | b'+' | b'-' | b':'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_column_must_start_at_a_finite_time() {
        let mut l = CsvLayout::new(vec!["t".into(), "x".into()]);
        l.time = Some(TimeColumn::seconds("t", 0, 1.5, 3));
        assert_eq!(l.check(), Ok(()));
        for start in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            l.time = Some(TimeColumn::seconds("t", 0, start, 3));
            let e = l.check().unwrap_err();
            assert!(e.contains("time column starting at"), "{e}");
        }
    }

    #[test]
    fn frames_of_fractional_sample_counts_tile_exactly() {
        // 22.05 kHz at 10 ms is 220.5 samples a frame: frames alternate 221/220.
        let r = Rate::hz(22_050).unwrap();
        let sizes: Vec<u64> = (0..4)
            .map(|n| r.samples_before((n + 1) * 10_000) - r.samples_before(n * 10_000))
            .collect();
        assert_eq!(sizes, vec![221, 220, 221, 220]);
        assert_eq!(r.samples_before(1_000_000), 22_050);
    }

    #[test]
    fn rational_rates_reduce() {
        let r = Rate::new(60_000, 2_002).unwrap();
        assert_eq!((r.num(), r.den()), (30_000, 1_001));
        assert!(Rate::new(0, 1).is_err());
    }
}
