//! Every DSL operator through the broker-free test driver.

use std::time::Duration;

use ow_stream_core::config::OnError;
use std::ops::Bound;

use ow_stream_core::dsl::{
    EmitStrategy, Grouped, Materialized, Produced, TimeWindows, Window, Windowed,
};
use ow_stream_core::error::BoxError;
use ow_stream_core::processor::{Processor, ProcessorContext};
use ow_stream_core::serde::{JsonSerde, Serde, SerdeContext, StringSerde};
use ow_stream_core::testing::{TestDriverConfig, TopologyTestDriver};
use ow_stream_core::{Error, Record, StreamsBuilder, Topic, TopologyError};

fn strings(name: &str) -> Topic<String, String> {
    Topic::new(name, StringSerde, StringSerde)
}

fn counts(name: &str) -> Topic<String, i64> {
    Topic::new(name, StringSerde, JsonSerde::new())
}

fn kv(k: &str, v: impl Into<String>) -> (String, String) {
    (k.to_string(), v.into())
}

#[test]
fn stateless_operators() {
    let input = strings("in");
    let out = strings("out");
    let peeked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = peeked.clone();
    let b = StreamsBuilder::new();
    b.stream(&input)
        .filter(|_, v| !v.is_empty())
        .filter_not(|_, v| v.starts_with('#'))
        .map_values(|v| v.to_uppercase())
        .map(|k, v| (format!("{k}!"), v))
        .select_key(|k, v| format!("{k}{}", v.len()))
        .peek(move |k: &String, v: &String| seen.lock().unwrap().push(format!("{k}={v}")))
        .flat_map_values(|v: String| v.split(' ').map(String::from).collect::<Vec<_>>())
        .flat_map(|k, v| vec![(k.clone(), v.clone()), (k, v)])
        .to(&out);
    let driver = TopologyTestDriver::new(b.build().unwrap()).unwrap();
    let i = driver.input_topic(&input);
    i.pipe_input("a".into(), "hello world".into()).unwrap();
    i.pipe_input("b".into(), "".into()).unwrap();
    i.pipe_input("c".into(), "#comment".into()).unwrap();
    i.pipe_input("d".into(), "x".into()).unwrap();
    let got = driver.output_topic(&out).read_key_values().unwrap();
    assert_eq!(
        got,
        vec![
            kv("a!11", "HELLO"),
            kv("a!11", "HELLO"),
            kv("a!11", "WORLD"),
            kv("a!11", "WORLD"),
            kv("d!1", "X"),
            kv("d!1", "X"),
        ]
    );
    // `peek` saw each record once, as it was at that point, and changed nothing.
    assert_eq!(*peeked.lock().unwrap(), ["a!11=HELLO WORLD", "d!1=X"]);
}

#[test]
fn timestamps_and_headers_pass_through() {
    let input = strings("in");
    let out = strings("out");
    let b = StreamsBuilder::new();
    b.stream(&input).map_values(|v| v + "!").to(&out);
    let driver = TopologyTestDriver::new(b.build().unwrap()).unwrap();
    let record = Record::new("k".to_string(), "v".to_string(), 1234)
        .with_headers(ow_stream_core::Headers::new().with("trace", "abc"));
    driver.input_topic(&input).pipe_record(record).unwrap();
    let got = driver.output_topic(&out).read_record().unwrap().unwrap();
    assert_eq!(got.timestamp, 1234);
    assert_eq!(got.value, "v!");
    assert_eq!(got.headers.last_str("trace"), Some("abc"));
}

#[test]
fn split_merge_and_fan_out() {
    let input: Topic<String, i64> = counts("numbers");
    let (big, small, rest, all) = (
        counts("big"),
        counts("small"),
        counts("rest"),
        counts("all"),
    );
    let b = StreamsBuilder::new();
    let s = b.stream(&input);
    let branches = s
        .split("size")
        .branch("big", |_, v| *v >= 100)
        .branch("small", |_, v| *v >= 0)
        .default_branch("negative");
    assert_eq!(
        branches.names().collect::<Vec<_>>(),
        ["big", "small", "negative"]
    );
    branches["big"].to(&big);
    branches[1].to(&small);
    branches.get("negative").unwrap().to(&rest);
    branches["big"].merge(&branches["negative"]).to(&all);
    let topology = b.build().unwrap();
    let text = topology.describe().to_string();
    assert!(text.contains("Processor: size-big"), "{text}");
    let driver = TopologyTestDriver::new(topology).unwrap();
    let i = driver.input_topic(&input);
    for (k, v) in [("a", 150), ("b", 5), ("c", -3), ("d", 100), ("e", 0)] {
        i.pipe_input(k.into(), v).unwrap();
    }
    let values = |t: &Topic<String, i64>| driver.output_topic(t).read_values().unwrap();
    assert_eq!(values(&big), vec![150, 100]);
    assert_eq!(values(&small), vec![5, 0]);
    assert_eq!(values(&rest), vec![-3]);
    assert_eq!(values(&all), vec![150, -3, 100]);
}

