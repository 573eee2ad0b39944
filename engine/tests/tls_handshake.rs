//! Real QUIC handshakes on 127.0.0.1: pinning, WebPKI roots, no verification,
//! and the messages both ends print when it fails.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use isochron_engine::net::tls::{
    ALPN, Fingerprint, Identity, PeerSeen, TlsError, Trust, client_config,
    describe_handshake_error, server_config, server_name,
};
use quinn::{Connection, ConnectionError, Endpoint, TransportConfig};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

fn transport() -> Arc<TransportConfig> {
    let mut transport = TransportConfig::default();
    transport.max_idle_timeout(Some(Duration::from_secs(5).try_into().unwrap()));
    Arc::new(transport)
}

fn server(identity: &Identity) -> Endpoint {
    let config = server_config(identity, transport()).unwrap();
    Endpoint::server(config, "127.0.0.1:0".parse().unwrap()).unwrap()
}

fn addr(endpoint: &Endpoint) -> SocketAddr {
    endpoint.local_addr().unwrap()
}

/// Both ends of one handshake: (client result, what it saw, server result).
struct Outcome {
    client: Result<Connection, ConnectionError>,
    seen: PeerSeen,
    server: Result<Connection, ConnectionError>,
}

async fn handshake(server: &Endpoint, trust: &Trust) -> Outcome {
    let (config, seen) =
        client_config(trust, &Identity::ephemeral().unwrap(), transport()).unwrap();
    let mut client = Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    client.set_default_client_config(config);
    let connecting = client.connect(addr(server), server_name(trust)).unwrap();
    let accepting = async {
        let incoming = server.accept().await.expect("server endpoint open");
        incoming.await
    };
    let (client, server) = tokio::time::timeout(Duration::from_secs(10), async {
        tokio::join!(connecting, accepting)
    })
    .await
    .expect("handshake finished in time");
    Outcome {
        client,
        seen,
        server,
    }
}

/// A datagram and a bidirectional stream each way.
async fn round_trip(client: &Connection, server: &Connection) {
    client.send_datagram(b"ping"[..].into()).unwrap();
    assert_eq!(&server.read_datagram().await.unwrap()[..], b"ping");
    server.send_datagram(b"pong"[..].into()).unwrap();
    assert_eq!(&client.read_datagram().await.unwrap()[..], b"pong");

    let (mut send, mut recv) = client.open_bi().await.unwrap();
    send.write_all(b"hello").await.unwrap();
    send.finish().unwrap();
    let (mut s_send, mut s_recv) = server.accept_bi().await.unwrap();
    assert_eq!(s_recv.read_to_end(64).await.unwrap(), b"hello");
    s_send.write_all(b"olleh").await.unwrap();
    s_send.finish().unwrap();
    assert_eq!(recv.read_to_end(64).await.unwrap(), b"olleh");
}

fn alpn_of(connection: &Connection) -> Option<Vec<u8>> {
    connection
        .handshake_data()?
        .downcast::<quinn::crypto::rustls::HandshakeData>()
        .ok()?
        .protocol
}

fn client_message(outcome: &Outcome) -> String {
    let err = outcome.client.as_ref().expect_err("client must fail");
    describe_handshake_error(err, Some(&outcome.seen))
}

fn server_message(outcome: &Outcome) -> String {
    let err = outcome.server.as_ref().expect_err("server must fail");
    describe_handshake_error(err, None)
}

#[tokio::test]
async fn the_right_pin_connects_and_carries_data() {
    let identity = Identity::ephemeral().unwrap();
    let server = server(&identity);
    let trust = Trust::Pinned(vec![identity.fingerprint()]);
    let outcome = handshake(&server, &trust).await;
    let (client, served) = (outcome.client.unwrap(), outcome.server.unwrap());
    assert_eq!(outcome.seen.get(), Some(identity.fingerprint()));
    assert_eq!(alpn_of(&client).as_deref(), Some(ALPN));
    assert_eq!(alpn_of(&served).as_deref(), Some(ALPN));
    round_trip(&client, &served).await;
}

#[tokio::test]
async fn one_right_pin_among_several_connects() {
    let identity = Identity::ephemeral().unwrap();
    let server = server(&identity);
    let others = [
        Identity::ephemeral().unwrap(),
        Identity::ephemeral().unwrap(),
    ];
    let trust = Trust::Pinned(vec![
        others[0].fingerprint(),
        identity.fingerprint(),
        others[1].fingerprint(),
    ]);
    let outcome = handshake(&server, &trust).await;
    round_trip(&outcome.client.unwrap(), &outcome.server.unwrap()).await;
}

