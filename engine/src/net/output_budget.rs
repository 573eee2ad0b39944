//! What a receiver's sessions may write together: bytes and files across
//! every session of the process that shares one [`OutputBudget`], beside
//! each session's own [`OutputLimits`](super::sink::OutputLimits). A peer
//! that opens session after session cannot fill the disk or the directory
//! one limit-sized session at a time.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use super::sink::OutputLimits;

/// The limits, and what the sessions sharing them have written so far.
#[derive(Debug)]
pub struct OutputBudget {
    limits: OutputLimits,
    bytes: AtomicU64,
    files: AtomicU64,
}

impl OutputBudget {
    /// A budget for sessions writing within `limits` (per session and in
    /// total).
    pub fn new(limits: OutputLimits) -> Self {
        Self {
            limits,
            bytes: AtomicU64::new(0),
            files: AtomicU64::new(0),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &OutputLimits {
        &self.limits
    }

    /// Bytes the sessions sharing this budget have written so far (as last
    /// measured; files are measured every ~64 KiB of samples).
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Files the sessions sharing this budget have created.
    pub fn files(&self) -> u64 {
        self.files.load(Ordering::Relaxed)
    }

    /// Admit a new session that will create `files` files in `dir`, or say
    /// which limit refuses it. Admitted files count at once.
    pub fn admit(&self, dir: &Path, files: usize) -> Result<(), String> {
        let l = &self.limits;
        if l.min_free > 0
            && let Some(free) = free_space(dir)
            && free < l.min_free
        {
            return Err(format!(
                "{} has {free} bytes free, under the floor of {} (min free): no new output",
                dir.display(),
                l.min_free
            ));
        }
        if let Some(max) = l.max_total_bytes {
            let done = self.bytes();
            if done >= max {
                return Err(format!(
                    "output limit: {done} bytes written in all (max total bytes {max})"
                ));
            }
        }
        let n = files as u64;
        if let Some(max) = l.max_files {
            let taken = self.files.fetch_add(n, Ordering::Relaxed);
            if taken + n > max {
                self.files.fetch_sub(n, Ordering::Relaxed);
                return Err(format!(
                    "output limit: {taken} files written in all, {n} more would pass \
                     the limit (max files {max})"
                ));
            }
        } else {
            self.files.fetch_add(n, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Count `more` bytes a session wrote; `Err(why)` once the total is at
    /// or over its limit.
    pub fn wrote(&self, more: u64) -> Result<(), String> {
        let total = self.bytes.fetch_add(more, Ordering::Relaxed) + more;
        match self.limits.max_total_bytes {
            Some(max) if total >= max => Err(format!(
                "output limit: {total} bytes written in all (max total bytes {max})"
            )),
            _ => Ok(()),
        }
    }
}

/// Free bytes for unprivileged users on the file system holding `dir`.
pub(super) fn free_space(dir: &Path) -> Option<u64> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
        let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
        // SAFETY: `c` is a valid C string and `st` a buffer statvfs fills.
        let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
        if rc != 0 {
            return None;
        }
        // SAFETY: statvfs succeeded, so it filled `st`.
        let st = unsafe { st.assume_init() };
        // The field types differ between platforms.
        #[allow(clippy::unnecessary_cast)]
        Some(st.f_bavail as u64 * st.f_frsize as u64)
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_and_bytes_count_across_sessions() {
        let dir = std::env::temp_dir();
        let b = OutputBudget::new(OutputLimits {
            max_files: Some(3),
            max_total_bytes: Some(1000),
            min_free: 0,
            ..OutputLimits::default()
        });
        b.admit(&dir, 2).unwrap();
        let why = b.admit(&dir, 2).unwrap_err();
        assert!(why.contains("(max files 3)"), "{why}");
        b.admit(&dir, 1).unwrap();
        assert_eq!(b.files(), 3);
        b.wrote(600).unwrap();
        let why = b.wrote(400).unwrap_err();
        assert!(why.contains("(max total bytes 1000)"), "{why}");
        let b = OutputBudget::new(OutputLimits {
            max_total_bytes: Some(1000),
            min_free: 0,
            ..OutputLimits::UNLIMITED
        });
        b.wrote(1000).unwrap_err();
        let why = b.admit(&dir, 1).unwrap_err();
        assert!(why.contains("1000 bytes written in all"), "{why}");
    }

    #[test]
    fn a_session_is_refused_under_the_free_space_floor() {
        let b = OutputBudget::new(OutputLimits {
            min_free: u64::MAX,
            ..OutputLimits::UNLIMITED
        });
        let why = b.admit(&std::env::temp_dir(), 1).unwrap_err();
        assert!(why.contains("(min free)"), "{why}");
        assert_eq!(b.files(), 0);
    }
}
