//! SQLite through [`rusqlite`](::rusqlite).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Conn, ConnectError, ConnectFailure, Connector, Secret};

/// A SQLite database that crosses processes as its path: dereferences to a
/// [`rusqlite::Connection`].
///
/// ```
/// use skprocess::reconnect::Sqlite;
///
/// let dir = std::env::temp_dir().join(format!("sk-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let db = Sqlite::open_path(dir.join("app.db"))?;
/// db.execute_batch("CREATE TABLE IF NOT EXISTS t (x INTEGER)")?;
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// An in-memory database (`":memory:"`) is a new, empty one in every process that opens it.
pub type Sqlite = Conn<SqliteParams>;

/// Where a SQLite database is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SqliteParams {
    /// The database file.
    pub path: PathBuf,
    /// Open it read-only.
    pub read_only: bool,
}

impl Connector for SqliteParams {
    type Live = ::rusqlite::Connection;
    type Error = ::rusqlite::Error;
    const KIND: &'static str = "sqlite";

    fn target(&self) -> String {
        self.path.display().to_string()
    }

    fn open(&self, _secret: Option<&Secret>) -> Result<::rusqlite::Connection, ConnectError> {
        use ::rusqlite::OpenFlags;
        let flags = if self.read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
        } else {
            OpenFlags::default()
        };
        ::rusqlite::Connection::open_with_flags(&self.path, flags)
            .map_err(|e| ConnectError::new(ConnectFailure::Other, e.to_string()))
    }

    fn is_lost(_error: &::rusqlite::Error) -> bool {
        // A local file: there is no connection to lose.
        false
    }
}

impl Conn<SqliteParams> {
    /// Opens (creating it if needed) the database at `path`, now.
    pub fn open_path(path: impl Into<PathBuf>) -> Result<Sqlite, ConnectError> {
        let mut conn = Conn::new(SqliteParams {
            path: path.into(),
            read_only: false,
        });
        conn.open()?;
        Ok(conn)
    }
}
