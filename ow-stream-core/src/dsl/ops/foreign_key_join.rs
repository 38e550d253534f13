//! `join_on_foreign_key` and `left_join_on_foreign_key`: the foreign-key table–table join
//! (Kafka Streams' `KTable#join(KTable, Function, ValueJoiner)`, KIP-213). Each row of this
//! (the *left*) table names a row of the other (the *right*) table by a foreign key taken
//! from its value; the result is keyed by the left key. The tables need not be
//! co-partitioned: the join talks across partitions through two internal topics.
//!
//! # How it works
//! 1. Left side, on each change of the left table, the node `<name>-subscription-send` sends a
//!    *subscription* keyed by the foreign key to
//!    `<application_id>-<name>-subscription-registration-topic`: the left key, a hash of the
//!    left row's stored bytes and an instruction (subscribe, or unsubscribe). It keeps the
//!    foreign key of each left key in the store `<name>-foreign-keys` (changelogged), so that
//!    when a row's foreign key changes or the row is deleted, the old foreign key is
//!    unsubscribed. A left delete also deletes the result (`<name>-left-deletes`).
//! 2. Right side, in the right table's sub-topology (the registration topic has the right
//!    table's partition count, so a subscription reaches the task that owns its foreign key):
//!    `<name>-subscription-processor` keeps `(foreign key, left key) -> hash` in the store
//!    `<name>-subscription-store` (changelogged) and answers each subscription with the right
//!    row (or its absence), keyed by the left key, on
//!    `<application_id>-<name>-subscription-response-topic`. On each change of the right
//!    table, `<name>-subscription-join-foreign` answers every left key subscribed to it (a
//!    prefix range over the foreign key in the subscription store).
//! 3. Left side again, `<name>-subscription-response-resolver` drops a response whose hash is
//!    not that of the current left row (it answers an older version of the row, or a deleted
//!    one), else joins the current left row with the right row it carries: the node `<name>`
//!    writes the result to the store `<name>` and forwards the change.
//!
//! The response topic has the left table's partition count and is keyed by the left key's
//! bytes: a response reaches the task that owns the left row.

use std::ops::Bound;
use std::sync::Arc;

use super::aggregate::{Unavailable, encode_for_store};
use super::source::SourceSpec;
use super::table::{TableRows, TableSpec, table_node, write_row};
use crate::config::StoreBackend;
use crate::dsl::{Data, Materialized, Table};
use crate::error::{Error, StoreError};
use crate::processor::node::{Children, NodeSpec, OpSpec, fn_node};
use crate::record::{Headers, Record};
use crate::runtime::context::TaskCx;
use crate::serde::{BytesSerde, Serde, SerdeContext, SerdeError};
use crate::state::{StoreDef, StoreKind, StoreSerdes};
use crate::topology::{NodeKind, TopicRef};

/// The result of a left row and the right row it names (`None`: the right table has none),
/// or `None` when the left key has no result.
type FkJoiner<VL, VR, VO> = Arc<dyn Fn(&VL, Option<VR>) -> Option<VO> + Send + Sync>;

/// What a subscription asks of the right side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Instruction {
    /// Remember the left key under the foreign key and answer with the right row.
    Subscribe,
    /// Forget the left key under the foreign key; no answer.
    Unsubscribe,
}

/// A subscription of a left key to a foreign key (the record's key).
#[derive(Clone, Debug)]
pub(crate) struct Subscription {
    instruction: Instruction,
    /// The hash of the left row's bytes when it was sent.
    hash: u64,
    /// The left key's bytes.
    left_key: Vec<u8>,
}

/// The right side's answer to a left key (the record's key): the right row's bytes, if any,
/// for the left row whose hash was `hash`.
#[derive(Clone, Debug)]
pub(crate) struct Response {
    hash: u64,
    right: Option<Vec<u8>>,
}

const VERSION: u8 = 0;

fn malformed(reason: &str) -> SerdeError {
    SerdeError::Malformed {
        format: "foreign-key join",
        reason: reason.to_string(),
    }
}

fn read_u64(bytes: &[u8]) -> Result<u64, SerdeError> {
    let array: [u8; 8] = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| malformed("too short for a hash"))?;
    Ok(u64::from_be_bytes(array))
}

/// `[version][instruction][hash: 8 bytes][left key]`.
struct SubscriptionSerde;

