//! The MID's own HTTP(S) client for the logins midfleet's product client
//! does not make: a client certificate in the TLS handshake (mutual TLS)
//! and a bearer token (IPKI). One request per connection (the emulated
//! instance answers `Connection: close`), JSON in and out.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::Value;

/// How the MID proves who it is.
pub enum Auth {
    /// The chain and PKCS#8 key in PEM (`DefaultSecurityKeyPairHandle`).
    ClientCertificate(String),
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// No proof: only the IPKI registration, which the key authorises.
    None,
}

/// Why a call failed.
#[derive(Debug)]
pub enum CallError {
    /// The instance answered 401 (or refused the client certificate in
    /// the handshake): the login was refused.
    Refused(String),
    /// Any other answer or failure.
    Failed(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Refused(message) | CallError::Failed(message) => {
                formatter.write_str(message)
            }
        }
    }
}

/// Whether the PEM holds a certificate and a PKCS#8 private key (what
/// `manage-certificates.sh -a` requires: "Could not find valid private key"
/// otherwise).
pub fn has_valid_identity(pem: &str) -> bool {
    let certificates = CertificateDer::pem_slice_iter(pem.as_bytes())
        .filter_map(Result::ok)
        .count();
    let pkcs8 = rustls::pki_types::PrivatePkcs8KeyDer::pem_slice_iter(pem.as_bytes())
        .filter_map(Result::ok)
        .count();
    certificates > 0 && pkcs8 > 0
}

/// One call: `method` `path_and_query` on `url` (`http://` or `https://`,
/// host and port only), answering (status, JSON body).
pub fn call(
    url: &str,
    ca_file: Option<&Path>,
    auth: &Auth,
    method: &str,
    path_and_query: &str,
    body: Option<&Value>,
) -> Result<(u16, Value), CallError> {
    let failed = |message: String| CallError::Failed(message);
    let (https, authority) = if let Some(rest) = url.strip_prefix("https://") {
        (true, rest.trim_end_matches('/'))
    } else if let Some(rest) = url.strip_prefix("http://") {
        (false, rest.trim_end_matches('/'))
    } else {
        return Err(failed(format!("{url}: not an http(s) URL")));
    };
    let host = authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host)
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let address = if authority.contains(':') {
        authority.to_string()
    } else if https {
        format!("{authority}:443")
    } else {
        format!("{authority}:80")
    };
    let tcp =
        TcpStream::connect(&address).map_err(|error| failed(format!("{address}: {error}")))?;
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
    let body_text = body.map(Value::to_string).unwrap_or_default();
    let mut request = format!(
        "{method} {path_and_query} HTTP/1.1\r\nHost: {authority}\r\nAccept: application/json\r\nConnection: close\r\nContent-Length: {}\r\n",
        body_text.len()
    );
    if body.is_some() {
        request.push_str("Content-Type: application/json\r\n");
    }
    if let Auth::Bearer(token) = auth {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(&body_text);
    let mut answer = Vec::new();
    if https {
        let config = client_config(ca_file, auth)?;
        let name = ServerName::try_from(host.clone())
            .map_err(|error| failed(format!("{host}: {error}")))?;
        let connection = rustls::ClientConnection::new(config, name)
            .map_err(|error| failed(error.to_string()))?;
        let mut stream = rustls::StreamOwned::new(connection, tcp);
        let written = stream
            .write_all(request.as_bytes())
            .and_then(|()| stream.flush());
        let read = written.and_then(|()| read_all(&mut stream, &mut answer));
        if let Err(error) = read {
            // A server that rejects the client certificate ends the
            // handshake with an alert: a refused login.
            let text = error.to_string();
            let presented = matches!(auth, Auth::ClientCertificate(_));
            if presented && text.contains("received fatal alert") {
                return Err(CallError::Refused(format!("TLS handshake refused: {text}")));
            }
            return Err(failed(format!("{address}: {text}")));
        }
    } else {
        let mut stream = tcp;
        stream
            .write_all(request.as_bytes())
            .and_then(|()| read_all(&mut stream, &mut answer))
            .map_err(|error| failed(format!("{address}: {error}")))?;
    }
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| failed("a truncated answer".into()))?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| failed("a bad status line".into()))?;
    let json: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    if status == 401 {
        let message = json["error"]["message"].as_str().unwrap_or("401");
        let detail = json["error"]["detail"].as_str().unwrap_or_default();
        return Err(CallError::Refused(if detail.is_empty() {
            message.to_string()
        } else {
            format!("{message}: {detail}")
        }));
    }
    if !(200..300).contains(&status) {
        let detail = json["error"]["detail"].as_str().unwrap_or_default();
        let message = json["error"]["message"].as_str().unwrap_or_default();
        return Err(failed(format!("HTTP {status}: {message} {detail}")));
    }
    Ok((status, json))
}

/// Reads until the peer closes; a TLS peer that closes without
/// close_notify has still sent the whole answer.
fn read_all(stream: &mut dyn Read, answer: &mut Vec<u8>) -> io::Result<()> {
    match stream.read_to_end(answer) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::UnexpectedEof && !answer.is_empty() => Ok(()),
        Err(error) => Err(error),
    }
}

fn client_config(
    ca_file: Option<&Path>,
    auth: &Auth,
) -> Result<Arc<rustls::ClientConfig>, CallError> {
    let failed = |message: String| CallError::Failed(message);
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca_file) = ca_file {
        let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(ca_file)
            .and_then(|certificates| certificates.collect())
            .map_err(|error| failed(format!("{}: {error}", ca_file.display())))?;
        for certificate in certificates {
            roots
                .add(certificate)
                .map_err(|error| failed(format!("{}: {error}", ca_file.display())))?;
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|error| failed(error.to_string()))?
    .with_root_certificates(roots);
    let config = match auth {
        Auth::ClientCertificate(pem) => {
            let chain: Vec<CertificateDer<'static>> =
                CertificateDer::pem_slice_iter(pem.as_bytes())
                    .collect::<Result<_, _>>()
                    .map_err(|error| failed(format!("the keystore's certificate: {error}")))?;
            let key = PrivateKeyDer::from_pem_slice(pem.as_bytes())
                .map_err(|_| failed("Could not find valid private key".into()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|error| failed(format!("Could not find valid private key: {error}")))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}
