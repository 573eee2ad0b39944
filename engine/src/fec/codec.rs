//! Cached Reed-Solomon codecs: building one inverts a matrix, so blocks with
//! the same (k, m) share it.

use reed_solomon_erasure::galois_8::ReedSolomon;
use thiserror::Error;

/// Why a Reed-Solomon codec cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FecError {
    /// `k` or `m` out of range.
    #[error("Reed-Solomon needs 1 <= k, 1 <= m and k + m <= 256 shards (got k={k}, m={m})")]
    Params {
        /// Source shards asked for.
        k: usize,
        /// Repair shards asked for.
        m: usize,
    },
    /// The build's SIMD kernels need AVX2, which this x86_64 CPU lacks.
    #[error(
        "this build uses AVX2 Reed-Solomon (feature `simd`) but the CPU lacks AVX2; rebuild isochron-engine with default-features = false"
    )]
    NoAvx2,
}

/// Check the CPU can run the SIMD kernels the build linked.
fn cpu_ok() -> Result<(), FecError> {
    #[cfg(all(feature = "simd", target_arch = "x86_64"))]
    if !std::arch::is_x86_feature_detected!("avx2") {
        return Err(FecError::NoAvx2);
    }
    Ok(())
}

/// Build a codec, checking parameters and CPU first.
pub fn new_codec(k: usize, m: usize) -> Result<ReedSolomon, FecError> {
    cpu_ok()?;
    if k == 0 || m == 0 || k + m > 256 {
        return Err(FecError::Params { k, m });
    }
    ReedSolomon::new(k, m).map_err(|_| FecError::Params { k, m })
}

/// A few codecs, most recently used first.
pub struct CodecCache {
    entries: Vec<(usize, usize, ReedSolomon)>,
    cap: usize,
}

impl CodecCache {
    /// Keep at most `cap` codecs (at least 1).
    pub fn new(cap: usize) -> Self {
        Self {
            entries: Vec::with_capacity(cap),
            cap: cap.max(1),
        }
    }

    /// The codec for `(k, m)`, built (and the least recently used dropped)
    /// if not cached.
    pub fn get(&mut self, k: usize, m: usize) -> Result<&ReedSolomon, FecError> {
        if let Some(i) = self.entries.iter().position(|e| e.0 == k && e.1 == m) {
            if i != 0 {
                let e = self.entries.remove(i);
                self.entries.insert(0, e);
            }
        } else {
            let rs = new_codec(k, m)?;
            if self.entries.len() == self.cap {
                self.entries.pop();
            }
            self.entries.insert(0, (k, m, rs));
        }
        Ok(&self.entries[0].2)
    }
}