impl Serde<Subscription> for SubscriptionSerde {
    fn serialize_into(
        &self,
        _ctx: SerdeContext<'_>,
        value: &Subscription,
        out: &mut Vec<u8>,
    ) -> Result<(), SerdeError> {
        out.push(VERSION);
        out.push(match value.instruction {
            Instruction::Subscribe => 0,
            Instruction::Unsubscribe => 1,
        });
        out.extend_from_slice(&value.hash.to_be_bytes());
        out.extend_from_slice(&value.left_key);
        Ok(())
    }

    fn deserialize(
        &self,
        _ctx: SerdeContext<'_>,
        bytes: &[u8],
    ) -> Result<Subscription, SerdeError> {
        let (Some(&VERSION), Some(&instruction)) = (bytes.first(), bytes.get(1)) else {
            return Err(malformed("not a version 0 subscription"));
        };
        let instruction = match instruction {
            0 => Instruction::Subscribe,
            1 => Instruction::Unsubscribe,
            _ => return Err(malformed("unknown subscription instruction")),
        };
        Ok(Subscription {
            instruction,
            hash: read_u64(&bytes[2..])?,
            left_key: bytes.get(10..).unwrap_or_default().to_vec(),
        })
    }

    fn describe(&self) -> String {
        "subscription".into()
    }
}

/// `[version][hash: 8 bytes][0 | 1 right row]`.
struct ResponseSerde;

impl Serde<Response> for ResponseSerde {
    fn serialize_into(
        &self,
        _ctx: SerdeContext<'_>,
        value: &Response,
        out: &mut Vec<u8>,
    ) -> Result<(), SerdeError> {
        out.push(VERSION);
        out.extend_from_slice(&value.hash.to_be_bytes());
        match &value.right {
            None => out.push(0),
            Some(right) => {
                out.push(1);
                out.extend_from_slice(right);
            }
        }
        Ok(())
    }

    fn deserialize(&self, _ctx: SerdeContext<'_>, bytes: &[u8]) -> Result<Response, SerdeError> {
        if bytes.first() != Some(&VERSION) {
            return Err(malformed("not a version 0 subscription response"));
        }
        let hash = read_u64(&bytes[1..])?;
        let right = match bytes.get(9) {
            Some(0) => None,
            Some(1) => Some(bytes.get(10..).unwrap_or_default().to_vec()),
            _ => return Err(malformed("bad subscription response flag")),
        };
        Ok(Response { hash, right })
    }

    fn describe(&self) -> String {
        "subscription-response".into()
    }
}

/// A stable 64-bit hash of a left row's bytes (FNV-1a): what tells a response for the current
/// row from one for an older version.
fn row_hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The subscription store's key prefix of a foreign key: `[length: 4 bytes][foreign key]`.
fn prefix_of(fk: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(fk.len() + 4);
    out.extend_from_slice(&(fk.len() as u32).to_be_bytes());
    out.extend_from_slice(fk);
    out
}

/// The least key after every key that starts with `prefix`, or `None` when there is none.
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

fn store_err(store: &Arc<str>) -> impl Fn(SerdeError) -> Error + '_ {
    move |e| Error::store(store.clone(), StoreError::Serde(e))
}

/// Declares a store of raw bytes (an internal store of the join).
fn bytes_store(name: &Arc<str>, backend: Option<StoreBackend>, logging: bool) -> Arc<StoreDef> {
    Arc::new(StoreDef {
        name: name.clone(),
        kind: StoreKind::KeyValue,
        backend,
        logging,
        caching: false,
        key_describe: "bytes".into(),
        value_describe: "bytes".into(),
        serdes: Arc::new(StoreSerdes {
            key: Arc::new(BytesSerde) as Arc<dyn Serde<Vec<u8>>>,
            value: Arc::new(BytesSerde) as Arc<dyn Serde<Vec<u8>>>,
        }),
    })
}

