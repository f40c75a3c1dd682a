//! The JetStream objects a pool and its workers share: the work-queue stream of chunks, its
//! durable pull consumer, and the stream of results. Whoever comes first creates them.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};

use super::error::RemoteError;
use super::protocol::{CONSUMER, Names};

/// How long results are kept when nobody reads them (a pool that died mid-call).
const RESULTS_MAX_AGE: Duration = Duration::from_secs(3600);

/// How long JetStream remembers a chunk's id, so a chunk published twice is stored once.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

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
            subjects: vec![names.work_all()],
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

/// The work consumer's settings.
pub(crate) fn work_consumer_config(
    names: &Names,
    ack_wait: Duration,
    max_deliver: i64,
) -> consumer::pull::Config {
    consumer::pull::Config {
        durable_name: Some(CONSUMER.to_owned()),
        filter_subject: names.work_all(),
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait,
        max_deliver,
        max_ack_pending: -1,
        ..Default::default()
    }
}

/// Creates the work consumer with these settings, or updates the one there to them (a pool's
/// settings win over the defaults a worker created it with).
pub(crate) async fn set_work_consumer(
    work: &stream::Stream,
    config: consumer::pull::Config,
) -> Result<consumer::PullConsumer, RemoteError> {
    work.create_consumer(config)
        .await
        .map_err(|error| setup_error("the work consumer", error))
}

/// Gets the work consumer, or creates it with these settings.
pub(crate) async fn get_work_consumer(
    work: &stream::Stream,
    config: consumer::pull::Config,
) -> Result<consumer::PullConsumer, RemoteError> {
    work.get_or_create_consumer(CONSUMER, config)
        .await
        .map_err(|error| setup_error("the work consumer", error))
}
