//! The pipeline's topics and serdes, set up once per process over an in-process registry.
//!
//! The serdes are the processor's own ([`ow_processor::Topics`]), so the decode path fuzzed is
//! the one every stage runs. Besides the current schemas the registry holds an older writer
//! schema of each record value (its fields with defaults left out), so frames can name a
//! writer schema that must be resolved against the reader's.

use std::sync::OnceLock;

use ow_processor::Topics;
use ow_stream_core::SchemaRegistry;
use ow_stream_core::avro::Schema;

/// The `mock://` scope the fuzz targets register in: theirs alone, so ids are the same in
/// every process (the seed corpus depends on it).
const SCOPE: &str = "ow-fuzz";

/// The topics and the writer-schema ids of the registry.
#[derive(Debug)]
pub struct Pipeline {
    /// The processor's topics with their Avro serdes.
    pub topics: Topics,
    /// The registry the serdes use.
    pub registry: SchemaRegistry,
    /// The older writer schemas registered beside the current ones, one per record value.
    pub older_writers: Vec<OlderWriter>,
}

/// A record value's schema from before its defaulted fields were added, and its id.
#[derive(Debug)]
pub struct OlderWriter {
    /// The record value, as the processor's topics name it.
    pub what: &'static str,
    /// Its id in the registry.
    pub id: u32,
    /// The schema.
    pub schema: Schema,
}

/// The process's pipeline, built on first use.
pub fn pipeline() -> &'static Pipeline {
    static PIPELINE: OnceLock<Pipeline> = OnceLock::new();
    PIPELINE.get_or_init(build)
}

fn build() -> Pipeline {
    let registry = SchemaRegistry::mock(SCOPE);
    let topics = Topics::new(&registry, "").expect("the domain's schemas parse");
    let mut older_writers = Vec::new();
    for (what, avsc) in [
        ("raw player profile", ow_domain::RAW_PLAYER_PROFILE_VALUE),
        ("stats by category", ow_domain::STATS_BY_CATEGORY_VALUE),
        ("player profile", ow_domain::PLAYER_PROFILE_VALUE),
        ("stats delta", ow_domain::STATS_DELTA_VALUE),
        ("daily stats", ow_domain::DAILY_STATS_VALUE),
    ] {
        let schema = Schema::parse_str(&without_defaulted_fields(avsc))
            .expect("a record schema without its defaulted fields parses");
        let subject = format!("ow-fuzz.older.{}-value", what.replace(' ', "-"));
        let id = registry
            .register_now(&subject, &schema)
            .expect("the registry is in-process")
            .expect("a new subject accepts any schema");
        older_writers.push(OlderWriter { what, id, schema });
    }
    Pipeline {
        topics,
        registry,
        older_writers,
    }
}

/// The record schema `avsc` with every top-level field that has a default removed: what an
/// older writer, from before those fields were added, would have written.
fn without_defaulted_fields(avsc: &str) -> String {
    let mut schema: serde_json::Value = serde_json::from_str(avsc).expect("schemas are JSON");
    if let Some(fields) = schema
        .get_mut("fields")
        .and_then(serde_json::Value::as_array_mut)
    {
        fields.retain(|f| f.get("default").is_none());
    }
    schema.to_string()
}