/// The spec of `<name>-subscription-send`: each change of the left table (read as one by
/// `lift`) becomes subscriptions keyed by foreign key.
fn send_spec<KL: Data, VIn: Data, VL: Data, KR: Data>(
    lift: fn(VIn) -> Option<VL>,
    left: TableRows<KL, VL>,
    fk_key: TableRows<KR, ()>,
    foreign_keys: Arc<str>,
    extractor: Arc<dyn Fn(&VL) -> KR + Send + Sync>,
) -> OpSpec<KL, VIn, KR, Subscription> {
    OpSpec::new(move |children, env| {
        let left_index = env.store(&left.store)?;
        let fk_index = env.store(&foreign_keys)?;
        let (left, fk_key, foreign_keys) = (left.clone(), fk_key.clone(), foreign_keys.clone());
        let extractor = extractor.clone();
        let (mut key_buf, mut fk_buf) = (Vec::new(), Vec::new());
        Ok(fn_node(
            children,
            move |r: Record<KL, VIn>, ch: &mut Children<KR, Subscription>, cx| {
                let ctx = SerdeContext::key(&left.store);
                encode_for_store(cx, &left.store, &*left.key, ctx, &r.key, &mut key_buf)?;
                let old = cx.state.get(fk_index, &key_buf)?;
                let row = lift(r.value);
                let new = match &row {
                    Some(v) => {
                        let fk = extractor(v);
                        let ctx = SerdeContext::key(&fk_key.store);
                        encode_for_store(cx, &fk_key.store, &*fk_key.key, ctx, &fk, &mut fk_buf)?;
                        Some(fk)
                    }
                    None => None,
                };
                if let Some(old) = &old
                    && (new.is_none() || old != &fk_buf)
                {
                    let ctx = SerdeContext::key(&fk_key.store);
                    let old_fk = cx
                        .decode(&*fk_key.key, ctx, old)
                        .map_err(store_err(&foreign_keys))?;
                    let unsubscribe = Subscription {
                        instruction: Instruction::Unsubscribe,
                        hash: 0,
                        left_key: key_buf.clone(),
                    };
                    send(ch, cx, old_fk, unsubscribe, r.timestamp, &r.headers)?;
                }
                let Some(fk) = new else {
                    if old.is_some() {
                        cx.state
                            .put(fk_index, &key_buf, None, r.timestamp, cx.out)?;
                    }
                    return Ok(());
                };
                if old.as_deref() != Some(fk_buf.as_slice()) {
                    cx.state
                        .put(fk_index, &key_buf, Some(&fk_buf), r.timestamp, cx.out)?;
                }
                // The left table's node wrote the row just before: hash the stored bytes,
                // which the resolver reads back.
                let stored = cx.state.get(left_index, &key_buf)?.unwrap_or_default();
                let subscribe = Subscription {
                    instruction: Instruction::Subscribe,
                    hash: row_hash(&stored),
                    left_key: key_buf.clone(),
                };
                send(ch, cx, fk, subscribe, r.timestamp, &r.headers)
            },
        ))
    })
}

fn send<K: Data, V: Data>(
    ch: &mut Children<K, V>,
    cx: &mut TaskCx<'_>,
    key: K,
    value: V,
    timestamp: i64,
    headers: &Headers,
) -> Result<(), Error> {
    ch.forward(
        Record {
            key,
            value,
            timestamp,
            headers: headers.clone(),
        },
        cx,
    )
}

/// The spec of `<name>-left-deletes`: a left delete deletes the result.
fn left_deletes_spec<KL: Data, VIn: Data, VL: Data, VO: Data>(
    lift: fn(VIn) -> Option<VL>,
) -> OpSpec<KL, VIn, KL, Option<VO>> {
    OpSpec::new(move |children, _env| {
        Ok(fn_node(
            children,
            move |r: Record<KL, VIn>, ch: &mut Children<KL, Option<VO>>, cx| {
                if lift(r.value).is_some() {
                    return Ok(());
                }
                send(ch, cx, r.key, None, r.timestamp, &r.headers)
            },
        ))
    })
}

/// The spec of `<name>-subscription-processor`: remembers or forgets each subscription and
/// answers subscribes with the right row.
fn processor_spec<KR: Data, VR: Data>(
    right: TableRows<KR, VR>,
    subscriptions: Arc<str>,
) -> OpSpec<KR, Subscription, Vec<u8>, Response> {
    OpSpec::new(move |children, env| {
        let right_index = env.store(&right.store)?;
        let sub_index = env.store(&subscriptions)?;
        let right = right.clone();
        let mut fk_buf = Vec::new();
        Ok(fn_node(
            children,
            move |r: Record<KR, Subscription>, ch: &mut Children<Vec<u8>, Response>, cx| {
                let ctx = SerdeContext::key(&right.store);
                encode_for_store(cx, &right.store, &*right.key, ctx, &r.key, &mut fk_buf)?;
                let mut key = prefix_of(&fk_buf);
                key.extend_from_slice(&r.value.left_key);
                match r.value.instruction {
                    Instruction::Unsubscribe => {
                        if cx.state.get(sub_index, &key)?.is_some() {
                            cx.state.put(sub_index, &key, None, r.timestamp, cx.out)?;
                        }
                        Ok(())
                    }
                    Instruction::Subscribe => {
                        let hash = r.value.hash.to_be_bytes();
                        cx.state
                            .put(sub_index, &key, Some(&hash), r.timestamp, cx.out)?;
                        let response = Response {
                            hash: r.value.hash,
                            right: cx.state.get(right_index, &fk_buf)?,
                        };
                        send(ch, cx, r.value.left_key, response, r.timestamp, &r.headers)
                    }
                }
            },
        ))
    })
}

