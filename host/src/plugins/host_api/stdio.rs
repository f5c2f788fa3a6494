//! A plugin's stdout and stderr: written line by line into tracing, never to
//! the host's own stdio. Each store gets its own pipes.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

use super::super::budget::CallBudget;

/// Longest line kept; the rest of a longer line is cut and logged separately.
const MAX_LINE_BYTES: usize = 4096;

/// A stdout or stderr of one plugin store. Clones share the line buffer.
#[derive(Clone)]
pub(super) struct LogPipe {
    plugin: Arc<str>,
    stream: &'static str,
    line: Arc<Mutex<Vec<u8>>>,
    budget: Arc<CallBudget>,
}

impl LogPipe {
    pub(super) fn new(plugin: Arc<str>, stream: &'static str, budget: Arc<CallBudget>) -> Self {
        LogPipe {
            plugin,
            stream,
            line: Arc::new(Mutex::new(Vec::new())),
            budget,
        }
    }

    fn emit(&self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches('\r');
        tracing::info!(target: "rtm::plugin::stdio", plugin = &*self.plugin, stream = self.stream, "{text}");
    }

    fn write_bytes(&self, bytes: &[u8]) {
        // What does not fit the call's log budget is dropped here (the call's end
        // logs one note saying how much).
        let mut bytes = &bytes[..self.budget.take_log(bytes.len())];
        let mut line = self.line.lock().unwrap_or_else(PoisonError::into_inner);
        while !bytes.is_empty() {
            match bytes.iter().position(|b| *b == b'\n') {
                Some(i) => {
                    line.extend_from_slice(&bytes[..i]);
                    self.emit(&line);
                    line.clear();
                    bytes = &bytes[i + 1..];
                }
                None => {
                    line.extend_from_slice(bytes);
                    bytes = &[];
                }
            }
            if line.len() >= MAX_LINE_BYTES {
                self.emit(&line);
                line.clear();
            }
        }
    }
}

impl Drop for LogPipe {
    /// The last clone flushes a partial last line.
    fn drop(&mut self) {
        if Arc::strong_count(&self.line) == 1 {
            let line =
                std::mem::take(&mut *self.line.lock().unwrap_or_else(PoisonError::into_inner));
            if !line.is_empty() {
                self.emit(&line);
            }
        }
    }
}

impl IsTerminal for LogPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogPipe {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl OutputStream for LogPipe {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.write_bytes(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(64 * 1024)
    }
}

#[async_trait::async_trait]
impl Pollable for LogPipe {
    async fn ready(&mut self) {}
}

impl AsyncWrite for LogPipe {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.write_bytes(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
