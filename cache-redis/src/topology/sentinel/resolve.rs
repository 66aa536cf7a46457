//! Finding the master: ask the Sentinels, then check the node itself.
//!
//! Each Sentinel is asked in turn, on a fresh blocking connection opened within the
//! connect time-out and answering within the response time-out, so one dead or hung
//! Sentinel costs at most one time-out before the next is asked. The address a Sentinel
//! names is only taken once that node answers `ROLE` as a master: right after a failover a
//! Sentinel may still name the old master, and a node that was demoted answers as a
//! replica.

use redis::{Client, Value};

use cache_core::{Error, ErrorKind, Result};

use crate::blocking::Connector;
use crate::error::from_redis;

use super::settings::{Addr, Settings, sentinel_addr, show};

/// A master the Sentinels named and that answered `ROLE` as one, with a client for it.
pub(crate) struct Resolved {
    pub(crate) addr: Addr,
    pub(crate) client: Client,
}

/// Asks every Sentinel (in order) for the master and returns the first address that is a
/// master indeed. The error says, per Sentinel, why it did not give one.
pub(crate) fn master(settings: &Settings) -> Result<Resolved> {
    let mut reasons = Vec::new();
    let mut checked: Vec<Addr> = Vec::new();
    for sentinel in &settings.sentinels {
        let at = sentinel_addr(sentinel);
        match ask(settings, sentinel) {
            Ok(addr) if checked.contains(&addr) => {
                reasons.push(format!("{at} names {} too", show(&addr)));
            }
            Ok(addr) => match verify(settings, &addr) {
                Ok(resolved) => return Ok(resolved),
                Err(error) => {
                    reasons.push(format!("{at} names {}: {error:#}", show(&addr)));
                    checked.push(addr);
                }
            },
            Err(error) => reasons.push(format!("{at}: {error:#}")),
        }
    }
    Err(Error::new(
        ErrorKind::Connection,
        format!(
            "no Sentinel named a reachable master for `{}` ({})",
            settings.master_name,
            reasons.join("; ")
        ),
    ))
}

/// `SENTINEL GET-MASTER-ADDR-BY-NAME` on one Sentinel.
fn ask(settings: &Settings, sentinel: &Client) -> Result<Addr> {
    let connector = Connector::new(
        sentinel,
        settings.timeouts.connect,
        settings.timeouts.response,
    );
    let mut conn = connector.connect(None).map_err(from_redis)?;
    let addr: Option<Addr> = redis::cmd("SENTINEL")
        .arg("GET-MASTER-ADDR-BY-NAME")
        .arg(&settings.master_name)
        .query(&mut conn)
        .map_err(from_redis)?;
    addr.ok_or_else(|| {
        Error::new(
            ErrorKind::Backend,
            format!(
                "the Sentinel does not monitor a master named `{}`",
                settings.master_name
            ),
        )
    })
}

/// Checks that the node at `addr` answers `ROLE` as a master, with the data nodes'
/// credentials.
pub(crate) fn verify(settings: &Settings, addr: &Addr) -> Result<Resolved> {
    let client = settings.node_client(addr)?;
    let connector = Connector::new(
        &client,
        settings.timeouts.connect,
        settings.timeouts.response,
    );
    let mut conn = connector.connect(None).map_err(from_redis)?;
    let role: Vec<Value> = redis::cmd("ROLE").query(&mut conn).map_err(from_redis)?;
    match role.first() {
        Some(Value::BulkString(role)) if role == b"master" => Ok(Resolved {
            addr: addr.clone(),
            client,
        }),
        Some(Value::BulkString(role)) => Err(Error::new(
            ErrorKind::Backend,
            format!(
                "the node answers ROLE as {}, not master",
                String::from_utf8_lossy(role)
            ),
        )),
        _ => Err(Error::new(
            ErrorKind::Backend,
            "the node's ROLE answer is not one Redis gives",
        )),
    }
}
