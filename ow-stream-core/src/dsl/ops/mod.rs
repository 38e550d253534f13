//! One file per operator: each adds its methods to the DSL types.

pub(crate) mod aggregate;
pub(crate) mod branch;
pub(crate) mod cogroup;
pub(crate) mod filter;
pub(crate) mod flat_map;
pub(crate) mod foreign_key_join;
pub(crate) mod global_table;
pub(crate) mod group;
pub(crate) mod join;
pub(crate) mod map;
pub(crate) mod merge;
pub(crate) mod peek;
pub(crate) mod process;
pub(crate) mod repartition;
pub(crate) mod session;
pub(crate) mod sink;
pub(crate) mod sliding;
pub(crate) mod source;
pub(crate) mod stream_join;
pub(crate) mod suppress;
pub(crate) mod table;
pub(crate) mod table_join;
pub(crate) mod timestamp;
pub(crate) mod window;
