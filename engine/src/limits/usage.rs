//! What the receiver spends now, by source address: handshakes in
//! progress, sessions and their buffer bytes. The driver asks before it
//! spends and gives back when done; every refusal names the limit.

use std::collections::HashMap;
use std::net::IpAddr;

use super::Limits;
use super::attempts::source;

/// Why [`Usage`] refused: the limit, named, with the numbers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

#[derive(Debug, Default, Clone, Copy)]
struct Spent {
    handshakes: usize,
    sessions: usize,
    bytes: u64,
}

/// Handshakes, sessions and buffer bytes in use, in total and per source.
#[derive(Debug)]
pub struct Usage {
    limits: Limits,
    all: Spent,
    by_source: HashMap<IpAddr, Spent>,
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

impl Usage {
    /// Nothing spent yet, under `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            all: Spent::default(),
            by_source: HashMap::new(),
        }
    }

    fn of(&self, ip: IpAddr) -> Spent {
        self.by_source.get(&source(ip)).copied().unwrap_or_default()
    }

    fn update(&mut self, ip: IpAddr, f: impl FnOnce(&mut Spent)) {
        let key = source(ip);
        let e = self.by_source.entry(key).or_default();
        f(e);
        if e.handshakes == 0 && e.sessions == 0 && e.bytes == 0 {
            self.by_source.remove(&key);
        }
    }

    /// A connection from `ip` starts its handshake.
    pub fn begin_handshake(&mut self, ip: IpAddr) -> Result<(), UsageError> {
        let l = &self.limits;
        if self.all.handshakes >= l.max_handshakes {
            return Err(UsageError(format!(
                "busy: {} handshakes in progress (max_handshakes)",
                self.all.handshakes
            )));
        }
        if self.of(ip).handshakes >= l.max_handshakes_per_source {
            return Err(UsageError(format!(
                "busy: {} handshakes in progress from {ip} (max_handshakes_per_source)",
                self.of(ip).handshakes
            )));
        }
        self.all.handshakes += 1;
        self.update(ip, |s| s.handshakes += 1);
        Ok(())
    }

    /// The handshake from `ip` is over (a session, a refusal or a timeout).
    pub fn end_handshake(&mut self, ip: IpAddr) {
        self.all.handshakes = self.all.handshakes.saturating_sub(1);
        self.update(ip, |s| s.handshakes = s.handshakes.saturating_sub(1));
    }

    /// A session from `ip` whose buffers take `bytes` may start, if the
    /// session counts and the memory limits (per source, in total) allow.
    pub fn admit(&mut self, ip: IpAddr, bytes: u64) -> Result<(), UsageError> {
        let l = &self.limits;
        let mine = self.of(ip);
        if self.all.sessions >= l.max_sessions {
            return Err(UsageError(format!(
                "busy: {} sessions already (max_sessions)",
                self.all.sessions
            )));
        }
        if mine.sessions >= l.max_sessions_per_source {
            return Err(UsageError(format!(
                "busy: {} sessions from {ip} already (max_sessions_per_source)",
                mine.sessions
            )));
        }
        if mine.bytes + bytes > l.source_memory {
            return Err(UsageError(format!(
                "busy: sessions from {ip} hold {} of receive buffers and this one needs {}, \
                 over the limit of {} a source (source_memory)",
                mib(mine.bytes),
                mib(bytes),
                mib(l.source_memory)
            )));
        }
        if self.all.bytes + bytes > l.total_memory {
            return Err(UsageError(format!(
                "busy: sessions hold {} of receive buffers and this one needs {}, over the \
                 limit of {} in all (total_memory)",
                mib(self.all.bytes),
                mib(bytes),
                mib(l.total_memory)
            )));
        }
        self.all.sessions += 1;
        self.all.bytes += bytes;
        self.update(ip, |s| {
            s.sessions += 1;
            s.bytes += bytes;
        });
        Ok(())
    }

    /// The session from `ip` admitted with `bytes` has ended.
    pub fn release(&mut self, ip: IpAddr, bytes: u64) {
        self.all.sessions = self.all.sessions.saturating_sub(1);
        self.all.bytes = self.all.bytes.saturating_sub(bytes);
        self.update(ip, |s| {
            s.sessions = s.sessions.saturating_sub(1);
            s.bytes = s.bytes.saturating_sub(bytes);
        });
    }

    /// Sessions running now.
    pub fn sessions(&self) -> usize {
        self.all.sessions
    }

    /// Buffer bytes held by sessions now.
    pub fn bytes(&self) -> u64 {
        self.all.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_source_cannot_take_what_others_need() {
        let mut u = Usage::new(Limits {
            max_handshakes: 4,
            max_handshakes_per_source: 2,
            source_memory: 100,
            total_memory: 150,
            ..Default::default()
        });
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        u.begin_handshake(a).unwrap();
        u.begin_handshake(a).unwrap();
        let e = u.begin_handshake(a).unwrap_err();
        assert!(e.0.contains("max_handshakes_per_source"), "{e}");
        u.begin_handshake(b).unwrap();
        u.end_handshake(a);
        u.admit(a, 60).unwrap();
        let e = u.admit(a, 60).unwrap_err();
        assert!(e.0.contains("(source_memory)"), "{e}");
        u.admit(b, 60).unwrap();
        let e = u.admit(b, 40).unwrap_err();
        assert!(e.0.contains("(total_memory)"), "{e}");
        u.release(a, 60);
        u.admit(b, 40).unwrap();
        assert_eq!((u.sessions(), u.bytes()), (2, 100));
        u.release(b, 60);
        u.release(b, 40);
        u.end_handshake(a);
        u.end_handshake(b);
        assert!(u.by_source.is_empty(), "nothing left behind");
    }
}
