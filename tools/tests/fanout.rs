//! Fan-out through real zenoh routers, each its own `isochron router`
//! process on 127.0.0.1: publishers and subscribers as the README runs
//! them.

mod fanout_support;

use std::path::Path;
use std::time::Duration;

use fanout_support::*;

const NAME: &str = "studio/a/mix";

#[test]
fn fanout_commands_explain_their_options_with_units() {
    for (cmd, needles) in [
        (
            "publish",
            &[
                "--router",
                "--latency",
                "e.g. 80ms",
                "--fec",
                "16+4",
                "--allow",
                "--wait-listeners",
                "--passphrase-file",
                "--dangerously-allow-any-listener",
            ][..],
        ),
        (
            "subscribe",
            &[
                "--out",
                "--pin",
                "--once",
                "--ready-file",
                "--stats-json",
                "--latency",
                "--low-water",
                "--conceal-audio",
                "--idle-timeout",
            ][..],
        ),
        (
            "streams",
            &["PATTERN", "studio/**", "--json", "--timeout"][..],
        ),
        (
            "router",
            &[
                "--listen",
                "--connect",
                "--zenoh-config",
                "--multicast-scouting",
                "--exit-when-idle",
            ][..],
        ),
    ] {
        let o = bin().args([cmd, "--help"]).output().unwrap();
        let t = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{cmd} --help");
        for n in needles {
            assert!(t.contains(n), "{cmd} --help mentions {n}:\n{t}");
        }
    }
}

/// Start two routers in a chain: R1 (the publisher's) and R2 connected to
/// it (the listeners'), optionally R2's udp link through `udp_via`.
fn chain(udp_via: Option<u16>) -> (u16, u16, Proc, Proc) {
    let (p1, p2) = (free_port(), free_port());
    let r1 = router(p1, &[], &[]);
    let connect = match udp_via {
        Some(v) => vec![format!("tcp/127.0.0.1:{p1}"), format!("udp/127.0.0.1:{v}")],
        None => vec![format!("127.0.0.1:{p1}")],
    };
    let r2 = router(p2, &connect, &[]);
    (p1, p2, r1, r2)
}

fn done(p: Proc, what: &str) -> String {
    let (code, err) = p.wait(Duration::from_secs(60));
    assert_eq!(code, 0, "{what} exit code:\n{err}");
    err
}

#[test]
fn three_subscribers_through_two_routers_are_bit_exact_and_listed() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let id = identity(dir.path(), "identity");
    let (song, imu) = media(&dir.path().join("sent"), 4.0);
    let (p1, p2, _r1, _r2) = chain(None);
    let outs: Vec<_> = (0..3).map(|i| dir.path().join(format!("rx{i}"))).collect();
    let subs: Vec<Proc> = outs
        .iter()
        .map(|o| subscriber(NAME, o, p2, &id, &[]))
        .collect();
    let publ = publisher(
        NAME,
        &[song.clone(), imu.clone()],
        p1,
        &id,
        &["--wait-listeners", "3"],
    );
    // While it plays: listed with its catalog and three listeners (the
    // deadline only bounds a failure; a loaded machine is slow to start).
    let until = std::time::Instant::now() + Duration::from_secs(60);
    let listing = loop {
        let l = bin()
            .args([
                "streams",
                "studio/**",
                "--json",
                "--router",
                &format!("127.0.0.1:{p2}"),
            ])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&l.stdout).unwrap_or_else(|e| {
            panic!(
                "{e}: {}{}",
                String::from_utf8_lossy(&l.stdout),
                String::from_utf8_lossy(&l.stderr)
            )
        });
        if v["streams"][0]["listeners"] == 3 || std::time::Instant::now() > until {
            break v;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let s = &listing["streams"][0];
    assert_eq!(s["stream"], NAME, "{listing}");
    assert_eq!(s["listeners"], 3, "{listing}");
    assert!(s["publisher"].as_str().unwrap().starts_with("sha256:"));
    let subs_json = s["catalog"]["substreams"].as_array().unwrap();
    assert_eq!(subs_json.len(), 2);
    assert_eq!(subs_json[0]["name"], "song.wav");
    let table = bin()
        .args(["streams", "--router", &format!("127.0.0.1:{p1}")])
        .output()
        .unwrap();
    let t = String::from_utf8_lossy(&table.stdout);
    assert!(
        t.contains(NAME) && t.contains("song.wav (audio 2ch") && t.contains("imu.csv (sensor 3ch"),
        "{t}"
    );
    done(publ, "publisher");
    for (s, o) in subs.into_iter().zip(&outs) {
        done(s, "subscriber");
        assert_same_from((&song, &imu), o, (0, 0));
        let st = stream_stats(o);
        assert_eq!(st["completed"], true);
        assert_eq!(st["stats"]["packets"]["unrecovered"], 0, "{st}");
        assert_eq!(frames(&st, "underruns"), 0, "{st}");
    }
}