#[tokio::test]
async fn a_wrong_pin_is_refused_with_both_fingerprints_on_both_ends() {
    let identity = Identity::ephemeral().unwrap();
    let server = server(&identity);
    let pinned = Identity::ephemeral().unwrap().fingerprint();
    let outcome = handshake(&server, &Trust::Pinned(vec![pinned])).await;

    assert_eq!(outcome.seen.get(), Some(identity.fingerprint()));
    let client = client_message(&outcome);
    assert!(client.contains("fingerprint mismatch"), "{client}");
    assert!(
        client.contains(&format!("presented {}", identity.fingerprint())),
        "{client}"
    );
    assert!(client.contains(&format!("pinned {pinned}")), "{client}");

    let server = server_message(&outcome);
    assert!(
        server.contains("the sender rejected our certificate"),
        "{server}"
    );
    // The sender's close reason tells the receiver what it expected.
    assert!(server.contains(&pinned.to_string()), "{server}");
}

#[tokio::test]
async fn several_wrong_pins_are_all_listed() {
    let identity = Identity::ephemeral().unwrap();
    let server = server(&identity);
    let pins: Vec<Fingerprint> = (0..2)
        .map(|_| Identity::ephemeral().unwrap().fingerprint())
        .collect();
    let outcome = handshake(&server, &Trust::Pinned(pins.clone())).await;
    let client = client_message(&outcome);
    assert!(
        client.contains(&format!("pinned one of {}, {}", pins[0], pins[1])),
        "{client}"
    );
}

#[test]
fn an_empty_pin_list_is_a_configuration_error() {
    let err = client_config(
        &Trust::Pinned(vec![]),
        &Identity::ephemeral().unwrap(),
        transport(),
    )
    .unwrap_err();
    assert!(matches!(err, TlsError::NoPins), "{err}");
}

#[derive(Debug)]
struct Fixed(Arc<rustls::sign::CertifiedKey>);

impl rustls::server::ResolvesServerCert for Fixed {
    fn resolve(
        &self,
        _: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// A receiver that shows the pinned certificate but signs with another key
/// (as one that copied the certificate but not the key would): the pin
/// matches, the TLS 1.3 signature check must still refuse it.
#[tokio::test]
async fn the_pinned_certificate_without_its_key_is_refused() {
    let shown = rcgen::generate_simple_self_signed(vec!["isochron".to_owned()]).unwrap();
    let other_key = KeyPair::generate().unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let signing_key = provider
        .key_provider
        .load_private_key(
            rustls::pki_types::PrivatePkcs8KeyDer::from(other_key.serialize_der()).into(),
        )
        .unwrap();
    let certified = rustls::sign::CertifiedKey::new(vec![shown.cert.der().clone()], signing_key);
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Fixed(Arc::new(certified))));
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let quic = quinn::crypto::rustls::QuicServerConfig::try_from(tls).unwrap();
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(quic));
    config.transport_config(transport());
    let server = Endpoint::server(config, "127.0.0.1:0".parse().unwrap()).unwrap();

    let pin = Fingerprint::of(shown.cert.der());
    let outcome = handshake(&server, &Trust::Pinned(vec![pin])).await;
    assert_eq!(outcome.seen.get(), Some(pin));
    let client = client_message(&outcome);
    assert!(client.contains("could not prove it holds"), "{client}");
    let server = server_message(&outcome);
    assert!(server.contains("handshake signature"), "{server}");
}

/// A CA and the PEM files it produced.
struct Pki {
    ca_pem: PathBuf,
    cert_pem: PathBuf,
    key_pem: PathBuf,
    leaf: Fingerprint,
}

/// An rcgen CA named `name` signing a leaf for "localhost", written to `dir`.
fn pki(dir: &Path, name: &str) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, name);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);

    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();

    let write = |file: &str, pem: String| {
        let path = dir.join(format!("{name}-{file}"));
        std::fs::write(&path, pem).unwrap();
        path
    };
    Pki {
        ca_pem: write("ca.pem", ca_cert.pem()),
        cert_pem: write("cert.pem", leaf_cert.pem()),
        key_pem: write("key.pem", leaf_key.serialize_pem()),
        leaf: Fingerprint::of(leaf_cert.der()),
    }
}

fn roots(ca_pem: &Path, server_name: &str) -> Trust {
    Trust::Roots {
        ca_pem: ca_pem.to_owned(),
        server_name: server_name.to_owned(),
    }
}

#[tokio::test]
async fn a_ca_signed_pair_connects_with_roots() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = pki(tmp.path(), "good");
    let identity = Identity::from_pem_files(&pki.cert_pem, &pki.key_pem).unwrap();
    assert_eq!(identity.fingerprint(), pki.leaf);
    let server = server(&identity);
    let trust = roots(&pki.ca_pem, "localhost");
    assert_eq!(server_name(&trust), "localhost");
    let outcome = handshake(&server, &trust).await;
    assert_eq!(outcome.seen.get(), Some(pki.leaf));
    round_trip(&outcome.client.unwrap(), &outcome.server.unwrap()).await;
}

