//! The HTTP client behind `fetch`: resolve, check every address, dial by IP, speak HTTP/1.1
//! (over TLS for `https:`), follow redirects, read a bounded body.
//!
//! Each request opens its own connection and closes it once the body is read: machines fetch
//! rarely, and a pool keyed by host would have to re-check the policy on every reuse anyway.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;

use super::error::FetchError;
use super::policy::AddressPolicy;
use super::request::FetchRequest;
use super::target::Target;

/// The `User-Agent` sent when the machine names none.
const USER_AGENT: &str = concat!("statewire/", env!("CARGO_PKG_VERSION"));

/// Request headers that describe a body, dropped when a redirect turns the request into a GET.
const BODY_HEADERS: &[&str] = &[
    "content-type",
    "content-encoding",
    "content-language",
    "content-location",
];

/// Request headers that carry credentials, dropped when a redirect leaves the origin.
const CREDENTIAL_HEADERS: &[&str] = &["authorization", "cookie", "proxy-authorization"];

/// What the client needs, shared by every request.
pub(super) struct Client {
    pub policy: AddressPolicy,
    pub tls: TlsConnector,
    pub max_response_bytes: u64,
    pub max_redirects: u32,
}

/// A response whose body has been read in full.
#[derive(Debug)]
pub(super) struct Fetched {
    pub status: StatusCode,
    pub reason: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub url: String,
    pub redirects: u32,
}

/// Aborts the task driving a connection when the request is done with it, finished or not.
struct ConnectionTask(JoinHandle<()>);

impl Drop for ConnectionTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Client {
    /// Sends `req`, following redirects, and reads the final body.
    pub async fn send(&self, req: FetchRequest) -> Result<Fetched, FetchError> {
        let FetchRequest {
            mut method,
            mut target,
            mut headers,
            mut body,
        } = req;
        let mut redirects = 0;
        loop {
            let (response, _conn) = self.exchange(&method, &target, &headers, &body).await?;
            let status = response.status();
            let location = redirect_location(status, response.headers());
            let Some(location) = location else {
                return self.read_body(&target, response, redirects).await;
            };
            if redirects >= self.max_redirects {
                return Err(FetchError::TooManyRedirects {
                    max: self.max_redirects,
                });
            }
            redirects += 1;
            let next = target
                .join(&location)
                .map_err(|reason| FetchError::Redirect {
                    host: target.host.clone(),
                    reason,
                })?;
            let to_get = (status == StatusCode::SEE_OTHER && method != Method::HEAD)
                || (matches!(status, StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND)
                    && method == Method::POST);
            if to_get {
                method = Method::GET;
                body = Bytes::new();
                headers.retain(|(name, _)| !BODY_HEADERS.contains(&name.as_str()));
            }
            if !target.same_origin(&next) {
                headers.retain(|(name, _)| !CREDENTIAL_HEADERS.contains(&name.as_str()));
            }
            target = next;
        }
    }

    /// One request and the head of its response, on a fresh connection to an allowed address.
    async fn exchange(
        &self,
        method: &Method,
        target: &Target,
        headers: &[(header::HeaderName, HeaderValue)],
        body: &Bytes,
    ) -> Result<(http::Response<Incoming>, ConnectionTask), FetchError> {
        let stream = self.connect(target).await?;
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(target.path_and_query.as_str());
        let host = HeaderValue::from_str(&target.authority()).map_err(|_| FetchError::Http {
            host: target.host.clone(),
            reason: "the host cannot be sent as a Host header".into(),
        })?;
        builder = builder.header(header::HOST, host);
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        if !headers.iter().any(|(n, _)| *n == header::USER_AGENT) {
            builder = builder.header(header::USER_AGENT, USER_AGENT);
        }
        let request = builder
            .body(Full::new(body.clone()))
            .map_err(|e| FetchError::Http {
                host: target.host.clone(),
                reason: e.to_string(),
            })?;
        if target.is_https() {
            let name = ServerName::try_from(target.host.clone()).map_err(|_| FetchError::Tls {
                host: target.host.clone(),
                reason: "the host is not a valid TLS server name".into(),
            })?;
            let tls = self
                .tls
                .connect(name, stream)
                .await
                .map_err(|e| FetchError::Tls {
                    host: target.host.clone(),
                    reason: e.to_string(),
                })?;
            send_over(tls, request, target).await
        } else {
            send_over(stream, request, target).await
        }
    }