#[test]
fn group_by_key_count_reduce_aggregate() {
    let input: Topic<String, i64> = counts("scores");
    let (count_out, sum_out, max_out) = (counts("count"), counts("sum"), counts("max"));
    let b = StreamsBuilder::new();
    let grouped = b.stream(&input).group_by_key();
    grouped
        .count(Materialized::as_("n"))
        .to_stream()
        .to(&count_out);
    grouped
        .reduce(|a, b| a + b, Materialized::as_("sum"))
        .to_stream()
        .to(&sum_out);
    grouped
        .aggregate(
            || i64::MIN,
            |_, v, acc| acc.max(v),
            Materialized::as_("max").with_value_serde(JsonSerde::new()),
        )
        .to_stream()
        .to(&max_out);
    let driver = TopologyTestDriver::new(b.build().unwrap()).unwrap();
    let i = driver.input_topic(&input);
    for (k, v) in [("a", 3), ("b", 10), ("a", 7), ("a", -1)] {
        i.pipe_input(k.into(), v).unwrap();
    }
    let last = |t: &Topic<String, i64>| driver.output_topic(t).read_key_values_to_map().unwrap();
    assert_eq!(last(&count_out), [("a".into(), 3), ("b".into(), 1)].into());
    assert_eq!(last(&sum_out), [("a".into(), 9), ("b".into(), 10)].into());
    assert_eq!(last(&max_out), [("a".into(), 7), ("b".into(), 10)].into());
    let store = driver.key_value_store::<String, i64>("sum").unwrap();
    assert_eq!(store.get(&"a".into()).unwrap(), Some(9));
    assert_eq!(store.get(&"zz".into()).unwrap(), None);
    assert_eq!(store.len().unwrap(), 2);
    // Every store write is in the changelog, with a commit marker after each record.
    let changelog = driver.raw_records("test-app-sum-changelog");
    let data: Vec<_> = changelog.iter().filter(|r| r.headers.is_empty()).collect();
    assert_eq!(data.len(), 4);
    assert_eq!(changelog.len(), 8);
}

#[test]
fn word_count_through_a_repartition_topic() {
    let lines = strings("lines");
    let out = counts("word-counts");
    let b = StreamsBuilder::new();
    b.stream(&lines)
        .flat_map_values(|l: String| {
            l.split_whitespace()
                .map(str::to_lowercase)
                .collect::<Vec<_>>()
        })
        .group_by(
            |_, w| w.clone(),
            Grouped::as_("words")
                .with_key_serde(StringSerde)
                .with_value_serde(StringSerde),
        )
        .count(Materialized::as_("counts"))
        .to_stream()
        .to(&out);
    let topology = b.build().unwrap();
    assert_eq!(topology.describe().subtopologies.len(), 2);
    let driver = TopologyTestDriver::new(topology).unwrap();
    let i = driver.input_topic(&lines);
    i.pipe_input("1".into(), "the quick brown fox".into())
        .unwrap();
    i.pipe_input("2".into(), "The lazy dog and THE fox".into())
        .unwrap();
    let result = driver.output_topic(&out).read_key_values_to_map().unwrap();
    assert_eq!(result.get("the"), Some(&3));
    assert_eq!(result.get("fox"), Some(&2));
    assert_eq!(result.get("dog"), Some(&1));
    assert_eq!(result.len(), 7);
    assert_eq!(driver.raw_records("test-app-words-repartition").len(), 10);
}

#[test]
fn repartitioned_copies_are_dropped() {
    // An upstream task that crashed writes the same repartitioned records again; the
    // aggregation downstream must count each only once.
    let lines = strings("lines");
    let out = counts("word-counts");
    let b = StreamsBuilder::new();
    b.stream(&lines)
        .group_by(
            |_, w| w.clone(),
            Grouped::as_("words")
                .with_key_serde(StringSerde)
                .with_value_serde(StringSerde),
        )
        .count(Materialized::as_("counts"))
        .to_stream()
        .to(&out);
    let driver = TopologyTestDriver::new(b.build().unwrap()).unwrap();
    let i = driver.input_topic(&lines);
    i.pipe_input("1".into(), "x".into()).unwrap();
    i.pipe_input("2".into(), "x".into()).unwrap();
    let repartition = driver.raw_records("test-app-words-repartition");
    assert_eq!(repartition.len(), 2);
    let internal = strings("test-app-words-repartition");
    let again = driver.input_topic(&internal);
    for r in &repartition {
        let record = Record::new(
            String::from_utf8(r.key.clone().unwrap().to_vec()).unwrap(),
            String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap(),
            r.timestamp,
        )
        .with_headers(r.headers.clone());
        again.pipe_record(record).unwrap();
    }
    let store = driver.key_value_store::<String, i64>("counts").unwrap();
    assert_eq!(store.get(&"x".into()).unwrap(), Some(2));
    assert_eq!(driver.metrics().duplicates_dropped, 2);
}

