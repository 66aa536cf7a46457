//! The engine's steps, driven by hand: each test asserts a call's whole sequence of backend
//! operations and waits, with the replies a backend would give.

use std::time::{Duration, SystemTime};

use bytes::Bytes;

use super::{Call, Input, Outage, Plan, Request, Step};
use crate::codec::DefaultCodec;
use crate::envelope::{self, Meta};
use crate::gateway::{ReleaseLease, Set, TakeLease};
use crate::options::Options;
use crate::policy::{OkOrShared, Plain, Policy};
use crate::stampede::Stampede;
use crate::{Cache, Error, ErrorKind};

type Text = Call<'static, String, Plain, DefaultCodec>;

fn cache() -> &'static Cache {
    Box::leak(Box::new(Cache::memory()))
}

fn plan(cache: &'static Cache, options: Options) -> Plan<'static> {
    Plan {
        cache,
        key: cache.full_key("k"),
        options: Box::leak(Box::new(options)),
        counters: cache.counters(),
        label: "test",
        outage: Outage::default(),
        near: None,
    }
}

fn call<R, P: Policy<R>>(
    cache: &'static Cache,
    options: Options,
    policy: P,
) -> Call<'static, R, P, DefaultCodec> {
    Call::new(plan(cache, options), policy, true)
}

fn sealed(value: &str, soft_expiry: Option<SystemTime>) -> Bytes {
    let meta = Meta {
        compute_time: Some(Duration::from_millis(1)),
        soft_expiry,
    };
    envelope::seal::<DefaultCodec, String>(&value.to_owned(), meta).unwrap()
}

fn outage() -> Error {
    Error::new(ErrorKind::Timeout, "no answer in time")
}

/// The request after a [`Step::Io`], written as a Redis command.
fn command<R, P: Policy<R>>(step: &Step<R>, call: &Call<'_, R, P, DefaultCodec>) -> String {
    assert!(matches!(step, Step::Io), "expected a backend operation");
    match call.request() {
        Request::Read(key) => format!("GET {key}"),
        Request::TakeLease(TakeLease { key, time, .. }) => {
            format!("SET {key} NX PX {}", time.as_millis())
        }
        Request::Store(Set { key, ttl, .. }) => {
            format!("SET {key} PX {}", ttl.map_or(0, |ttl| ttl.as_millis()))
        }
        Request::Release(ReleaseLease { key, .. }) => format!("DELIFEQ {key}"),
    }
}

fn done<R>(step: Step<R>) -> R {
    match step {
        Step::Done(result) => result,
        _ => panic!("expected the result"),
    }
}

fn computed(result: &str) -> Input<String> {
    Input::Computed {
        result: result.to_owned(),
        took: Duration::from_millis(1),
    }
}

const MINUTE: Duration = Duration::from_secs(60);

#[test]
fn a_hit_is_one_read() {
    let cache = cache();
    let mut call: Text = call(cache, Options::timeout(MINUTE), Plain);
    let step = call.step(Input::Start);
    assert_eq!(command(&step, &call), "GET cache:k");
    let step = call.step(Input::Read(Ok(Some(sealed("v", None)))));
    assert_eq!(done(step), "v");
    assert_eq!((cache.stats().hits, cache.stats().misses), (1, 0));
}

#[test]
fn a_miss_reads_computes_and_stores() {
    let cache = cache();
    let mut call: Text = call(cache, Options::timeout(MINUTE), Plain);
    let step = call.step(Input::Start);
    assert_eq!(command(&step, &call), "GET cache:k");
    assert!(matches!(call.step(Input::Read(Ok(None))), Step::Compute));
    let step = call.step(computed("v"));
    assert_eq!(command(&step, &call), "SET cache:k PX 60000");
    assert_eq!(done(call.step(Input::Stored(Ok(())))), "v");
    assert_eq!(cache.stats().misses, 1);
}

