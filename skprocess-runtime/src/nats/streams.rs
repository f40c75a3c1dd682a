//! The JetStream objects a pool and its workers share: the work-queue stream of chunks, its
//! durable pull consumer, and the stream of results. Whoever comes first creates them.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};

use super::error::RemoteError;
use super::protocol::{CONSUMER, Names, SUSPECTS};

/// How long results are kept when nobody reads them (a pool that died mid-call).
const RESULTS_MAX_AGE: Duration = Duration::from_secs(3600);

/// How long JetStream remembers a chunk's id, so a chunk published twice is stored once (a
/// publish is retried for at most the pool's `server_timeout`, which should stay below this).
const DUPLICATE_WINDOW: Duration = Duration::from_secs(600);

fn setup_error(what: &str, error: impl std::error::Error + 'static) -> RemoteError {
    RemoteError::Setup {
        what: what.to_owned(),
        reason: crate::ErrorChain(&error).to_string(),
    }
}

/// Gets (or creates) the work stream and the results stream.
pub(crate) async fn streams(
    js: &jetstream::Context,
    names: &Names,
) -> Result<(stream::Stream, stream::Stream), RemoteError> {
    let work = js
        .get_or_create_stream(stream::Config {
            name: names.work_stream(),
            subjects: vec![names.work_all(), names.suspects_all()],
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            duplicate_window: DUPLICATE_WINDOW,
            ..Default::default()
        })
        .await
        .map_err(|error| setup_error(&format!("stream {}", names.work_stream()), error))?;
    let results = js
        .get_or_create_stream(stream::Config {
            name: names.results_stream(),
            subjects: vec![names.results_all()],
            retention: stream::RetentionPolicy::Limits,
            storage: stream::StorageType::File,
            max_age: RESULTS_MAX_AGE,
            ..Default::default()
        })
        .await
        .map_err(|error| setup_error(&format!("stream {}", names.results_stream()), error))?;
    Ok((work, results))
}

/// The work consumer's settings. JetStream's own delivery limit is off: each chunk carries its
/// pool's limit, and the worker that receives a delivery past it reports its items as
/// poisoned without running them (so no item depends on an advisory that could be missed).
pub(crate) fn work_consumer_config(names: &Names, ack_wait: Duration) -> consumer::pull::Config {
    consumer::pull::Config {
        durable_name: Some(CONSUMER.to_owned()),
        filter_subject: names.work_all(),
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait,
        max_deliver: -1,
        max_ack_pending: -1,
        ..Default::default()
    }
}

/// The suspects consumer's settings (as the work consumer's, on the suspect subjects).
pub(crate) fn suspects_consumer_config(
    names: &Names,
    ack_wait: Duration,
) -> consumer::pull::Config {
    consumer::pull::Config {
        durable_name: Some(SUSPECTS.to_owned()),
        filter_subject: names.suspects_all(),
        ..work_consumer_config(names, ack_wait)
    }
}

/// The two consumers workers pull from: chunks, and suspects.
pub(crate) struct Consumers {
    pub(crate) work: consumer::PullConsumer,
    pub(crate) suspects: consumer::PullConsumer,
}

/// Creates both consumers with `ack_wait`, or updates the ones there to it (a pool's setting
/// wins over the default a worker created them with).
pub(crate) async fn set_consumers(
    work: &stream::Stream,
    names: &Names,
    ack_wait: Duration,
) -> Result<Consumers, RemoteError> {
    Ok(Consumers {
        work: work
            .create_consumer(work_consumer_config(names, ack_wait))
            .await
            .map_err(|error| setup_error("the work consumer", error))?,
        suspects: work
            .create_consumer(suspects_consumer_config(names, ack_wait))
            .await
            .map_err(|error| setup_error("the suspects consumer", error))?,
    })
}

/// Gets both consumers, or creates them with the default `ack_wait`.
pub(crate) async fn get_consumers(
    work: &stream::Stream,
    names: &Names,
) -> Result<Consumers, RemoteError> {
    let ack_wait = Duration::from_secs(30);
    Ok(Consumers {
        work: work
            .get_or_create_consumer(CONSUMER, work_consumer_config(names, ack_wait))
            .await
            .map_err(|error| setup_error("the work consumer", error))?,
        suspects: work
            .get_or_create_consumer(SUSPECTS, suspects_consumer_config(names, ack_wait))
            .await
            .map_err(|error| setup_error("the suspects consumer", error))?,
    })
}
