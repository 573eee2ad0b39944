//! `isochron bench` end to end: one short scenario over real QUIC through
//! the impairment relay, its results.json, report.md and plots.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn bench(out: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_isochron"))
        .arg("bench")
        .args(["--duration", "3s", "--out"])
        .arg(out)
        .args(extra)
        .output()
        .expect("isochron runs")
}

/// `bench` that must succeed (else what it printed is the failure): its
/// results.json.
fn bench_ok(out: &Path, extra: &[&str]) -> Value {
    let o = bench(out, extra);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{text}");
    let results = std::fs::read_to_string(out.join("results.json")).unwrap();
    serde_json::from_str(&results).unwrap()
}

fn num(v: &Value, path: &str) -> f64 {
    let mut x = v;
    for k in path.split('.') {
        x = x
            .get(k)
            .unwrap_or_else(|| panic!("results.json lacks {path} (at {k}): {v}"));
    }
    x.as_f64()
        .unwrap_or_else(|| panic!("{path} is not a number: {x}"))
}

/// Every field a scenario object must have.
const FIELDS: &[&str] = &[
    "name",
    "about",
    "duration_s",
    "config",
    "link",
    "completed",
    "truncated",
    "e2e_delay_ms",
    "overhead_ms",
    "one_way_delay_ms",
    "jitter_ms",
    "tick_deviation_ms",
    "packets",
    "loss_before_fec",
    "residual_loss",
    "link_loss_realised",
    "fec_code_used",
    "bound",
    "frames",
    "samples_sent",
    "samples_played",
    "pauses",
    "resumes",
    "bitrate_bps",
    "fec_overhead",
    "sender_drops",
    "cpu",
    "snr_db",
    "bit_exact",
    "frames_differing",
    "buffer_ms",
    "plots",
    "relay",
    "receiver_stats",
    "sender_stats",
];

