//! Failed token attempts, per source address: a few mistakes are free,
//! then each further failure doubles a lockout, so guessing a token costs
//! time rather than bandwidth. Sans-IO: the caller passes the time.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use crate::time::Time;

/// How failures are throttled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptPolicy {
    /// Failures from one address before it is locked out at all.
    pub free: u32,
    /// The first lockout; each further failure doubles it.
    pub first_lockout: Duration,
    /// The longest lockout.
    pub max_lockout: Duration,
    /// An address is forgotten this long after its last failure.
    pub forget_after: Duration,
    /// Addresses remembered at once (the oldest is forgotten first), so the
    /// table stays bounded whatever the number of sources.
    pub max_addresses: usize,
}

impl Default for AttemptPolicy {
    /// 3 free failures, then 1 s doubling up to 60 s; forgotten after 10
    /// minutes; 4096 addresses.
    fn default() -> Self {
        Self {
            free: 3,
            first_lockout: Duration::from_secs(1),
            max_lockout: Duration::from_secs(60),
            forget_after: Duration::from_secs(600),
            max_addresses: 4096,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last: Time,
    locked_until: Time,
}

/// Failed attempts by source: IPv4 addresses, IPv6 /64 prefixes (one host
/// usually holds a whole /64).
#[derive(Debug)]
pub struct Attempts {
    policy: AttemptPolicy,
    by_source: HashMap<IpAddr, Entry>,
}

/// The key an address is counted under.
pub(super) fn source(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut o = v6.octets();
                o[8..].fill(0);
                IpAddr::V6(o.into())
            }
        },
    }
}

impl Attempts {
    /// An empty table under `policy`.
    pub fn new(policy: AttemptPolicy) -> Self {
        Self {
            policy,
            by_source: HashMap::new(),
        }
    }

    /// May `ip` try now? `Err(wait)`: it is locked out for `wait` more.
    pub fn check(&self, ip: IpAddr, now: Time) -> Result<(), Duration> {
        match self.by_source.get(&source(ip)) {
            Some(e) if e.locked_until > now => Err(e.locked_until - now),
            _ => Ok(()),
        }
    }

    /// `ip` presented a wrong token at `now`.
    pub fn failed(&mut self, ip: IpAddr, now: Time) {
        let p = self.policy;
        let key = source(ip);
        if !self.by_source.contains_key(&key) {
            self.forget_old(now);
            if self.by_source.len() >= p.max_addresses.max(1) {
                // Full even after forgetting: drop the stalest entry.
                if let Some(oldest) = self
                    .by_source
                    .iter()
                    .min_by_key(|(_, e)| e.last)
                    .map(|(k, _)| *k)
                {
                    self.by_source.remove(&oldest);
                }
            }
        }
        let e = self.by_source.entry(key).or_insert(Entry {
            failures: 0,
            last: now,
            locked_until: Time::ZERO,
        });
        e.failures = e.failures.saturating_add(1);
        e.last = now;
        if e.failures > p.free {
            let doublings = (e.failures - p.free - 1).min(20);
            let lockout = p
                .first_lockout
                .saturating_mul(1 << doublings)
                .min(p.max_lockout);
            e.locked_until = now + lockout;
        }
    }

    /// `ip` got in: its slate is clean.
    pub fn succeeded(&mut self, ip: IpAddr) {
        self.by_source.remove(&source(ip));
    }

    /// Sources remembered now.
    pub fn len(&self) -> usize {
        self.by_source.len()
    }

    /// No source is remembered.
    pub fn is_empty(&self) -> bool {
        self.by_source.is_empty()
    }

    fn forget_old(&mut self, now: Time) {
        let forget = self.policy.forget_after;
        self.by_source
            .retain(|_, e| e.locked_until > now || now.saturating_since(e.last) < forget);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: u64) -> Time {
        Time::from_micros(s * 1_000_000)
    }

    #[test]
    fn free_failures_then_doubling_lockouts() {
        let mut a = Attempts::new(AttemptPolicy::default());
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..3 {
            assert!(a.check(ip, t(0)).is_ok());
            a.failed(ip, t(0));
        }
        assert!(a.check(ip, t(0)).is_ok(), "three mistakes are free");
        a.failed(ip, t(0));
        assert_eq!(a.check(ip, t(0)), Err(Duration::from_secs(1)));
        assert!(a.check(ip, t(1)).is_ok());
        a.failed(ip, t(1));
        assert_eq!(a.check(ip, t(1)), Err(Duration::from_secs(2)));
        for _ in 0..30 {
            a.failed(ip, t(10));
        }
        assert_eq!(a.check(ip, t(10)), Err(Duration::from_secs(60)), "capped");
        // Another address is not affected; success clears the slate.
        assert!(a.check("10.0.0.2".parse().unwrap(), t(10)).is_ok());
        a.succeeded(ip);
        assert!(a.check(ip, t(10)).is_ok());
    }

    #[test]
    fn an_ipv6_host_cannot_dodge_by_changing_its_interface_id() {
        let mut a = Attempts::new(AttemptPolicy {
            free: 0,
            ..Default::default()
        });
        a.failed("2001:db8::1".parse().unwrap(), t(0));
        assert!(a.check("2001:db8::ffff".parse().unwrap(), t(0)).is_err());
        assert!(a.check("2001:db8:0:1::1".parse().unwrap(), t(0)).is_ok());
        a.failed("::ffff:10.1.1.1".parse().unwrap(), t(0));
        assert!(a.check("10.1.1.1".parse().unwrap(), t(0)).is_err());
    }

    #[test]
    fn the_table_stays_bounded() {
        let mut a = Attempts::new(AttemptPolicy {
            max_addresses: 100,
            ..Default::default()
        });
        for i in 0..10_000u32 {
            a.failed(IpAddr::V4(i.into()), t(i as u64));
            assert!(a.len() <= 100);
        }
        // Forgotten after a quiet while.
        a.failed("1.2.3.4".parse().unwrap(), t(100_000));
        assert_eq!(a.len(), 1);
    }
}
