//! The zenoh configuration every session we open starts from.
//!
//! - Multicast scouting off (routers may turn it on explicitly), gossip
//!   off: sessions meet only at the endpoints they are given, never on a
//!   multicast group.
//! - Two links per router: `udp/` carries media (best effort, no
//!   retransmission or head-of-line blocking), `tcp/` (or `tls/`) carries
//!   declarations, queries and reliable messages. A bare `host:port`
//!   stands for both; a full endpoint (`tls/host:port`) is used as given.
//! - Batches of [`LINK_BATCH`] bytes, so a link's datagram fits a
//!   1500-byte Ethernet MTU over IPv6 and an oversized message would show
//!   as zenoh fragmentation instead of silent IP fragmentation.
//! - Routers do not timestamp samples (each timestamp would cost every
//!   datagram 20 bytes of budget for nothing we use).
//! - Quick reconnection to a restarted router.

use std::path::PathBuf;

use ::zenoh::Config;

/// Bytes a zenoh batch (one UDP datagram on a `udp/` link) may hold: a
/// 1500-byte MTU minus IPv6 (40) and UDP (8) headers.
pub const LINK_BATCH: u16 = 1452;

/// The zenoh port when an address has none.
pub const DEFAULT_PORT: u16 = 7447;

/// Where and how to reach the zenoh network.
#[derive(Debug, Clone, Default)]
pub struct ZenohOptions {
    /// Routers to attach to: `host:port` (tcp + udp links) or zenoh
    /// endpoints (`tls/host:port`). The first that answers is used.
    pub routers: Vec<String>,
    /// A zenoh configuration file (json5) to start from, for TLS on router
    /// links, access control and the like; our settings are applied on top
    /// (multicast scouting stays off unless the file turns it on).
    pub config_file: Option<PathBuf>,
    /// How long to try reaching a router before giving up, milliseconds
    /// (0: the default, 5 s).
    pub connect_timeout_ms: u64,
}

/// A configuration that cannot be built, with the setting to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("zenoh configuration: {0}")]
pub struct ConfigError(pub String);

fn err(e: impl std::fmt::Display) -> ConfigError {
    ConfigError(e.to_string())
}

fn has_proto(e: &str) -> bool {
    e.split_once('/')
        .is_some_and(|(p, _)| !p.contains(':') && !p.is_empty())
}

/// Endpoints for an address: `host:port` (or just `host`) means tcp and
/// udp on it; an endpoint with a protocol is taken as given.
pub fn expand(addr: &str) -> Vec<String> {
    let addr = addr.trim();
    if has_proto(addr) {
        return vec![addr.to_owned()];
    }
    let hostport = if addr
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        && !(addr.starts_with('[') && addr.ends_with(']'))
    {
        addr.to_owned()
    } else {
        format!("{addr}:{DEFAULT_PORT}")
    };
    vec![format!("tcp/{hostport}"), format!("udp/{hostport}")]
}

fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).expect("strings serialise")
}

fn start(file: Option<&PathBuf>) -> Result<Config, ConfigError> {
    match file {
        Some(p) => Config::from_file(p).map_err(|e| ConfigError(format!("{}: {e}", p.display()))),
        None => Ok(Config::default()),
    }
}

fn common(c: &mut Config, file: bool) -> Result<(), ConfigError> {
    if !file {
        c.insert_json5("scouting/multicast/enabled", "false")
            .map_err(err)?;
        c.insert_json5("scouting/gossip/enabled", "false")
            .map_err(err)?;
        c.insert_json5("timestamping/enabled", "false")
            .map_err(err)?;
    }
    c.insert_json5("transport/unicast/max_links", "2")
        .map_err(err)?;
    c.insert_json5("transport/link/tx/batch_size", &LINK_BATCH.to_string())
        .map_err(err)?;
    c.insert_json5("transport/link/tx/lease", "3000")
        .map_err(err)?;
    c.insert_json5(
        "connect/retry",
        "{period_init_ms: 200, period_max_ms: 1000, period_increase_factor: 2}",
    )
    .map_err(err)?;
    Ok(())
}