#[test]
fn a_short_lossy_scenario_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let v = bench_ok(
        &out,
        &[
            "--name", "lossy", "--loss", "5%", "--jitter", "2ms", "--delay", "3ms",
        ],
    );
    assert!(
        v["command"].as_str().unwrap().contains("--loss 5%"),
        "{}",
        v["command"]
    );
    let scenarios = v["scenarios"].as_array().unwrap();
    assert_eq!(scenarios.len(), 1, "only the custom scenario ran");
    let s = &scenarios[0];
    for f in FIELDS {
        assert!(s.get(*f).is_some(), "results.json lacks {f}");
    }
    for d in [
        "e2e_delay_ms",
        "overhead_ms",
        "one_way_delay_ms",
        "tick_deviation_ms",
    ] {
        for q in ["count", "min", "p50", "p99", "max"] {
            num(s, &format!("{d}.{q}"));
        }
    }
    for f in [
        "expected",
        "received",
        "lost",
        "recovered",
        "unrecovered",
        "late",
        "duplicate",
        "invalid",
    ] {
        num(s, &format!("packets.{f}"));
    }
    for f in [
        "played",
        "concealed",
        "samples_played",
        "samples_concealed",
        "underruns",
        "overruns",
    ] {
        num(s, &format!("frames.{f}"));
    }
    assert_eq!(s["name"], "lossy");
    assert_eq!(s["completed"], true, "{s}");
    assert_eq!(s["config"]["fec"], "16+4");

    // Delay: never below the configured latency plus the link's 1 ms floor,
    // the median within a few ms of it (the relay adds 3 +- 2 ms).
    let latency = num(s, "config.latency_ms");
    assert_eq!(latency, 80.0);
    let e2e_min = num(s, "e2e_delay_ms.min");
    let e2e_p50 = num(s, "e2e_delay_ms.p50");
    assert!(e2e_min > latency, "e2e min {e2e_min} ms");
    assert!(e2e_p50 < latency + 15.0, "e2e p50 {e2e_p50} ms");
    assert!(
        (num(s, "overhead_ms.p50") - (e2e_p50 - latency)).abs() < 1e-6,
        "overhead = e2e - latency"
    );
    assert!(
        num(s, "one_way_delay_ms.min") >= 1.0,
        "the link's 3 - 2 ms floor"
    );

    // Loss: the relay dropped about 5 %, FEC rebuilt what it could, and the
    // accounting adds up.
    let p = |f: &str| num(s, &format!("packets.{f}"));
    assert!(p("expected") > 500.0, "{}", s["packets"]);
    assert!(p("lost") > 0.0, "5 % loss must show: {}", s["packets"]);
    assert!(p("unrecovered") <= p("lost"));
    assert_eq!(p("recovered") + p("unrecovered"), p("lost"));
    let loss = num(s, "loss_before_fec");
    assert!((0.01..0.12).contains(&loss), "loss before FEC {loss}");
    assert!(num(s, "residual_loss") <= loss);
    let realised = num(s, "link_loss_realised");
    assert!(
        (0.01..0.12).contains(&realised),
        "the relay dropped {realised}"
    );
    assert!(num(s, "bound.effective.residual") >= 0.0);
    let bound = num(s, "bound.configured.residual");
    assert!(bound > 0.0 && bound < 0.01, "MDS bound {bound}");
    assert_eq!(num(s, "bound.configured.k"), 16.0);
    // Hybrid may leave 5 % random loss to retransmission alone: then no
    // block was sent and the code used is none (its bound: the loss).
    if num(s, "fec_overhead") > 0.0 {
        assert!(num(s, "fec_code_used.k_eff") >= 1.0);
    } else {
        assert_eq!(num(s, "fec_code_used.k_eff"), 0.0);
        assert!(num(s, "bound.effective.residual") > 0.01);
    }

    // Samples: everything sent was played, concealed or not.
    let sent = num(s, "samples_sent");
    assert_eq!(sent, 48_000.0 * 3.0);
    assert_eq!(num(s, "samples_played"), sent);
    assert_eq!(num(s, "frames.samples_played"), sent);
    assert_eq!(num(s, "frames.played"), 300.0);
    assert_eq!(num(s, "e2e_delay_ms.count"), 300.0, "every frame timed");
    assert!(num(s, "frames.samples_concealed") <= sent);
    if s["bit_exact"] == true {
        assert!(s["snr_db"].is_null());
        assert_eq!(num(s, "frames.concealed"), 0.0);
    } else {
        assert!(num(s, "snr_db") > 0.0);
    }
    let cpu = num(s, "cpu.total_percent");
    assert!(cpu > 0.0 && cpu < 200.0, "cpu {cpu}");
    assert!(num(s, "tick_deviation_ms.p99") < 20.0);
    // What recovered the loss was sent: repairs, retransmissions or both.
    assert!(num(s, "redundancy.sent") > 0.0, "{}", s["redundancy"]);
    // Beside the minimum for the residual measured, the minimum for the
    // sender's own target: stricter than one packet in 600, never cheaper.
    assert_eq!(num(s, "redundancy.sender_target"), 1e-4);
    let (least, at_target) = (
        num(s, "redundancy.minimum"),
        num(s, "redundancy.minimum_at_target"),
    );
    assert!(num(s, "redundancy.residual_target") > 1e-4);
    assert!(at_target >= least && least > 0.0, "{}", s["redundancy"]);
    let ratio = num(s, "redundancy.ratio_at_target");
    assert!((ratio - num(s, "redundancy.sent") / at_target).abs() < 1e-9);

    // Plots exist and are SVG.
    for k in ["delay", "buffer", "histogram"] {
        let name = s["plots"][k].as_str().unwrap();
        let svg = std::fs::read_to_string(out.join(name)).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{name}"
        );
    }
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("| lossy |"), "{md}");
    if num(s, "packets.unrecovered") == 0.0 {
        assert!(md.contains("; at 1.0e-4: "), "{md}");
    }
    assert!(md.contains("isochron bench --duration 3s"), "{md}");
}

/// One round trip in the latency (5 % loss, 20 +- 5 ms each way): the
/// residual a short run can show (one packet in 600) costs two copies of a
/// last-chance retransmission, the sender's 1e-4 a third, and the report
/// prices both.
#[test]
fn the_minimum_at_the_senders_target_prices_the_stricter_target() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let v = bench_ok(
        &out,
        &[
            "--name", "oneround", "--loss", "5%", "--jitter", "5ms", "--delay", "20ms",
        ],
    );
    let s = &v["scenarios"][0];
    let (least, at_target) = (
        num(s, "redundancy.minimum"),
        num(s, "redundancy.minimum_at_target"),
    );
    assert!(num(s, "redundancy.residual_target") >= 1.0 / 600.0);
    assert!(
        at_target > 1.2 * least && least > 0.0,
        "{}",
        s["redundancy"]
    );
    assert!(
        num(s, "redundancy.ratio_at_target") < num(s, "redundancy.ratio"),
        "{}",
        s["redundancy"]
    );
}

