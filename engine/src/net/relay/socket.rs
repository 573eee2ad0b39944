//! UDP sockets with large kernel buffers, so bursts are not dropped by the
//! relay's own sockets (with the default ~208 KiB, loopback bursts lost up
//! to 1.6 % of datagrams; 4 MiB made it 0).

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

/// Requested receive and send buffer size.
pub(super) const SOCKET_BUFFER: usize = 4 << 20;

fn udp(bind: SocketAddr) -> io::Result<Socket> {
    let s = Socket::new(Domain::for_address(bind), Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: the kernel caps these at net.core.{r,w}mem_max.
    let _ = s.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = s.set_send_buffer_size(SOCKET_BUFFER);
    s.set_nonblocking(true)?;
    s.bind(&bind.into())?;
    Ok(s)
}

/// The socket clients send to. Needs a runtime context.
pub(super) fn listen(addr: SocketAddr) -> io::Result<UdpSocket> {
    let s = udp(addr)
        .map_err(|e| io::Error::new(e.kind(), format!("relay: cannot listen on {addr}: {e}")))?;
    if let Ok(got) = s.recv_buffer_size() {
        // Linux reports twice the usable size.
        if got < SOCKET_BUFFER {
            tracing::warn!(
                "relay: UDP receive buffer is {got} bytes, not {SOCKET_BUFFER}; \
                 raise net.core.rmem_max or bursts may be dropped by the kernel"
            );
        }
    }
    UdpSocket::from_std(s.into())
}

/// A fresh socket connected to `upstream`, so the upstream sees one distinct
/// flow per client and the kernel filters replies to it. Needs a runtime
/// context.
pub(super) fn upstream(upstream: SocketAddr) -> io::Result<UdpSocket> {
    let any = match upstream {
        SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
    };
    let s = udp(any)
        .and_then(|s| s.connect(&upstream.into()).map(|()| s))
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("relay: cannot open a socket to {upstream}: {e}"),
            )
        })?;
    UdpSocket::from_std(s.into())
}
