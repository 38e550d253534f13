//! Waiting on the schema registry from synchronous code: a stream thread, an interactive query
//! or the test driver. A serde that needs a schema it has not loaded (or registered) yet says
//! so with an error; the caller runs the load through a [`Blocker`] and tries again.

use futures::future::BoxFuture;

use super::{Serde, SerdeContext, SerdeError};

/// Runs the rare asynchronous step (loading a schema) from a processing thread.
pub(crate) trait Blocker: Send + Sync {
    fn block_on_schema(&self, fut: BoxFuture<'_, Result<(), SerdeError>>)
    -> Result<(), SerdeError>;
}

/// Blocks on a future from a thread that is not a tokio worker.
pub(crate) struct HandleBlocker(pub(crate) tokio::runtime::Handle);

impl Blocker for HandleBlocker {
    fn block_on_schema(
        &self,
        fut: BoxFuture<'_, Result<(), SerdeError>>,
    ) -> Result<(), SerdeError> {
        self.0.block_on(fut)
    }
}

/// Blocks on a future from synchronous code that may or may not run inside a tokio runtime
/// (interactive queries, the test driver).
///
/// * On a worker of a multi-thread runtime, the worker hands its other tasks over
///   ([`tokio::task::block_in_place`]) and waits on the runtime.
/// * On a current-thread runtime, waiting on the runtime from inside it cannot work (and
///   `block_in_place` panics there): the future runs to completion on a helper thread with a
///   private runtime of its own, while the caller's thread waits.
/// * Outside any runtime, the future runs on a private runtime in the calling thread.
pub(crate) struct OwnBlocker;

impl Blocker for OwnBlocker {
    fn block_on_schema(
        &self,
        fut: BoxFuture<'_, Result<(), SerdeError>>,
    ) -> Result<(), SerdeError> {
        use tokio::runtime::{Handle, RuntimeFlavor};
        match Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| handle.block_on(fut))
            }
            Ok(_) => std::thread::scope(|scope| {
                let helper = std::thread::Builder::new()
                    .name("ow-schema-load".into())
                    .spawn_scoped(scope, move || private_runtime()?.block_on(fut))
                    .map_err(|e| SerdeError::custom(format!("cannot start a thread: {e}")))?;
                helper
                    .join()
                    .unwrap_or_else(|_| Err(SerdeError::custom("loading a schema panicked")))
            }),
            Err(_) => private_runtime()?.block_on(fut),
        }
    }
}

fn private_runtime() -> Result<tokio::runtime::Runtime, SerdeError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| SerdeError::custom(format!("cannot start a runtime: {e}")))
}

/// Decodes from synchronous code outside a task, blocking on a schema load when one is needed.
pub(crate) fn decode_blocking<T: 'static>(
    serde: &dyn Serde<T>,
    ctx: SerdeContext<'_>,
    bytes: &[u8],
) -> Result<T, SerdeError> {
    match serde.deserialize(ctx, bytes) {
        Err(SerdeError::SchemaNotLoaded { id }) => {
            OwnBlocker.block_on_schema(serde.load_schema(id))?;
            serde.deserialize(ctx, bytes)
        }
        other => other,
    }
}

/// Encodes from synchronous code outside a task, blocking on schema registration when needed.
pub(crate) fn encode_blocking<T: 'static>(
    serde: &dyn Serde<T>,
    ctx: SerdeContext<'_>,
    value: &T,
) -> Result<Vec<u8>, SerdeError> {
    match serde.serialize(ctx, value) {
        Err(SerdeError::NotPrepared { .. }) => {
            OwnBlocker.block_on_schema(serde.prepare(ctx))?;
            serde.serialize(ctx, value)
        }
        other => other,
    }
}
