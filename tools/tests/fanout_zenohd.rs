//! A stock zenoh router, configured only by the file the README documents
//! (`docs/zenohd.json5`), carries a stream. The router is what `zenohd`
//! runs: `zenoh::open` in router mode from the file, with `--listen` and
//! `--connect` as zenohd's command line adds them; this test binary runs it
//! as a child process of its own.

mod fanout_support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use fanout_support::*;
use zenoh::Wait;

const CHILD: &str = "ISOCHRON_TEST_STOCK_ZENOHD";

/// Run as a child: a stock router from the documented file.
#[test]
fn stock_router_process() {
    let Ok(file) = std::env::var(CHILD) else {
        return; // only as a child of the test below
    };
    let mut c = zenoh::Config::from_file(&file).unwrap();
    let listen = std::env::var("ISOCHRON_TEST_LISTEN").unwrap();
    c.insert_json5(
        "listen/endpoints",
        &format!(r#"["tcp/{listen}","udp/{listen}"]"#),
    )
    .unwrap();
    if let Ok(to) = std::env::var("ISOCHRON_TEST_CONNECT") {
        // As the documented command line connects: tcp first, awaited.
        c.insert_json5(
            "connect/endpoints",
            &format!(r#"["tcp/{to}#exit_on_failure=true","udp/{to}"]"#),
        )
        .unwrap();
    }
    let s = zenoh::open(c).wait().unwrap();
    // On a line of its own (libtest has printed the test's name).
    println!("\nstock zenohd {}", s.zid());
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

fn stock(port: u16, connect: Option<u16>) -> Proc {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/zenohd.json5");
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "stock_router_process",
        "--nocapture",
        "--test-threads",
        "1",
    ])
    .env(CHILD, file)
    .env("ISOCHRON_TEST_LISTEN", format!("127.0.0.1:{port}"));
    if let Some(c) = connect {
        cmd.env("ISOCHRON_TEST_CONNECT", format!("127.0.0.1:{c}"));
    }
    let mut p = Proc::spawn("stock zenohd", &mut cmd);
    p.line("stock zenohd", Duration::from_secs(30));
    p
}

#[test]
fn a_stock_zenohd_with_the_documented_configuration_carries_a_stream() {
    let dir = tempfile::tempdir().unwrap();
    let id = identity(dir.path(), "identity");
    let (song, imu) = media(&dir.path().join("sent"), 3.0);
    let (p1, p2) = (free_port(), free_port());
    let _r1 = stock(p1, None);
    let _r2 = stock(p2, Some(p1));
    let outs: Vec<_> = (0..2).map(|i| dir.path().join(format!("rx{i}"))).collect();
    let subs: Vec<Proc> = outs
        .iter()
        .map(|o| subscriber("stock/zenohd", o, p2, &id, &[]))
        .collect();
    let publ = publisher(
        "stock/zenohd",
        &[song.clone(), imu.clone()],
        p1,
        &id,
        &["--wait-listeners", "2"],
    );
    let (code, err) = publ.wait(Duration::from_secs(60));
    assert_eq!(code, 0, "{err}");
    for (s, o) in subs.into_iter().zip(&outs) {
        let (code, err) = s.wait(Duration::from_secs(60));
        assert_eq!(code, 0, "{err}");
        assert_same_from((&song, &imu), o, (0, 0));
    }
}
