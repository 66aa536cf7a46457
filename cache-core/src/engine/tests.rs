//! The engine's steps, driven by hand: each test asserts a call's whole sequence of backend
//! operations and waits, with the replies a backend would give.

use std::time::{Duration, SystemTime};

use bytes::Bytes;

use super::{Call, Input, Outage, Plan, Request, Step};
use crate::backend::Acquired;
use crate::codec::DefaultCodec;
use crate::envelope::{self, Meta};
use crate::gateway::{AcquireLease, ReleaseLease, Set, SetReleasing, TakeLease};
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
        Request::Acquire(AcquireLease {
            key,
            lease_key,
            time,
            ..
        }) => format!("ACQUIRE {key} {lease_key} PX {}", time.as_millis()),
        Request::Store(Set { key, ttl, .. }) => {
            format!("SET {key} PX {}", ttl.map_or(0, |ttl| ttl.as_millis()))
        }
        Request::StoreReleasing(SetReleasing {
            key,
            ttl,
            lease_key,
            ..
        }) => format!(
            "SET {key} PX {} RELEASE {lease_key}",
            ttl.map_or(0, |ttl| ttl.as_millis())
        ),
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

/// Answers the engine's next request the way a backend would, on the cache's own
/// (memory) backend, and gives the command it was.
fn perform(call: &mut Text, step: &Step<String>) -> (String, Input<String>) {
    let described = command(step, call);
    let store = call.plan().cache.inner.store.blocking();
    let input = match call.request() {
        Request::Read(key) => Input::Read(store.get(key)),
        Request::TakeLease(TakeLease { key, token, time }) => {
            Input::Lease(store.add(key, token, Some(time)))
        }
        Request::Acquire(AcquireLease {
            key,
            lease_key,
            token,
            time,
        }) => Input::Acquired(store.acquire_lease(key, lease_key, token, time)),
        Request::Store(Set { key, value, ttl }) => Input::Stored(store.set(key, value, ttl)),
        Request::StoreReleasing(SetReleasing {
            key,
            value,
            ttl,
            lease_key,
            token,
        }) => Input::Stored(store.set_releasing(key, value, ttl, lease_key, token)),
        Request::Release(ReleaseLease { key, token }) => {
            Input::Released(store.delete_if_equal(key, token))
        }
    };
    (described, input)
}

#[test]
fn a_leased_miss_is_a_read_an_acquiring_look_and_a_store_that_releases() {
    let cache = cache();
    let mut call: Text = call(cache, leased(), Plain);
    let mut commands = vec![];
    let mut step = call.step(Input::Start);
    let (command, read) = perform(&mut call, &step);
    commands.push(command);
    step = call.step(read);
    let (command, acquired) = perform(&mut call, &step);
    commands.push(command);
    assert!(matches!(call.step(acquired), Step::Compute));
    step = call.step(computed("v"));
    let (command, stored) = perform(&mut call, &step);
    commands.push(command);
    assert_eq!(done(call.step(stored)), "v");
    assert_eq!(
        commands,
        [
            "GET cache:k",
            "ACQUIRE cache:k cache:k:~lease PX 5000",
            "SET cache:k PX 60000 RELEASE cache:k:~lease",
        ]
    );
    let store = cache.inner.store.blocking();
    assert!(!store.exists("cache:k:~lease").unwrap(), "released");
    assert!(store.exists("cache:k").unwrap(), "stored");
}

#[test]
fn a_caller_that_finds_the_lease_taken_pauses_and_looks_again_until_the_value_appears() {
    let cache = cache();
    let mut call: Text = call(cache, leased(), Plain);
    call.step(Input::Start);
    let step = call.step(Input::Read(Ok(None)));
    assert_eq!(
        command(&step, &call),
        "ACQUIRE cache:k cache:k:~lease PX 5000"
    );
    assert!(matches!(
        call.step(Input::Acquired(Ok(Acquired::Busy))),
        Step::Pause(_)
    ));
    // One look per pause: the value or the lease, in one operation.
    let step = call.step(Input::Slept);
    assert_eq!(
        command(&step, &call),
        "ACQUIRE cache:k cache:k:~lease PX 5000"
    );
    assert!(matches!(
        call.step(Input::Acquired(Ok(Acquired::Busy))),
        Step::Pause(_)
    ));
    call.step(Input::Slept);
    let theirs = Input::Acquired(Ok(Acquired::Value(sealed("theirs", None))));
    assert_eq!(done(call.step(theirs)), "theirs");
    assert_eq!(cache.stats().hits, 1);
}

