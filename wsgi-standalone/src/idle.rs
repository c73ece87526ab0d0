//! The idle keep-alive timeout, apart from hyper's header timeout.
//!
//! hyper has one timer, started as soon as a connection waits for a request
//! head, so alone it cannot give a kept-alive connection a short idle limit
//! and a slow client a longer one to finish its headers. [`IdleStream`]
//! ends a connection on which nothing arrives for the keep-alive timeout
//! while no request is in flight; hyper's own timer keeps the header
//! timeout.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Counts a connection's requests in flight (from the head to the last
/// byte of the response).
#[derive(Clone, Default)]
pub struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    /// Marks one request in flight until the guard is dropped.
    pub fn enter(&self) -> InFlightGuard {
        self.0.fetch_add(1, Ordering::Relaxed);
        InFlightGuard(self.0.clone())
    }

    fn idle(&self) -> bool {
        self.0.load(Ordering::Relaxed) == 0
    }
}

/// One request in flight; dropped with its response body.
pub struct InFlightGuard(Arc<AtomicUsize>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A connection (TCP, or TLS over it) that reads as closed once it has
/// been idle too long.
pub struct IdleStream<S = TcpStream> {
    inner: S,
    idle_limit: Duration,
    in_flight: InFlight,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> IdleStream<S> {
    /// Wraps `inner`; `idle_limit` zero means no limit.
    pub fn new(inner: S, idle_limit: Duration, in_flight: InFlight) -> IdleStream<S> {
        IdleStream { inner, idle_limit, in_flight, timer: None }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for IdleStream<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                this.timer = None;
                Poll::Ready(result)
            }
            Poll::Pending => {
                if this.idle_limit.is_zero() || !this.in_flight.idle() {
                    this.timer = None;
                    return Poll::Pending;
                }
                let limit = this.idle_limit;
                let timer = this.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                if timer.as_mut().poll(cx).is_ready() {
                    // Reads as end of stream: hyper closes the connection.
                    this.timer = None;
                    return Poll::Ready(Ok(()));
                }
                Poll::Pending
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for IdleStream<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
