//! Addresses as people type them: `host`, `host:port`, `:port`, `[v6]:port`,
//! names resolved, the port defaulting to [`DEFAULT_PORT`].

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};

/// The port `recv` and `netem` listen on and `send` dials when none is
/// given.
pub const DEFAULT_PORT: u16 = 4433;

/// Split `s` into host and port (`None`: use the default). A bare IPv6
/// address (`::1`) is a host; brackets carry a port (`[::1]:4433`).
fn split(s: &str) -> Result<(&str, Option<u16>), String> {
    let port = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| format!("'{s}': '{p}' is not a port (0-65535)"))
    };
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("'{s}': missing ']'"))?;
        return match after {
            "" => Ok((host, None)),
            _ => match after.strip_prefix(':') {
                Some(p) => Ok((host, Some(port(p)?))),
                None => Err(format!("'{s}': expected ':PORT' after ']'")),
            },
        };
    }
    match s.rsplit_once(':') {
        // More than one colon and no brackets: an IPv6 address alone.
        Some((host, _)) if host.contains(':') => Ok((s, None)),
        Some((host, p)) => Ok((host, Some(port(p)?))),
        None => Ok((s, None)),
    }
}

/// Resolve `host` (IPv4 preferred: a name like `localhost` then meets the
/// IPv4 sockets the defaults bind).
fn lookup(input: &str, host: &str, port: u16) -> Result<SocketAddr, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let all: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve '{input}': {e}"))?
        .collect();
    all.iter()
        .find(|a| a.is_ipv4())
        .or(all.first())
        .copied()
        .ok_or_else(|| format!("'{input}' resolves to no address"))
}

/// A local address to listen on: `:4433` or `4433` (every interface),
/// `localhost:4433`, `127.0.0.1`, `[::]:4433`.
pub fn listen(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let port = s
            .parse::<u16>()
            .map_err(|_| format!("'{s}' is not a port (0-65535)"))?;
        return Ok(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port));
    }
    let (host, port) = split(s)?;
    let port = port.unwrap_or(DEFAULT_PORT);
    if host.is_empty() {
        return Ok(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port));
    }
    lookup(s, host, port)
}

/// A peer to dial: `host`, `host:port`, `10.77.0.1`, `[fe80::1]:4433`.
pub fn peer(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    let (host, port) = split(s)?;
    if host.is_empty() {
        return Err(format!("'{s}': no host to connect to"));
    }
    lookup(s, host, port.unwrap_or(DEFAULT_PORT))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn listen_addresses_as_people_type_them() {
        assert_eq!(listen(":4433"), Ok(a("0.0.0.0:4433")));
        assert_eq!(listen(":5000"), Ok(a("0.0.0.0:5000")));
        assert_eq!(listen("5000"), Ok(a("0.0.0.0:5000")));
        assert_eq!(listen("localhost:4433"), Ok(a("127.0.0.1:4433")));
        assert_eq!(listen("localhost"), Ok(a("127.0.0.1:4433")));
        assert_eq!(listen("127.0.0.1:0"), Ok(a("127.0.0.1:0")));
        assert_eq!(listen("[::]:4433"), Ok(a("[::]:4433")));
        assert_eq!(listen("::1"), Ok(a("[::1]:4433")));
        assert!(
            listen("127.0.0.1:99999")
                .unwrap_err()
                .contains("not a port")
        );
        assert!(listen("[::1").unwrap_err().contains("']'"));
    }

    #[test]
    fn peers_take_names_and_a_default_port() {
        assert_eq!(peer("10.77.0.1"), Ok(a("10.77.0.1:4433")));
        assert_eq!(peer("10.77.0.1:9000"), Ok(a("10.77.0.1:9000")));
        assert_eq!(peer("localhost"), Ok(a("127.0.0.1:4433")));
        assert_eq!(peer("[::1]:9000"), Ok(a("[::1]:9000")));
        assert!(peer(":4433").unwrap_err().contains("no host"));
    }
}