/// The spec of `<name>-subscription-join-foreign`: a change of the right table is answered to
/// every left key subscribed to its key.
fn foreign_spec<KR: Data, VIn: Data, VR: Data>(
    right: TableRows<KR, VR>,
    subscriptions: Arc<str>,
) -> OpSpec<KR, VIn, Vec<u8>, Response> {
    OpSpec::new(move |children, env| {
        let right_index = env.store(&right.store)?;
        let sub_index = env.store(&subscriptions)?;
        let (right, subscriptions) = (right.clone(), subscriptions.clone());
        let mut fk_buf = Vec::new();
        Ok(fn_node(
            children,
            move |r: Record<KR, VIn>, ch: &mut Children<Vec<u8>, Response>, cx| {
                let ctx = SerdeContext::key(&right.store);
                encode_for_store(cx, &right.store, &*right.key, ctx, &r.key, &mut fk_buf)?;
                // The right table's node wrote (or deleted) the row just before.
                let row = cx.state.get(right_index, &fk_buf)?;
                let prefix = prefix_of(&fk_buf);
                let end = prefix_end(&prefix);
                let upper = match &end {
                    Some(end) => Bound::Excluded(end.as_slice()),
                    None => Bound::Unbounded,
                };
                let subscribed =
                    cx.state
                        .range(sub_index, Bound::Included(&prefix), upper, usize::MAX)?;
                for (key, hash) in subscribed {
                    let response = Response {
                        hash: read_u64(&hash).map_err(store_err(&subscriptions))?,
                        right: row.clone(),
                    };
                    let left_key = key[prefix.len()..].to_vec();
                    send(ch, cx, left_key, response, r.timestamp, &r.headers)?;
                }
                Ok(())
            },
        ))
    })
}

/// The spec of `<name>-subscription-response-resolver`: joins the current left row with the
/// right row of a response meant for it.
fn resolver_spec<KL: Data, VL: Data, VR: Data, VO: Data>(
    left: TableRows<KL, VL>,
    right: TableRows<(), VR>,
    joiner: FkJoiner<VL, VR, VO>,
) -> OpSpec<KL, Response, KL, Option<VO>> {
    OpSpec::new(move |children, env| {
        let left_index = env.store(&left.store)?;
        let (left, right, joiner) = (left.clone(), right.clone(), joiner.clone());
        let mut key_buf = Vec::new();
        Ok(fn_node(
            children,
            move |r: Record<KL, Response>, ch: &mut Children<KL, Option<VO>>, cx| {
                let ctx = SerdeContext::key(&left.store);
                encode_for_store(cx, &left.store, &*left.key, ctx, &r.key, &mut key_buf)?;
                let Some(stored) = cx.state.get(left_index, &key_buf)? else {
                    // The left row is gone: its delete already deleted the result.
                    return Ok(());
                };
                if row_hash(&stored) != r.value.hash {
                    tracing::trace!(store = %left.store, "dropping a stale foreign-key response");
                    return Ok(());
                }
                let value = cx
                    .decode(&*left.value, SerdeContext::value(&left.store), &stored)
                    .map_err(store_err(&left.store))?;
                let found = match &r.value.right {
                    Some(bytes) => Some(
                        cx.decode(&*right.value, SerdeContext::value(&right.store), bytes)
                            .map_err(store_err(&right.store))?,
                    ),
                    None => None,
                };
                let result = joiner(&value, found);
                send(ch, cx, r.key, result, r.timestamp, &r.headers)
            },
        ))
    })
}

