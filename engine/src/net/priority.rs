//! Scheduling for the threads that keep time: the playout workers and the
//! network threads that feed them.
//!
//! On a loaded machine a thread that must act within a few milliseconds
//! cannot wait behind batch jobs for its time slice: a playout worker
//! serves many sessions with a little bounded work each tick, and a network
//! thread that is not scheduled for 80 ms makes every packet it holds late
//! for every session at once. These threads ask for real-time priority
//! (`SCHED_FIFO`, as audio servers do; the kernel still caps real-time
//! threads at 95 % of the CPU) where allowed (root, `CAP_SYS_NICE` or an
//! rtprio limit), else a higher nice level, else they stay as they are.

/// How urgent a thread is: playout (the deadline itself) ranks above the
/// network threads, so a burst of handshakes cannot delay a tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Urgency {
    /// A playout worker: SCHED_FIFO 10, else nice -10.
    Playout,
    /// A driver's network thread: SCHED_FIFO 5, else nice -5.
    Network,
}

/// Raise the calling thread as `u` says, and make its timers precise (the
/// default 50 us of timer slack is a tenth of a tick). Failures leave the
/// thread as it was.
pub fn raise(u: Urgency) {
    let (fifo, nice) = match u {
        Urgency::Playout => (10, -10),
        Urgency::Network => (5, -5),
    };
    #[cfg(target_os = "linux")]
    // SAFETY: prctl and the scheduler calls take plain values and affect
    // only the calling thread.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
        let param = libc::sched_param {
            sched_priority: fifo,
        };
        if libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) != 0 {
            let tid = libc::gettid() as libc::id_t;
            libc::setpriority(libc::PRIO_PROCESS, tid, nice);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (fifo, nice);
}

/// Run `f` with the calling thread raised as `u` says, then put the thread
/// back as it was. Threads started inside `f` inherit the raised
/// scheduling and keep it: this is how the threads of a library that spawns
/// its own (zenoh's runtimes, created on the first `zenoh::open` of the
/// process) become as urgent as ours, without raising the caller for good.
pub fn with_raised<T>(u: Urgency, f: impl FnOnce() -> T) -> T {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain queries and settings of the calling thread.
        let (policy, param, nice, slack, tid) = unsafe {
            let tid = libc::gettid() as libc::id_t;
            let mut param = libc::sched_param { sched_priority: 0 };
            libc::sched_getparam(0, &mut param);
            *libc::__errno_location() = 0;
            let nice = libc::getpriority(libc::PRIO_PROCESS, tid);
            let nice = (*libc::__errno_location() == 0).then_some(nice);
            let slack = libc::prctl(libc::PR_GET_TIMERSLACK, 0, 0, 0, 0);
            (libc::sched_getscheduler(0), param, nice, slack, tid)
        };
        raise(u);
        let out = f();
        // SAFETY: as above; restores what was read.
        unsafe {
            if policy >= 0 {
                libc::sched_setscheduler(0, policy, &param);
            }
            if let Some(n) = nice {
                libc::setpriority(libc::PRIO_PROCESS, tid, n);
            }
            if slack >= 0 {
                libc::prctl(libc::PR_SET_TIMERSLACK, slack as libc::c_ulong, 0, 0, 0);
            }
        }
        out
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = u;
        f()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The thread ends up at least as urgent as it was: real-time when
    /// allowed, else no higher nice value than before.
    #[test]
    #[cfg(target_os = "linux")]
    fn raise_never_lowers_a_thread() {
        std::thread::spawn(|| {
            // SAFETY: plain queries of the calling thread.
            let (before, tid) = unsafe {
                let tid = libc::gettid() as libc::id_t;
                (libc::getpriority(libc::PRIO_PROCESS, tid), tid)
            };
            raise(Urgency::Network);
            // SAFETY: as above.
            let (policy, after) = unsafe {
                (
                    libc::sched_getscheduler(0),
                    libc::getpriority(libc::PRIO_PROCESS, tid),
                )
            };
            assert!(
                policy == libc::SCHED_FIFO || after <= before,
                "policy {policy}, nice {before} -> {after}"
            );
            // SAFETY: as above. (Real-time threads get no slack at all.)
            let slack = unsafe { libc::prctl(libc::PR_GET_TIMERSLACK, 0, 0, 0, 0) };
            assert!((0..=1).contains(&slack), "timer slack {slack} ns");
        })
        .join()
        .unwrap();
    }

    /// A thread started inside `with_raised` keeps the raised scheduling;
    /// the caller gets its own back.
    #[test]
    #[cfg(target_os = "linux")]
    fn with_raised_leaves_spawned_threads_raised_and_restores_the_caller() {
        std::thread::spawn(|| {
            let state = || {
                // SAFETY: plain queries of the calling thread.
                unsafe {
                    let tid = libc::gettid() as libc::id_t;
                    (
                        libc::sched_getscheduler(0),
                        libc::getpriority(libc::PRIO_PROCESS, tid),
                    )
                }
            };
            let before = state();
            let (inside, child) = with_raised(Urgency::Network, || {
                let inside = state();
                (inside, std::thread::spawn(state).join().unwrap())
            });
            assert_eq!(child, inside, "the spawned thread inherits");
            assert!(
                inside.0 == libc::SCHED_FIFO || inside.1 <= before.1,
                "raised inside: {before:?} -> {inside:?}"
            );
            assert_eq!(state(), before, "the caller is put back");
        })
        .join()
        .unwrap();
    }
}
