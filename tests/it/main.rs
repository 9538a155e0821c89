//! One integration-test binary; each module covers one capability against real servers.

mod chunks;
mod convert_pg;
mod corpus;
mod deps;
mod dsql_target;
mod harness;
mod hostile;
mod independent;
mod load;
mod local_export;
mod orphans;
mod pages;
mod pipeline;
mod plain_targets;
mod plan;
mod reliability;
mod s3;
mod schema;
mod schema_target;
mod source;
mod tls;
mod verify;
mod write_path;
