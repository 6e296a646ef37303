//! `--ice-servers URL`: the `RTCIceServer` list a web service hands to browsers (Turnpike's
//! `GET /api/ice-servers`, or any service answering `{"iceServers": [...]}` or a bare
//! array), fetched over HTTP or HTTPS, with a join token as `Authorization: Bearer` when
//! given.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use axum::body::Body;
use axum::http::{header, Request, Uri};
use hyper_util::rt::TokioIo;
use ice::TurnCredentials;
use serde::Deserialize;

use crate::client::p2p::ice_servers::IceServer;

/// The largest answer read.
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// How long the fetch may take.
const FETCH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The two shapes of an answer.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Answer {
    /// `{"iceServers": [...]}`, as Turnpike answers.
    Object {
        #[serde(rename = "iceServers")]
        ice_servers: Vec<IceServer>,
    },
    /// A bare `[...]`.
    List(Vec<IceServer>),
}

/// Every URL of the list, with the credentials of its entry.
pub async fn fetch(
    url: &str,
    token: Option<&str>,
    ca_file: Option<&Path>,
) -> anyhow::Result<Vec<(String, Option<TurnCredentials>)>> {
    let body = tokio::time::timeout(FETCH_TIMEOUT, get(url, token, ca_file))
        .await
        .map_err(|_| anyhow::anyhow!("--ice-servers {url}: no answer within 10 s"))??;
    let answer: Answer = serde_json::from_slice(&body)
        .with_context(|| format!("--ice-servers {url}: not an RTCIceServer list"))?;
    let list = match answer {
        Answer::Object { ice_servers } | Answer::List(ice_servers) => ice_servers,
    };
    Ok(urls_of(&list))
}

/// The URLs of `list`, in order, each with its entry's credentials.
fn urls_of(list: &[IceServer]) -> Vec<(String, Option<TurnCredentials>)> {
    let mut out = Vec::new();
    for server in list {
        let credentials = match (&server.username, &server.credential) {
            (Some(username), Some(password)) => Some(TurnCredentials {
                username: username.clone(),
                password: password.clone(),
            }),
            _ => None,
        };
        for url in server.urls.iter() {
            out.push((url.to_owned(), credentials.clone()));
        }
    }
    out
}

/// One GET; the body of a 200 answer.
async fn get(url: &str, token: Option<&str>, ca_file: Option<&Path>) -> anyhow::Result<Vec<u8>> {
    let uri: Uri = url
        .parse()
        .with_context(|| format!("--ice-servers {url}: not a URL"))?;
    let secure = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => bail!("--ice-servers {url}: an http:// or https:// URL is needed"),
    };
    let authority = uri
        .authority()
        .with_context(|| format!("--ice-servers {url}: no host"))?
        .clone();
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = authority
        .port_u16()
        .unwrap_or(if secure { 443 } else { 80 });
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .with_context(|| format!("--ice-servers: connecting to {authority}"))?;
    let path = uri
        .path_and_query()
        .map_or("/".to_owned(), ToString::to_string);
    let mut request = Request::get(path).header(header::HOST, authority.as_str());
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = request.body(Body::empty())?;
    let response = if secure {
        let roots = crate::tls::client_roots(ca_file)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let name = rustls::pki_types::ServerName::try_from(host.clone())
            .with_context(|| format!("--ice-servers: \"{host}\" is not a TLS server name"))?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .with_context(|| format!("--ice-servers: TLS with {authority}"))?;
        send(TokioIo::new(tls), request).await?
    } else {
        send(TokioIo::new(tcp), request).await?
    };
    let (status, body) = response;
    if !status.is_success() {
        bail!(
            "--ice-servers {url}: the server answered {status}{}",
            if status.as_u16() == 401 {
                " (a join token is needed: --token)"
            } else {
                ""
            }
        );
    }
    Ok(body)
}

/// Sends `request` over a fresh HTTP/1.1 connection.
async fn send<T>(
    io: TokioIo<T>,
    request: Request<Body>,
) -> anyhow::Result<(axum::http::StatusCode, Vec<u8>)>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .context("--ice-servers: HTTP handshake")?;
    tokio::spawn(connection);
    let response = sender
        .send_request(request)
        .await
        .context("--ice-servers: request")?;
    let status = response.status();
    let body = axum::body::to_bytes(Body::new(response.into_body()), MAX_ANSWER_BYTES)
        .await
        .context("--ice-servers: reading the answer")?;
    Ok((status, body.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_shapes_and_every_url_with_its_credentials() {
        let object: Answer = serde_json::from_str(
            r#"{"iceServers":[{"urls":["stun:h:3478"]},{"urls":["turn:h?transport=udp","turns:h"],"username":"1:u","credential":"pw"}],"iceTtl":5}"#,
        )
        .unwrap();
        let Answer::Object { ice_servers } = object else {
            panic!("an object")
        };
        let urls = urls_of(&ice_servers);
        assert_eq!(urls.len(), 3);
        assert_eq!(urls[0], ("stun:h:3478".to_owned(), None));
        assert_eq!(urls[2].0, "turns:h");
        assert_eq!(urls[2].1.as_ref().unwrap().username, "1:u");
        let list: Answer = serde_json::from_str(r#"[{"urls":"stun:h"}]"#).unwrap();
        assert!(matches!(list, Answer::List(l) if l.len() == 1));
    }
}