#[test]
fn a_value_stored_before_the_lease_was_taken_is_returned_without_a_lease() {
    let cache = cache();
    let mut call: Text = call(cache, leased(), Plain);
    call.step(Input::Start);
    let step = call.step(Input::Read(Ok(None)));
    cache
        .inner
        .store
        .blocking()
        .set("cache:k", sealed("theirs", None), None)
        .unwrap();
    let (_, acquired) = perform(&mut call, &step);
    assert_eq!(done(call.step(acquired)), "theirs");
    let store = cache.inner.store.blocking();
    assert!(
        !store.exists("cache:k:~lease").unwrap(),
        "no lease left behind"
    );
}

#[test]
fn a_busy_lease_registers_the_caller_as_a_waiter_until_it_is_done() {
    use crate::backplane::near_key;
    let cache = cache();
    let mut call: Text = call(cache, leased(), Plain);
    call.step(Input::Start);
    call.step(Input::Read(Ok(None)));
    let Step::Pause(pause) = call.step(Input::Acquired(Ok(Acquired::Busy))) else {
        panic!("expected a pause")
    };
    // The holder stores its value: the pause ends at once, however long it was.
    crate::waiters::Waiters::global().notify(&[near_key(&cache.full_key("k"))]);
    assert!(pause.wait_blocking(), "woken by the notification");
    call.step(Input::Slept);
    let theirs = Input::Acquired(Ok(Acquired::Value(sealed("theirs", None))));
    assert_eq!(done(call.step(theirs)), "theirs");
}