/// File mode (issue 15): a file-mode scenario and its live twin on the same
/// link, side by side in report.md, the marks it measured in results.json.
#[test]
fn file_mode_runs_beside_live_mode() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let link = [
        "--loss", "5%", "--burst", "3", "--delay", "5ms", "--jitter", "2ms",
    ];
    let mut args = vec!["--name", "bursty", "--file-mode"];
    args.extend(link);
    let v = bench_ok(&out, &args);
    let s = &v["scenarios"][0];
    assert_eq!(s["config"]["mode"], "file");
    assert_eq!(s["config"]["interleave"], 2, "file mode's depth");
    assert_eq!(num(s, "samples_played"), num(s, "samples_sent"));
    assert_eq!(num(s, "frames.underruns"), 0.0, "{s}");
    assert_eq!(num(s, "packets.late"), 0.0, "{s}");
    let flow = &s["receiver_stats"]["flow"];
    assert!(num(flow, "credits") > 10.0, "{flow}");
    assert!(num(flow, "rtt_us") >= 10_000.0, "{flow}");
    assert!(num(flow, "lead_us") > num(flow, "floor_us"), "{flow}");
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("## File mode beside live mode"), "{md}");
    assert!(md.contains("file (`bursty`)"), "{md}");
    // The built-in pairs, listed together.
    let o = Command::new(env!("CARGO_BIN_EXE_isochron"))
        .args(["bench", "--list"])
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&o.stdout);
    for n in ["ge-5-b3-jitter", "file-ge-5-b3-jitter", "file-outage-1s"] {
        assert!(list.contains(n), "{list}");
    }
}

#[test]
fn lists_and_refuses_unknown_scenarios() {
    let o = Command::new(env!("CARGO_BIN_EXE_isochron"))
        .args(["bench", "--list"])
        .output()
        .unwrap();
    assert!(o.status.success());
    let list = String::from_utf8_lossy(&o.stdout);
    for n in [
        "clean",
        "clean-lowlatency",
        "ge-5-b10",
        "outage-1s",
        "scale",
    ] {
        assert!(list.contains(n), "{list}");
    }
    let dir = tempfile::tempdir().unwrap();
    let o = bench(dir.path(), &["--scenario", "nope"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no scenario 'nope'"));
}

/// `--latency auto`: the target follows the link's delay spread within its
/// bounds, results.json carries it, and the delay plot draws it over time.
#[test]
fn adaptive_latency_shows_its_target() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let v = bench_ok(
        &out,
        &[
            "--name",
            "auto",
            "--latency",
            "auto:20ms..300ms",
            "--delay",
            "12ms",
            "--jitter",
            "10ms",
        ],
    );
    let s = &v["scenarios"][0];
    assert_eq!(
        s["config"]["adaptive_latency_ms"][0], 20.0,
        "{}",
        s["config"]
    );
    assert_eq!(s["config"]["adaptive_latency_ms"][1], 300.0);
    assert_eq!(s["completed"], true, "{s}");
    assert_eq!(num(s, "samples_played"), 48_000.0 * 3.0, "same samples");
    // A 20 ms spread of delay puts the target above its floor, and nowhere
    // near the 300 ms ceiling the sender's deadlines are set from.
    let lo = num(s, "latency_target_ms.min");
    let hi = num(s, "latency_target_ms.max");
    assert!(lo >= 20.0 && hi <= 300.0, "target {lo}..{hi} ms");
    assert!(
        hi > 25.0,
        "the target follows a 20 ms delay spread: {hi} ms"
    );
    // (Its peak also follows scheduling delays on a loaded machine.)
    assert!(
        num(s, "e2e_delay_ms.p50") < 250.0,
        "played at the target, not at MAX: {}",
        s["e2e_delay_ms"]
    );
    let name = s["plots"]["delay"].as_str().unwrap();
    let svg = std::fs::read_to_string(out.join(name)).unwrap();
    assert!(svg.contains("adaptive target latency"), "{name}");
}

/// The fan-out scenario: two router processes, three listeners, a tap
/// behind each router. Every listener plays the whole stream bit-exact, and
/// the figures the README quotes are there and plausible.
#[test]
fn the_fanout_scenario_through_two_router_processes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let v = bench_ok(&out, &["--scenario", "fanout", "--listeners", "3"]);
    assert_eq!(v["scenarios"].as_array().unwrap().len(), 0, "fan-out only");
    let rows = v["fanout"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(num(r, "listeners"), 3.0);
    assert_eq!(num(r, "completed"), 3.0, "{r}");
    assert_eq!(num(r, "bit_exact"), 3.0, "a clean link: every sample, {r}");
    assert_eq!(r["relay"], false, "a clean link leaves the relay out");
    // Every frame of every listener timed, at about the latency (80 ms).
    assert_eq!(num(r, "delay_ms.count"), 3.0 * 300.0);
    let p50 = num(r, "delay_ms.p50");
    assert!((79.0..120.0).contains(&p50), "delay p50 {p50} ms");
    // The same datagrams seen behind both routers: one hop, forward in time.
    let hops = num(r, "hop_delay_ms.count");
    assert!(
        hops > 200.0,
        "datagrams matched behind both routers: {hops}"
    );
    assert!(num(r, "hop_delay_ms.p50") > 0.0);
    assert!(r["router_percent"][1].as_f64().unwrap() >= 0.0);
    assert!(num(r, "publisher.sender.source_packets") > 0.0);
    assert!(
        std::fs::read_to_string(out.join("report.md"))
            .unwrap()
            .contains("## Fan-out")
    );
}
