//! The HTTP server: our own accept loop over hyper's HTTP/1 connections (instead of
//! `axum::serve`, which has no timeouts), with
//!
//! - a **connection cap** (`--max-connections`): a connection past it is answered
//!   `503` (JSON envelope, `Connection: close`) and closed at once, never queued;
//!   counted in `stockd_http_connections_refused_total`;
//! - per connection, one watchdog timer that follows the connection's phase
//!   ([`ConnState`]):
//!   - *head* (from the accept, or from the first byte of a request on a kept-alive
//!     connection, to the end of its headers): `--header-timeout`, then the
//!     connection is closed (slowloris);
//!   - *busy* (the service is handling a request): bounded by [`deadline`] below,
//!     with `--header-timeout` more as a backstop;
//!   - *responding* (the answer is written, until the socket flushed it) and *idle*
//!     (kept alive, no request begun): `--idle-timeout`, then it is closed (this also
//!     covers a client that stops reading its answer);
//! - a **request deadline** (`--request-timeout`, [`deadline`], run by the one
//!   middleware [`front`] around every route with the request counter and the
//!   replication headers): the body
//!   must arrive in time (else `408 REQUEST_TIMEOUT`, nothing was done), and the
//!   handler must answer in the time left (else `503 TIMEOUT`; the handler is not
//!   dropped but finishes in a task of its own, so a change is never left half
//!   made; its outcome is unknown to the caller, who retries with the same orderId
//!   or idempotency key or reads the resource);
//! - **graceful shutdown with a deadline** (`--shutdown-timeout`): on the signal the
//!   listener is closed; connections with no request in progress are closed at once;
//!   the others finish their request (keep-alive off) until the deadline, when the
//!   rest are closed (`stockd_http_connections_closed_at_shutdown_total`). A handler
//!   cut there has made at most one mutating engine call, which the engine completes
//!   anyway (its flows run on its coordinator, not in the caller's future); the
//!   caller then shuts the engine down, which syncs whatever was queued. Its client
//!   sees a closed connection: the outcome is unknown, as with any lost connection.
//!
//! Accepted sockets get `TCP_NODELAY`; keep-alive stays on; the per-request cost of
//! the watchdog is a few relaxed atomic stores and clock reads.

use crate::envelope::{now_ms, rfc3339, ApiError};
use crate::extract::MAX_BODY;
use crate::metrics::Metrics;
use axum::body::{Body, HttpBody};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::json;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Limits of the server (the `--header-timeout`, ... flags).
#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub header_timeout: Duration,
    pub request_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: u32,
    pub shutdown_timeout: Duration,
}

impl From<&crate::cli::HttpArgs> for HttpConfig {
    fn from(a: &crate::cli::HttpArgs) -> HttpConfig {
        HttpConfig {
            header_timeout: a.header_timeout,
            request_timeout: a.request_timeout,
            idle_timeout: a.idle_timeout,
            max_connections: a.max_connections,
            shutdown_timeout: a.shutdown_timeout,
        }
    }
}

