//! The impairment relay over real UDP on 127.0.0.1: what the model decides
//! is what a client observes.

mod relay_support;

use std::collections::HashMap;
use std::time::Duration;

use isochron_engine::net::relay::{RelayConfig, RelayHandle, RelayLimits};
use isochron_engine::sim::{Impairment, Loss, Outage};
use relay_support::*;

const GUARD: Duration = Duration::from_secs(20);

fn clean() -> Impairment {
    Impairment::default()
}

fn lossy(loss: Loss) -> Impairment {
    Impairment {
        loss,
        ..Default::default()
    }
}

/// Send `n` probes through a relay and collect the echoes once settled.
fn run(forward: Impairment, backward: Impairment, seed: u64, n: u64) -> (Vec<Echoed>, RelayHandle) {
    let echo = Echo::start();
    let relay = RelayHandle::start(RelayConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        upstream: echo.addr,
        forward,
        backward,
        seed,
    })
    .unwrap();
    let probe = Probe::new(relay.local_addr());
    // 10 per millisecond: brisk, and far within the socket buffers.
    let sender = probe.send_paced(n, Duration::from_micros(100), 64);
    let got = probe.collect(GUARD, |got| settled(&relay.stats(), n, got.len()));
    sender.join().unwrap();
    (got, relay)
}

#[test]
fn bernoulli_loss_each_way_is_what_the_model_says() {
    let n = 20_000;
    let loss = lossy(Loss::Bernoulli { p: 0.05 });
    let (got, relay) = run(loss.clone(), loss, 42, n);
    let s = relay.stop();
    let missing = missing(n, &got);
    assert_eq!(got.len() + missing.len(), n as usize, "no duplicates");
    assert_eq!(
        missing.len() as u64,
        s.forward.lost + s.backward.lost,
        "observed loss is the model's: {s}"
    );
    for d in [s.forward, s.backward] {
        let p = d.lost as f64 / d.packets as f64;
        assert!((p - 0.05).abs() < 0.006, "per-direction loss {p}: {s}");
    }
    let observed = missing.len() as f64 / n as f64;
    let expected = 1.0 - 0.95 * 0.95;
    assert!(
        (observed - expected).abs() < 0.01,
        "round-trip loss {observed}"
    );
    assert_eq!((s.queue_drops, s.send_errors, s.refused), (0, 0, 0), "{s}");
}

#[test]
fn gilbert_elliott_bursts_have_the_configured_mean_length() {
    let n = 20_000;
    let (got, relay) = run(lossy(Loss::from_mean(0.05, 3.0)), clean(), 42, n);
    let s = relay.stop();
    let missing = missing(n, &got);
    assert_eq!(missing.len() as u64, s.forward.lost, "{s}");
    let loss = missing.len() as f64 / n as f64;
    assert!((loss - 0.05).abs() < 0.015, "loss {loss}");
    let bursts = runs(&missing);
    let mean = missing.len() as f64 / bursts.len() as f64;
    assert!(
        (mean - 3.0).abs() < 0.5,
        "mean burst {mean} over {} bursts",
        bursts.len()
    );
}

#[test]
fn same_seed_same_losses() {
    let n = 3000;
    let loss = lossy(Loss::Bernoulli { p: 0.1 });
    let lost = |seed| {
        let (got, relay) = run(loss.clone(), loss.clone(), seed, n);
        (missing(n, &got), relay.stop())
    };
    let (a, sa) = lost(7);
    let (b, sb) = lost(7);
    let (c, _) = lost(8);
    assert!(!a.is_empty());
    assert_eq!(a, b, "same seed, same lost sequence numbers");
    assert_eq!((sa.forward, sa.backward), (sb.forward, sb.backward));
    assert_ne!(a, c, "another seed, other losses");
}

#[test]
fn duplicates_come_back_twice() {
    let n = 2000;
    let dup = Impairment {
        duplicate: 0.1,
        ..Default::default()
    };
    let (got, relay) = run(dup, clean(), 42, n);
    let s = relay.stop();
    let mut count: HashMap<u64, u32> = HashMap::new();
    for e in &got {
        *count.entry(e.seq).or_default() += 1;
    }
    assert_eq!(count.len() as u64, n, "every datagram came back");
    assert!(count.values().all(|&c| c <= 2));
    let twice = count.values().filter(|&&c| c == 2).count() as u64;
    assert_eq!(twice, s.forward.duplicated, "{s}");
    assert!(
        (150..=250).contains(&twice),
        "about 10 % duplicated: {twice}"
    );
}