#[test]
fn tumbling_windows_emit_on_update_and_drop_late_records() {
    let input = strings("clicks");
    let b = StreamsBuilder::new();
    let out: Topic<Windowed<String>, i64> = Topic::new("out", JsonSerde::new(), JsonSerde::new());
    b.stream(&input)
        .group_by_key()
        .windowed_by(TimeWindows::of_size_with_grace(
            Duration::from_secs(60),
            Duration::from_secs(10),
        ))
        .count(Materialized::as_("per-minute").with_retention(Duration::from_secs(3600)))
        .to_stream()
        .to(&out);
    let driver = TopologyTestDriver::new(b.build().unwrap()).unwrap();
    let i = driver.input_topic(&input);
    let s = 1000;
    i.pipe_input_at("u".into(), "a".into(), 5 * s).unwrap();
    i.pipe_input_at("u".into(), "b".into(), 59 * s).unwrap();
    i.pipe_input_at("u".into(), "c".into(), 61 * s).unwrap();
    // Still within the grace period of [0, 60s): stream time 61s < 60s + 10s.
    i.pipe_input_at("u".into(), "d".into(), 30 * s).unwrap();
    i.pipe_input_at("u".into(), "e".into(), 75 * s).unwrap();
    // Now late: stream time 75s ≥ 70s.
    i.pipe_input_at("u".into(), "f".into(), 20 * s).unwrap();
    let got = driver.output_topic(&out).read_key_values().unwrap();
    let w0 = Window {
        start: 0,
        end: 60 * s,
    };
    let w1 = Window {
        start: 60 * s,
        end: 120 * s,
    };
    let wk = |w| Windowed {
        key: "u".to_string(),
        window: w,
    };
    assert_eq!(
        got,
        vec![
            (wk(w0), 1),
            (wk(w0), 2),
            (wk(w1), 1),
            (wk(w0), 3),
            (wk(w1), 2)
        ]
    );
    assert_eq!(driver.metrics().late_records_dropped, 1);
    let store = driver.window_store::<String, i64>("per-minute").unwrap();
    assert_eq!(
        store.fetch(&"u".into(), 0, 120 * s).unwrap(),
        vec![(w0, 3), (w1, 2)]
    );
}

#[test]
fn windows_emit_once_on_close() {
    let input = strings("clicks");
    let b = StreamsBuilder::new();
    let out: Topic<Windowed<String>, i64> = Topic::new("out", JsonSerde::new(), JsonSerde::new());
    b.stream(&input)
        .group_by_key()
        .windowed_by(TimeWindows::of_size_with_grace(
            Duration::from_millis(100),
            Duration::from_millis(20),
        ))
        .emit(EmitStrategy::OnWindowClose)
        .count(Materialized::as_("final"))
        .to_stream()
        .to(&out);
    let driver = TopologyTestDriver::new(b.build().unwrap()).unwrap();
    let i = driver.input_topic(&input);
    for (k, t) in [("a", 10), ("b", 50), ("a", 90), ("a", 110), ("b", 119)] {
        i.pipe_input_at(k.into(), "x".into(), t).unwrap();
    }
    let mut o = driver.output_topic(&out);
    assert!(o.is_empty(), "nothing closed before stream time 120");
    i.pipe_input_at("c".into(), "x".into(), 120).unwrap();
    let got = o.read_key_values().unwrap();
    let w = Window { start: 0, end: 100 };
    assert_eq!(
        got,
        vec![
            (
                Windowed {
                    key: "a".to_string(),
                    window: w
                },
                2
            ),
            (
                Windowed {
                    key: "b".to_string(),
                    window: w
                },
                1
            ),
        ]
    );
    i.pipe_input_at("c".into(), "x".into(), 500).unwrap();
    let got = o.read_key_values().unwrap();
    assert_eq!(
        got.len(),
        3,
        "[100, 200) closes with a=1, b=1, c=1: {got:?}"
    );
    assert!(got.iter().all(|(k, v)| k.window.start == 100 && *v == 1));
}

#[test]
fn hopping_windows() {
    let input = strings("clicks");
    let b = StreamsBuilder::new();
    b.stream(&input)
        .group_by_key()
        .windowed_by(
            TimeWindows::of_size_with_grace(
                Duration::from_millis(100),
                Duration::from_millis(1000),
            )
            .advance_by(Duration::from_millis(50)),
        )
        .count(Materialized::as_("hop").with_retention(Duration::from_secs(10)));
    let driver = TopologyTestDriver::new(b.build().unwrap()).unwrap();
    let i = driver.input_topic(&input);
    for t in [10, 60, 120] {
        i.pipe_input_at("k".into(), "x".into(), t).unwrap();
    }
    let store = driver.window_store::<String, i64>("hop").unwrap();
    let got: Vec<(i64, i64)> = store
        .fetch(&"k".into(), -1000, 1000)
        .unwrap()
        .into_iter()
        .map(|(w, c)| (w.start, c))
        .collect();
    assert_eq!(got, vec![(-50, 1), (0, 2), (50, 2), (100, 1)]);
}

