//! A test router behind the layer, served on a free port, and a raw HTTP/1.1 client.

#![allow(dead_code)] // each test file uses part of the support

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use cache_core::Cache;
use cache_http::{ResponseCacheBuilder, ResponseCacheLayer};
use http_body::Frame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How many times each route's handler ran.
#[derive(Clone, Default)]
pub struct Runs(Arc<Mutex<HashMap<String, u64>>>);

impl Runs {
    fn count(&self, route: &str) -> u64 {
        let mut runs = self.0.lock().unwrap();
        let n = runs.entry(route.to_owned()).or_default();
        *n += 1;
        *n
    }

    /// The runs of `route` so far.
    pub fn of(&self, route: &str) -> u64 {
        self.0.lock().unwrap().get(route).copied().unwrap_or(0)
    }
}

/// A body sent in `n` chunks of 64 KiB, as a streaming handler would.
struct Chunks(VecDeque<Bytes>);

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Poll::Ready(self.0.pop_front().map(|chunk| Ok(Frame::data(chunk))))
    }
}

/// A body of two chunks with 200 ms between them, as a slow upstream would send.
struct Slow {
    sent: u8,
    pause: Pin<Box<tokio::time::Sleep>>,
}

impl http_body::Body for Slow {
    type Data = Bytes;
    type Error = std::convert::Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.sent {
            0 => {}
            1 => std::task::ready!(self.pause.as_mut().poll(cx)),
            _ => return Poll::Ready(None),
        }
        self.sent += 1;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"part ")))))
    }
}

/// The chunk of [`Chunks`]: 64 KiB of `x`.
pub const CHUNK: usize = 64 << 10;

fn header_text(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned()
}

/// The test routes; every body names its run, so a test can tell a stored answer from a
/// fresh one.
pub fn routes(runs: Runs) -> Router {
    Router::new()
        .route(
            "/items",
            get(
                |State(runs): State<Runs>, RawQuery(q): RawQuery| async move {
                    let n = runs.count("items");
                    format!("items {} run {n}", q.unwrap_or_default())
                },
            ),
        )
        .route(
            "/items2",
            get(|State(runs): State<Runs>| async move {
                format!("items2 run {}", runs.count("items2"))
            }),
        )
        .route(
            "/user/{id}",
            get(|State(runs): State<Runs>, Path(id): Path<u64>| async move {
                format!("user {id} run {}", runs.count("user"))
            }),
        )
        .route(
            "/lang",
            get(|State(runs): State<Runs>, headers: HeaderMap| async move {
                let n = runs.count("lang");
                let lang = header_text(&headers, "accept-language");
                (
                    [(header::VARY, "Accept-Language")],
                    format!("hello in {lang} run {n}"),
                )
            }),
        )
        .route(
            "/status/{code}",
            get(
                |State(runs): State<Runs>, Path(code): Path<u16>| async move {
                    let n = runs.count("status");
                    (
                        StatusCode::from_u16(code).unwrap(),
                        format!("status {code} run {n}"),
                    )
                },
            ),
        )
        .route(
            "/header/{name}/{value}",
            get(
                |State(runs): State<Runs>,
                 Path((name, value)): Path<(String, String)>,
                 headers: HeaderMap| async move {
                    let n = runs.count("header");
                    let user = header_text(&headers, "x-user");
                    let name = header::HeaderName::from_bytes(name.as_bytes()).unwrap();
                    ([(name, value)], format!("for {user} run {n}"))
                },
            ),
        )
        .route(
            "/slow",
            get(|State(runs): State<Runs>, headers: HeaderMap| async move {
                let n = runs.count("slow");
                tokio::time::sleep(Duration::from_millis(200)).await;
                let user = header_text(&headers, "x-user");
                let private = headers.contains_key("x-private");
                let cc = if private { "private" } else { "public" };
                (
                    [(header::CACHE_CONTROL, cc)],
                    format!("slow for {user} run {n}"),
                )
            }),
        )
        .route(
            "/big/{kib}",
            get(
                |State(runs): State<Runs>, Path(kib): Path<usize>| async move {
                    runs.count("big");
                    "x".repeat(kib << 10)
                },
            ),
        )
        .route(
            "/stream/{chunks}",
            get(
                |State(runs): State<Runs>, Path(chunks): Path<usize>| async move {
                    runs.count("stream");
                    let chunk = Bytes::from(vec![b'x'; CHUNK]);
                    Response::new(Body::new(Chunks(vec![chunk; chunks].into())))
                },
            ),
        )
        .route(
            "/slow-body",
            get(|State(runs): State<Runs>| async move {
                runs.count("slow-body");
                let pause = Box::pin(tokio::time::sleep(Duration::from_millis(200)));
                Response::new(Body::new(Slow { sent: 0, pause }))
            }),
        )
        .route("/const", get(|| async { "constant" }))
        .route(
            "/not-get",
            get(|| async { "get" }).post(|State(runs): State<Runs>| async move {
                format!("post run {}", runs.count("post")).into_response()
            }),
        )
        .with_state(runs)
}

/// The test routes behind a layer over `cache`, served on a free port.
pub struct TestApp {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its handlers' runs.
    pub runs: Runs,
    /// The cache behind its layer.
    pub cache: Cache,
}

impl TestApp {
    /// Starts the app with the layer's defaults and `hit_header`, changed by `configure`.
    pub async fn start(
        cache: Cache,
        configure: impl FnOnce(ResponseCacheBuilder) -> ResponseCacheBuilder,
    ) -> Self {
        let layer = configure(ResponseCacheLayer::builder(cache.clone()).hit_header(true))
            .build()
            .unwrap();
        let runs = Runs::default();
        let app = routes(runs.clone()).layer(layer);
        Self::serve(app, runs, cache).await
    }

    /// Serves `app` on a free port.
    pub async fn serve(app: Router, runs: Runs, cache: Cache) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, runs, cache }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Reply {
        request(self.addr, "GET", path, &[]).await
    }

    /// `method path` with `headers`.
    pub async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
        request(self.addr, method, path, headers).await
    }
}

/// A response as it came over the wire.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Reply {
    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The `x-cache` header.
    pub fn x_cache(&self) -> &str {
        self.header("x-cache").unwrap_or("-")
    }
}

/// One HTTP/1.1 request on its own connection (`Connection: close`).
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Reply {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw))
        .await
        .expect("the server answers within 30 s")
        .unwrap();
    parse(&raw, method == "HEAD")
}

fn parse(raw: &[u8], head: bool) -> Reply {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a whole response head");
    let text = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = text.split("\r\n");
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    if chunked && !head {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n").unwrap();
        let size_text = String::from_utf8_lossy(&raw[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        raw = &raw[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}
