//! The benchmark's ceiling: the bench application's three answers (hello
//! world, 10 KB, upload echo) from hyper on one current-thread runtime,
//! as wsgi-standalone's I/O thread runs it, with no Python and no WSGI.
//! `cargo xtask bench` runs it beside the servers it compares, to show
//! what the HTTP layer alone costs on the machine at hand.
//!
//! Usage: `bench_ceiling PORT`.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

const HELLO: &[u8] = b"Hello world!";

async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = match request.uri().path() {
        "/echo" => request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default(),
        "/10k" => Bytes::from(vec![b'x'; 10240]),
        _ => Bytes::from_static(HELLO),
    };
    let mut response = Response::new(Full::new(body));
    response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain"));
    Ok(response)
}

fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args().nth(1).and_then(|p| p.parse().ok()).unwrap_or(8000);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let connection = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service_fn(answer));
                let _ = connection.await;
            });
        }
    })
}