#[test]
fn forced_update_computes_without_reading() {
    let mut options = Options::timeout(MINUTE);
    options.forced_update = true;
    let cache = cache();
    let mut call: Text = call(cache, options, Plain);
    assert!(matches!(call.step(Input::Start), Step::Compute));
    let step = call.step(computed("v"));
    assert_eq!(command(&step, &call), "SET cache:k PX 60000");
    assert_eq!(done(call.step(Input::Stored(Ok(())))), "v");
}

fn leased() -> Options {
    let mut options = Options::timeout(MINUTE);
    options.stampede = Stampede::default().lease(Duration::from_secs(5));
    options
}

#[test]
fn a_leader_takes_the_lease_reads_again_computes_stores_and_releases() {
    let cache = cache();
    let mut call: Text = call(cache, leased(), Plain);
    let mut commands = vec![];
    let mut step = call.step(Input::Start);
    commands.push(command(&step, &call));
    step = call.step(Input::Read(Ok(None)));
    commands.push(command(&step, &call));
    step = call.step(Input::Lease(Ok(true)));
    commands.push(command(&step, &call));
    assert!(matches!(call.step(Input::Read(Ok(None))), Step::Compute));
    step = call.step(computed("v"));
    commands.push(command(&step, &call));
    step = call.step(Input::Stored(Ok(())));
    commands.push(command(&step, &call));
    assert_eq!(done(call.step(Input::Released(Ok(true)))), "v");
    assert_eq!(
        commands,
        [
            "GET cache:k",
            "SET cache:k:~lease NX PX 5000",
            "GET cache:k",
            "SET cache:k PX 60000",
            "DELIFEQ cache:k:~lease",
        ]
    );
}

#[test]
fn a_caller_that_finds_the_lease_taken_polls_until_the_value_appears() {
    let cache = cache();
    let mut call: Text = call(cache, leased(), Plain);
    call.step(Input::Start);
    let step = call.step(Input::Read(Ok(None)));
    assert_eq!(command(&step, &call), "SET cache:k:~lease NX PX 5000");
    assert!(matches!(call.step(Input::Lease(Ok(false))), Step::Sleep(_)));
    let step = call.step(Input::Slept);
    assert_eq!(command(&step, &call), "GET cache:k");
    // Still nothing: it tries the lease again.
    let step = call.step(Input::Read(Ok(None)));
    assert_eq!(command(&step, &call), "SET cache:k:~lease NX PX 5000");
    assert!(matches!(call.step(Input::Lease(Ok(false))), Step::Sleep(_)));
    call.step(Input::Slept);
    let step = call.step(Input::Read(Ok(Some(sealed("theirs", None)))));
    assert_eq!(done(step), "theirs");
}

#[test]
fn a_value_stored_while_the_lease_was_taken_is_returned_and_the_lease_released() {
    let cache = cache();
    let mut call: Text = call(cache, leased(), Plain);
    call.step(Input::Start);
    call.step(Input::Read(Ok(None)));
    call.step(Input::Lease(Ok(true)));
    let step = call.step(Input::Read(Ok(Some(sealed("theirs", None)))));
    assert_eq!(command(&step, &call), "DELIFEQ cache:k:~lease");
    assert_eq!(done(call.step(Input::Released(Ok(true)))), "theirs");
}

#[test]
fn a_follower_returns_the_leaders_stored_value_without_io() {
    let cache = cache();
    let mut leader: Text = call(cache, Options::timeout(MINUTE), Plain);
    let mut follower: Text = call(cache, Options::timeout(MINUTE), Plain);
    leader.step(Input::Start);
    assert!(matches!(leader.step(Input::Read(Ok(None))), Step::Compute));
    follower.step(Input::Start);
    let Step::Wait(flight) = follower.step(Input::Read(Ok(None))) else {
        panic!("the second caller waits for the first")
    };
    leader.step(computed("v"));
    assert_eq!(done(leader.step(Input::Stored(Ok(())))), "v");
    let woke = flight.wait_blocking();
    assert_eq!(done(follower.step(Input::Woke(woke))), "v");
}

