//! What the tests against real database servers share (next to `servers.rs`, which the examples'
//! tests use too): handing the servers to children, and checking a refused connection.

use skprocess::__testing;
use skprocess::ProcessError;
use skprocess::reconnect::ConnectFailure;

use crate::servers::{Servers, servers};

/// Hands the servers' variables to every child started from now on.
pub(crate) fn child_env() -> &'static Servers {
    let servers = servers();
    for (key, value) in servers.vars() {
        __testing::set_child_env(key, value);
    }
    servers
}

/// Asserts that a process failed because the server refused the credentials of its field
/// `field`, a connection of kind `kind`, and that the error does not show the wrong password.
pub(crate) fn assert_refused<T: std::fmt::Debug>(
    outcome: Result<T, ProcessError>,
    field: &str,
    kind: &str,
) {
    let error = outcome.expect_err("refused");
    let ProcessError::Connect(error) = error else {
        panic!("expected ProcessError::Connect, got {error:?}");
    };
    assert_eq!(error.field(), Some(field));
    assert_eq!(error.kind(), kind);
    assert_eq!(error.failure(), &ConnectFailure::Auth, "{error}");
    assert!(!error.to_string().contains("not-the-password"), "{error}");
}
