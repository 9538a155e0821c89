//! snap2dsql: move an Aurora PostgreSQL snapshot export into Aurora DSQL.
//!
//! The modules follow the data:
//! - [`store`]: where the export lives (local directory or S3).
//! - [`export`]: the export's layout and metadata: tables, columns, part files, footers.
//! - [`types`]: PostgreSQL types as the export records them, and their DSQL targets.
//! - [`convert`]: exported values (typed or PostgreSQL text output) -> binary COPY fields of the
//!   target type.
//! - [`error`]: the one error type, with file/row group/row/column locations.
pub mod convert;
pub mod error;
pub mod export;
pub mod store;
pub mod types;

pub use error::{Error, Result};