impl<KL: Data, VL: Data> Table<KL, VL> {
    /// The foreign-key inner join of this table with `other` (Kafka Streams'
    /// `KTable#join(KTable, Function, ValueJoiner)`, KIP-213): for every row of this table
    /// whose foreign key `foreign_key(value)` is a key of `other`, the result
    /// `joiner(value, other_value)` under this table's key, kept in the store `materialized`
    /// names and updated whenever either row changes.
    ///
    /// The tables need not be co-partitioned, nor have the same partition count: the join
    /// sends subscriptions keyed by foreign key to the internal topic
    /// `<application_id>-<name>-subscription-registration-topic` (with `other`'s partition
    /// count), read in `other`'s sub-topology, which answers on
    /// `<application_id>-<name>-subscription-response-topic` (with this table's partition
    /// count), keyed by this table's key. `describe()` shows both topics, the stores
    /// `<name>` (the result), `<name>-foreign-keys` (each left key's foreign key) and
    /// `<name>-subscription-store` (the left keys subscribed to each foreign key), all three
    /// changelogged unless `materialized` disables logging. The nodes are
    /// `<name>-subscription-send` and `<name>-left-deletes` (on this table's changes),
    /// `<name>-subscription-processor` and `<name>-subscription-join-foreign` (in `other`'s
    /// sub-topology), `<name>-subscription-response-resolver` and `<name>` (the result).
    /// A new left row's result appears once the other side has answered, after a round trip
    /// through both topics; Kafka Streams' `TableJoined` (custom partitioners) is not
    /// offered.
    ///
    /// When a row's foreign key changes, its old result is replaced (or, with no match for
    /// the new foreign key, deleted), never duplicated. A delete of the right row deletes
    /// the results that used it; a delete of the left row deletes its result. A response
    /// computed for an older version of a left row (the row changed while it travelled) is
    /// dropped, as in Kafka Streams: only the latest left row's results are written. The
    /// result's timestamp is that of the change that caused it (Kafka Streams takes the
    /// later of both rows'; the stores here keep no timestamps). Late (out-of-order) rows
    /// replace current ones, as with any unversioned table.
    ///
    /// The result store's key serde defaults to this table's; its value serde must be given
    /// in `materialized`. Responses are routed by the bytes of this table's key serde: its
    /// topic must be partitioned by those bytes (Kafka's default partitioner), as this
    /// library's sinks do.
    ///
    /// ```
    /// use ow_stream_core::{StreamsBuilder, Topic};
    /// use ow_stream_core::dsl::Materialized;
    /// use ow_stream_core::serde::StringSerde;
    /// use ow_stream_core::testing::TopologyTestDriver;
    ///
    /// // Order id -> "customer id:amount"; customer id -> country.
    /// let orders: Topic<String, String> = Topic::new("orders", StringSerde, StringSerde);
    /// let customers: Topic<String, String> = Topic::new("customers", StringSerde, StringSerde);
    /// let builder = StreamsBuilder::new();
    /// let order_table = builder.table(&orders, Materialized::as_("orders"));
    /// let customer_table = builder.table(&customers, Materialized::as_("customers"));
    /// order_table.join_on_foreign_key(
    ///     &customer_table,
    ///     |order: &String| order.split(':').next().unwrap_or_default().to_string(),
    ///     |order: &String, country: String| format!("{order} from {country}"),
    ///     Materialized::as_("orders-by-country").with_value_serde(StringSerde),
    /// );
    /// let topology = builder.build().unwrap();
    /// let text = topology.describe().to_string();
    /// assert!(text.contains("orders-by-country-subscription-registration-topic"), "{text}");
    /// let driver = TopologyTestDriver::new(topology).unwrap();
    /// driver.input_topic(&orders).pipe_input("o1".into(), "c1:30".into()).unwrap();
    /// let store = driver.key_value_store::<String, String>("orders-by-country").unwrap();
    /// assert_eq!(store.get(&"o1".into()).unwrap(), None);
    /// driver.input_topic(&customers).pipe_input("c1".into(), "PT".into()).unwrap();
    /// assert_eq!(store.get(&"o1".into()).unwrap(), Some("c1:30 from PT".into()));
    /// driver.input_topic(&customers).pipe_tombstone("c1".into()).unwrap();
    /// assert_eq!(store.get(&"o1".into()).unwrap(), None);
    /// ```
    pub fn join_on_foreign_key<KR: Data, VR: Data, VO: Data>(
        &self,
        other: &Table<KR, VR>,
        foreign_key: impl Fn(&VL) -> KR + Send + Sync + 'static,
        joiner: impl Fn(&VL, VR) -> VO + Send + Sync + 'static,
        materialized: Materialized<KL, VO>,
    ) -> Table<KL, VO> {
        self.foreign_key_join(
            other,
            "fk-join",
            Arc::new(foreign_key),
            Arc::new(move |v, r| r.map(|r| joiner(v, r))),
            materialized,
        )
    }

