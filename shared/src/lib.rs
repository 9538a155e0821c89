//! snap2dsql: move an Aurora PostgreSQL snapshot export into Aurora DSQL.
//!
//! The modules follow the data:
//! - [`store`]: where the export lives (local directory or S3).
//! - [`export`]: the export's layout and metadata: tables, columns, part files, footers.
//! - [`types`]: PostgreSQL types as the export records them, and their DSQL targets.
//! - [`schema`]: the source schema (keys, NOT NULL, serials, enums, indexes) from a DDL file or a
//!   live database.
//! - [`error`]: the one error type, with file/row group/row/column locations.
pub mod error;
pub mod export;
pub mod schema;
pub mod store;
pub mod types;

pub use error::{Error, Result};
