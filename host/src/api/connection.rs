//! One API connection under its time limits. A watchdog beside hyper closes the connection
//! when a request head is slow (from the connection's start, or from the first byte of a
//! kept-alive connection's next request) or when a kept-alive connection stays idle. The
//! body's time-out is the request handler's (`read`), which answers 408.
//!
//! hyper's own `header_read_timeout` starts when it waits for a head, which on a kept-alive
//! connection is as soon as the previous answer is written: it cannot tell an idle
//! connection from a slow head, so it is off and the watchdog does both.

use std::future::Future as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Duration, Instant};

use super::ConnectionLimits;

/// Waiting for, or reading, a request head.
const HEAD: u64 = 0;
/// A request is being handled (its body read, the handler run).
const BUSY: u64 = 1;
/// Between requests: the answer is handed to hyper, no byte of the next request yet.
const IDLE: u64 = 2;
const PHASE_BITS: u64 = 0b11;

/// What a connection is doing and since when, as one word: the phase in the low two bits,
/// the milliseconds from the connection's start to the phase's start above them. The
/// connection's task alone writes it.
pub(super) struct Phase {
    opened: Instant,
    word: AtomicU64,
}

impl Phase {
    /// A new connection: waiting for its first head.
    pub(super) fn new() -> Self {
        Phase {
            opened: Instant::now(),
            word: AtomicU64::new(HEAD),
        }
    }

    fn set(&self, phase: u64) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX >> 2);
        self.word.store((ms << 2) | phase, Ordering::Relaxed);
    }

    /// A request's head has been read: its handler runs.
    pub(super) fn busy(&self) {
        self.set(BUSY);
    }

    /// The handler has answered: the connection waits for its next request.
    pub(super) fn idle(&self) {
        self.set(IDLE);
    }

    /// Bytes arrived: on an idle connection, they begin the next head.
    fn received(&self) {
        if self.word.load(Ordering::Relaxed) & PHASE_BITS == IDLE {
            self.set(HEAD);
        }
    }
}

/// Returns when the connection has been in the head phase longer than the header time-out
/// or idle longer than the idle time-out; never while a request is being handled.
///
/// It must be polled in the connection's task, after the connection in each poll (a
/// `biased` select): the phase changes only while the connection is polled, and the
/// watchdog reads it then and moves its timer.
pub(super) async fn watchdog(phase: &Phase, limits: ConnectionLimits) {
    let mut seen = Some(HEAD);
    let timer = tokio::time::sleep_until(phase.opened + limits.header_timeout);
    tokio::pin!(timer);
    std::future::poll_fn(|cx| {
        let word = phase.word.load(Ordering::Relaxed);
        if seen != Some(word) {
            seen = Some(word);
            let since = phase.opened + Duration::from_millis(word >> 2);
            match word & PHASE_BITS {
                HEAD => timer.as_mut().reset(since + limits.header_timeout),
                IDLE => timer.as_mut().reset(since + limits.idle_timeout),
                _ => {}
            }
        }
        if word & PHASE_BITS == BUSY {
            // No deadline (the body's time-out is the handler's); the phase's end is seen
            // in the poll of the connection that ends it.
            return Poll::Pending;
        }
        timer.as_mut().poll(cx)
    })
    .await
}

/// The connection's socket, telling its [`Phase`] when bytes arrive.
pub(super) struct Watched<'a, T> {
    /// The socket.
    pub(super) io: T,
    /// The connection's phase.
    pub(super) phase: &'a Phase,
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<'_, T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.phase.received();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<'_, T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