#[tokio::test]
async fn another_ca_is_an_unknown_issuer() {
    let tmp = tempfile::tempdir().unwrap();
    let pki_good = pki(tmp.path(), "good");
    let pki_other = pki(tmp.path(), "other");
    let identity = Identity::from_pem_files(&pki_good.cert_pem, &pki_good.key_pem).unwrap();
    let server = server(&identity);
    let outcome = handshake(&server, &roots(&pki_other.ca_pem, "localhost")).await;
    let client = client_message(&outcome);
    assert!(client.contains("unknown issuer"), "{client}");
    assert!(client.contains("other-ca.pem"), "{client}");
    assert!(client.contains(&pki_good.leaf.to_string()), "{client}");
    let server = server_message(&outcome);
    assert!(
        server.contains("the sender rejected our certificate"),
        "{server}"
    );
}

#[tokio::test]
async fn a_wrong_server_name_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = pki(tmp.path(), "good");
    let identity = Identity::from_pem_files(&pki.cert_pem, &pki.key_pem).unwrap();
    let server = server(&identity);
    let outcome = handshake(&server, &roots(&pki.ca_pem, "example.com")).await;
    let client = client_message(&outcome);
    assert!(
        client.contains("not valid for the name \"example.com\""),
        "{client}"
    );
    assert!(client.contains("it names: localhost"), "{client}");
    assert!(server_message(&outcome).contains("rejected our certificate"));
}

#[test]
fn roots_configuration_errors_name_the_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = pki(tmp.path(), "good");
    let err = client_config(
        &roots(&pki.ca_pem, "not a name!"),
        &Identity::ephemeral().unwrap(),
        transport(),
    )
    .unwrap_err();
    assert!(matches!(err, TlsError::InvalidServerName { .. }), "{err}");
    let missing = tmp.path().join("nope.pem");
    let err = client_config(
        &roots(&missing, "localhost"),
        &Identity::ephemeral().unwrap(),
        transport(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("nope.pem"), "{err}");
}

/// Collects the text of WARN and ERROR events on this thread.
#[derive(Clone, Default)]
struct Warnings(Arc<Mutex<Vec<String>>>);

impl tracing::Subscriber for Warnings {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        *metadata.level() <= tracing::Level::WARN
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct Text(String);
        impl tracing::field::Visit for Text {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                let _ = write!(self.0, "{}={value:?} ", field.name());
            }
        }
        let mut text = Text(String::new());
        event.record(&mut text);
        self.0.lock().unwrap().push(text.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// Current-thread runtime: the endpoint drivers run on this thread, so the
/// thread's subscriber sees the verifier's warning too.
#[tokio::test(flavor = "current_thread")]
async fn dangerously_unverified_connects_to_anything_and_warns() {
    let warnings = Warnings::default();
    let _guard = tracing::subscriber::set_default(warnings.clone());
    let identity = Identity::ephemeral().unwrap();
    let server = server(&identity);
    let trust = Trust::DangerouslyUnverified;
    let outcome = handshake(&server, &trust).await;
    assert_eq!(outcome.seen.get(), Some(identity.fingerprint()));
    round_trip(&outcome.client.unwrap(), &outcome.server.unwrap()).await;

    let warnings = warnings.0.lock().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("TLS verification is OFF")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains(&identity.fingerprint().to_string())),
        "the per-connection warning names what was accepted: {warnings:?}"
    );
}

#[tokio::test]
async fn no_receiver_times_out_with_a_hint() {
    let mut transport = TransportConfig::default();
    transport.max_idle_timeout(Some(Duration::from_millis(300).try_into().unwrap()));
    // The idle timeout is at least 3 PTO, about 3 s with the default initial RTT.
    transport.initial_rtt(Duration::from_millis(10));
    let trust = Trust::Pinned(vec![Identity::ephemeral().unwrap().fingerprint()]);
    let (config, seen) =
        client_config(&trust, &Identity::ephemeral().unwrap(), Arc::new(transport)).unwrap();
    // A bound UDP socket that never answers.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut client = Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    client.set_default_client_config(config);
    let err = client
        .connect(silent.local_addr().unwrap(), server_name(&trust))
        .unwrap()
        .await
        .unwrap_err();
    assert_eq!(err, ConnectionError::TimedOut);
    let message = describe_handshake_error(&err, Some(&seen));
    assert!(message.contains("no answer from the receiver"), "{message}");
}