    /// The foreign-key left join of this table with `other` (Kafka Streams'
    /// `KTable#leftJoin(KTable, Function, ValueJoiner)`): like
    /// [`Table::join_on_foreign_key`], but every row of this table has a result, `joiner`
    /// getting `None` while `other` has no row for its foreign key (a delete in `other`
    /// makes the results `joiner(value, None)`).
    ///
    /// A new left row's result appears once the right side has answered (after a round
    /// trip through both internal topics), as in Kafka Streams.
    ///
    /// ```
    /// use ow_stream_core::{StreamsBuilder, Topic};
    /// use ow_stream_core::dsl::Materialized;
    /// use ow_stream_core::serde::StringSerde;
    /// use ow_stream_core::testing::TopologyTestDriver;
    ///
    /// let orders: Topic<String, String> = Topic::new("orders", StringSerde, StringSerde);
    /// let customers: Topic<String, String> = Topic::new("customers", StringSerde, StringSerde);
    /// let builder = StreamsBuilder::new();
    /// let order_table = builder.table(&orders, Materialized::as_("orders"));
    /// let customer_table = builder.table(&customers, Materialized::as_("customers"));
    /// order_table.left_join_on_foreign_key(
    ///     &customer_table,
    ///     |customer: &String| customer.clone(),
    ///     |customer: &String, country: Option<String>| {
    ///         format!("{customer}: {}", country.unwrap_or("unknown".into()))
    ///     },
    ///     Materialized::as_("order-countries").with_value_serde(StringSerde),
    /// );
    /// let driver = TopologyTestDriver::new(builder.build().unwrap()).unwrap();
    /// driver.input_topic(&orders).pipe_input("o1".into(), "c1".into()).unwrap();
    /// let store = driver.key_value_store::<String, String>("order-countries").unwrap();
    /// assert_eq!(store.get(&"o1".into()).unwrap(), Some("c1: unknown".into()));
    /// driver.input_topic(&customers).pipe_input("c1".into(), "PT".into()).unwrap();
    /// assert_eq!(store.get(&"o1".into()).unwrap(), Some("c1: PT".into()));
    /// ```
    pub fn left_join_on_foreign_key<KR: Data, VR: Data, VO: Data>(
        &self,
        other: &Table<KR, VR>,
        foreign_key: impl Fn(&VL) -> KR + Send + Sync + 'static,
        joiner: impl Fn(&VL, Option<VR>) -> VO + Send + Sync + 'static,
        materialized: Materialized<KL, VO>,
    ) -> Table<KL, VO> {
        self.foreign_key_join(
            other,
            "fk-left-join",
            Arc::new(foreign_key),
            Arc::new(move |v, r| Some(joiner(v, r))),
            materialized,
        )
    }