#[test]
fn five_percent_loss_and_jitter_between_routers_leave_under_1e_3() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let id = identity(dir.path(), "identity");
    let (song, imu) = media(&dir.path().join("sent"), 8.0);
    let p1 = free_port();
    let relay_port = free_port();
    let r1 = router(p1, &[], &[]);
    let mut netem = Proc::spawn(
        "netem",
        bin().args([
            "netem",
            "--listen",
            &format!("127.0.0.1:{relay_port}"),
            "--to",
            &format!("127.0.0.1:{p1}"),
            "--loss",
            "5%",
            "--jitter",
            "10ms",
            "--delay",
            "15ms",
            "--seed",
            "3",
        ]),
    );
    netem.line("", Duration::from_secs(10));
    let p2 = free_port();
    let r2 = router(
        p2,
        &[
            format!("tcp/127.0.0.1:{p1}"),
            format!("udp/127.0.0.1:{relay_port}"),
        ],
        &[],
    );
    let outs: Vec<_> = (0..3).map(|i| dir.path().join(format!("rx{i}"))).collect();
    let subs: Vec<Proc> = outs
        .iter()
        .map(|o| subscriber(NAME, o, p2, &id, &["--latency", "120ms"]))
        .collect();
    let publ = publisher(
        NAME,
        &[song.clone(), imu.clone()],
        p1,
        &id,
        &["--wait-listeners", "3", "--latency", "120ms"],
    );
    done(publ, "publisher");
    for (s, o) in subs.into_iter().zip(&outs) {
        done(s, "subscriber");
        let st = stream_stats(o);
        let p = &st["stats"]["packets"];
        let lost = p["lost"].as_u64().unwrap();
        let expected = p["expected"].as_u64().unwrap();
        assert!(
            lost as f64 >= 0.02 * expected as f64,
            "the link really lost packets: {p}"
        );
        let residual = st["stats"]["residual_loss_ratio"].as_f64().unwrap();
        assert!(residual <= 1e-3, "residual {residual}: {p}");
        // Sample count equal from the start point: the whole file.
        let (fmt, a) = samples(&song);
        let (_, b) = samples(&o.join("song.wav"));
        assert_eq!(b.len(), a.len(), "every sample, concealed or not");
        assert_eq!(fmt.stride(), 4);
    }
    drop((r1, r2, netem));
}

#[test]
fn a_subscriber_joining_late_plays_bit_exact_from_a_known_media_time() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let id = identity(dir.path(), "identity");
    let (song, imu) = media(&dir.path().join("sent"), 7.0);
    let (p1, p2, _r1, _r2) = chain(None);
    let early = dir.path().join("early");
    let late = dir.path().join("late");
    let ready = dir.path().join("early-ready.json");
    let s1 = subscriber(
        NAME,
        &early,
        p2,
        &id,
        &["--ready-file", ready.to_str().unwrap()],
    );
    let publ = publisher(
        NAME,
        &[song.clone(), imu.clone()],
        p1,
        &id,
        &["--wait-listeners", "1"],
    );
    // The stream starts as soon as the early listener has subscribed;
    // from then on, 3 s of the scenario.
    wait_ready(&ready);
    std::thread::sleep(Duration::from_millis(3000));
    let s2 = subscriber(NAME, &late, p2, &id, &[]);
    done(publ, "publisher");
    done(s1, "early subscriber");
    done(s2, "late subscriber");
    assert_same_from((&song, &imu), &early, (0, 0));
    let st = stream_stats(&late);
    let subs = st["stats"]["substreams"].as_array().unwrap();
    let start_song = subs[0]["start_sample"].as_u64().unwrap();
    let start_imu = subs[1]["start_sample"].as_u64().unwrap();
    let t = st["stats"]["start_media_us"].as_u64().unwrap();
    assert!(
        (2_500_000..=6_000_000).contains(&t),
        "started about 3 s in: {t} us"
    );
    assert_eq!(
        start_song,
        t * 48_000 / 1_000_000,
        "song starts at the start time"
    );
    assert!(
        start_imu * 1_000_000 / 200 >= t - 20_000,
        "imu starts there too: row {start_imu}"
    );
    assert_same_from((&song, &imu), &late, (start_song, start_imu));
    assert_eq!(st["stats"]["packets"]["unrecovered"], 0, "{st}");
}