    /// Resolves the host and dials, in order, each address the policy allows. When it allows
    /// none, the first refusal is the error.
    async fn connect(&self, target: &Target) -> Result<TcpStream, FetchError> {
        let addresses = resolve(target).await?;
        let mut refusal = None;
        let mut last_error = None;
        for addr in addresses {
            if let Err(denial) = self.policy.check(&target.host, target.port, addr) {
                refusal.get_or_insert(denial);
                continue;
            }
            match TcpStream::connect(SocketAddr::new(addr, target.port)).await {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    return Ok(stream);
                }
                Err(e) => last_error = Some(e),
            }
        }
        match (last_error, refusal) {
            (Some(e), _) => Err(FetchError::Connect {
                host: target.host.clone(),
                reason: e.to_string().to_lowercase(),
            }),
            (None, Some(denial)) => Err(FetchError::Refused {
                host: target.host.clone(),
                denial,
            }),
            (None, None) => Err(FetchError::Resolve {
                host: target.host.clone(),
                reason: "no address".into(),
            }),
        }
    }

    /// Reads the body, refusing it once it passes the size limit.
    async fn read_body(
        &self,
        target: &Target,
        response: http::Response<Incoming>,
        redirects: u32,
    ) -> Result<Fetched, FetchError> {
        let limit = self.max_response_bytes;
        let (parts, mut incoming) = response.into_parts();
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > limit) {
            return Err(FetchError::TooLarge { limit });
        }
        let mut body = BytesMut::new();
        while let Some(frame) = incoming.frame().await {
            let frame = frame.map_err(|e| FetchError::Http {
                host: target.host.clone(),
                reason: e.to_string(),
            })?;
            if let Ok(data) = frame.into_data() {
                if (body.len() + data.len()) as u64 > limit {
                    return Err(FetchError::TooLarge { limit });
                }
                body.extend_from_slice(&data);
            }
        }
        let reason = parts
            .extensions
            .get::<hyper::ext::ReasonPhrase>()
            .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned());
        Ok(Fetched {
            status: parts.status,
            reason,
            headers: parts.headers,
            body: body.freeze(),
            url: target.to_string(),
            redirects,
        })
    }
}

/// The addresses of the target's host: the literal itself, or what the resolver answers.
async fn resolve(target: &Target) -> Result<Vec<IpAddr>, FetchError> {
    if let Ok(ip) = target.host.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    let answers = tokio::net::lookup_host((target.host.as_str(), target.port))
        .await
        .map_err(|e| FetchError::Resolve {
            host: target.host.clone(),
            reason: e.to_string().to_lowercase(),
        })?;
    let mut addresses: Vec<IpAddr> = Vec::new();
    for answer in answers {
        if !addresses.contains(&answer.ip()) {
            addresses.push(answer.ip());
        }
    }
    Ok(addresses)
}

/// HTTP/1.1 over `io`: the handshake, the request, the response head.
async fn send_over<IO>(
    io: IO,
    request: Request<Full<Bytes>>,
    target: &Target,
) -> Result<(http::Response<Incoming>, ConnectionTask), FetchError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let http_error = |e: hyper::Error| FetchError::Http {
        host: target.host.clone(),
        reason: e.to_string(),
    };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(http_error)?;
    let task = ConnectionTask(tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "fetch connection ended with an error");
        }
    }));
    let response = sender.send_request(request).await.map_err(http_error)?;
    Ok((response, task))
}

/// The `Location` of a redirect response, when it is one that `fetch` follows.
fn redirect_location(status: StatusCode, headers: &HeaderMap) -> Option<String> {
    let follows = matches!(
        status,
        StatusCode::MOVED_PERMANENTLY
            | StatusCode::FOUND
            | StatusCode::SEE_OTHER
            | StatusCode::TEMPORARY_REDIRECT
            | StatusCode::PERMANENT_REDIRECT
    );
    if !follows {
        return None;
    }
    let value = headers.get(header::LOCATION)?;
    Some(String::from_utf8_lossy(value.as_bytes()).into_owned())
}

/// The TLS settings of every `https:` fetch: the Mozilla root set, HTTP/1.1 by ALPN.
pub(super) fn tls_connector() -> Result<TlsConnector, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}