/// A client attached to the first reachable of `opts.routers`: what
/// publishers and listings are. (A client keeps one router; after that
/// router restarts, zenoh reconnects one link, so media then rides the
/// declaration link to that router.)
pub fn client(opts: &ZenohOptions) -> Result<Config, ConfigError> {
    let mut c = attached("client", opts)?;
    // Each router is a group whose links all go to it ("allOf").
    let groups: Vec<serde_json::Value> = opts
        .routers
        .iter()
        .map(|r| serde_json::json!({"strategy": "allOf", "locators": expand(r)}))
        .collect();
    c.insert_json5(
        "connect/endpoints",
        &serde_json::Value::from(groups).to_string(),
    )
    .map_err(err)?;
    Ok(c)
}

/// A peer attached to the first of `opts.routers` only: what listeners are.
/// A peer restores every link to a restarted router, so media keeps its
/// `udp/` link. (Peers do not relay to each other through a router in
/// zenoh's default peer routing, which is why publishers are clients.)
pub fn listener(opts: &ZenohOptions) -> Result<Config, ConfigError> {
    let mut c = attached("peer", opts)?;
    if opts.config_file.is_none() {
        // Gossip on but never acted upon: a peer with gossip off warns that
        // it cannot de-duplicate data across regions; autoconnect stays
        // empty, so it connects nowhere it was not told to.
        c.insert_json5("scouting/gossip/enabled", "true")
            .map_err(err)?;
        c.insert_json5("scouting/gossip/autoconnect", "{router: [], peer: []}")
            .map_err(err)?;
    }
    // Return once connected, without waiting for scouting that is off.
    c.insert_json5("open/return_conditions/connect_scouted", "false")
        .map_err(err)?;
    let first = opts.routers.first().map(|r| expand(r)).unwrap_or_default();
    c.insert_json5("connect/endpoints", &json_list(&first))
        .map_err(err)?;
    Ok(c)
}

fn attached(mode: &str, opts: &ZenohOptions) -> Result<Config, ConfigError> {
    if opts.routers.is_empty() {
        return Err(ConfigError("no router to connect to".into()));
    }
    let mut c = start(opts.config_file.as_ref())?;
    c.insert_json5("mode", &format!("\"{mode}\""))
        .map_err(err)?;
    common(&mut c, opts.config_file.is_some())?;
    c.insert_json5("listen/endpoints", "[]").map_err(err)?;
    let timeout = if opts.connect_timeout_ms == 0 {
        5000
    } else {
        opts.connect_timeout_ms
    };
    c.insert_json5("connect/timeout_ms", &timeout.to_string())
        .map_err(err)?;
    c.insert_json5("connect/exit_on_failure", "true")
        .map_err(err)?;
    Ok(c)
}

/// Connect endpoints in the order a router must bring them up: every
/// reliable link (`tcp/`, `tls/`...) first, each awaited
/// (`exit_on_failure=true` on the endpoint makes zenoh connect it before it
/// goes on, retrying until it answers), then the `udp/` links in the
/// background.
///
/// Why: zenoh numbers a session's reliable messages in one sequence shared
/// by all its links and sends them on the reliable link, or on any link
/// while there is none. A router connects its endpoints concurrently, so
/// when the `udp/` link's handshake won, the first link states and
/// declarations between two routers went over udp, the `tcp/` link then
/// joined and overtook the last of them, and the receiver dropped those as
/// out of sequence: the routers lost each other's routes ("unknown link
/// mapping", "queryable from unknown router", then a panic in zenoh's
/// receive thread), and listeners behind them never found a stream that
/// was on air (seen 2 runs in 4 with recording relays on both links).
/// Publishers and listeners connect their endpoints one after the other
/// already. The price: a router whose upstream is down waits for it
/// before it reports ready (it listens meanwhile).
pub fn reliable_first(endpoints: impl Iterator<Item = String>) -> Vec<String> {
    let (udp, reliable): (Vec<String>, Vec<String>) =
        endpoints.partition(|e| e.starts_with("udp/"));
    reliable
        .into_iter()
        .map(|e| {
            if e.contains("exit_on_failure") {
                e
            } else if e.contains('#') {
                format!("{e};exit_on_failure=true")
            } else {
                format!("{e}#exit_on_failure=true")
            }
        })
        .chain(udp)
        .collect()
}