#[test]
fn a_router_restarted_mid_stream_costs_a_concealed_gap_and_nothing_else() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let id = identity(dir.path(), "identity");
    let (song, imu) = media(&dir.path().join("sent"), 9.0);
    let (p1, p2, _r1, r2) = chain(None);
    let outs: Vec<_> = (0..2).map(|i| dir.path().join(format!("rx{i}"))).collect();
    let ready: Vec<_> = outs.iter().map(|o| o.with_extension("ready")).collect();
    let subs: Vec<Proc> = outs
        .iter()
        .zip(&ready)
        .map(|(o, r)| subscriber(NAME, o, p2, &id, &["--ready-file", r.to_str().unwrap()]))
        .collect();
    let publ = publisher(
        NAME,
        &[song.clone(), imu.clone()],
        p1,
        &id,
        &["--wait-listeners", "2"],
    );
    // The stream starts once both have subscribed; 3 s into it, the
    // listeners' router goes.
    ready.iter().for_each(|r| wait_ready(r));
    std::thread::sleep(Duration::from_millis(3000));
    r2.kill();
    std::thread::sleep(Duration::from_millis(700));
    let _r2 = router(p2, &[format!("127.0.0.1:{p1}")], &[]);
    done(publ, "publisher");
    let (_, sent) = samples(&song);
    for (s, o) in subs.into_iter().zip(&outs) {
        done(s, "subscriber");
        let st = stream_stats(o);
        assert_eq!(st["completed"], true, "no restart of the subscriber: {st}");
        let concealed = frames(&st, "concealed");
        assert!(concealed >= 30, "the gap is concealed and counted: {st}");
        assert!(st["stats"]["packets"]["unrecovered"].as_u64().unwrap() > 0);
        // Outside the gap, every sample is the sent one.
        let (_, got) = samples(&o.join("song.wav"));
        assert_eq!(got.len(), sent.len(), "every sample played");
        let differ: Vec<usize> = (0..sent.len() / 4)
            .filter(|&i| got[4 * i..4 * i + 4] != sent[4 * i..4 * i + 4])
            .collect();
        let (first, last) = (differ[0], differ[differ.len() - 1]);
        assert!(
            first > 48_000 * 2 && last < 48_000 * 7,
            "only around the restart: {first}..{last}"
        );
        let gap = (last - first) as f64 / 48_000.0;
        assert!(gap < 4.0, "one gap of {gap:.2} s");
    }
}

fn refused(out: &Path, p: Proc, needle: &str) {
    let (code, err) = p.wait(Duration::from_secs(60));
    assert_eq!(code, 4, "refused exits 4:\n{err}");
    assert!(err.contains(needle), "the reason says '{needle}':\n{err}");
    let written: Vec<_> = std::fs::read_dir(out)
        .map(|d| d.collect())
        .unwrap_or_default();
    assert!(written.is_empty(), "nothing written: {written:?}");
}

