//! Avro in the Confluent wire format. (Being written: see the registry work.)

use std::marker::PhantomData;

/// Avro values in the Confluent wire format (placeholder until the registry lands).
pub struct AvroSerde<T>(PhantomData<fn() -> T>);
