//! Keep-alive after early answers. When a handler answers before reading the request body to its
//! end (a 413 on a body over the limit, a 401 or a 404 before the body matters), hyper cannot
//! reuse the connection unless the rest of the body is consumed; it drains small leftovers itself
//! and otherwise closes the connection silently, and a keep-alive client then loses its next
//! request. This layer reads and discards a bounded leftover (in size and time) so the connection
//! stays usable, and says `Connection: close` when it could not, so the client knows to reconnect.

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

/// Most bytes discarded after an early answer: above the largest route limit (20 MiB), so a body
/// refused for its size can still be consumed and its connection kept.
const DRAIN_BYTES: u64 = 32 * 1024 * 1024;
/// Longest wait for those bytes; a client sending slower than this gets `Connection: close`.
const DRAIN_TIME: Duration = Duration::from_secs(5);

type Shared = Arc<Mutex<Body>>;

fn lock(body: &Shared) -> MutexGuard<'_, Body> {
    body.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn poll_shared(body: &Shared, ended: &AtomicBool, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
    let mut inner = lock(body);
    let polled = Pin::new(&mut *inner).poll_frame(cx);
    if matches!(polled, Poll::Ready(None)) || inner.is_end_stream() {
        ended.store(true, Ordering::Release);
    }
    polled
}

/// The request body as the handler sees it; the layer keeps a handle to drain what is left.
struct Watched {
    inner: Shared,
    ended: Arc<AtomicBool>,
}

impl HttpBody for Watched {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        poll_shared(&self.inner, &self.ended, cx)
    }

    fn is_end_stream(&self) -> bool {
        lock(&self.inner).is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        lock(&self.inner).size_hint()
    }
}

/// Reads and discards the rest of the body; true when it ended within `DRAIN_BYTES`.
async fn drain(body: &Shared, ended: &AtomicBool) -> bool {
    if lock(body).size_hint().lower() > DRAIN_BYTES {
        return false;
    }
    let mut discarded: u64 = 0;
    loop {
        match std::future::poll_fn(|cx| poll_shared(body, ended, cx)).await {
            None => return true,
            Some(Ok(frame)) => {
                discarded += frame.data_ref().map_or(0, |d| d.len() as u64);
                if discarded > DRAIN_BYTES {
                    return false;
                }
            }
            Some(Err(_)) => return false,
        }
    }
}

pub async fn keep_connection_usable(req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let ended = Arc::new(AtomicBool::new(body.is_end_stream()));
    let inner: Shared = Arc::new(Mutex::new(body));
    let watched = Watched { inner: Arc::clone(&inner), ended: Arc::clone(&ended) };
    let mut response = next.run(Request::from_parts(parts, Body::new(watched))).await;
    if !ended.load(Ordering::Acquire) {
        let drained = tokio::time::timeout(DRAIN_TIME, drain(&inner, &ended)).await.unwrap_or(false);
        if !drained {
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
    }
    response
}
