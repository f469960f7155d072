//! One keep-alive HTTP/1.1 connection to the service, with the auth header already built.
//!
//! Raw `hyper::client::conn::http1` rather than a pooled client: each load task owns exactly
//! one connection, so a pool would only add locking and bookkeeping on a machine where the
//! generator competes with the server for two cores.

use std::net::SocketAddr;

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Headers shared by every request of a run; cloning a `HeaderValue` is a reference-count bump.
#[derive(Clone)]
pub struct Headers {
    host: HeaderValue,
    auth: Option<HeaderValue>,
    json: HeaderValue,
}

impl Headers {
    pub fn new(addr: SocketAddr, api_key: Option<&str>) -> anyhow::Result<Headers> {
        let auth = api_key
            .map(|key| HeaderValue::from_str(&format!("Bearer {key}")))
            .transpose()
            .context("the API key is not a valid header value")?;
        Ok(Headers {
            host: HeaderValue::from_str(&addr.to_string())?,
            auth,
            json: HeaderValue::from_static("application/json"),
        })
    }
}

pub struct Client {
    sender: SendRequest<Full<Bytes>>,
    headers: Headers,
}

impl Client {
    pub async fn connect(addr: SocketAddr, headers: Headers) -> anyhow::Result<Client> {
        let stream = TcpStream::connect(addr).await.with_context(|| format!("connecting to {addr}"))?;
        // Requests are small and answered one at a time: Nagle would only add delay.
        stream.set_nodelay(true)?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.context("HTTP/1.1 handshake")?;
        // The connection future does the actual I/O; its errors surface through `send`, and it
        // ends by itself once the `SendRequest` half is dropped.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Client { sender, headers })
    }

    /// Sends one request and reads the whole answer (so the connection can be reused).
    /// An empty `body` sends no content type.
    pub async fn send(&mut self, method: &Method, path: &Uri, body: Bytes) -> anyhow::Result<(StatusCode, Bytes)> {
        let mut builder =
            Request::builder().method(method.clone()).uri(path.clone()).header(HOST, self.headers.host.clone());
        if let Some(auth) = &self.headers.auth {
            builder = builder.header(AUTHORIZATION, auth.clone());
        }
        if !body.is_empty() {
            builder = builder.header(CONTENT_TYPE, self.headers.json.clone());
        }
        let request = builder.body(Full::new(body))?;
        self.sender.ready().await.context("connection closed")?;
        let response = self.sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    /// A setup call: JSON in, JSON out, anything but 2xx is an error naming the answer.
    pub async fn json(
        &mut self,
        method: Method,
        path: &str,
        body: &serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        let uri = Uri::try_from(path).with_context(|| format!("{path} is not a request path"))?;
        let (status, answer) = self.send(&method, &uri, Bytes::from(serde_json::to_vec(body)?)).await?;
        if !status.is_success() {
            bail!("{method} {path} answered {status}: {}", String::from_utf8_lossy(&answer));
        }
        serde_json::from_slice(&answer)
            .with_context(|| format!("{method} {path} answered with something other than JSON"))
    }
}