/// Serves `router` on `listener` until `signal` resolves, then drains (see the
/// module docs). Returns when every connection is closed: at the latest
/// `shutdown_timeout` after the signal.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    cfg: HttpConfig,
    metrics: Arc<Metrics>,
    signal: impl Future<Output = ()>,
) {
    let cfg = Arc::new(cfg);
    let permits = Arc::new(Semaphore::new(cfg.max_connections as usize));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut builder = hyper::server::conn::http1::Builder::new();
    // hyper's own header timer also runs while a kept-alive connection waits, so it
    // would cap the idle timeout at the header timeout: the watchdog does both.
    builder.timer(TokioTimer::new()).header_read_timeout(None).keep_alive(true);
    // One write per answer: hyper copies the head and the (small) body into one
    // buffer instead of a writev of both (measured: ~5 % less CPU per request).
    builder.writev(false);
    let mut conns = JoinSet::new();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            biased;
            () = &mut signal => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let Ok(permit) = permits.clone().try_acquire_owned() else {
                        refuse(stream, &metrics);
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    metrics.http.accepted.fetch_add(1, Relaxed);
                    let conn = serve_conn(stream, router.clone(), builder.clone(), cfg.clone(), metrics.clone(), stop_rx.clone());
                    conns.spawn(async move {
                        conn.await;
                        drop(permit);
                    });
                }
                Err(e) => {
                    // Per-connection errors (reset before accept): go on. Out of file
                    // descriptors and the like: wait a little rather than spin.
                    if !matches!(e.kind(), io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::Interrupted) {
                        metrics.http.accept_errors.fetch_add(1, Relaxed);
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    tracing::info!(
        open = conns.len(),
        deadline_ms = cfg.shutdown_timeout.as_millis() as u64,
        "http: draining connections"
    );
    let drained =
        tokio::time::timeout(cfg.shutdown_timeout, async { while conns.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        let left = conns.len() as u64;
        metrics.http.closed_at_shutdown.fetch_add(left, Relaxed);
        tracing::warn!(connections = left, "http: shutdown deadline reached; closing the connections still open");
        conns.shutdown().await;
    }
}

/// The answer to a connection past the cap: written without waiting (a fresh
/// socket's send buffer has room), then the socket is closed.
fn refuse(stream: TcpStream, metrics: &Metrics) {
    metrics.http.refused.fetch_add(1, Relaxed);
    let body = json!({
        "success": false,
        "error": {"code": "SERVICE_UNAVAILABLE", "message": "too many open connections; retry later", "details": {"reason": "connection limit"}},
        "meta": {"timestamp": rfc3339(now_ms())},
    })
    .to_string();
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.try_write(answer.as_bytes());
    tracing::debug!("http: connection refused (limit reached)");
}

/// Phases of a connection, for its watchdog.
const IDLE: u8 = 0;
const HEAD: u8 = 1;
const BUSY: u8 = 2;
const RESPONDING: u8 = 3;

/// The clock of [`ConnState`]: microseconds since the first call.
fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

fn now_micros() -> u64 {
    base().elapsed().as_micros() as u64
}

fn instant_of(micros: u64) -> Instant {
    base() + Duration::from_micros(micros)
}

/// Where a connection is and since when. Written only from the connection's own
/// task (by the IO wrapper and the service, both polled inside hyper's connection
/// future), read by its watchdog in the same task: relaxed atomics suffice.
struct ConnState {
    phase: AtomicU8,
    since: AtomicU64,
    /// When bytes of a next request arrived while the previous answer was still
    /// being written (pipelining): its head phase starts then. 0: none.
    head_at: AtomicU64,
}

impl ConnState {
    fn new() -> ConnState {
        ConnState { phase: AtomicU8::new(HEAD), since: AtomicU64::new(now_micros()), head_at: AtomicU64::new(0) }
    }

    fn set(&self, phase: u8, at: u64) {
        self.phase.store(phase, Relaxed);
        self.since.store(at, Relaxed);
    }

    fn phase(&self) -> u8 {
        self.phase.load(Relaxed)
    }

    /// The phase and when it times out.
    fn deadline(&self, cfg: &HttpConfig) -> (u8, Instant) {
        let phase = self.phase();
        let limit = match phase {
            HEAD => cfg.header_timeout,
            BUSY => cfg.request_timeout + cfg.header_timeout,
            _ => cfg.idle_timeout,
        };
        (phase, instant_of(self.since.load(Relaxed)) + limit)
    }

    /// Bytes were read from the socket.
    fn on_read(&self) {
        match self.phase() {
            IDLE => self.set(HEAD, now_micros()),
            RESPONDING if self.head_at.load(Relaxed) == 0 => self.head_at.store(now_micros().max(1), Relaxed),
            _ => {}
        }
    }

    /// The socket flushed everything written so far.
    fn on_flushed(&self) {
        if self.phase() == RESPONDING {
            match self.head_at.swap(0, Relaxed) {
                0 => self.set(IDLE, now_micros()),
                at => self.set(HEAD, at),
            }
        }
    }
}

/// The socket, telling the connection's [`ConnState`] about reads and flushes.
struct Tracked {
    io: TcpStream,
    state: Arc<ConnState>,
}

impl AsyncRead for Tracked {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.state.on_read();
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.io).poll_flush(cx);
        if matches!(r, Poll::Ready(Ok(()))) {
            self.state.on_flushed();
        }
        r
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The router as hyper's service, marking the connection busy while it handles a
/// request.
#[derive(Clone)]
struct ConnService {
    router: Router,
    state: Arc<ConnState>,
}

impl hyper::service::Service<hyper::Request<Incoming>> for ConnService {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, req: hyper::Request<Incoming>) -> Self::Future {
        self.state.set(BUSY, now_micros());
        // Router is always ready (its poll_ready is `Ready(Ok(()))`).
        let fut = tower_service::Service::call(&mut self.router.clone(), req.map(Body::new));
        let state = self.state.clone();
        Box::pin(async move {
            let resp = fut.await;
            state.set(RESPONDING, now_micros());
            resp
        })
    }
}

async fn serve_conn(
    stream: TcpStream,
    router: Router,
    builder: hyper::server::conn::http1::Builder,
    cfg: Arc<HttpConfig>,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    struct Open<'a>(&'a Metrics);
    impl Drop for Open<'_> {
        fn drop(&mut self) {
            self.0.http.open.fetch_sub(1, Relaxed);
        }
    }
    metrics.http.open.fetch_add(1, Relaxed);
    let _open = Open(&metrics);
    let state = Arc::new(ConnState::new());
    let io = TokioIo::new(Tracked { io: stream, state: state.clone() });
    let conn = builder.serve_connection(io, ConnService { router, state: state.clone() });
    tokio::pin!(conn);
    let watchdog = tokio::time::sleep_until(state.deadline(&cfg).1);
    tokio::pin!(watchdog);
    let mut stopping = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "http: connection ended with an error");
                }
                break;
            }
            () = &mut watchdog => {
                let (phase, deadline) = state.deadline(&cfg);
                if Instant::now() >= deadline {
                    let counter = match phase {
                        HEAD => &metrics.http.header_timeouts,
                        BUSY => &metrics.http.request_timeouts,
                        _ => &metrics.http.idle_timeouts,
                    };
                    counter.fetch_add(1, Relaxed);
                    tracing::debug!(phase, "http: connection timed out; closing it");
                    break;
                }
                watchdog.as_mut().reset(deadline);
            }
            _ = stop.changed(), if !stopping => {
                stopping = true;
                // No request of this connection is being handled or answered:
                // close it now. Else finish the request in progress, then close.
                if matches!(state.phase(), IDLE | HEAD) {
                    break;
                }
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// What [`front`] needs (cloned for every request, so only that: the request
/// counters, the replication state and the request deadline).
#[derive(Clone)]
pub struct Front {
    metrics: Arc<Metrics>,
    replication: Option<Arc<crate::replication::Replication>>,
    request_timeout: Duration,
}

impl Front {
    pub fn new(state: &crate::app::AppState, request_timeout: Duration) -> Front {
        Front { metrics: state.metrics.clone(), replication: state.replication.clone(), request_timeout }
    }
}

/// The one middleware around every route (one layer, so one boxed service clone and
/// one boxed future per request, not three): from the outside in, the replication
/// headers (`app::add_replication_headers`), the request counter
/// (`metrics::Metrics::record`) and the request deadline ([`deadline`]).
pub async fn front(State(f): State<Front>, req: Request, next: Next) -> Response {
    // A clone of the matched path is a reference count, not a copy of the text.
    let matched = req.extensions().get::<axum::extract::MatchedPath>().cloned();
    let method = crate::metrics::method_name(req.method());
    let started = std::time::Instant::now();
    let mut resp = run_with_deadline(f.request_timeout, req, next).await;
    let route = matched.as_ref().map_or("unmatched", |p| p.as_str());
    f.metrics.record(method, route, resp.status().as_u16());
    tracing::debug!(%method, %route, status = resp.status().as_u16(), micros = started.elapsed().as_micros() as u64, "request");
    crate::app::add_replication_headers(f.replication.as_deref(), &mut resp);
    resp
}

/// Middleware: the whole-request deadline (`--request-timeout`), from the end of the
/// head to the answer. See the module docs.
pub async fn deadline(State(timeout): State<Duration>, req: Request, next: Next) -> Response {
    run_with_deadline(timeout, req, next).await
}

async fn run_with_deadline(timeout: Duration, req: Request, next: Next) -> Response {
    let until = Instant::now() + timeout;
    let (parts, body) = req.into_parts();
    let body = if body.is_end_stream() {
        body
    } else {
        match tokio::time::timeout_at(until, Limited::new(body, MAX_BODY).collect()).await {
            Ok(Ok(collected)) => Body::from(collected.to_bytes()),
            Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
                return ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "PAYLOAD_TOO_LARGE",
                    format!("request body is over {MAX_BODY} bytes"),
                )
                .with_details(json!({ "limit": MAX_BODY }))
                .into_response()
            }
            Ok(Err(e)) => return ApiError::validation("body", format!("cannot read the body: {e}")).into_response(),
            Err(_) => {
                let mut resp = ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "REQUEST_TIMEOUT",
                    format!("the request body did not arrive within {} ms; nothing was done", timeout.as_millis()),
                )
                .with_details(json!({ "timeoutMs": timeout.as_millis() as u64 }))
                .into_response();
                resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
                return resp;
            }
        }
    };
    let mut handling = Box::pin(next.run(Request::from_parts(parts, body)));
    match tokio::time::timeout_at(until, &mut handling).await {
        Ok(resp) => resp,
        Err(_) => {
            // Never drop a handler half-way: let it finish on its own.
            tokio::spawn(handling);
            let mut e = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "TIMEOUT",
                format!(
                    "no answer within {} ms; the request is still being completed and its outcome is unknown: \
                     retry it with the same orderId or idempotency key, or read the resource",
                    timeout.as_millis()
                ),
            )
            .with_details(json!({ "timeoutMs": timeout.as_millis() as u64, "outcome": "unknown" }));
            e.retry_after = Some(1);
            e.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use std::sync::atomic::AtomicBool;

    /// A handler that outlives the deadline answers 503 TIMEOUT and still runs to its
    /// end (its change is never left half made).
    #[tokio::test(start_paused = true)]
    async fn a_slow_handler_times_out_but_finishes() {
        let finished = Arc::new(AtomicBool::new(false));
        let f = finished.clone();
        let router = Router::new()
            .route(
                "/slow",
                get(move || async move {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    f.store(true, Relaxed);
                    "done"
                }),
            )
            .layer(axum::middleware::from_fn_with_state(Duration::from_secs(1), deadline));
        let req = Request::builder().uri("/slow").body(Body::empty()).unwrap();
        let resp = tower_service::Service::call(&mut router.clone(), req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "TIMEOUT", "{v}");
        assert!(!finished.load(Relaxed), "answered before the handler could finish");
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(finished.load(Relaxed), "the handler was dropped half-way");
    }

    #[test]
    fn phases() {
        let s = ConnState::new();
        let cfg = HttpConfig {
            header_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1,
            shutdown_timeout: Duration::from_secs(1),
        };
        assert_eq!(s.deadline(&cfg).0, HEAD);
        s.set(BUSY, now_micros());
        s.on_read(); // body bytes: still busy
        assert_eq!(s.phase(), BUSY);
        s.set(RESPONDING, now_micros());
        s.on_flushed();
        assert_eq!(s.phase(), IDLE);
        s.on_read();
        assert_eq!(s.phase(), HEAD);
        // Pipelined: the next head began while the answer was being written.
        s.set(RESPONDING, now_micros());
        s.on_read();
        assert_eq!(s.phase(), RESPONDING);
        s.on_flushed();
        assert_eq!(s.phase(), HEAD);
    }
}