#[test]
fn wrong_pin_missing_key_and_wrong_passphrase_are_refused_and_write_nothing() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let id = identity(dir.path(), "identity");
    let other = identity(dir.path(), "other-identity");
    let (song, _) = media(&dir.path().join("sent"), 30.0);
    let (p1, p2, _r1, _r2) = chain(None);
    let mut publ = publisher(NAME, std::slice::from_ref(&song), p1, &id, &[]);
    let fp = publ.line("fingerprint ", Duration::from_secs(60))["fingerprint ".len()..].to_owned();
    // A pin that is not the publisher's.
    let out = dir.path().join("wrong-pin");
    let bad_pin = format!("sha256:{}", "ab".repeat(32));
    refused(
        &out,
        subscriber(NAME, &out, p2, &id, &["--pin", &bad_pin]),
        "not pinned",
    );
    // The right pin, but another identity: no key for it.
    let out = dir.path().join("not-allowed");
    refused(
        &out,
        subscriber(NAME, &out, p2, &other, &["--pin", &fp]),
        "is not authorised",
    );
    // A passphrase stream: without it, and with a wrong one.
    let pass = dir.path().join("pass.txt");
    std::fs::write(&pass, "correct horse battery staple\n").unwrap();
    let wrong = dir.path().join("wrong.txt");
    std::fs::write(&wrong, "hunter2\n").unwrap();
    let mut locked = publisher(
        "studio/locked",
        std::slice::from_ref(&song),
        p1,
        &other,
        &["--passphrase-file", pass.to_str().unwrap()],
    );
    let other_fp =
        locked.line("fingerprint ", Duration::from_secs(60))["fingerprint ".len()..].to_owned();
    let out = dir.path().join("no-pass");
    refused(
        &out,
        subscriber("studio/locked", &out, p2, &id, &["--pin", &other_fp]),
        "is not authorised",
    );
    let out = dir.path().join("wrong-pass");
    let wrong_arg = [
        "--pin",
        &other_fp,
        "--passphrase-file",
        wrong.to_str().unwrap(),
    ];
    refused(
        &out,
        subscriber("studio/locked", &out, p2, &id, &wrong_arg),
        "wrong passphrase",
    );
    // The right passphrase opens it without authorisation.
    let out = dir.path().join("with-pass");
    let ok_arg = [
        "--pin",
        &other_fp,
        "--passphrase-file",
        pass.to_str().unwrap(),
    ];
    let ok = subscriber("studio/locked", &out, p2, &id, &ok_arg);
    let until = std::time::Instant::now() + Duration::from_secs(60);
    while !out.join("song.wav").exists() {
        assert!(
            std::time::Instant::now() < until,
            "the passphrase opens the stream"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    ok.kill();
}

/// (It failed 2 runs in 4 while routers connected their udp/ and tcp/
/// links at once: see `config::reliable_first`.)
#[test]
fn routers_carry_no_plaintext_and_no_put_is_ever_fragmented() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let id = identity(dir.path(), "identity");
    let (song, imu) = media(&dir.path().join("sent"), 4.0);
    // The longest name a stream may have: the key takes the most budget.
    let name: String = ["abcdefghijkl"; 16].join("/")[..200]
        .trim_end_matches('/')
        .to_owned();
    // Routers that timestamp every sample (a stock router's default): the
    // worst case for the budget.
    let cfg = dir.path().join("ts.json5");
    std::fs::write(
        &cfg,
        "{scouting: {multicast: {enabled: false}, gossip: {enabled: false}}, \
         timestamping: {enabled: {router: true, peer: false, client: false}}}",
    )
    .unwrap();
    let cfg_arg = ["--zenoh-config", cfg.to_str().unwrap()];
    let p1 = free_port();
    let _r1 = router(p1, &[], &cfg_arg);
    let udp_log = Recorded::default();
    let tcp_log = Recorded::default();
    let udp = udp_recorder(p1, udp_log.clone());
    let tcp = tcp_recorder(p1, tcp_log.clone());
    let p2 = free_port();
    let _r2 = router(
        p2,
        &[
            format!("tcp/127.0.0.1:{tcp}"),
            format!("udp/127.0.0.1:{udp}"),
        ],
        &cfg_arg,
    );
    let out = dir.path().join("rx");
    let sub = subscriber(&name, &out, p2, &id, &[]);
    let publ = publisher(
        &name,
        &[song.clone(), imu.clone()],
        p1,
        &id,
        &["--wait-listeners", "1"],
    );
    done(publ, "publisher");
    done(sub, "subscriber");
    assert_same_from((&song, &imu), &out, (0, 0));
    let st = stream_stats(&out);
    let datagrams = st["stats"]["datagrams"].as_u64().unwrap();

    let udp_log = udp_log.lock().unwrap().clone();
    let tcp_log = tcp_log.lock().unwrap().clone();
    // Zenoh transport message ids: 0x05 frame, 0x06 fragment.
    let frames = udp_log.iter().filter(|d| d[0] & 0x1f == 0x05).count() as u64;
    let fragments = udp_log.iter().filter(|d| d[0] & 0x1f == 0x06).count();
    assert!(
        frames >= datagrams,
        "the media crossed the recorded udp link: {frames} of {datagrams}"
    );
    assert_eq!(fragments, 0, "no put fragmented");
    let largest = udp_log.iter().map(|d| d.len()).max().unwrap();
    assert!(largest <= 1452, "largest datagram {largest} bytes");
    let (_, plain) = samples(&song);
    let csv = std::fs::read(&imu).unwrap();
    let all: Vec<Vec<u8>> = udp_log.into_iter().chain(tcp_log).collect();
    assert_eq!(
        plaintext_hits(&plain, 97, &all),
        0,
        "no audio in the clear on router links"
    );
    assert_eq!(
        plaintext_hits(&csv, 7, &all),
        0,
        "no sensor rows in the clear"
    );
    // The detector finds plaintext where it is: in the received file.
    let (_, got) = samples(&out.join("song.wav"));
    assert!(plaintext_hits(&plain, 97, &[got]) > 1000);
}

