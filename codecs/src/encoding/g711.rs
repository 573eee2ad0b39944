//! ITU-T G.711 mu-law and A-law: 8-bit logarithmic companding of 16-bit
//! linear PCM, the lossy 2:1 option for audio substreams.
//!
//! Encoding follows the reference algorithm of the recommendation (segment
//! search on the 14-bit / 13-bit magnitude); decoding uses 256-entry tables
//! built at compile time from the same definition, so a decode is one load.

/// Mu-law code to 16-bit linear PCM (range -32124..=32124).
pub const MULAW_TO_LINEAR: [i16; 256] = mulaw_table();

/// A-law code to 16-bit linear PCM (range -32256..=32256).
pub const ALAW_TO_LINEAR: [i16; 256] = alaw_table();

const SIGN_BIT: u8 = 0x80;
const QUANT_MASK: u8 = 0x0f;
const SEG_SHIFT: u32 = 4;
const SEG_MASK: u8 = 0x70;
/// Bias added to the mu-law magnitude before the segment search (G.711 §3.2).
const MULAW_BIAS: i32 = 0x84;
/// Largest 14-bit magnitude mu-law can code before clipping.
const MULAW_CLIP: i32 = 8159;
/// Segment end points of the biased 14-bit mu-law magnitude.
const MULAW_SEG_END: [i32; 8] = [0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff, 0x1fff];
/// Segment end points of the 13-bit A-law magnitude.
const ALAW_SEG_END: [i32; 8] = [0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff];

const fn segment(value: i32, ends: &[i32; 8]) -> usize {
    let mut i = 0;
    while i < 8 {
        if value <= ends[i] {
            return i;
        }
        i += 1;
    }
    8
}

/// Compress a 16-bit linear sample to a mu-law code.
pub const fn linear_to_mulaw(pcm: i16) -> u8 {
    // The recommendation codes 14-bit magnitudes; drop the two low bits.
    let mut v = (pcm as i32) >> 2;
    let mask: u8 = if v < 0 {
        v = -v;
        0x7f
    } else {
        0xff
    };
    if v > MULAW_CLIP {
        v = MULAW_CLIP;
    }
    v += MULAW_BIAS >> 2;
    let seg = segment(v, &MULAW_SEG_END);
    if seg >= 8 {
        return 0x7f ^ mask;
    }
    let code = ((seg as u8) << 4) | (((v >> (seg + 1)) as u8) & QUANT_MASK);
    code ^ mask
}

/// Expand a mu-law code to 16-bit linear PCM.
pub const fn mulaw_to_linear(code: u8) -> i16 {
    MULAW_TO_LINEAR[code as usize]
}

/// Compress a 16-bit linear sample to an A-law code.
pub const fn linear_to_alaw(pcm: i16) -> u8 {
    // The recommendation codes 13-bit magnitudes; drop the three low bits.
    let mut v = (pcm as i32) >> 3;
    let mask: u8 = if v >= 0 {
        0xd5
    } else {
        v = -v - 1;
        0x55
    };
    let seg = segment(v, &ALAW_SEG_END);
    if seg >= 8 {
        return 0x7f ^ mask;
    }
    let mut code = (seg as u8) << SEG_SHIFT;
    code |= if seg < 2 {
        ((v >> 1) as u8) & QUANT_MASK
    } else {
        ((v >> seg) as u8) & QUANT_MASK
    };
    code ^ mask
}

/// Expand an A-law code to 16-bit linear PCM.
pub const fn alaw_to_linear(code: u8) -> i16 {
    ALAW_TO_LINEAR[code as usize]
}

const fn mulaw_expand(code: u8) -> i16 {
    let u = !code;
    let mut t = (((u & QUANT_MASK) as i32) << 3) + MULAW_BIAS;
    t <<= ((u & SEG_MASK) >> SEG_SHIFT) as i32;
    (if u & SIGN_BIT != 0 {
        MULAW_BIAS - t
    } else {
        t - MULAW_BIAS
    }) as i16
}

const fn alaw_expand(code: u8) -> i16 {
    let a = code ^ 0x55;
    let mut t = ((a & QUANT_MASK) as i32) << 4;
    let seg = ((a & SEG_MASK) >> SEG_SHIFT) as i32;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= seg - 1;
        }
    }
    (if a & SIGN_BIT != 0 { t } else { -t }) as i16
}

const fn mulaw_table() -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = mulaw_expand(i as u8);
        i += 1;
    }
    t
}

const fn alaw_table() -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = alaw_expand(i as u8);
        i += 1;
    }
    t
}

/// Distance between the two linear levels around `pcm` after companding
/// with `expand(compress(..))`: the quantisation step G.711 promises.
#[cfg(test)]
fn step(sorted: &[i32], pcm: i16) -> i32 {
    let p = pcm as i32;
    let i = sorted.partition_point(|&v| v < p);
    let hi = sorted.get(i).copied().unwrap_or(i32::MAX);
    let lo = if i > 0 { sorted[i - 1] } else { i32::MIN };
    if hi == i32::MAX || lo == i32::MIN {
        // Beyond the outermost level: the error is the clipping distance.
        i32::MAX
    } else {
        hi - lo
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_points_match_the_recommendation() {
        assert_eq!(mulaw_to_linear(0x00), -32124);
        assert_eq!(mulaw_to_linear(0x80), 32124);
        assert_eq!(mulaw_to_linear(0xff), 0);
        assert_eq!(mulaw_to_linear(0x7f), 0);
        assert_eq!(linear_to_mulaw(0), 0xff);
        assert_eq!(linear_to_mulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_mulaw(i16::MIN), 0x00);
        assert_eq!(alaw_to_linear(0xd5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xaa), 32256);
        assert_eq!(alaw_to_linear(0x2a), -32256);
        assert_eq!(linear_to_alaw(0), 0xd5);
        assert_eq!(linear_to_alaw(i16::MAX), 0xaa);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2a);
    }

    #[test]
    fn every_code_decodes_to_a_fixed_point() {
        for c in 0..=255u8 {
            let v = mulaw_to_linear(c);
            assert_eq!(
                mulaw_to_linear(linear_to_mulaw(v)),
                v,
                "mu-law code {c:#04x}"
            );
            let v = alaw_to_linear(c);
            assert_eq!(alaw_to_linear(linear_to_alaw(v)), v, "A-law code {c:#04x}");
        }
    }

    #[test]
    fn every_linear_value_lands_within_one_step() {
        let sorted = |levels: &[i16; 256]| {
            let mut s: Vec<i32> = levels.iter().map(|&v| v as i32).collect();
            s.sort_unstable();
            s.dedup();
            s
        };
        let (mu, a) = (sorted(&MULAW_TO_LINEAR), sorted(&ALAW_TO_LINEAR));
        for pcm in i16::MIN..=i16::MAX {
            for (levels, enc, dec, max) in [
                (
                    &mu,
                    linear_to_mulaw as fn(i16) -> u8,
                    mulaw_to_linear as fn(u8) -> i16,
                    32124,
                ),
                (&a, linear_to_alaw, alaw_to_linear, 32256),
            ] {
                let back = dec(enc(pcm)) as i32;
                let err = (back - pcm as i32).abs();
                if (pcm as i32).abs() <= max {
                    assert!(err <= step(levels, pcm), "{pcm} -> {back}");
                } else {
                    // Clipped to the outermost level.
                    assert_eq!(back.abs(), max, "{pcm} -> {back}");
                }
            }
        }
    }
}