#[test]
fn followers_share_a_clonable_failure_instead_of_computing() {
    let cache = cache();
    type Fallible = Call<'static, Result<String, String>, OkOrShared, DefaultCodec>;
    let mut leader: Fallible = call(cache, Options::timeout(MINUTE), OkOrShared);
    let mut follower: Fallible = call(cache, Options::timeout(MINUTE), OkOrShared);
    leader.step(Input::Start);
    leader.step(Input::Read(Ok(None)));
    follower.step(Input::Start);
    let Step::Wait(flight) = follower.step(Input::Read(Ok(None))) else {
        panic!("the second caller waits for the first")
    };
    let failed = Input::Computed {
        result: Err("db down".to_owned()),
        took: Duration::ZERO,
    };
    // Not stored: the leader is done at once.
    assert_eq!(done(leader.step(failed)), Err("db down".to_owned()));
    let woke = flight.wait_blocking();
    assert_eq!(
        done(follower.step(Input::Woke(woke))),
        Err("db down".to_owned())
    );
}

#[test]
fn an_abandoned_flight_makes_a_follower_the_next_leader() {
    let cache = cache();
    let mut leader: Text = call(cache, Options::timeout(MINUTE), Plain);
    let mut follower: Text = call(cache, Options::timeout(MINUTE), Plain);
    leader.step(Input::Start);
    leader.step(Input::Read(Ok(None)));
    follower.step(Input::Start);
    let Step::Wait(flight) = follower.step(Input::Read(Ok(None))) else {
        panic!("the second caller waits for the first")
    };
    drop(leader); // cancelled while computing
    let woke = flight.wait_blocking();
    assert!(matches!(follower.step(Input::Woke(woke)), Step::Compute));
}

fn serving_stale() -> Options {
    let mut options = Options::timeout(MINUTE);
    options.stampede = Stampede::default().serve_stale(MINUTE);
    options
}

#[test]
fn a_stale_value_is_returned_and_refreshed_by_the_caller_that_leads() {
    let cache = cache();
    let stale = || sealed("old", Some(SystemTime::now() - Duration::from_secs(1)));
    let mut call: Text = call(cache, serving_stale(), Plain);
    call.step(Input::Start);
    // In process: no refresh lease, one read to check nobody refreshed it meanwhile.
    let step = call.step(Input::Read(Ok(Some(stale()))));
    assert_eq!(command(&step, &call), "GET cache:k");
    assert!(matches!(
        call.step(Input::Read(Ok(Some(stale())))),
        Step::Refresh
    ));
    let (returned, _guards) = call.detach_refresh().expect("a refresh to hand over");
    assert_eq!(returned, "old");
}

#[test]
fn a_stale_value_refreshed_meanwhile_is_not_refreshed_again() {
    let cache = cache();
    let stale = sealed("old", Some(SystemTime::now() - Duration::from_secs(1)));
    let fresh = sealed("new", Some(SystemTime::now() + MINUTE));
    let mut call: Text = call(cache, serving_stale(), Plain);
    call.step(Input::Start);
    call.step(Input::Read(Ok(Some(stale))));
    assert_eq!(done(call.step(Input::Read(Ok(Some(fresh))))), "old");
}

#[test]
fn a_stale_value_refreshed_in_line_is_computed_and_stored() {
    let cache = cache();
    let stale = || sealed("old", Some(SystemTime::now() - Duration::from_secs(1)));
    let mut call: Text = call(cache, serving_stale(), Plain);
    call.step(Input::Start);
    call.step(Input::Read(Ok(Some(stale()))));
    call.step(Input::Read(Ok(Some(stale()))));
    assert!(matches!(call.step(Input::InLine), Step::Compute));
    let step = call.step(computed("new"));
    assert_eq!(command(&step, &call), "SET cache:k PX 120000");
    assert_eq!(done(call.step(Input::Stored(Ok(())))), "new");
}