#[test]
fn stream_table_joins() {
    let names = strings("user-names");
    let clicks = strings("clicks");
    let (joined, left) = (strings("joined"), strings("left"));
    let b = StreamsBuilder::new();
    let table = b.table(&names, Materialized::as_("names"));
    let s = b.stream(&clicks);
    s.join(&table, |_, page, name| format!("{name}:{page}"))
        .to(&joined);
    s.left_join(&table, |_, page, name| {
        format!("{}:{page}", name.unwrap_or_else(|| "?".into()))
    })
    .to(&left);
    let driver = TopologyTestDriver::new(b.build().unwrap()).unwrap();
    let n = driver.input_topic(&names);
    let c = driver.input_topic(&clicks);
    c.pipe_input("1".into(), "/a".into()).unwrap();
    n.pipe_input("1".into(), "ada".into()).unwrap();
    c.pipe_input("1".into(), "/b".into()).unwrap();
    n.pipe_input("1".into(), "ada l.".into()).unwrap();
    c.pipe_input("1".into(), "/c".into()).unwrap();
    // A tombstone deletes the name.
    driver
        .input_topic(&names)
        .pipe_raw(Some(b"1"), None, 0)
        .unwrap();
    c.pipe_input("1".into(), "/d".into()).unwrap();
    assert_eq!(
        driver.output_topic(&joined).read_values().unwrap(),
        vec!["ada:/b", "ada l.:/c"]
    );
    assert_eq!(
        driver.output_topic(&left).read_values().unwrap(),
        vec!["?:/a", "ada:/b", "ada l.:/c", "?:/d"]
    );
    assert!(driver.dead_letters().is_empty());
}

struct Dedupe;

impl Processor<String, String, String, String> for Dedupe {
    fn process(
        &mut self,
        record: Record<String, String>,
        ctx: &mut ProcessorContext<'_, '_, String, String>,
    ) -> Result<(), BoxError> {
        let mut seen = ctx.key_value_store::<String, String>("last-value")?;
        if seen.get(&record.key)?.as_deref() == Some(record.value.as_str()) {
            return Ok(());
        }
        seen.put(&record.key, &record.value)?;
        if record.value == "boom" {
            return Err("the value was boom".into());
        }
        ctx.forward(record)?;
        Ok(())
    }
}

#[test]
fn custom_processor_with_a_store() {
    let input = strings("in");
    let out = strings("out");
    let b = StreamsBuilder::new();
    b.add_state_store(
        Materialized::<String, String>::as_("last-value")
            .with_key_serde(StringSerde)
            .with_value_serde(StringSerde),
    );
    b.stream(&input)
        .process("dedupe", &["last-value"], || Dedupe)
        .to(&out);
    let driver = TopologyTestDriver::new(b.build().unwrap()).unwrap();
    let i = driver.input_topic(&input);
    for v in ["a", "a", "b", "b", "a", "boom"] {
        i.pipe_input("k".into(), v.into()).unwrap();
    }
    assert_eq!(
        driver.output_topic(&out).read_values().unwrap(),
        vec!["a", "b", "a"]
    );
    let dlq = driver.dead_letters();
    assert_eq!(dlq.len(), 1);
    assert_eq!(dlq[0].headers.last_str("ow.dlq.node"), Some("dedupe"));
    assert_eq!(
        dlq[0].headers.last_str("ow.dlq.error"),
        Some("the value was boom")
    );
}

#[test]
fn poison_records_go_to_the_dead_letter_topic_with_provenance() {
    let input: Topic<String, i64> = counts("numbers");
    let out = counts("doubled");
    let b = StreamsBuilder::new();
    b.stream(&input)
        .try_map_values(|v| if v == 13 { Err("unlucky") } else { Ok(v * 2) })
        .to(&out);
    let driver = TopologyTestDriver::new(b.build().unwrap()).unwrap();
    let i = driver.input_topic(&input);
    i.pipe_input("a".into(), 1).unwrap();
    i.pipe_raw(Some(b"b"), Some(b"not json"), 7).unwrap();
    i.pipe_input("c".into(), 13).unwrap();
    i.pipe_raw(Some(b"d"), None, 8).unwrap();
    i.pipe_input("e".into(), 2).unwrap();
    assert_eq!(driver.output_topic(&out).read_values().unwrap(), vec![2, 4]);
    let dlq = driver.dead_letters();
    assert_eq!(dlq.len(), 3);
    let p = &dlq[0];
    assert_eq!(p.key.as_deref(), Some(&b"b"[..]));
    assert_eq!(p.value.as_deref(), Some(&b"not json"[..]));
    assert_eq!(p.timestamp, 7);
    assert_eq!(p.headers.last_str("ow.dlq.topic"), Some("numbers"));
    assert_eq!(p.headers.last_str("ow.dlq.partition"), Some("0"));
    assert_eq!(p.headers.last_str("ow.dlq.offset"), Some("1"));
    assert_eq!(p.headers.last_str("ow.dlq.stage"), Some("deserialize"));
    assert_eq!(p.headers.last_str("ow.dlq.application"), Some("test-app"));
    assert!(p.headers.last_str("ow.dlq.error").unwrap().contains("json"));
    assert_eq!(dlq[1].headers.last_str("ow.dlq.stage"), Some("process"));
    assert_eq!(dlq[1].headers.last_str("ow.dlq.offset"), Some("2"));
    assert_eq!(dlq[1].headers.last_str("ow.dlq.error"), Some("unlucky"));
    assert!(
        dlq[2]
            .headers
            .last_str("ow.dlq.error")
            .unwrap()
            .contains("tombstone")
    );
    let m = driver.metrics();
    assert_eq!(
        (
            m.deserialization_errors,
            m.processing_errors,
            m.dead_letters
        ),
        (2, 1, 3)
    );
}

