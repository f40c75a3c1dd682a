//! Two connection types for the `#[autoreconnect]` cases (the real ones need features).

use skprocess::reconnect::{Conn, ConnectError, Connector, Secret};
use skprocess::serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
pub struct DbParams {
    pub addr: String,
}

impl Connector for DbParams {
    type Live = String;
    type Error = std::io::Error;
    const KIND: &'static str = "db";

    fn target(&self) -> String {
        self.addr.clone()
    }

    fn open(&self, _secret: Option<&Secret>) -> Result<String, ConnectError> {
        Ok(self.addr.clone())
    }

    fn is_lost(_error: &std::io::Error) -> bool {
        true
    }
}

#[derive(Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
pub struct CacheParams {
    pub addr: String,
}

impl Connector for CacheParams {
    type Live = String;
    type Error = std::io::Error;
    const KIND: &'static str = "cache";

    fn target(&self) -> String {
        self.addr.clone()
    }

    fn open(&self, _secret: Option<&Secret>) -> Result<String, ConnectError> {
        Ok(self.addr.clone())
    }

    fn is_lost(_error: &std::io::Error) -> bool {
        true
    }
}

pub type Db = Conn<DbParams>;
pub type Cache = Conn<CacheParams>;