#[test]
fn after_an_outage_a_call_skips_the_lease_and_the_store() {
    let cache = cache();
    let mut call: Text = call(cache, leased(), Plain);
    call.step(Input::Start);
    assert!(matches!(
        call.step(Input::Read(Err(outage()))),
        Step::Compute
    ));
    assert_eq!(done(call.step(computed("v"))), "v");
    let stats = cache.stats();
    assert_eq!(
        (stats.misses, stats.errors),
        (1, 1),
        "the skipped store is an error"
    );
}

#[test]
fn a_failed_store_still_returns_the_result_and_releases_the_lease() {
    let cache = cache();
    let mut call: Text = call(cache, leased(), Plain);
    call.step(Input::Start);
    call.step(Input::Read(Ok(None)));
    call.step(Input::Lease(Ok(true)));
    call.step(Input::Read(Ok(None)));
    call.step(computed("v"));
    let refused = Error::new(ErrorKind::Backend, "OOM command not allowed");
    let step = call.step(Input::Stored(Err(refused)));
    assert_eq!(command(&step, &call), "DELIFEQ cache:k:~lease");
    assert_eq!(done(call.step(Input::Released(Ok(true)))), "v");
}

#[test]
fn a_call_dropped_while_holding_the_lease_releases_it() {
    let cache = cache();
    let mut call: Text = call(cache, leased(), Plain);
    call.step(Input::Start);
    let step = call.step(Input::Read(Ok(None)));
    // Take the lease for real, as a backend would.
    let Request::TakeLease(TakeLease { key, token, time }) = call.request() else {
        panic!("expected the lease, got {}", command(&step, &call))
    };
    let store = cache.inner.store.blocking();
    assert!(store.add(key, token, Some(time)).unwrap());
    let lease_key = key.to_owned();
    assert!(matches!(call.step(Input::Lease(Ok(true))), Step::Io));
    drop(call); // cancelled before its re-read
    assert!(!store.exists(&lease_key).unwrap(), "the lease was released");
    let mut next: Text = super::Call::new(plan(cache, leased()), Plain, true);
    next.step(Input::Start);
    let step = next.step(Input::Read(Ok(None)));
    assert_eq!(
        command(&step, &next),
        "SET cache:k:~lease NX PX 5000",
        "the flight was given up, so the next caller leads"
    );
}

#[test]
fn a_call_dropped_while_its_lease_command_is_in_flight_releases_what_it_took() {
    let cache = cache();
    let mut call: Text = call(cache, leased(), Plain);
    call.step(Input::Start);
    call.step(Input::Read(Ok(None)));
    // The `SET NX` reaches the backend and takes the lease, but its answer never comes back:
    // the caller is cancelled while waiting for it.
    let Request::TakeLease(TakeLease { key, token, time }) = call.request() else {
        panic!("expected the lease")
    };
    let store = cache.inner.store.blocking();
    assert!(store.add(key, token, Some(time)).unwrap());
    let lease_key = key.to_owned();
    drop(call);
    assert!(!store.exists(&lease_key).unwrap(), "the lease was released");
}

#[test]
fn a_caller_that_found_the_lease_taken_releases_nothing_when_dropped() {
    let cache = cache();
    let mut call: Text = call(cache, leased(), Plain);
    call.step(Input::Start);
    call.step(Input::Read(Ok(None)));
    let Request::TakeLease(TakeLease { key, time, .. }) = call.request() else {
        panic!("expected the lease")
    };
    // Another caller's lease, with its own token.
    let store = cache.inner.store.blocking();
    assert!(
        store
            .add(key, Bytes::from_static(b"theirs"), Some(time))
            .unwrap()
    );
    let lease_key = key.to_owned();
    assert!(matches!(call.step(Input::Lease(Ok(false))), Step::Sleep(_)));
    drop(call); // cancelled while pausing
    assert!(
        store.exists(&lease_key).unwrap(),
        "the other caller's lease stays"
    );
}