    fn foreign_key_join<KR: Data, VR: Data, VO: Data>(
        &self,
        other: &Table<KR, VR>,
        prefix: &str,
        extractor: Arc<dyn Fn(&VL) -> KR + Send + Sync>,
        joiner: FkJoiner<VL, VR, VO>,
        materialized: Materialized<KL, VO>,
    ) -> Table<KL, VO> {
        // Results are written through: a record cache would hold back what is forwarded.
        let materialized = materialized.with_caching_disabled();
        let name = materialized.name.clone();
        let (key, value) = self.join_result_serdes(&materialized);
        let (left, right) = (self.rows(), other.rows());
        let fk_key: TableRows<KR, ()> = TableRows {
            store: other.store.clone(),
            key: other.key_serde.clone(),
            value: Arc::new(Unavailable),
        };
        let right_values: TableRows<(), VR> = TableRows {
            store: other.store.clone(),
            key: Arc::new(Unavailable),
            value: other.value_serde.clone(),
        };
        let foreign_keys: Arc<str> = format!("{name}-foreign-keys").into();
        let subscriptions: Arc<str> = format!("{name}-subscription-store").into();
        let registration = TopicRef::Internal {
            name: format!("{name}-subscription-registration").into(),
            suffix: "topic",
        };
        let response = TopicRef::Internal {
            name: format!("{name}-subscription-response").into(),
            suffix: "topic",
        };

        let mut graph = self.graph.borrow_mut();
        graph.stores.push(bytes_store(
            &foreign_keys,
            materialized.backend,
            materialized.logging,
        ));
        graph.stores.push(bytes_store(
            &subscriptions,
            materialized.backend,
            materialized.logging,
        ));

        // 1. Left side: subscriptions out, deletes to the result.
        let (send, deletes): (Arc<dyn NodeSpec>, Arc<dyn NodeSpec>) = if self.changes {
            (
                Arc::new(send_spec::<KL, Option<VL>, VL, KR>(
                    |c| c,
                    left.clone(),
                    fk_key,
                    foreign_keys.clone(),
                    extractor,
                )),
                Arc::new(left_deletes_spec::<KL, Option<VL>, VL, VO>(|c| c)),
            )
        } else {
            (
                Arc::new(send_spec::<KL, VL, VL, KR>(
                    Some,
                    left.clone(),
                    fk_key,
                    foreign_keys.clone(),
                    extractor,
                )),
                Arc::new(left_deletes_spec::<KL, VL, VL, VO>(Some)),
            )
        };
        let send = graph.add(
            Some(format!("{name}-subscription-send")),
            "fk-subscription-send",
            NodeKind::Processor,
            vec![self.node],
            vec![foreign_keys.clone(), self.store.clone()],
            send,
        );
        let deletes = graph.add(
            Some(format!("{name}-left-deletes")),
            "fk-left-deletes",
            NodeKind::Processor,
            vec![self.node],
            vec![],
            deletes,
        );
        let registration_sink = sink_spec(
            format!("{name}-subscription-registration-sink"),
            registration.clone(),
            other.key_serde.clone(),
            Arc::new(SubscriptionSerde),
        );
        graph.add(
            Some(format!("{name}-subscription-registration-sink")),
            "sink",
            NodeKind::Sink {
                topic: registration.clone(),
                partitions: None,
            },
            vec![send],
            vec![],
            registration_sink,
        );

        // 2. Right side: the subscription store, answers on the response topic.
        let registration_source = graph.add(
            Some(format!("{name}-subscription-registration-source")),
            "source",
            NodeKind::Source {
                topic: registration.clone(),
                key_serde: other.key_serde.describe(),
                value_serde: SubscriptionSerde.describe(),
            },
            vec![],
            vec![],
            Arc::new(SourceSpec {
                topic: registration,
                key: other.key_serde.clone(),
                value: Arc::new(SubscriptionSerde) as Arc<dyn Serde<Subscription>>,
                dedup: true,
                table: None,
                extractor: None,
            }),
        );
        let processor = graph.add(
            Some(format!("{name}-subscription-processor")),
            "fk-subscription-processor",
            NodeKind::Processor,
            vec![registration_source],
            vec![subscriptions.clone(), other.store.clone()],
            Arc::new(processor_spec(right.clone(), subscriptions.clone())),
        );
        let foreign: Arc<dyn NodeSpec> = if other.changes {
            Arc::new(foreign_spec::<KR, Option<VR>, VR>(
                right.clone(),
                subscriptions.clone(),
            ))
        } else {
            Arc::new(foreign_spec::<KR, VR, VR>(right, subscriptions.clone()))
        };
        let foreign = graph.add(
            Some(format!("{name}-subscription-join-foreign")),
            "fk-subscription-join-foreign",
            NodeKind::Processor,
            vec![other.node],
            vec![subscriptions.clone(), other.store.clone()],
            foreign,
        );
        let response_sink = sink_spec(
            format!("{name}-subscription-response-sink"),
            response.clone(),
            Arc::new(BytesSerde),
            Arc::new(ResponseSerde),
        );
        graph.add(
            Some(format!("{name}-subscription-response-sink")),
            "sink",
            NodeKind::Sink {
                topic: response.clone(),
                partitions: None,
            },
            vec![processor, foreign],
            vec![],
            response_sink,
        );

        // 3. Left side again: responses joined with the current left row.
        let response_source = graph.add(
            Some(format!("{name}-subscription-response-source")),
            "source",
            NodeKind::Source {
                topic: response.clone(),
                key_serde: self.key_serde.describe(),
                value_serde: ResponseSerde.describe(),
            },
            vec![],
            vec![],
            Arc::new(SourceSpec {
                topic: response,
                key: self.key_serde.clone(),
                value: Arc::new(ResponseSerde) as Arc<dyn Serde<Response>>,
                dedup: true,
                table: None,
                extractor: None,
            }),
        );
        let resolver = graph.add(
            Some(format!("{name}-subscription-response-resolver")),
            "fk-response-resolver",
            NodeKind::Processor,
            vec![response_source],
            vec![self.store.clone()],
            Arc::new(resolver_spec(left, right_values, joiner)),
        );

        let emit_on_change = materialized.emit_on_change;
        let (k, v, s) = (key.clone(), value.clone(), name.clone());
        let merge = TableSpec::<KL, Option<VO>, KL, VO>::new(move |children, env| {
            let index = env.store(&s)?;
            let (store, key_serde, value_serde) = (s.clone(), k.clone(), v.clone());
            let (mut key_buf, mut value_buf) = (Vec::new(), Vec::new());
            Ok(table_node(
                children,
                move |r: Record<KL, Option<VO>>, ch, cx| {
                    write_row(
                        cx,
                        (&store, index, emit_on_change),
                        (&*key_serde, &*value_serde),
                        (&mut key_buf, &mut value_buf),
                        r,
                        ch,
                    )
                },
            ))
        });
        graph.stores.push(Arc::new(StoreDef {
            name: name.clone(),
            kind: StoreKind::KeyValue,
            backend: materialized.backend,
            logging: materialized.logging,
            caching: false,
            key_describe: key.describe(),
            value_describe: value.describe(),
            serdes: Arc::new(StoreSerdes {
                key: key.clone(),
                value: value.clone(),
            }),
        }));
        let node = graph.add(
            Some(name.to_string()),
            prefix,
            NodeKind::Processor,
            vec![deletes, resolver],
            vec![name.clone()],
            Arc::new(merge),
        );
        // Subscriptions must meet the right rows of their foreign key, responses the left
        // rows of their key.
        graph.copartition.push((processor, foreign));
        graph.copartition.push((resolver, send));
        drop(graph);
        Table {
            graph: self.graph.clone(),
            node,
            store: name,
            key_serde: key,
            value_serde: value,
            changes: true,
        }
    }
}