/// A router listening on `listen` and connecting to `connect` (addresses
/// or endpoints, see [`expand`]); `multicast` turns multicast scouting on.
pub fn router(
    listen: &[String],
    connect: &[String],
    file: Option<&PathBuf>,
    multicast: bool,
) -> Result<Config, ConfigError> {
    let mut c = start(file)?;
    c.insert_json5("mode", "\"router\"").map_err(err)?;
    common(&mut c, file.is_some())?;
    if multicast {
        c.insert_json5("scouting/multicast/enabled", "true")
            .map_err(err)?;
    }
    let listen: Vec<String> = listen.iter().flat_map(|a| expand(a)).collect();
    let connect = reliable_first(connect.iter().flat_map(|a| expand(a)));
    if !listen.is_empty() || file.is_none() {
        c.insert_json5("listen/endpoints", &json_list(&listen))
            .map_err(err)?;
    }
    if !connect.is_empty() || file.is_none() {
        c.insert_json5("connect/endpoints", &json_list(&connect))
            .map_err(err)?;
    }
    // Keep retrying routers we connect to: a restarted peer comes back.
    c.insert_json5("connect/timeout_ms", "-1").map_err(err)?;
    c.insert_json5("connect/exit_on_failure", "false")
        .map_err(err)?;
    c.insert_json5("listen/exit_on_failure", "true")
        .map_err(err)?;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_expand_to_tcp_and_udp_endpoints_stay() {
        assert_eq!(
            expand("127.0.0.1:7000"),
            vec!["tcp/127.0.0.1:7000", "udp/127.0.0.1:7000"]
        );
        assert_eq!(
            expand("localhost"),
            vec!["tcp/localhost:7447", "udp/localhost:7447"]
        );
        assert_eq!(expand("tls/127.0.0.1:7000"), vec!["tls/127.0.0.1:7000"]);
        assert_eq!(
            expand("[::1]:7000"),
            vec!["tcp/[::1]:7000", "udp/[::1]:7000"]
        );
    }

    #[test]
    fn routers_bring_reliable_links_up_first_and_awaited() {
        let c = reliable_first(
            ["udp/a:1", "tcp/a:1", "tls/b:2#iface=lo", "udp/b:2"]
                .into_iter()
                .map(String::from),
        );
        assert_eq!(
            c,
            [
                "tcp/a:1#exit_on_failure=true",
                "tls/b:2#iface=lo;exit_on_failure=true",
                "udp/a:1",
                "udp/b:2"
            ]
        );
        let r = router(
            &["127.0.0.1:7001".into()],
            &["127.0.0.1:7000".into()],
            None,
            false,
        )
        .unwrap();
        let eps = r.get_json("connect/endpoints").unwrap();
        let tcp = eps.find("tcp/127.0.0.1:7000#exit_on_failure=true").unwrap();
        assert!(tcp < eps.find("udp/127.0.0.1:7000").unwrap(), "{eps}");
    }

    #[test]
    fn every_session_has_multicast_scouting_off() {
        let opts = ZenohOptions {
            routers: vec!["127.0.0.1:7000".into()],
            ..Default::default()
        };
        for c in [
            client(&opts).unwrap(),
            listener(&opts).unwrap(),
            router(&["127.0.0.1:7001".into()], &[], None, false).unwrap(),
        ] {
            assert_eq!(c.get_json("scouting/multicast/enabled").unwrap(), "false");
        }
        let l = listener(&opts).unwrap();
        assert!(
            l.get_json("scouting/gossip/autoconnect")
                .unwrap()
                .contains("[]")
        );
    }
}
