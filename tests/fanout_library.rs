//! The fan-out library API as `examples/fanout.rs` uses it: a router, a
//! publisher that allows one listener identity, two listeners pulling.

use std::path::PathBuf;
use std::process::Command;

/// Where cargo put the examples (beside this test's `deps/`), built if a
/// filtered test run skipped them.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    if !path.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--example", name])
            .status()
            .unwrap();
        assert!(status.success(), "building example {name}");
    }
    path
}

#[test]
fn the_fanout_example_publishes_to_two_listeners_who_play_every_frame() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new(example("fanout"))
        .arg(port.to_string())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // 2 s of 10 ms frames, each listener every one of them.
    assert_eq!(
        text.matches("listener: 200 frames, completed").count(),
        2,
        "{text}"
    );
    assert!(text.contains("to 2 listeners (keys granted 2)"), "{text}");
}
