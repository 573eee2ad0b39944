//! A sleep that wakes within microseconds of its deadline.
//!
//! tokio's timer wheel has 1 ms granularity and rounds sleeps up, which
//! would add up to a millisecond of error to every delayed packet. On Linux
//! a `timerfd` armed to the nanosecond wakes the runtime through epoll
//! instead (hrtimer precision, no timer slack, no spinning). Elsewhere, or
//! if the timerfd cannot be made, it falls back to tokio's timer.

use std::time::Instant;

/// Wakes the delivery task at each packet's deadline.
pub(super) struct Timer {
    #[cfg(target_os = "linux")]
    fd: Option<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>>,
}

impl Timer {
    /// A precise timer where the platform allows one. Needs a runtime context.
    pub(super) fn new() -> Self {
        #[cfg(target_os = "linux")]
        {
            let fd = linux::timerfd()
                .inspect_err(|e| {
                    tracing::warn!("relay: no timerfd ({e}); delivery falls back to 1 ms precision")
                })
                .ok();
            Self { fd }
        }
        #[cfg(not(target_os = "linux"))]
        Self {}
    }

    /// Whether deliveries get sub-millisecond precision.
    pub(super) fn precise(&self) -> bool {
        #[cfg(target_os = "linux")]
        return self.fd.is_some();
        #[cfg(not(target_os = "linux"))]
        false
    }

    /// Sleep until `deadline` (returns at once if it has passed). Cancel-safe:
    /// a later call re-arms the timer.
    pub(super) async fn sleep_until(&self, deadline: Instant) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        #[cfg(target_os = "linux")]
        if let Some(fd) = &self.fd {
            if linux::sleep(fd, left).await.is_ok() {
                return;
            }
        }
        tokio::time::sleep_until(deadline.into()).await;
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::ptr;
    use std::time::Duration;

    use tokio::io::Interest;
    use tokio::io::unix::AsyncFd;

    pub(super) fn timerfd() -> io::Result<AsyncFd<OwnedFd>> {
        // SAFETY: a plain syscall with constant arguments.
        let raw = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: the `OwnedFd` moves into the `AsyncFd`, which keeps it open
        // and unchanged for its whole life.
        Ok(unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }?)
    }

    /// Arm the one-shot timer `left` from now and wait for it to fire.
    /// Re-arming resets its expiry count, so a stale readiness left by an
    /// earlier, cancelled sleep reads as "would block" and is waited out.
    pub(super) async fn sleep(fd: &AsyncFd<OwnedFd>, left: Duration) -> io::Result<()> {
        let zero = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let spec = libc::itimerspec {
            it_interval: zero,
            it_value: libc::timespec {
                tv_sec: libc::time_t::try_from(left.as_secs()).unwrap_or(libc::time_t::MAX),
                // Below 1e9: fits every platform's c_long.
                tv_nsec: left.subsec_nanos() as libc::c_long,
            },
        };
        // SAFETY: `fd` is a live timerfd; `spec` outlives the call; a null
        // old-value pointer is allowed.
        let rc = unsafe { libc::timerfd_settime(fd.as_raw_fd(), 0, &spec, ptr::null_mut()) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        loop {
            let mut guard = fd.readable().await?;
            let read = guard.try_io(|fd| {
                let mut ticks = [0u8; 8];
                // SAFETY: reads at most 8 bytes into an 8-byte buffer.
                let n = unsafe { libc::read(fd.as_raw_fd(), ticks.as_mut_ptr().cast(), 8) };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(())
                }
            });
            match read {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Sub-millisecond wake-ups where the platform allows, never early.
    #[test]
    fn wakes_close_to_the_deadline() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let timer = Timer::new();
            let mut late = Vec::new();
            for i in 0..50u64 {
                let deadline = Instant::now() + Duration::from_micros(300 + 37 * i);
                timer.sleep_until(deadline).await;
                let now = Instant::now();
                assert!(now >= deadline, "woke early");
                late.push(now - deadline);
            }
            late.sort();
            let p50 = late[late.len() / 2];
            if timer.precise() {
                // Generous: the machine may be busy with other builds.
                assert!(p50 < Duration::from_micros(900), "p50 lateness {p50:?}");
            }
        });
    }
}
