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
//!
//! The guard: a real-time thread that spins instead of keeping time would
//! starve everything else on its core (the kernel's 95 % throttle leaves a
//! host all but hung, and it may be turned off). Before the first thread is
//! raised, the process sets a soft `RLIMIT_RTTIME` of [`RT_BURST_LIMIT`]
//! and catches `SIGXCPU`: a real-time thread that runs that long without
//! blocking once is put back to normal scheduling at its fallback nice
//! level (counted by [`rt_demotions`]), so an overloaded process degrades
//! (late packets, counted drops) instead of hanging the machine. Our
//! threads block every tick or packet; only a runaway one is demoted. The
//! limit is inherited by child processes (harmless unless they run
//! real-time themselves and leave `SIGXCPU` at its default).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The longest a raised thread may run without blocking before the guard
/// demotes it (its soft `RLIMIT_RTTIME`). A playout tick or a packet takes
/// microseconds; 200 ms of CPU without a single wait is a runaway thread.
pub const RT_BURST_LIMIT: Duration = Duration::from_millis(200);

static DEMOTIONS: AtomicU64 = AtomicU64::new(0);

/// Real-time threads of this process the guard has demoted so far.
pub fn rt_demotions() -> u64 {
    DEMOTIONS.load(Ordering::Relaxed)
}

thread_local! {
    #[cfg(target_os = "linux")]
    /// The nice level the guard demotes this thread to (its urgency's).
    static FALLBACK_NICE: std::cell::Cell<i32> = const { std::cell::Cell::new(-5) };
}

/// Install the guard once per process (the `SIGXCPU` handler, then the
/// limit). False when it cannot be had: another `SIGXCPU` handler is in
/// place (left alone), or the limit cannot be set.
#[cfg(target_os = "linux")]
fn guard() -> bool {
    static GUARD: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *GUARD.get_or_init(|| {
        // SAFETY: sigaction and rlimit calls with zeroed or filled-in plain
        // structs; the handler only makes async-signal-safe system calls.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGXCPU, std::ptr::null(), &mut old) != 0
                || old.sa_sigaction != libc::SIG_DFL
            {
                return false;
            }
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_sigxcpu as extern "C" fn(libc::c_int) as libc::sighandler_t;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            if libc::sigaction(libc::SIGXCPU, &sa, std::ptr::null_mut()) != 0 {
                return false;
            }
            set_rttime_soft_limit()
        }
    })
}

/// Set the soft `RLIMIT_RTTIME` to [`RT_BURST_LIMIT`] (at most the hard
/// limit, which stays). Async-signal-safe.
#[cfg(target_os = "linux")]
fn set_rttime_soft_limit() -> bool {
    let want = RT_BURST_LIMIT.as_micros() as libc::rlim_t;
    // SAFETY: plain get/set of a process limit.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_RTTIME, &mut lim) != 0 {
            return false;
        }
        lim.rlim_cur = want.min(lim.rlim_max);
        libc::setrlimit(libc::RLIMIT_RTTIME, &lim) == 0
    }
}

/// The kernel sends `SIGXCPU` to the thread that reached the soft limit
/// (the one running): put it back to normal scheduling at its fallback
/// nice level, count it, and restore the soft limit the kernel raised by a
/// second. Only system calls that are async-signal-safe in practice.
#[cfg(target_os = "linux")]
extern "C" fn on_sigxcpu(_: libc::c_int) {
    // SAFETY: errno saved and restored; plain scheduler calls on the
    // calling thread; a const thread-local without destructor.
    unsafe {
        let errno = *libc::__errno_location();
        let policy = libc::sched_getscheduler(0);
        if policy == libc::SCHED_FIFO || policy == libc::SCHED_RR {
            let param = libc::sched_param { sched_priority: 0 };
            if libc::sched_setscheduler(0, libc::SCHED_OTHER, &param) == 0 {
                let nice = FALLBACK_NICE.with(|n| n.get());
                libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, nice);
                DEMOTIONS.fetch_add(1, Ordering::Relaxed);
            }
        }
        set_rttime_soft_limit();
        *libc::__errno_location() = errno;
    }
}

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
        FALLBACK_NICE.with(|n| n.set(nice));
        let param = libc::sched_param {
            sched_priority: fifo,
        };
        // Real-time only with the guard in place.
        if !guard() || libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) != 0 {
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

    /// A raised thread that spins without blocking is demoted by the guard
    /// after about [`RT_BURST_LIMIT`] of CPU, to its fallback nice level,
    /// and counted; it is not killed. (Skipped where real-time scheduling
    /// is not allowed: then there is nothing to guard.)
    #[test]
    #[cfg(target_os = "linux")]
    fn a_spinning_real_time_thread_is_demoted_not_left_to_starve_the_host() {
        std::thread::spawn(|| {
            raise(Urgency::Network);
            // SAFETY: plain queries of the calling thread.
            let policy = || unsafe { libc::sched_getscheduler(0) };
            if policy() != libc::SCHED_FIFO {
                eprintln!("real-time scheduling not allowed here: nothing to guard");
                return;
            }
            let before = rt_demotions();
            // Spin (no blocking call) until demoted; bounded, generously:
            // on a loaded machine the thread gets its 200 ms of CPU late.
            let until = std::time::Instant::now() + Duration::from_secs(60);
            let mut spins = 0u64;
            while policy() == libc::SCHED_FIFO && std::time::Instant::now() < until {
                spins = std::hint::black_box(spins + 1);
            }
            assert_eq!(policy(), libc::SCHED_OTHER, "demoted after {spins} spins");
            assert!(rt_demotions() > before, "the demotion is counted");
            // SAFETY: as above.
            let nice =
                unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) };
            assert_eq!(nice, -5, "to the network fallback nice level");
            let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
            // SAFETY: a plain query of a process limit.
            unsafe { libc::getrlimit(libc::RLIMIT_RTTIME, &mut lim) };
            assert_eq!(
                lim.rlim_cur,
                RT_BURST_LIMIT.as_micros() as libc::rlim_t,
                "the limit stays armed for the next runaway"
            );
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