#[test]
fn reordered_datagrams_arrive_after_later_ones() {
    let n = 2000;
    let echo = Echo::start();
    let reorder = Impairment {
        delay: ms(1),
        reorder: 0.1,
        reorder_by: ms(5),
        ..Default::default()
    };
    let relay = relay(echo.addr, reorder, clean());
    let probe = Probe::new(relay.local_addr());
    // 4 per millisecond: a datagram held back 5 ms is overtaken by ~20.
    let sender = probe.send_paced(n, Duration::from_micros(250), 64);
    let got = probe.collect(GUARD, |got| settled(&relay.stats(), n, got.len()));
    sender.join().unwrap();
    let s = relay.stop();
    assert_eq!(got.len() as u64, n);
    let mut highest = None;
    let mut overtaken = 0u64;
    for e in &got {
        if highest.is_some_and(|h| e.seq < h) {
            overtaken += 1;
        }
        highest = highest.max(Some(e.seq));
    }
    let r = s.forward.reordered;
    assert!((140..=260).contains(&r), "about 10 % held back: {r}");
    // Each held-back datagram is overtaken unless the sender stalled 5 ms.
    assert!(
        overtaken <= r && overtaken * 10 >= r * 9,
        "{overtaken} of {r}"
    );
}

#[test]
fn an_outage_drops_what_was_sent_during_it() {
    let n = 800;
    let echo = Echo::start();
    let (start, len) = (ms(300), ms(200));
    let outage = Impairment {
        outages: vec![Outage {
            start,
            duration: len,
        }],
        ..Default::default()
    };
    let relay = relay(echo.addr, outage, clean());
    let probe = Probe::new(relay.local_addr());
    let sender = probe.send_paced(n, ms(1), 64);
    let got = probe.collect(GUARD, |got| settled(&relay.stats(), n, got.len()));
    let sent = sender.join().unwrap();
    let origin = relay.started_at();
    let s = relay.stop();
    let missing = missing(n, &got);
    assert_eq!(missing.len() as u64, s.forward.outage_drops, "{s}");
    assert_eq!(runs(&missing).len(), 1, "one gap: {missing:?}");
    assert!(
        (190..=210).contains(&missing.len()),
        "{} dropped",
        missing.len()
    );
    // A few ms of slack at the edges for loopback and scheduling.
    let slack = ms(5);
    for (seq, at) in sent.iter().enumerate() {
        let t = at.saturating_duration_since(origin);
        let lost = missing.binary_search(&(seq as u64)).is_ok();
        if t + slack < start || t > start + len + slack {
            assert!(
                !lost,
                "datagram {seq} sent at {t:?} lost outside the outage"
            );
        } else if t > start + slack && t + slack < start + len {
            assert!(
                lost,
                "datagram {seq} sent at {t:?} passed during the outage"
            );
        }
    }
}

#[test]
fn rate_limit_caps_throughput_and_drops_the_excess() {
    let n = 600;
    let echo = Echo::start();
    // 500 datagrams of 1000 bytes a second, offered at twice that.
    let rate = Impairment {
        rate_bps: 4_000_000,
        queue_limit: ms(50),
        ..Default::default()
    };
    let relay = relay(echo.addr, rate, clean());
    let probe = Probe::new(relay.local_addr());
    let sender = probe.send_paced(n, ms(1), 1000);
    let got = probe.collect(GUARD, |got| settled(&relay.stats(), n, got.len()));
    sender.join().unwrap();
    let s = relay.stop();
    assert!(s.forward.queue_drops > 200, "{s}");
    assert_eq!(got.len() as u64 + s.forward.queue_drops, n, "{s}");
    let span = got.last().unwrap().at - got.first().unwrap().at;
    let bps = (got.len() - 1) as f64 * 8000.0 / span.as_secs_f64();
    assert!((bps / 4e6 - 1.0).abs() < 0.1, "throughput {bps:.0} bit/s");
}

#[test]
fn in_flight_bound_drops_and_counts_overflow() {
    let echo = Echo::start();
    let relay = RelayHandle::start_with_limits(
        RelayConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            upstream: echo.addr,
            forward: Impairment {
                delay: ms(200),
                ..Default::default()
            },
            backward: clean(),
            seed: 1,
        },
        RelayLimits {
            max_in_flight_packets: 10,
            ..Default::default()
        },
    )
    .unwrap();
    let probe = Probe::new(relay.local_addr());
    for seq in 0..50 {
        probe.send(seq, 64);
    }
    let got = probe.collect(GUARD, |got| {
        let s = relay.stats();
        s.forward.packets == 50 && s.in_flight == 0 && got.len() as u64 == s.backward.delivered
    });
    let s = relay.stop();
    assert_eq!(got.len(), 10, "{s}");
    assert_eq!(s.queue_drops, 40, "{s}");
    assert_eq!(
        got.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (0..10).collect::<Vec<_>>()
    );
}