#[test]
fn a_failed_look_computes_without_the_lease() {
    let cache = cache();
    let mut call: Text = call(cache, leased(), Plain);
    call.step(Input::Start);
    call.step(Input::Read(Ok(None)));
    assert!(matches!(
        call.step(Input::Acquired(Err(outage()))),
        Step::Compute
    ));
    assert_eq!(
        done(call.step(computed("v"))),
        "v",
        "after an outage nothing more is sent"
    );
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
fn a_failed_store_still_returns_the_result() {
    let cache = cache();
    let mut call: Text = call(cache, leased(), Plain);
    call.step(Input::Start);
    call.step(Input::Read(Ok(None)));
    call.step(Input::Acquired(Ok(Acquired::Taken)));
    let step = call.step(computed("v"));
    assert_eq!(
        command(&step, &call),
        "SET cache:k PX 60000 RELEASE cache:k:~lease"
    );
    let refused = Error::new(ErrorKind::Backend, "OOM command not allowed");
    assert_eq!(done(call.step(Input::Stored(Err(refused)))), "v");
}

#[test]
fn a_result_not_stored_releases_the_lease_alone() {
    let cache = cache();
    type Fallible = Call<'static, Result<String, String>, OkOrShared, DefaultCodec>;
    let mut call: Fallible = super::Call::new(plan(cache, leased()), OkOrShared, true);
    call.step(Input::Start);
    call.step(Input::Read(Ok(None)));
    call.step(Input::Acquired(Ok(Acquired::Taken)));
    let failed = Input::Computed {
        result: Err("db down".to_owned()),
        took: Duration::ZERO,
    };
    let step = call.step(failed);
    assert!(matches!(step, Step::Io));
    assert!(matches!(call.request(), Request::Release(_)));
    assert_eq!(
        done(call.step(Input::Released(Ok(true)))),
        Err("db down".to_owned())
    );
}

#[test]
fn a_call_dropped_while_holding_the_lease_releases_it() {
    let cache = cache();
    let mut call: Text = call(cache, leased(), Plain);
    let step = call.step(Input::Start);
    let (_, read) = perform(&mut call, &step);
    let step = call.step(read);
    // Take the lease for real, as a backend would.
    let (_, acquired) = perform(&mut call, &step);
    assert!(matches!(call.step(acquired), Step::Compute));
    let store = cache.inner.store.blocking();
    assert!(store.exists("cache:k:~lease").unwrap());
    drop(call); // cancelled in its body
    assert!(
        !store.exists("cache:k:~lease").unwrap(),
        "the lease was released"
    );
    let mut next: Text = super::Call::new(plan(cache, leased()), Plain, true);
    next.step(Input::Start);
    let step = next.step(Input::Read(Ok(None)));
    assert_eq!(
        command(&step, &next),
        "ACQUIRE cache:k cache:k:~lease PX 5000",
        "the flight was given up, so the next caller leads"
    );
}

#[test]
fn a_call_dropped_while_its_acquiring_look_is_in_flight_releases_what_it_took() {
    let cache = cache();
    let mut call: Text = call(cache, leased(), Plain);
    call.step(Input::Start);
    let step = call.step(Input::Read(Ok(None)));
    // The look reaches the backend and takes the lease, but its answer never comes back:
    // the caller is cancelled while waiting for it.
    let (_, _unanswered) = perform(&mut call, &step);
    let store = cache.inner.store.blocking();
    assert!(store.exists("cache:k:~lease").unwrap());
    drop(call);
    assert!(
        !store.exists("cache:k:~lease").unwrap(),
        "the lease was released"
    );
}

#[test]
fn a_call_dropped_while_its_store_and_release_is_in_flight_leaves_no_lease() {
    let cache = cache();
    let mut call: Text = call(cache, leased(), Plain);
    let mut step = call.step(Input::Start);
    for _ in 0..2 {
        let (_, input) = perform(&mut call, &step);
        step = call.step(input);
    }
    step = call.step(computed("v"));
    let store = cache.inner.store.blocking();
    // Cancelled before the store reaches the backend: the lease is released.
    drop(call);
    assert!(!store.exists("cache:k:~lease").unwrap());
    drop(step);

    let mut call: Text = super::Call::new(plan(cache, leased()), Plain, true);
    let mut step = call.step(Input::Start);
    for _ in 0..2 {
        let (_, input) = perform(&mut call, &step);
        step = call.step(input);
    }
    step = call.step(computed("v"));
    // Cancelled after the store and release reached the backend, before the answer: the
    // guard's release finds nothing of its own to delete.
    let (_, _unanswered) = perform(&mut call, &step);
    drop(call);
    assert!(!store.exists("cache:k:~lease").unwrap());
    assert!(store.exists("cache:k").unwrap(), "the value stays");
}

#[test]
fn a_caller_that_found_the_lease_taken_releases_nothing_and_stops_waiting_when_dropped() {
    use crate::backplane::near_key;
    use crate::waiters::Waiters;
    let cache = cache();
    let mut call: Text = call(cache, leased(), Plain);
    call.step(Input::Start);
    let step = call.step(Input::Read(Ok(None)));
    // Another caller's lease, with its own token.
    let store = cache.inner.store.blocking();
    let lease = Bytes::from_static(b"theirs");
    assert!(store.add("cache:k:~lease", lease, Some(MINUTE)).unwrap());
    let (_, acquired) = perform(&mut call, &step);
    let Step::Pause(pause) = call.step(acquired) else {
        panic!("expected a pause")
    };
    let key = near_key(&cache.full_key("k"));
    assert!(Waiters::global().waits_on(key), "registered while it waits");
    drop(pause);
    drop(call); // cancelled while pausing
    assert!(
        store.exists("cache:k:~lease").unwrap(),
        "the other caller's lease stays"
    );
    assert!(!Waiters::global().waits_on(key), "no entry left behind");
}