/// The README's two commands: no router named, so the first of them starts
/// one on loopback (here on a port of the test's own), which exits once
/// idle.
#[test]
fn the_readme_two_commands_meet_on_a_local_router_started_on_demand() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let id = identity(dir.path(), "identity");
    let (song, _) = media(&dir.path().join("sent"), 2.0);
    let local = format!("127.0.0.1:{}", free_port());
    let out = dir.path().join("received");
    let sub = Proc::spawn(
        "subscriber",
        bin()
            .env("ISOCHRON_LOCAL_ROUTER", &local)
            .args(["subscribe", "demo/song", "--once", "--quiet", "--out"])
            .arg(&out)
            .arg("--identity")
            .arg(&id),
    );
    let publ = Proc::spawn(
        "publisher",
        bin()
            .env("ISOCHRON_LOCAL_ROUTER", &local)
            .args(["publish", "demo/song", "--quiet", "--wait-listeners", "1"])
            .arg(&song)
            .arg("--identity")
            .arg(&id),
    );
    let (code, perr) = publ.wait(Duration::from_secs(60));
    assert_eq!(code, 0, "{perr}");
    let (code, serr) = sub.wait(Duration::from_secs(60));
    assert_eq!(code, 0, "{serr}");
    assert_eq!(
        samples(&song).1,
        samples(&out.join("song.wav")).1,
        "bit-exact"
    );
    // One of them started the router, in a process of its own.
    let text = format!("{perr}{serr}");
    let line = text
        .lines()
        .find(|l| l.starts_with("started a local router on"))
        .unwrap_or_else(|| panic!("one started the router:\n{text}"));
    assert_eq!(
        text.matches("started a local router").count(),
        1,
        "only one:\n{text}"
    );
    let pid: i32 = line
        .split("(pid ")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // It exits by itself once idle (10 s); nothing is left running.
    let until = std::time::Instant::now() + Duration::from_secs(30);
    // SAFETY: kill with signal 0 only checks that the process exists.
    while unsafe { libc::kill(pid, 0) } == 0 {
        if std::time::Instant::now() > until {
            // SAFETY: the router this test caused to start.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("the local router did not exit once idle");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A frame counter summed over the substreams of a stream's stats.
fn frames(st: &serde_json::Value, key: &str) -> u64 {
    st["stats"]["substreams"]
        .as_array()
        .expect("per-substream stats")
        .iter()
        .map(|s| s["frames"][key].as_u64().expect("a frame counter"))
        .sum()
}
