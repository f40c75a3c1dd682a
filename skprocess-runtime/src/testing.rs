//! Hooks for the crate's own robustness tests and fuzz targets: talk to the hub and the wire
//! directly, the way an attacker or a broken peer would, and force racing orders. Not an API:
//! only the project's own tests enable the `__testing` feature.

use std::time::Duration;

use crate::error::IpcError;
use crate::lifecycle::Context;
use crate::wire::auth::Secret;

/// The name of this process's hub, if it has one (it does once a process was started).
pub fn hub_name() -> Option<String> {
    crate::wire::hub::existing_hub_name()
}

/// The session secret of this process's hub.
pub fn hub_secret() -> Option<[u8; 32]> {
    crate::wire::hub::hub().ok().map(|hub| hub.secret().0)
}

/// Connects to the hub `name` proving `secret` and presenting `token`; `Ok` only if the hub
/// welcomed the connection.
pub fn connect_to_hub(name: &str, secret: [u8; 32], token: [u8; 16]) -> Result<(), IpcError> {
    crate::wire::hub::connect(name, &Secret(secret), &token).map(drop)
}

/// Sends raw bytes to the parent from a child, bypassing framing.
pub fn send_raw(cx: &Context, bytes: &[u8]) -> Result<(), IpcError> {
    cx.send_raw(bytes)
}

/// The environment variable that makes pool workers wait this many microseconds between
/// claiming a chunk and checking whether it was taken back: the racing step of work stealing.
pub const CLAIM_DELAY_ENV: &str = "SKPROCESS_TEST_CLAIM_DELAY_US";

static CHILD_ENV: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());

/// Sets an environment variable for every child started from now on (never in this process:
/// changing this process's environment while threads run is undefined behaviour).
pub fn set_child_env(key: &str, value: &str) {
    let mut env = crate::sync::lock(&CHILD_ENV);
    env.retain(|(k, _)| k != key);
    env.push((key.to_owned(), value.to_owned()));
}

/// Removes a variable set with [`set_child_env`].
pub fn clear_child_env(key: &str) {
    crate::sync::lock(&CHILD_ENV).retain(|(k, _)| k != key);
}

/// Applies [`set_child_env`]'s variables to a child's command.
pub(crate) fn apply_child_env(command: &mut std::process::Command) {
    for (key, value) in crate::sync::lock(&CHILD_ENV).iter() {
        command.env(key, value);
    }
}

/// Sleeps for [`CLAIM_DELAY_ENV`] microseconds, if set (read once).
pub(crate) fn claim_delay() {
    static DELAY: std::sync::OnceLock<Option<Duration>> = std::sync::OnceLock::new();
    let delay = DELAY.get_or_init(|| {
        std::env::var(CLAIM_DELAY_ENV)
            .ok()
            .and_then(|v| v.parse().ok())
            .map(Duration::from_micros)
    });
    if let Some(delay) = delay {
        std::thread::sleep(*delay);
    }
}

/// Encodes a value with the wire's codec.
pub fn encode<T: serde::Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, String> {
    crate::wire::encode(value)
}

/// Decodes a value with the wire's codec (the whole slice).
pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    crate::wire::decode(bytes)
}
