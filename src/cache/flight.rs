//! Single flight in process: concurrent identical requests share one lookup and at most one
//! upstream call.
//!
//! The first caller for a key leads; the others subscribe to its result. If the leader's future
//! is dropped before it finishes (its caller gave up), the followers are told so and one of
//! them leads a new attempt: a cancelled caller never leaves the others waiting forever.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::{CacheKey, LlmError, LlmResponse};

/// The result the leader hands to its followers.
pub(crate) type Shared = Arc<Result<LlmResponse, LlmError>>;

type Slot = watch::Receiver<Option<Shared>>;

#[derive(Default)]
pub(crate) struct Flights {
    map: Mutex<HashMap<CacheKey, Slot>>,
}

pub(crate) enum Role<'a> {
    Leader(Leader<'a>),
    Follower(Slot),
}

/// The leader's handle; dropping it (finished or not) ends the flight.
pub(crate) struct Leader<'a> {
    flights: &'a Flights,
    key: CacheKey,
    tx: watch::Sender<Option<Shared>>,
}

impl Flights {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<CacheKey, Slot>> {
        super::lock(&self.map)
    }

    /// Joins the flight for `key`, or starts it.
    pub fn join(&self, key: &CacheKey) -> Role<'_> {
        let mut map = self.map();
        if let Some(rx) = map.get(key)
            && rx.has_changed().is_ok()
        {
            return Role::Follower(rx.clone());
        }
        let (tx, rx) = watch::channel(None);
        map.insert(key.clone(), rx);
        Role::Leader(Leader {
            flights: self,
            key: key.clone(),
            tx,
        })
    }

    /// Flights in progress.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.map().len()
    }
}

impl Leader<'_> {
    /// Hands the result to every follower.
    pub fn finish(self, result: Shared) {
        self.tx.send_replace(Some(result));
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        let mut map = self.flights.map();
        if map
            .get(&self.key)
            .is_some_and(|rx| rx.same_channel(&self.tx.subscribe()))
        {
            map.remove(&self.key);
        }
    }
}

/// Waits for the leader. `None` when the leader was dropped without a result.
pub(crate) async fn follow(mut rx: Slot) -> Option<Shared> {
    loop {
        if let Some(result) = rx.borrow_and_update().clone() {
            return Some(result);
        }
        if rx.changed().await.is_err() {
            return rx.borrow().clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> CacheKey {
        CacheKey::new("ab".repeat(32), None).unwrap()
    }

    #[tokio::test]
    async fn followers_get_the_leaders_result() {
        let flights = Flights::default();
        let Role::Leader(leader) = flights.join(&key()) else {
            panic!("first caller leads")
        };
        let Role::Follower(rx) = flights.join(&key()) else {
            panic!("second caller follows")
        };
        let waiter = tokio::spawn(follow(rx));
        leader.finish(Arc::new(Err(LlmError::InvalidRequest("x".into()))));
        let got = waiter.await.unwrap().unwrap();
        assert!(got.is_err());
        assert_eq!(flights.len(), 0);
    }

    #[tokio::test]
    async fn a_dropped_leader_releases_its_followers() {
        let flights = Flights::default();
        let leader = flights.join(&key());
        let Role::Follower(rx) = flights.join(&key()) else {
            panic!("second caller follows")
        };
        drop(leader);
        assert!(follow(rx).await.is_none());
        assert!(matches!(flights.join(&key()), Role::Leader(_)));
    }
}
