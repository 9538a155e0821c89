//! COPY FROM STDIN: the client's stream forwarded message by message, counted on the way.
//!
//! Each CopyData frame is forwarded as it came (one copy into the upstream's write buffer, no
//! parsing beyond the row count, no allocation). The stand-in stops the COPY (CopyFail upstream,
//! the rest of the client's stream dropped) when the transaction's rows pass the cap (text and
//! binary: at the crossing row; CSV: at its CommandComplete) or its bytes pass the size limit
//! (counted as the COPY data the client sent), or when the transaction's age passes. PostgreSQL
//! may also end the COPY itself (a constraint, a conflict): the stream is dropped then too, and
//! the error is answered after the client's CopyDone, as PostgreSQL's would be.

use tokio::io::{AsyncRead, AsyncWrite};

use super::relay::ExecCtx;
use super::{Session, Step};
use crate::copycount::RowCounter;
use crate::error::Result;
use crate::rules::{self, Refusal};
use crate::sql::CopyFormat;
use crate::wire::msg::{self, btag, tag};

impl<C: AsyncRead + AsyncWrite + Unpin + Send + Sync> Session<C> {
    pub(crate) fn copy_in<'a>(&'a mut self, ctx: &'a mut ExecCtx) -> Step<'a> {
        Box::pin(self.copy_in_inner(ctx))
    }

    async fn copy_in_inner(&mut self, ctx: &mut ExecCtx) -> Result<()> {
        let format = ctx.copy_format().unwrap_or(CopyFormat::Text);
        let mut counter = RowCounter::new(format);
        let knobs = self.shared.knobs.clone();
        let count_rows = self.shared.config.unknowns.copy_rows_count;
        let (max_rows, max_bytes) = (knobs.max_rows(), knobs.max_bytes());
        let age = knobs.max_transaction_age();
        // The COPY is over upstream (stopped here or failed there): drop the client's stream.
        let mut stopped = false;
        // PostgreSQL answered (an error): nothing more comes from it until the next Sync.
        let mut up_done = false;
        loop {
            self.up.flush().await?;
            self.client.flush().await?;
            let deadline = ctx.deadline.filter(|_| !stopped && !ctx.age_cancelled);
            let far = tokio::time::Instant::now() + std::time::Duration::from_secs(86_400 * 365);
            let wake = deadline.map(tokio::time::Instant::from_std).unwrap_or(far);
            tokio::select! {
                f = self.client.read_frame() => {
                    let f = f?;
                    match f.tag {
                        tag::COPY_DATA => {
                            if stopped {
                                continue;
                            }
                            counter.feed(f.body());
                            ctx.bytes += f.body().len() as u64;
                            let rows = self.txn.rows + counter.rows();
                            let over_rows = count_rows && format != CopyFormat::Csv && rows > max_rows;
                            if over_rows || self.txn.bytes + ctx.bytes > max_bytes {
                                let m = if over_rows { rules::ROW_LIMIT } else { rules::SIZE_LIMIT };
                                self.stop_copy(ctx, Refusal::new(rules::LIMIT, m));
                                stopped = true;
                            } else {
                                self.up.send(&f.raw).await?;
                            }
                        }
                        tag::COPY_DONE | tag::COPY_FAIL => {
                            if !stopped {
                                self.up.queue(&f.raw);
                            }
                            break;
                        }
                        tag::FLUSH | tag::SYNC => {
                            // PostgreSQL ignores both during COPY.
                            if !stopped {
                                self.up.queue(&f.raw);
                            }
                        }
                        _ => {
                            // Anything else ends the COPY with an error upstream.
                            self.up.queue(&f.raw);
                            break;
                        }
                    }
                }
                f = self.up.read_frame(), if !up_done => {
                    let f = f?;
                    match f.tag {
                        btag::NOTICE | btag::PARAMETER_STATUS | btag::NOTIFICATION => {
                            self.client.send(&f.raw).await?;
                        }
                        _ => {
                            // The COPY failed upstream: its error is read by the relay.
                            self.pushback = Some(f);
                            stopped = true;
                            up_done = true;
                        }
                    }
                }
                _ = tokio::time::sleep_until(wake) => {
                    ctx.age_cancelled = true;
                    self.txn.aged = true;
                    let r = Refusal::new(rules::LIMIT, rules::age_limit(age));
                    self.stop_copy(ctx, r);
                    stopped = true;
                }
            }
        }
        ctx.copy_rows = counter.rows();
        // PostgreSQL ignored the Flush that preceded the COPY; without another it holds the
        // COPY's answer until the client's next Sync, which is read only after that answer.
        msg::empty(self.up.wbuf(), tag::FLUSH);
        self.up.flush().await
    }

    fn stop_copy(&mut self, ctx: &mut ExecCtx, refusal: Refusal) {
        msg::fe_copy_fail(self.up.wbuf(), &refusal.message);
        ctx.copy_refusal = Some(refusal);
    }
}
