//! The simple query protocol.
//!
//! A Query's text is split into its statements; each is checked, then sent upstream as
//! Parse/Bind/Describe/Execute of the unnamed statement and portal (text results, as a simple
//! query's are), and one Sync ends them all. Statements between two Syncs form one implicit
//! transaction in PostgreSQL, exactly as a multi-statement simple query does, so the rules see
//! the whole query as one transaction [REC §5.3] and a refusal rolls all of it back. The client
//! sees what a simple query answers: RowDescription (never NoData), rows, CommandComplete per
//! statement, one ReadyForQuery.

use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{Expect, Mode, Portal, Prepared, Session, Step};
use crate::error::Result;
use crate::sql::{self, Kind};
use crate::wire::Frame;
use crate::wire::msg::{self, btag, tag};

impl<C: AsyncRead + AsyncWrite + Unpin + Send + Sync> Session<C> {
    pub(crate) fn simple_query<'a>(&'a mut self, f: &'a Frame) -> Step<'a> {
        Box::pin(self.simple_query_inner(f))
    }

    async fn simple_query_inner(&mut self, f: &Frame) -> Result<()> {
        let text = msg::parse_query(f.body())?.to_owned();
        let parts = sql::split(&text);
        self.discarding = false;
        if parts.is_empty() {
            msg::empty(self.client.wbuf(), btag::EMPTY_QUERY);
            msg::ready_for_query(self.client.wbuf(), self.status);
            return Ok(());
        }
        for part in parts {
            let analysis = sql::analyze(part, &self.shared.config.extra_settings);
            if let Some(r) = analysis.refusal.clone() {
                self.refuse(&r).await?;
                break;
            }
            let portal = Portal {
                prepared: Arc::new(Prepared {
                    analysis,
                    sql: part.to_owned(),
                    param_types: Vec::new(),
                }),
                bind: None,
            };
            self.txn.statement(std::time::Instant::now());
            if let Some(r) = self.precheck(&portal.prepared.analysis).await? {
                self.refuse(&r).await?;
                break;
            }
            self.statements.remove("");
            self.portals.remove("");
            if !matches!(portal.prepared.analysis.kind, Kind::Virtual(_)) {
                let buf = self.up.wbuf();
                msg::fe_parse(buf, "", &portal.prepared.analysis.upstream_sql, &[]);
                msg::fe_bind_text(buf, "", "", &[]);
                msg::fe_target(buf, tag::DESCRIBE, b'P', "");
                self.pending.push_back(Expect::Ack {
                    relay: false,
                    client: true,
                });
                self.pending.push_back(Expect::Ack {
                    relay: false,
                    client: true,
                });
                self.pending.push_back(Expect::DescribePortal {
                    relay: true,
                    relay_no_data: false,
                });
                self.need_flush = true;
            }
            self.execute(portal, None, Mode::Simple).await?;
            if self.discarding {
                break;
            }
        }
        self.sync().await
    }
}
