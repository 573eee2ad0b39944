//! CPU time of this process over a measurement window: the total from
//! `getrusage(RUSAGE_SELF)`, and a split by role from the per-thread
//! counters in `/proc/self/task` (thread names say who is who: the engine
//! names its receiver, playout, sender and relay threads).

use std::collections::HashMap;
use std::time::Instant;

use serde::Serialize;

/// CPU seconds by role at one instant.
#[derive(Debug, Clone)]
pub struct Snapshot {
    at: Instant,
    total: f64,
    /// Per thread id: (role, CPU seconds).
    threads: HashMap<u32, (Role, f64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The receiver's network thread and its playout threads (and fan-out
    /// subscribers').
    Receiver,
    /// Sender network threads and the benchmark's feeders (and a fan-out
    /// publisher's network and reader threads).
    Sender,
    Relay,
    Other,
}

fn role(comm: &str) -> Role {
    // Thread names are cut to 15 bytes ("isochron-publis").
    if comm.starts_with("isochron-recv")
        || comm.starts_with("isochron-playou")
        || comm.starts_with("isochron-subsc")
    {
        Role::Receiver
    } else if comm.starts_with("isochron-send")
        || comm.starts_with("bench-feed")
        || comm.starts_with("isochron-publi")
        || comm.starts_with("isochron-read")
    {
        Role::Sender
    } else if comm.starts_with("isochron-relay") || comm.starts_with("relay") {
        Role::Relay
    } else {
        Role::Other
    }
}

fn rusage_self() -> f64 {
    // SAFETY: getrusage fills the struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn threads() -> HashMap<u32, (Role, f64)> {
    // SAFETY: sysconf has no preconditions.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(tid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ... : comm may hold spaces, so split at the last ')'.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = &stat[open + 1..close];
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        // After the comm: state is field 3, utime field 14, stime field 15.
        let (Some(u), Some(s)) = (fields.get(11), fields.get(12)) else {
            continue;
        };
        let (Ok(u), Ok(s)) = (u.parse::<f64>(), s.parse::<f64>()) else {
            continue;
        };
        out.insert(tid, (role(comm), (u + s) / tick));
    }
    out
}

/// CPU seconds another process has used so far (0 if it is gone).
pub fn process_cpu_s(pid: u32) -> f64 {
    // SAFETY: sysconf has no preconditions.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let Some(close) = stat.rfind(')') else {
        return 0.0;
    };
    let f: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    let field = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (field(11) + field(12)) / tick
}

impl Snapshot {
    pub fn now() -> Snapshot {
        Snapshot {
            at: Instant::now(),
            total: rusage_self(),
            threads: threads(),
        }
    }
}

/// CPU use over a window, in percent of one core.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Usage {
    pub wall_s: f64,
    /// The whole process (getrusage).
    pub total_percent: f64,
    pub receiver_percent: f64,
    pub sender_percent: f64,
    pub relay_percent: f64,
    pub other_percent: f64,
}

impl Usage {
    /// Between two snapshots. Threads that ended inside the window are
    /// missing from the split (the total has them).
    pub fn between(a: &Snapshot, b: &Snapshot) -> Usage {
        let wall = b.at.duration_since(a.at).as_secs_f64().max(1e-9);
        let mut by: HashMap<Role, f64> = HashMap::new();
        for (tid, (role, t1)) in &b.threads {
            let t0 = a.threads.get(tid).map_or(0.0, |x| x.1);
            *by.entry(*role).or_default() += (t1 - t0).max(0.0);
        }
        let pct = |r: Role| 100.0 * by.get(&r).copied().unwrap_or(0.0) / wall;
        Usage {
            wall_s: wall,
            total_percent: 100.0 * (b.total - a.total).max(0.0) / wall,
            receiver_percent: pct(Role::Receiver),
            sender_percent: pct(Role::Sender),
            relay_percent: pct(Role::Relay),
            other_percent: pct(Role::Other),
        }
    }

    /// Divided among `n` sessions (on average: a fraction is fine).
    pub fn per_session(&self, n: f64) -> Usage {
        if n <= 0.0 {
            return Usage::default();
        }
        Usage {
            wall_s: self.wall_s,
            total_percent: self.total_percent / n,
            receiver_percent: self.receiver_percent / n,
            sender_percent: self.sender_percent / n,
            relay_percent: self.relay_percent / n,
            other_percent: self.other_percent / n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CPU seconds this thread has used.
    fn thread_cpu_s() -> f64 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes the timespec we own.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
    }

    #[test]
    fn a_busy_thread_shows() {
        // The thread burns 300 ms of its own CPU (however long a loaded
        // machine takes to give it that), then waits while we look.
        let a = Snapshot::now();
        let (busy_tx, busy_rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let h = std::thread::Builder::new()
            .name("isochron-send-t".into())
            .spawn(move || {
                let mut x = 0u64;
                while thread_cpu_s() < 0.3 {
                    x = x.wrapping_mul(31).wrapping_add(1);
                    std::hint::black_box(x);
                }
                busy_tx.send(()).unwrap();
                let _ = go_rx.recv();
            })
            .unwrap();
        busy_rx.recv().unwrap();
        let b = Snapshot::now();
        go_tx.send(()).unwrap();
        h.join().unwrap();
        let u = Usage::between(&a, &b);
        let cpu_s = |pct: f64| pct / 100.0 * u.wall_s;
        // Clock-tick accounting: within a few 10 ms ticks of 0.3 s.
        assert!(cpu_s(u.sender_percent) > 0.25, "{u:?}");
        assert!(cpu_s(u.total_percent) > 0.25, "{u:?}");
    }
}
