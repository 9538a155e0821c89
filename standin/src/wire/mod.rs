//! PostgreSQL wire protocol, version 3: framed, buffered I/O and the messages the stand-in reads
//! or writes itself.
//!
//! A message is a one-byte tag, a four-byte length that counts itself, and a body. [`Conn`] reads
//! whole messages as [`Frame`]s that keep their raw bytes, so a message the stand-in does not
//! change is forwarded as it came (one copy into the other side's write buffer, no parsing, no
//! allocation per message: the hot path of COPY data and result rows). [`msg`] parses the few
//! messages the stand-in looks into and builds the ones it answers itself.

pub mod msg;

use bytes::{Buf, Bytes, BytesMut};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::{Error, Result};
use crate::knobs::Knobs;

/// PostgreSQL refuses messages over 1 GiB; so does the stand-in (a client sending one is broken).
const MAX_MESSAGE: usize = 1 << 30;

/// Bytes buffered for writing before a flush is forced: large enough to batch many result rows
/// or COPY messages into one system call, small enough to keep memory flat per connection.
const FLUSH_AT: usize = 64 * 1024;

/// One whole protocol message, with its raw bytes (tag, length and body).
#[derive(Debug, Clone)]
pub struct Frame {
    pub tag: u8,
    pub raw: Bytes,
}

impl Frame {
    /// The message body, after the tag and the length.
    pub fn body(&self) -> &[u8] {
        &self.raw[5..]
    }
}

/// A buffered, framed connection: one side of the proxy.
pub struct Conn<S> {
    io: S,
    rbuf: BytesMut,
    wbuf: BytesMut,
    /// Which side this is, for error messages.
    side: &'static str,
    /// The client side waits here while the stand-in is told to go silent.
    silence: Option<Arc<Knobs>>,
    /// Silent for good ([`Knobs::silence_connections`]): nothing is answered again.
    muted: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    pub fn new(io: S, side: &'static str, silence: Option<Arc<Knobs>>) -> Conn<S> {
        Conn {
            io,
            rbuf: BytesMut::with_capacity(16 * 1024),
            wbuf: BytesMut::with_capacity(16 * 1024),
            side,
            silence,
            muted: false,
        }
    }

    /// Bytes already read and not yet taken as messages (carried over when a connection is
    /// wrapped in TLS, which must not happen with bytes pending).
    pub fn has_buffered_input(&self) -> bool {
        !self.rbuf.is_empty()
    }

    /// The underlying stream (for the TLS upgrade).
    pub fn into_inner(self) -> S {
        self.io
    }

    /// A whole message from the buffer, if one is there; never waits.
    pub fn try_frame(&mut self) -> Result<Option<Frame>> {
        if self.rbuf.len() < 5 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([self.rbuf[1], self.rbuf[2], self.rbuf[3], self.rbuf[4]]);
        let len = len as usize;
        if !(4..=MAX_MESSAGE).contains(&len) {
            return Err(Error::Protocol(format!(
                "{} sent a message of length {len} (tag {:?})",
                self.side, self.rbuf[0] as char
            )));
        }
        if self.rbuf.len() < len + 1 {
            self.rbuf.reserve(len + 1 - self.rbuf.len());
            return Ok(None);
        }
        let tag = self.rbuf[0];
        let raw = self.rbuf.split_to(len + 1).freeze();
        Ok(Some(Frame { tag, raw }))
    }

    /// The next whole message, reading as needed. Cancel-safe: bytes read stay buffered.
    pub async fn read_frame(&mut self) -> Result<Frame> {
        loop {
            if let Some(f) = self.try_frame()? {
                return Ok(f);
            }
            self.fill().await?;
        }
    }

    /// Reads more bytes into the buffer; end of stream is [`Error::Closed`].
    pub async fn fill(&mut self) -> Result<()> {
        self.wait_unsilenced().await?;
        if self.rbuf.capacity() - self.rbuf.len() < 4096 {
            self.rbuf.reserve(16 * 1024);
        }
        let n = self.io.read_buf(&mut self.rbuf).await?;
        if n == 0 {
            return Err(Error::Closed(self.side));
        }
        Ok(())
    }

    /// Reads exactly `n` bytes (startup packets have no tag).
    pub async fn read_exact_bytes(&mut self, n: usize) -> Result<Bytes> {
        while self.rbuf.len() < n {
            self.fill().await?;
        }
        Ok(self.rbuf.split_to(n).freeze())
    }

    /// Peeks at the buffered bytes (startup).
    pub fn buffered(&self) -> &[u8] {
        &self.rbuf
    }

    /// Queues bytes for writing; flushes when enough is queued.
    pub async fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.wbuf.extend_from_slice(bytes);
        if self.wbuf.len() >= FLUSH_AT {
            self.flush().await?;
        }
        Ok(())
    }

    /// Queues bytes without flushing (a message built in place).
    pub fn queue(&mut self, bytes: &[u8]) {
        self.wbuf.extend_from_slice(bytes);
    }

    /// The write buffer, for building a message in place.
    pub fn wbuf(&mut self) -> &mut BytesMut {
        &mut self.wbuf
    }

    /// Writes everything queued.
    pub async fn flush(&mut self) -> Result<()> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        self.wait_unsilenced().await?;
        while self.wbuf.has_remaining() {
            self.io.write_buf(&mut self.wbuf).await?;
        }
        self.io.flush().await?;
        Ok(())
    }

    /// Drops whatever is queued for writing (a connection about to be closed).
    pub fn discard_output(&mut self) {
        self.wbuf.clear();
    }

    /// Shuts the stream down after flushing.
    pub async fn shutdown(&mut self) {
        let _ = self.flush().await;
        let _ = self.io.shutdown().await;
    }

    /// Waits while the stand-in is silent; a connection silenced for good never returns from
    /// here until its peer closes ([`Error::Closed`]).
    async fn wait_unsilenced(&mut self) -> Result<()> {
        let Some(k) = &self.silence else {
            return Ok(());
        };
        if self.muted || k.take_silenced() {
            self.muted = true;
            return self.sink_until_closed().await;
        }
        k.wait_unsilenced().await;
        Ok(())
    }

    /// Answers nothing again: drops what is queued and what arrives, until the peer closes.
    async fn sink_until_closed(&mut self) -> Result<()> {
        self.wbuf.clear();
        self.rbuf.clear();
        let mut scratch = [0u8; 8192];
        loop {
            match self.io.read(&mut scratch).await {
                Ok(0) | Err(_) => return Err(Error::Closed(self.side)),
                Ok(_) => {}
            }
        }
    }
}