#[test]
fn error_policies_skip_and_fail() {
    let input: Topic<String, i64> = counts("numbers");
    let out = counts("out");
    let build = || {
        let b = StreamsBuilder::new();
        b.stream(&input).to(&out);
        b.build().unwrap()
    };
    let skip = TopologyTestDriver::with_config(
        build(),
        TestDriverConfig::default().with_error_policy(OnError::LogAndSkip),
    )
    .unwrap();
    skip.input_topic(&input)
        .pipe_raw(Some(b"a"), Some(b"x"), 0)
        .unwrap();
    skip.input_topic(&input).pipe_input("b".into(), 1).unwrap();
    assert_eq!(skip.output_topic(&out).read_values().unwrap(), vec![1]);
    assert!(skip.dead_letters().is_empty());
    assert_eq!(skip.metrics().deserialization_errors, 1);

    let fail = TopologyTestDriver::with_config(
        build(),
        TestDriverConfig::default().with_error_policy(OnError::Fail),
    )
    .unwrap();
    let err = fail
        .input_topic(&input)
        .pipe_raw(Some(b"a"), Some(b"x"), 0)
        .unwrap_err();
    // The undecodable record comes with the error, byte for byte.
    let raw = err.raw_record().expect("the record");
    assert_eq!(raw.key.as_deref(), Some(&b"a"[..]));
    assert_eq!(raw.value.as_deref(), Some(&b"x"[..]));
    match err {
        Error::Deserialize {
            topic,
            partition,
            offset,
            ..
        } => {
            assert_eq!((&*topic, partition, offset), ("numbers", 0, 0));
        }
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn persistent_stores_in_the_driver() {
    let input: Topic<String, i64> = counts("scores");
    let b = StreamsBuilder::new();
    b.stream(&input)
        .group_by_key()
        .count(Materialized::as_("n").persistent());
    let driver = TopologyTestDriver::with_config(
        b.build().unwrap(),
        TestDriverConfig::default().with_persistent_stores(),
    )
    .unwrap();
    let i = driver.input_topic(&input);
    for k in ["a", "b", "a"] {
        i.pipe_input(k.into(), 1).unwrap();
    }
    let store = driver.key_value_store::<String, i64>("n").unwrap();
    let mut all = store.all().unwrap();
    all.sort();
    assert_eq!(all, vec![("a".to_string(), 2), ("b".to_string(), 1)]);
}

#[test]
fn build_errors_name_the_problem() {
    let input = strings("in");
    let b = StreamsBuilder::new();
    let s = b.stream(&input);
    s.group_by_key().count(Materialized::as_("same"));
    s.group_by_key().count(Materialized::as_("same"));
    assert_eq!(
        b.build().unwrap_err(),
        TopologyError::DuplicateName {
            kind: "store",
            name: "same".into()
        }
    );

    let b = StreamsBuilder::new();
    b.stream(&input)
        .map(|k, v| (k, v.len()))
        .group_by_key()
        .count(Materialized::as_("lens"));
    let err = b.build().unwrap_err();
    assert!(
        err.to_string().contains("lens") && err.to_string().contains("key serde"),
        "{err}"
    );

    let b = StreamsBuilder::new();
    b.stream(&input)
        .group_by_key()
        .count(Materialized::as_("bad name"));
    assert!(matches!(
        b.build().unwrap_err(),
        TopologyError::InvalidName { kind: "store", .. }
    ));

    let b = StreamsBuilder::new();
    b.stream(&input).to(&strings("a"));
    b.stream(&input).to(&strings("b"));
    assert!(matches!(
        b.build().unwrap_err(),
        TopologyError::TopicReadTwice { .. }
    ));

    assert_eq!(
        StreamsBuilder::new().build().unwrap_err(),
        TopologyError::NoSource
    );
}

#[test]
fn describe_is_stable() {
    let lines = strings("lines");
    let b = StreamsBuilder::new();
    b.stream(&lines)
        .flat_map_values(|l: String| l.split(' ').map(String::from).collect::<Vec<_>>())
        .named("split-words")
        .group_by(
            |_, w| w.clone(),
            Grouped::as_("words")
                .with_key_serde(StringSerde)
                .with_value_serde(StringSerde),
        )
        .count(Materialized::as_("counts"))
        .to_stream()
        .to(&counts("word-counts"));
    let description = b.build().unwrap().describe();
    let expected = "\
Topologies:
   Sub-topology: 0
    Source: lines-source (topic: lines)
      --> split-words
    Processor: split-words (stores: [])
      --> words-key-select
      <-- lines-source
    Processor: words-key-select (stores: [])
      --> words-repartition-sink
      <-- split-words
    Sink: words-repartition-sink (topic: ${application_id}-words-repartition)
      <-- words-key-select
   Sub-topology: 1
    Source: words-repartition-source (topic: ${application_id}-words-repartition)
      --> counts
    Processor: counts (stores: [counts])
      --> word-counts-sink
      <-- words-repartition-source
    Sink: word-counts-sink (topic: word-counts)
      <-- counts
Stores:
   counts (key-value, sub-topology 1, changelog: ${application_id}-counts-changelog)
";
    assert_eq!(description.to_string(), expected);
    let json = serde_json::to_value(&description).unwrap();
    assert_eq!(json["subtopologies"][1]["nodes"][1]["name"], "counts");
    assert_eq!(json["subtopologies"][0]["nodes"][0]["kind"], "source");
    let dot = description.to_dot();
    assert!(dot.starts_with("digraph topology {"));
    assert!(dot.contains("\"store:counts\" [shape=cylinder"));
}

/// The partition Kafka's default partitioner gives `bytes` among `n`.
fn murmur_partition(bytes: &[u8], n: i32) -> i32 {
    ow_stream_log::partition_for_key(bytes, n)
}

#[test]
fn sinks_choose_partitions_with_kafkas_hash() {
    const N: i32 = 8;
    let input: Topic<String, i64> = counts("scores");
    let (plain, hashed, like_key, explicit) = (
        counts("plain"),
        counts("hashed"),
        counts("like-key"),
        counts("explicit"),
    );
    // Keys "<player>/<mode>"; a topic keyed by the player alone, with a JSON key serde.
    let players: Topic<String, i64> =
        Topic::new("players", JsonSerde::<String>::new(), JsonSerde::new());
    let player = |k: &String| k.split('/').next().unwrap_or_default().to_string();
    let b = StreamsBuilder::new();
    let s = b.stream(&input);
    s.to(&plain);
    s.to_with(
        &hashed,
        Produced::new()
            .with_name("by-player")
            .with_partitioner(move |k: &String, _| player(k).into_bytes()),
    );
    s.map(move |k, v| ((player(&k), k), v)).to_with(
        &Topic::new(
            "pairs",
            JsonSerde::<(String, String)>::new(),
            JsonSerde::<i64>::new(),
        ),
        Produced::new().with_partition_key_of(&players, |k: &(String, String), _| &k.0),
    );
    s.to_with(
        &like_key,
        Produced::new().with_partition_key_of(&players, |k: &String, _| k),
    );
    s.to_with(
        &explicit,
        Produced::new().with_stream_partitioner(|_, v: &i64, n| (*v as i32).rem_euclid(n + 1)),
    );
    let topology = b.build().unwrap();
    assert!(topology.describe().to_string().contains("Sink: by-player"));
    let mut config = TestDriverConfig::default();
    for t in ["plain", "hashed", "like-key", "explicit", "pairs"] {
        config = config.with_topic_partitions(t, N);
    }
    let driver = TopologyTestDriver::with_config(topology, config).unwrap();
    let i = driver.input_topic(&input);
    let keys = ["ada/pc", "ada/console", "bob/pc", "cy/console", "dee/pc"];
    for (n, k) in keys.iter().enumerate() {
        i.pipe_input(k.to_string(), n as i64 * 2).unwrap();
    }
    let partitions =
        |t: &str| -> Vec<i32> { driver.raw_records(t).iter().map(|r| r.partition).collect() };
    let json_key = |k: &str| {
        JsonSerde::<String>::new()
            .serialize(SerdeContext::key("players"), &k.to_string())
            .unwrap()
    };
    // `to`: the default partitioner over the key bytes.
    let want: Vec<i32> = keys
        .iter()
        .map(|k| murmur_partition(k.as_bytes(), N))
        .collect();
    assert_eq!(partitions("plain"), want);
    // Bytes from the record: the player alone, so both of ada's records share a partition.
    let want: Vec<i32> = keys
        .iter()
        .map(|k| murmur_partition(k.split('/').next().unwrap().as_bytes(), N))
        .collect();
    assert_eq!(partitions("hashed"), want);
    assert_eq!(want[0], want[1]);
    // As another topic's key serde writes the part: JSON, quotes included.
    let want: Vec<i32> = keys
        .iter()
        .map(|k| murmur_partition(&json_key(k), N))
        .collect();
    assert_eq!(partitions("like-key"), want);
    let want: Vec<i32> = keys
        .iter()
        .map(|k| murmur_partition(&json_key(k.split('/').next().unwrap()), N))
        .collect();
    assert_eq!(partitions("pairs"), want);
    // Explicit partitions; one out of range (8 of 0..8) is a processing error of its record.
    assert_eq!(partitions("explicit"), vec![0, 2, 4, 6]);
    let dead = driver.dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        dead[0].headers.last_str("ow.dlq.node"),
        Some("explicit-sink")
    );
    assert!(
        dead[0]
            .headers
            .last_str("ow.dlq.error")
            .unwrap()
            .contains("partition 8"),
        "{:?}",
        dead[0].headers.last_str("ow.dlq.error")
    );
}

#[test]
fn with_timestamp_and_try_map() {
    let input = strings("readings");
    let out: Topic<String, f64> = Topic::new("parsed", StringSerde, JsonSerde::new());
    let b = StreamsBuilder::new();
    b.stream(&input)
        .try_map(|_, line: String| {
            let (sensor, rest) = line.split_once('=').ok_or("no '='")?;
            let (value, at) = rest.split_once('@').ok_or("no '@'")?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>((
                sensor.to_string(),
                (value.parse::<f64>()?, at.parse::<i64>()?),
            ))
        })
        .with_timestamp(|_, (_, at)| *at)
        .map_values(|(value, _)| value)
        .with_serdes(StringSerde, JsonSerde::new())
        .to(&out);
    let driver = TopologyTestDriver::new(b.build().unwrap()).unwrap();
    let i = driver.input_topic(&input);
    i.pipe_input_at("r1".into(), "t1=21.5@1000".into(), 5000)
        .unwrap();
    i.pipe_input_at("r2".into(), "garbage".into(), 6000)
        .unwrap();
    i.pipe_input_at("r3".into(), "t2=x@1".into(), 7000).unwrap();
    i.pipe_input_at("r4".into(), "t2=-3@2500".into(), 8000)
        .unwrap();
    let got: Vec<(String, f64, i64)> = driver
        .output_topic(&out)
        .read_records()
        .unwrap()
        .into_iter()
        .map(|r| (r.key, r.value, r.timestamp))
        .collect();
    assert_eq!(
        got,
        vec![("t1".into(), 21.5, 1000), ("t2".into(), -3.0, 2500)]
    );
    // The two lines that do not parse went to the dead-letter topic, unchanged.
    let dead = driver.dead_letters();
    assert_eq!(dead.len(), 2);
    assert_eq!(dead[0].value.as_deref(), Some(&b"garbage"[..]));
    assert_eq!(dead[1].headers.last_str("ow.dlq.stage"), Some("process"));
}

#[test]
fn aggregate_option_starts_from_none() {
    let input: Topic<String, i64> = counts("scores");
    let out: Topic<String, (i64, i64, u32)> = Topic::new("ranges", StringSerde, JsonSerde::new());
    let b = StreamsBuilder::new();
    b.stream(&input)
        .group_by_key()
        .aggregate_option(
            |_, v, range: Option<(i64, i64, u32)>| match range {
                None => (v, v, 1),
                Some((lo, hi, n)) => (lo.min(v), hi.max(v), n + 1),
            },
            Materialized::as_("ranges").with_value_serde(JsonSerde::new()),
        )
        .to_stream()
        .to(&out);
    let driver = TopologyTestDriver::new(b.build().unwrap()).unwrap();
    let i = driver.input_topic(&input);
    for (k, v) in [("a", 5), ("a", -2), ("b", 7), ("a", 9)] {
        i.pipe_input(k.into(), v).unwrap();
    }
    assert_eq!(
        driver.output_topic(&out).read_values().unwrap(),
        vec![(5, 5, 1), (-2, 5, 2), (7, 7, 1), (-2, 9, 3)]
    );
    let store = driver
        .key_value_store::<String, (i64, i64, u32)>("ranges")
        .unwrap();
    assert_eq!(store.get(&"a".into()).unwrap(), Some((-2, 9, 3)));
}

#[test]
fn emit_on_change_writes_and_forwards_only_changes() {
    let input: Topic<String, i64> = counts("scores");
    let (best_out, table_out, daily_out) = (counts("best"), counts("latest"), counts("daily"));
    let latest: Topic<String, i64> = counts("latest-in");
    let b = StreamsBuilder::new();
    let grouped = b.stream(&input).group_by_key();
    grouped
        .reduce(|a, b| a.max(b), Materialized::as_("best").emit_on_change())
        .to_stream()
        .to(&best_out);
    grouped
        .windowed_by(TimeWindows::of_size_with_grace(
            Duration::from_secs(10),
            Duration::ZERO,
        ))
        .aggregate(
            || 0,
            |_, v, best: i64| best.max(v),
            Materialized::as_("daily-best")
                .with_value_serde(JsonSerde::new())
                .emit_on_change(),
        )
        .to_stream()
        .map(|w: Windowed<String>, v| (w.key, v))
        .with_serdes(StringSerde, JsonSerde::new())
        .to(&daily_out);
    b.table(&latest, Materialized::as_("latest").emit_on_change())
        .to_stream()
        .to(&table_out);
    let driver = TopologyTestDriver::new(b.build().unwrap()).unwrap();
    let i = driver.input_topic(&input);
    for (k, v, t) in [
        ("a", 5, 0),
        ("a", 3, 1),
        ("a", 5, 2),
        ("a", 8, 3),
        ("b", 1, 4),
    ] {
        i.pipe_input_at(k.into(), v, t).unwrap();
    }
    assert_eq!(
        driver.output_topic(&best_out).read_key_values().unwrap(),
        vec![("a".into(), 5), ("a".into(), 8), ("b".into(), 1)]
    );
    assert_eq!(
        driver.output_topic(&daily_out).read_key_values().unwrap(),
        vec![("a".into(), 5), ("a".into(), 8), ("b".into(), 1)]
    );
    let data = |changelog: &str| {
        driver
            .raw_records(changelog)
            .into_iter()
            .filter(|r| r.headers.is_empty())
            .count()
    };
    assert_eq!(data("test-app-best-changelog"), 3);
    assert_eq!(data("test-app-daily-best-changelog"), 3);
    let t = driver.input_topic(&latest);
    for (k, v) in [("x", 1), ("x", 1), ("y", 2), ("x", 3), ("y", 2)] {
        t.pipe_input(k.into(), v).unwrap();
    }
    assert_eq!(
        driver.output_topic(&table_out).read_key_values().unwrap(),
        vec![("x".into(), 1), ("y".into(), 2), ("x".into(), 3)]
    );
    assert_eq!(data("test-app-latest-changelog"), 3);
    // A tombstone for a key the table does not hold changes nothing either.
    t.pipe_raw(Some(b"zz"), None, 10).unwrap();
    t.pipe_raw(Some(b"x"), None, 11).unwrap();
    assert_eq!(data("test-app-latest-changelog"), 4);
    // Without the option every update is written and forwarded.
    let b = StreamsBuilder::new();
    b.stream(&input)
        .group_by_key()
        .reduce(|a, b| a.max(b), Materialized::as_("best"))
        .to_stream()
        .to(&best_out);
    let driver = TopologyTestDriver::new(b.build().unwrap()).unwrap();
    for (k, v) in [("a", 5), ("a", 3)] {
        driver.input_topic(&input).pipe_input(k.into(), v).unwrap();
    }
    assert_eq!(
        driver.output_topic(&best_out).read_values().unwrap(),
        [5, 5]
    );
}

/// Range, prefix and multi-key queries, on in-memory and on persistent (redb) shards.
#[test]
fn interactive_range_prefix_and_get_many() {
    for persistent in [false, true] {
        let input: Topic<String, i64> = counts("scores");
        let b = StreamsBuilder::new();
        b.table(&input, Materialized::as_("scores"));
        let config = if persistent {
            TestDriverConfig::default().with_persistent_stores()
        } else {
            TestDriverConfig::default()
        };
        let driver = TopologyTestDriver::with_config(b.build().unwrap(), config).unwrap();
        let i = driver.input_topic(&input);
        for (k, v) in [
            ("bob/pc", 3),
            ("ada/pc", 1),
            ("ada/console", 2),
            ("ada", 0),
            ("adam/pc", 4),
            ("cy/pc", 5),
        ] {
            i.pipe_input(k.into(), v).unwrap();
        }
        let store = driver.key_value_store::<String, i64>("scores").unwrap();
        let keys = |entries: Vec<(String, i64)>| -> Vec<String> {
            entries.into_iter().map(|(k, _)| k).collect()
        };
        // Inclusive at both ends, in byte order of the serialized keys.
        assert_eq!(
            keys(store.range(&"ada/".into(), &"bob/pc".into()).unwrap()),
            ["ada/console", "ada/pc", "adam/pc", "bob/pc"],
            "persistent: {persistent}"
        );
        assert!(store.range(&"z".into(), &"a".into()).unwrap().is_empty());
        assert_eq!(
            keys(
                store
                    .range_bytes(Bound::Excluded(b"ada"), Bound::Excluded(b"adam/pc"))
                    .unwrap()
            ),
            ["ada/console", "ada/pc"]
        );
        assert_eq!(
            keys(store.prefix_scan(b"ada/").unwrap()),
            ["ada/console", "ada/pc"]
        );
        assert_eq!(
            keys(store.prefix_scan_key(&"ada".into()).unwrap()),
            ["ada", "ada/console", "ada/pc", "adam/pc"]
        );
        assert_eq!(store.prefix_scan(b"").unwrap().len(), 6);
        assert!(store.prefix_scan(b"\xff").unwrap().is_empty());
        assert_eq!(
            store
                .get_many(&["cy/pc".into(), "nobody".into(), "ada".into()])
                .unwrap(),
            vec![Some(5), None, Some(0)]
        );
        assert!(store.get_many(&[]).unwrap().is_empty());
    }
}
