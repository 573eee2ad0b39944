//! Mutual authentication over real QUIC handshakes on 127.0.0.1: the
//! receiver learns which identity the sender holds the key of, and refuses
//! senders without a certificate, or with a certificate but not its key.

use std::sync::Arc;
use std::time::Duration;

use isochron_engine::net::tls::{
    ALPN, Identity, Trust, client_config, describe_handshake_error, peer_fingerprint,
    server_config, server_name,
};
use quinn::{ClientConfig, Connection, ConnectionError, Endpoint, TransportConfig};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

fn transport() -> Arc<TransportConfig> {
    let mut transport = TransportConfig::default();
    transport.max_idle_timeout(Some(Duration::from_secs(5).try_into().unwrap()));
    Arc::new(transport)
}

/// One handshake of `client` against a receiver endpoint presenting
/// `receiver`: (client side, server side).
async fn handshake(
    receiver: &Identity,
    client: ClientConfig,
) -> (
    Result<Connection, ConnectionError>,
    Result<Connection, ConnectionError>,
) {
    let config = server_config(receiver, transport()).unwrap();
    let server = Endpoint::server(config, "127.0.0.1:0".parse().unwrap()).unwrap();
    let mut endpoint = Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    endpoint.set_default_client_config(client);
    let connecting = endpoint
        .connect(server.local_addr().unwrap(), "isochron")
        .unwrap();
    let accepting = async { server.accept().await.expect("open").await };
    tokio::time::timeout(Duration::from_secs(10), async {
        tokio::join!(connecting, accepting)
    })
    .await
    .expect("handshake finished in time")
}

#[tokio::test]
async fn the_receiver_learns_the_senders_identity() {
    let receiver = Identity::ephemeral().unwrap();
    let sender = Identity::ephemeral().unwrap();
    let trust = Trust::Pinned(vec![receiver.fingerprint()]);
    let (client, _) = client_config(&trust, &sender, transport()).unwrap();
    assert_eq!(server_name(&trust), "isochron");
    let (client, served) = handshake(&receiver, client).await;
    let (client, served) = (client.unwrap(), served.unwrap());
    assert_eq!(peer_fingerprint(&served), Some(sender.fingerprint()));
    assert_eq!(peer_fingerprint(&client), Some(receiver.fingerprint()));
}

/// Accepts any receiver: these tests are about the receiver's checks.
#[derive(Debug)]
struct AnyServer(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Shows one certificate and signs with one key, matching or not.
#[derive(Debug)]
struct Fixed(Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for Fixed {
    fn resolve(
        &self,
        _: &[&[u8]],
        _: &[SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
    fn has_certs(&self) -> bool {
        true
    }
}

/// A raw client: no certificate, or `cert` shown with a key not its own.
fn raw_client(cert: Option<CertificateDer<'static>>) -> ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServer(provider)));
    let mut tls = match cert {
        None => builder.with_no_client_auth(),
        Some(cert) => {
            let other = rcgen::KeyPair::generate().unwrap();
            let key = rustls::pki_types::PrivatePkcs8KeyDer::from(other.serialize_der());
            let signing = rustls::crypto::ring::default_provider()
                .key_provider
                .load_private_key(key.into())
                .unwrap();
            let certified = rustls::sign::CertifiedKey::new(vec![cert], signing);
            builder.with_client_cert_resolver(Arc::new(Fixed(Arc::new(certified))))
        }
    };
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
    let mut config = ClientConfig::new(Arc::new(quic));
    config.transport_config(transport());
    config
}

/// Whichever end noticed first, the connection fails on both, and the
/// receiver says why in words.
async fn refused_reason(client: ClientConfig) -> String {
    let receiver = Identity::ephemeral().unwrap();
    let (client, served) = handshake(&receiver, client).await;
    let served = served.expect_err("the receiver must refuse");
    // The client may complete its side before it reads the alert.
    if let Ok(c) = client {
        let e = tokio::time::timeout(Duration::from_secs(5), c.closed())
            .await
            .expect("closed");
        assert!(!matches!(e, ConnectionError::LocallyClosed), "{e}");
    }
    describe_handshake_error(&served, None)
}

#[tokio::test]
async fn a_sender_without_a_certificate_is_refused() {
    let why = refused_reason(raw_client(None)).await;
    assert!(why.contains("the sender presented no certificate"), "{why}");
}

/// A sender that copied someone's certificate but not the key: the TLS 1.3
/// signature check refuses it, so a listed fingerprint cannot be borrowed.
#[tokio::test]
async fn a_sender_showing_a_certificate_without_its_key_is_refused() {
    let victim = rcgen::generate_simple_self_signed(vec!["isochron".to_owned()]).unwrap();
    let why = refused_reason(raw_client(Some(victim.cert.der().clone()))).await;
    assert!(
        why.contains("decrypt_error") || why.contains("signature"),
        "{why}"
    );
}