/// A sink writing an internal topic of the join (its records marked with their cause, so
/// that copies written again after a crash are dropped by the reader).
fn sink_spec<K: Data, V: Data>(
    name: String,
    topic: TopicRef,
    key: Arc<dyn Serde<K>>,
    value: Arc<dyn Serde<V>>,
) -> Arc<dyn NodeSpec> {
    let node_name: Arc<str> = name.into();
    Arc::new(OpSpec::<K, V, (), ()>::new(
        move |_children: Children<(), ()>, env| {
            Ok(Box::new(super::sink::SinkNode {
                name: node_name.clone(),
                topic: (env.resolve_topic)(&topic),
                key: key.clone(),
                value: value.clone(),
                repartition: true,
                partitioner: None,
                key_buf: Vec::new(),
                value_buf: Vec::new(),
                partition_buf: Vec::new(),
            }))
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> SerdeContext<'static> {
        SerdeContext::value("t")
    }

    #[test]
    fn subscriptions_and_responses_round_trip() {
        for instruction in [Instruction::Subscribe, Instruction::Unsubscribe] {
            let s = Subscription {
                instruction,
                hash: 0x0102_0304_0506_0708,
                left_key: b"order-1".to_vec(),
            };
            let bytes = SubscriptionSerde.serialize(ctx(), &s).unwrap();
            let back = SubscriptionSerde.deserialize(ctx(), &bytes).unwrap();
            assert_eq!(
                (back.instruction, back.hash, back.left_key),
                (s.instruction, s.hash, s.left_key)
            );
        }
        for right in [None, Some(Vec::new()), Some(b"PT".to_vec())] {
            let r = Response { hash: 7, right };
            let bytes = ResponseSerde.serialize(ctx(), &r).unwrap();
            let back = ResponseSerde.deserialize(ctx(), &bytes).unwrap();
            assert_eq!((back.hash, back.right), (r.hash, r.right));
        }
    }

    #[test]
    fn malformed_bytes_are_errors_not_panics() {
        for bytes in [&b""[..], b"\x00", b"\x00\x00\x01", b"\x01\x00", b"\x00\x07"] {
            assert!(
                SubscriptionSerde.deserialize(ctx(), bytes).is_err(),
                "{bytes:?}"
            );
        }
        for bytes in [&b""[..], b"\x00", b"\x00\x00\x00", b"\x00........\x02"] {
            assert!(
                ResponseSerde.deserialize(ctx(), bytes).is_err(),
                "{bytes:?}"
            );
        }
    }

    #[test]
    fn a_prefix_range_holds_exactly_the_keys_of_its_foreign_key() {
        let prefix = prefix_of(b"c1");
        let end = prefix_end(&prefix).unwrap();
        let mut under = prefix.clone();
        under.extend_from_slice(b"\xff\xffo1");
        assert!(under.as_slice() >= prefix.as_slice() && under < end);
        // A longer foreign key sharing the bytes is not under the prefix.
        let other = prefix_of(b"c10");
        assert!(other.as_slice() >= end.as_slice());
        assert_eq!(prefix_end(b"\x01\xff"), Some(b"\x02".to_vec()));
        assert_eq!(prefix_end(b"\xff\xff"), None);
        assert_ne!(row_hash(b"a"), row_hash(b"b"));
    }
}
