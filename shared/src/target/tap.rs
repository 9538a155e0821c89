//! A read tap on a target connection that keeps the last command tag the server sent.
//!
//! tokio-postgres reports a statement's CommandComplete only as a row count, so a COMMIT that
//! the server answers with the tag `ROLLBACK` (it rolled an aborted transaction back) looks
//! exactly like a successful one. DSQL answers so after a refused statement (dsql-recorded.md
//! §5.4), and a loader that counted such a batch as written would lose it. [`Tap`] sits between
//! the socket (or the TLS session: it always sees plaintext) and tokio-postgres, follows the
//! backend message framing (a type byte, a 4-byte length) of the bytes read, and records the
//! text of every CommandComplete (`C`) message in [`Tags`]. Nothing is buffered or changed: the
//! bytes pass through as read, and DataRow/CopyData bodies are skipped without copying.
//!
//! tokio-postgres's connection task reads (and so taps) a response before the client's future
//! sees it, so when `COMMIT` returns, [`Tags::last`] holds its tag.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, TlsConnect, TlsStream};

/// Command tags are short (`INSERT 0 2500`, `COMMIT`): a longer one is kept to this length.
const TAG_MAX: usize = 64;

/// The command tags one connection received: how many, and the last one.
#[derive(Clone, Default)]
pub struct Tags(Arc<Mutex<TagLog>>);

#[derive(Default)]
struct TagLog {
    count: u64,
    last: String,
}

impl Tags {
    /// How many CommandComplete messages arrived so far, and the last one's tag.
    pub fn last(&self) -> (u64, String) {
        match self.0.lock() {
            Ok(log) => (log.count, log.last.clone()),
            Err(poisoned) => {
                let log = poisoned.into_inner();
                (log.count, log.last.clone())
            }
        }
    }

    fn record(&self, tag: &[u8]) {
        let text = String::from_utf8_lossy(tag);
        let mut log = match self.0.lock() {
            Ok(log) => log,
            Err(poisoned) => poisoned.into_inner(),
        };
        log.count += 1;
        log.last.clear();
        log.last.push_str(&text);
    }
}

/// Follows the backend message framing across reads of any size.
#[derive(Default)]
struct Framing {
    header: [u8; 5],
    /// Header bytes read so far; 5 while in a body.
    have: usize,
    /// Body bytes still to come.
    remaining: usize,
    tag: Vec<u8>,
}

impl Framing {
    fn feed(&mut self, mut bytes: &[u8], tags: &Tags) {
        while !bytes.is_empty() {
            if self.have < 5 {
                let n = (5 - self.have).min(bytes.len());
                self.header[self.have..self.have + n].copy_from_slice(&bytes[..n]);
                self.have += n;
                bytes = &bytes[n..];
                if self.have == 5 {
                    let len = u32::from_be_bytes([
                        self.header[1],
                        self.header[2],
                        self.header[3],
                        self.header[4],
                    ]);
                    self.remaining = (len as usize).saturating_sub(4);
                    self.tag.clear();
                    if self.remaining == 0 {
                        self.end(tags);
                    }
                }
                continue;
            }
            let n = self.remaining.min(bytes.len());
            if self.header[0] == b'C' {
                let room = TAG_MAX.saturating_sub(self.tag.len());
                self.tag.extend_from_slice(&bytes[..n.min(room)]);
            }
            self.remaining -= n;
            bytes = &bytes[n..];
            if self.remaining == 0 {
                self.end(tags);
            }
        }
    }

    fn end(&mut self, tags: &Tags) {
        if self.header[0] == b'C' {
            let tag = self.tag.split(|b| *b == 0).next().unwrap_or_default();
            tags.record(tag);
        }
        self.have = 0;
    }
}

/// A stream whose reads are tapped for command tags (see the module doc).
pub struct Tap<S> {
    inner: S,
    framing: Framing,
    tags: Tags,
}

impl<S> Tap<S> {
    pub fn new(inner: S, tags: Tags) -> Self {
        Tap {
            inner,
            framing: Framing::default(),
            tags,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tap<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            this.framing.feed(&buf.filled()[before..], &this.tags);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tap<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl<S: TlsStream + Unpin> TlsStream for Tap<S> {
    fn channel_binding(&self) -> ChannelBinding {
        self.inner.channel_binding()
    }
}

/// A TLS connector whose sessions are tapped: the tap sits above TLS, on plaintext.
pub struct TapTls<T> {
    pub inner: T,
    pub tags: Tags,
}

impl<S, T> TlsConnect<S> for TapTls<T>
where
    T: TlsConnect<S>,
    T::Future: Send + 'static,
    T::Stream: Send + 'static,
{
    type Stream = Tap<T::Stream>;
    type Error = T::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Tap<T::Stream>, T::Error>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        let handshake = self.inner.connect(stream);
        let tags = self.tags;
        Box::pin(async move { Ok(Tap::new(handshake.await?, tags)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![kind];
        m.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn tags_are_found_across_reads_of_any_size() {
        let mut stream = Vec::new();
        stream.extend(message(b'C', b"INSERT 0 1\0"));
        stream.extend(message(b'D', &[0, 1, 0, 0, 0, 3, b'C', b'C', b'C']));
        stream.extend(message(b'Z', b"E"));
        stream.extend(message(b'C', b"ROLLBACK\0"));
        stream.extend(message(b'Z', b"I"));
        for step in 1..=stream.len() {
            let tags = Tags::default();
            let mut framing = Framing::default();
            for piece in stream.chunks(step) {
                framing.feed(piece, &tags);
            }
            assert_eq!(tags.last(), (2, "ROLLBACK".to_string()), "reads of {step}");
        }
    }

    #[test]
    fn a_long_tag_is_cut_and_an_empty_body_is_a_message() {
        let tags = Tags::default();
        let mut framing = Framing::default();
        let long = vec![b'x'; 500];
        framing.feed(&message(b'C', &long), &tags);
        assert_eq!(tags.last().1.len(), TAG_MAX);
        framing.feed(&message(b'I', b""), &tags);
        framing.feed(&message(b'C', b"COMMIT\0"), &tags);
        assert_eq!(tags.last(), (2, "COMMIT".to_string()));
    }
}
