//! Network threads shared by many senders.
//!
//! By default each [`Sender`](super::Sender) runs on its own network thread
//! with its own UDP socket: right for one stream, wasteful for hundreds (a
//! gateway, the scale benchmark). A [`SendNetwork`] is a few such threads
//! (current-thread tokio runtimes, one QUIC endpoint and socket each);
//! senders given one in [`SenderOptions::network`](super::SenderOptions)
//! become tasks on them, spread round robin, each still its own QUIC
//! connection with its own TLS session.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use quinn::{Endpoint, EndpointConfig, TokioRuntime};
use tokio::runtime::Handle;
use tokio::sync::oneshot;

use crate::net::error::TransportError;
use crate::net::socket;

struct NetThread {
    handle: Handle,
    endpoint: Endpoint,
    _stop: oneshot::Sender<()>,
}

struct Inner {
    threads: Vec<NetThread>,
    next: AtomicUsize,
}

/// A few network threads for many senders (see the module documentation).
/// Cheap to clone; the threads stop when the last clone (and every sender
/// using it) is gone.
#[derive(Clone)]
pub struct SendNetwork {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SendNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendNetwork")
            .field("threads", &self.inner.threads.len())
            .finish()
    }
}

impl SendNetwork {
    /// `threads` network threads (at least one), each with an endpoint
    /// bound to `bind` (port 0: chosen by the system).
    pub fn new(threads: usize, bind: SocketAddr) -> Result<Self, TransportError> {
        let mut v = Vec::new();
        for i in 0..threads.max(1) {
            v.push(start(i, bind)?);
        }
        Ok(Self {
            inner: Arc::new(Inner {
                threads: v,
                next: AtomicUsize::new(0),
            }),
        })
    }

    /// Where the next sender goes: its thread's runtime and endpoint.
    pub(super) fn pick(&self) -> (Handle, Endpoint) {
        let i = self.inner.next.fetch_add(1, Ordering::Relaxed) % self.inner.threads.len();
        let t = &self.inner.threads[i];
        (t.handle.clone(), t.endpoint.clone())
    }
}

fn start(i: usize, bind: SocketAddr) -> Result<NetThread, TransportError> {
    let sock = socket::bind(bind).map_err(|source| TransportError::Bind { addr: bind, source })?;
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
    let (stop, stop_rx) = oneshot::channel::<()>();
    std::thread::Builder::new()
        .name(format!("isochron-send-{i}"))
        .spawn(move || {
            crate::net::priority::raise(crate::net::priority::Urgency::Network);
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let endpoint = {
                let _g = rt.enter();
                Endpoint::new(
                    EndpointConfig::default(),
                    None,
                    sock,
                    Arc::new(TokioRuntime),
                )
            };
            match endpoint {
                Ok(ep) => {
                    let _ = ready_tx.send(Ok((rt.handle().clone(), ep.clone())));
                    // Serve the senders' tasks until the network is dropped,
                    // then let connections close.
                    rt.block_on(async move {
                        let _ = stop_rx.await;
                        ep.wait_idle().await;
                    });
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            }
        })?;
    let (handle, endpoint) = ready_rx
        .recv()
        .map_err(|_| TransportError::Protocol("a network thread did not start".into()))??;
    Ok(NetThread {
        handle,
        endpoint,
        _stop: stop,
    })
}