#[test]
fn two_clients_get_their_own_echoes() {
    let echo = Echo::start();
    let relay = relay(echo.addr, clean(), clean());
    let (a, b) = (
        Probe::new(relay.local_addr()),
        Probe::new(relay.local_addr()),
    );
    let n = 200;
    let (sa, sb) = (
        a.send_paced(n, Duration::from_micros(100), 64),
        b.send_paced(n, Duration::from_micros(100), 64),
    );
    let ga = a.collect(GUARD, |got| got.len() as u64 == n);
    let gb = b.collect(GUARD, |got| got.len() as u64 == n);
    sa.join().unwrap();
    sb.join().unwrap();
    for got in [&ga, &gb] {
        let seqs: Vec<u64> = got.iter().map(|e| e.seq).collect();
        assert_eq!(
            seqs,
            (0..n).collect::<Vec<_>>(),
            "each its own echoes, in order"
        );
    }
    // Own flows upstream: the echo server saw two sources, neither a client.
    let peers = echo.peers();
    assert_eq!(peers.len(), 2);
    assert!(!peers.contains(&a.sock.local_addr().unwrap()));
    let s = relay.stop();
    assert_eq!((s.clients, s.clients_seen), (2, 2), "{s}");
}

#[test]
fn idle_clients_are_forgotten_and_the_table_is_capped() {
    let echo = Echo::start();
    let relay = RelayHandle::start_with_limits(
        RelayConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            upstream: echo.addr,
            forward: clean(),
            backward: clean(),
            seed: 1,
        },
        RelayLimits {
            max_clients: 1,
            idle_timeout: ms(200),
            ..Default::default()
        },
    )
    .unwrap();
    let (a, b) = (
        Probe::new(relay.local_addr()),
        Probe::new(relay.local_addr()),
    );
    a.send(0, 64);
    a.collect(GUARD, |got| got.len() == 1);
    // The table is full: b is refused, not forwarded.
    b.send(0, 64);
    b.collect(GUARD, |_| relay.stats().refused == 1);
    assert_eq!(relay.stats().forward.packets, 1);
    // Once a has been idle long enough it is forgotten and b gets in.
    b.collect(GUARD, |_| relay.stats().clients == 0);
    b.send(1, 64);
    let got = b.collect(GUARD, |got| got.len() == 1);
    assert_eq!(got[0].seq, 1);
    let s = relay.stop();
    assert_eq!(
        (s.clients, s.clients_seen, s.clients_evicted),
        (1, 2, 1),
        "{s}"
    );
}

#[test]
fn a_vanished_upstream_or_client_is_not_fatal() {
    // Nothing listens upstream: the ICMP errors are counted.
    let gone = udp();
    let upstream = gone.local_addr().unwrap();
    drop(gone);
    let relay = relay(
        upstream,
        clean(),
        Impairment {
            delay: ms(20),
            ..Default::default()
        },
    );
    let probe = Probe::new(relay.local_addr());
    for seq in 0..5 {
        probe.send(seq, 64);
    }
    probe.collect(GUARD, |_| {
        let s = relay.stats();
        s.forward.packets == 5 && s.unreachable >= 1
    });
    // The upstream comes (back) up on the same port: the same flow works.
    let Ok(sock) = std::net::UdpSocket::bind(upstream) else {
        eprintln!("port {upstream} was taken meanwhile; skipping the rest");
        return;
    };
    let echo = Echo::on(sock);
    probe.send(5, 64);
    let got = probe.collect(GUARD, |got| got.len() == 1);
    assert_eq!(got[0].seq, 5);
    // A client that leaves before its echo returns harms nobody.
    let leaver = Probe::new(relay.local_addr());
    leaver.send(0, 64);
    drop(leaver);
    probe.collect(GUARD, |_| relay.stats().backward.packets == 2);
    probe.send(6, 64);
    let got = probe.collect(GUARD, |got| got.len() == 1);
    assert_eq!(got[0].seq, 6);
    drop(echo);
    let s = relay.stop();
    assert_eq!(s.clients, 2, "{s}");
}

#[test]
fn datagrams_of_any_size_pass_unchanged() {
    let echo = Echo::start();
    let relay = relay(echo.addr, clean(), clean());
    let sock = udp();
    sock.connect(relay.local_addr()).unwrap();
    sock.set_read_timeout(Some(GUARD)).unwrap();
    let mut buf = vec![0u8; 65_536];
    for len in [0, 1, 17, 1500, 9000, 65_507] {
        let d: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
        sock.send(&d).unwrap();
        let n = sock.recv(&mut buf).expect("echo within the guard");
        assert_eq!(&buf[..n], &d[..], "{len} bytes");
    }
    let s = relay.stop();
    assert_eq!((s.forward.packets, s.backward.delivered), (6, 6), "{s}");
}
