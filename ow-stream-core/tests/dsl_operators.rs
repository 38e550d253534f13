//! Every DSL operator through the broker-free test driver.

use std::time::Duration;

use ow_stream_core::config::OnError;
use ow_stream_core::dsl::{EmitStrategy, Grouped, Materialized, TimeWindows, Window, Windowed};
use ow_stream_core::error::BoxError;
use ow_stream_core::processor::{Processor, ProcessorContext};
use ow_stream_core::serde::{JsonSerde, StringSerde};
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
    let b = StreamsBuilder::new();
    b.stream(&input)
        .filter(|_, v| !v.is_empty())
        .filter_not(|_, v| v.starts_with('#'))
        .map_values(|v| v.to_uppercase())
        .map(|k, v| (format!("{k}!"), v))
        .select_key(|k, v| format!("{k}{}", v.len()))
        .peek(|_, _| {})
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
    branches[0].to(&big);
    branches[1].to(&small);
    branches[2].to(&rest);
    branches[0].merge(&branches[2]).to(&all);
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
