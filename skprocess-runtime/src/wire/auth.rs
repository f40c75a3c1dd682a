//! Mutual challenge–response authentication on the session secret (HMAC-SHA256).
//!
//! Linux abstract sockets carry no permissions: anyone in the network namespace who learns the
//! name can connect. So before anything else crosses a connection, each side proves it knows
//! the session secret without revealing it:
//!
//! ```text
//! server -> client  Hello    server_nonce[32]
//! client -> server  Auth     token[16] | client_nonce[32] | HMAC(secret, "client" | server_nonce | client_nonce | token)
//! server -> client  Welcome  HMAC(secret, "server" | client_nonce | server_nonce | token)
//! ```
//!
//! Fresh nonces on both sides defeat replay; the token (which child is connecting) is bound into
//! both proofs. A wrong proof gets the connection closed and nothing else.

use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::Conn;
use super::frame::{Frame, MAX_HANDSHAKE_FRAME};
use super::protocol::Kind;
use crate::error::IpcError;

/// How long a whole handshake may take, on either side, from the first byte to the last
/// (generous: a child on a loaded CI machine may be descheduled for a while).
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

const NONCE: usize = 32;
const MAC: usize = 32;
/// Which child (or other client) is connecting.
pub(crate) const TOKEN: usize = 16;

/// The session secret shared by a parent and its children.
#[derive(Clone)]
pub(crate) struct Secret(pub(crate) [u8; 32]);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    pub(crate) fn random() -> Secret {
        let mut bytes = [0u8; 32];
        crate::sys::random_bytes(&mut bytes);
        Secret(bytes)
    }

    pub(crate) fn to_hex(&self) -> String {
        hex(&self.0)
    }

    pub(crate) fn from_hex(text: &str) -> Option<Secret> {
        Some(Secret(unhex(text)?))
    }

    fn mac(&self, label: &[u8], parts: &[&[u8]]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .expect("HMAC accepts keys of any length");
        mac.update(b"skprocess/1 ");
        mac.update(label);
        for part in parts {
            mac.update(part);
        }
        mac
    }
}

/// Lowercase hex of some bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses lowercase or uppercase hex into exactly `N` bytes.
pub(crate) fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

fn nonce() -> [u8; NONCE] {
    let mut bytes = [0u8; NONCE];
    crate::sys::random_bytes(&mut bytes);
    bytes
}

fn expect_frame(
    conn: &Conn,
    kind: Kind,
    len: usize,
    deadline: Instant,
) -> Result<Vec<u8>, IpcError> {
    match conn.read_frame_until(MAX_HANDSHAKE_FRAME, deadline)? {
        // Closed between frames: the peer went away (a refusal is told apart by the caller,
        // from where in the handshake it happens).
        None => Err(IpcError::Disconnected),
        Some(Frame { kind: got, payload }) if got == kind && payload.len() == len => Ok(payload),
        Some(Frame { kind: got, payload }) => Err(IpcError::Auth(format!(
            "expected a {kind:?} frame of {len} bytes, got {got:?} of {}",
            payload.len()
        ))),
    }
}

/// Sends a handshake frame, waiting at most until `deadline` for room in the socket.
fn send_until(conn: &Conn, kind: Kind, payload: &[u8], deadline: Instant) -> Result<(), IpcError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(IpcError::Timeout);
    }
    conn.set_write_timeout(Some(left))?;
    let sent = conn.send(kind, payload);
    conn.set_write_timeout(None)?;
    sent
}

/// Server side: challenges a fresh connection, all of it before `deadline`. Returns the
/// client's token once the client has proven it knows the secret and `accept_token` agrees to
/// it; the caller then owns the connection. On any failure the connection should simply be
/// dropped.
pub(crate) fn server_handshake(
    conn: &Conn,
    secret: &Secret,
    deadline: Instant,
    accept_token: impl FnOnce(&[u8; TOKEN]) -> bool,
) -> Result<[u8; TOKEN], IpcError> {
    let server_nonce = nonce();
    send_until(conn, Kind::Hello, &server_nonce, deadline)?;
    let auth = expect_frame(conn, Kind::Auth, TOKEN + NONCE + MAC, deadline)?;
    let (token, rest) = auth.split_at(TOKEN);
    let (client_nonce, proof) = rest.split_at(NONCE);
    secret
        .mac(b"client", &[&server_nonce, client_nonce, token])
        .verify_slice(proof)
        .map_err(|_| IpcError::Auth("wrong proof of the session secret".into()))?;
    let token: [u8; TOKEN] = token.try_into().expect("split at TOKEN");
    if !accept_token(&token) {
        return Err(IpcError::Auth("unknown token".into()));
    }
    let reply = secret
        .mac(b"server", &[client_nonce, &server_nonce, &token])
        .finalize()
        .into_bytes();
    send_until(conn, Kind::Welcome, &reply, deadline)?;
    Ok(token)
}

/// Client side: answers the server's challenge and checks the server's own proof, all of it
/// before `deadline`.
pub(crate) fn client_handshake(
    conn: &Conn,
    secret: &Secret,
    token: &[u8; TOKEN],
    deadline: Instant,
) -> Result<(), IpcError> {
    let server_nonce = expect_frame(conn, Kind::Hello, NONCE, deadline)?;
    let client_nonce = nonce();
    let proof = secret
        .mac(b"client", &[&server_nonce, &client_nonce, token])
        .finalize()
        .into_bytes();
    let mut auth = Vec::with_capacity(TOKEN + NONCE + MAC);
    auth.extend_from_slice(token);
    auth.extend_from_slice(&client_nonce);
    auth.extend_from_slice(&proof);
    send_until(conn, Kind::Auth, &auth, deadline)?;
    // The server closes without a welcome only when it refuses the proof.
    let welcome = expect_frame(conn, Kind::Welcome, MAC, deadline).map_err(|err| match err {
        IpcError::Auth(_) | IpcError::Disconnected => {
            IpcError::Auth("the server refused the connection".into())
        }
        other => other,
    })?;
    secret
        .mac(b"server", &[&client_nonce, &server_nonce, token])
        .verify_slice(&welcome)
        .map_err(|_| IpcError::Auth("the server does not know the session secret".into()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let secret = Secret::random();
        let back = Secret::from_hex(&secret.to_hex()).unwrap();
        assert_eq!(back.0, secret.0);
        assert!(Secret::from_hex("zz").is_none());
        assert!(unhex::<2>("abc").is_none());
        assert_eq!(unhex::<2>("0aFF"), Some([0x0a, 0xff]));
    }

    #[test]
    fn proofs_depend_on_every_input() {
        let secret = Secret([7; 32]);
        let base = secret.mac(b"client", &[b"a", b"b"]).finalize().into_bytes();
        let other_label = secret.mac(b"server", &[b"a", b"b"]).finalize().into_bytes();
        let other_part = secret.mac(b"client", &[b"a", b"c"]).finalize().into_bytes();
        let other_key = Secret([8; 32])
            .mac(b"client", &[b"a", b"b"])
            .finalize()
            .into_bytes();
        assert_ne!(base, other_label);
        assert_ne!(base, other_part);
        assert_ne!(base, other_key);
    }
}
