//! The protocol of one cached call, from lookup to store, as a state machine that performs
//! no I/O. [`Call::step`] takes what the last step produced and says what to do next: a
//! backend operation ([`Call::request`]), a wait for another caller, a pause, running the
//! function, or the result. The two drivers in [`drive`](crate::drive), one blocking and one
//! async, perform those steps; they differ only in how they do I/O and how they wait, so
//! `#[cached]`, `#[memoize]` and the direct API share every rule below.
//!
//! 1. **Read** the key (skipped by `forced_update`). A fresh value is the result. A stale
//!    one (serve-stale) is the result too, while one caller refreshes it: that caller leads
//!    the key's flight, takes the refresh lease on a shared backend, and reads once more to
//!    check that nobody refreshed it meanwhile; the driver runs the refresh in the
//!    background where it can.
//! 2. On a **miss**, join the key's flight. The first caller leads; the others wait for its
//!    outcome: its stored value, its failure shared (when the policy can share it), or, when
//!    neither, they rejoin and one at a time takes over. A caller whose read began before a
//!    flight stored the key reads again instead of computing.
//! 3. A leader with a **lease** configured looks once more and takes the cross-process
//!    lease in one operation ([`AcquireLease`]: one script on Redis): the value, if another
//!    process stored it meanwhile, is the result; while another process holds the lease, it
//!    pauses and looks again the same way, up to twice the lease time. A pause ends early
//!    when this process is told the value may be there ([`crate::waiters`]).
//! 4. **Compute**, store the result if the policy stores it (with a lease: the store and the
//!    release in one operation, [`SetReleasing`]), and finish the flight with the outcome.
//!    A leased miss thus costs three round trips: the read, the acquiring look, the store.
//!
//! A call that met an outage (a connection error or a time-out) skips every later backend
//! operation, so a caller pays at most one time-out. Whatever must be undone is held in the
//! state as a guard (the flight's [`Leader`], the [`Lease`]), so dropping a call at any step,
//! as a cancelled future does, releases it.

use std::marker::PhantomData;
use std::mem;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::Result;
use crate::backend::Acquired;
use crate::backend::Ttl;
use crate::backplane::{Change, near_key};
use crate::cache::{Cache, ttl_of};
use crate::codec::Codec;
use crate::counted::open_counted;
use crate::envelope;
use crate::flight::{Follower, Leader, Mark, Outcome, Role};
use crate::gateway::{AcquireLease, Gateway, ReleaseLease, Set, SetReleasing, TakeLease};
use crate::lease::Lease;
use crate::near::{Fill, NearPlan};
use crate::options::Options;
use crate::policy::Policy;
use crate::stampede::{Freshness, lease_key, lease_token, poll_delay};
use crate::stats::Counters;
use crate::waiters::{Pause, Waiter, Waiters};

/// A call that will use the cache: the cache, the full key and the switches.
pub(crate) struct Plan<'a> {
    pub(crate) cache: &'a Cache,
    pub(crate) key: String,
    /// Borrowed from the driver's caller, so a cached call's future holds the options once.
    pub(crate) options: &'a Options,
    pub(crate) counters: Counters<'a>,
    /// The function's path (`get_or_set_with` for the direct API), for logs.
    pub(crate) label: &'static str,
    pub(crate) outage: Outage,
    /// A near miss whose value may be kept in the near cache (boxed: only near misses pay
    /// for it, and a hit's future holds one pointer).
    pub(crate) near: Option<Box<NearPlan>>,
}

/// Makes the [`Plan`] of one async call once its future runs, borrowing the options the
/// future holds (so they are held once, not once more in the plan).
pub(crate) trait Planner {
    /// The plan, or `None` to run the function without the cache.
    fn plan<'o>(self, options: &'o Options) -> Option<Plan<'o>>
    where
        Self: 'o;
}

/// Whether this call already met a backend outage (a connection error or a time-out).
#[derive(Debug, Default)]
pub(crate) struct Outage(AtomicBool);

impl Outage {
    /// Notes `result`'s error if it is an outage.
    #[inline]
    fn note<T>(&self, result: &Result<T>) {
        if let Err(error) = result
            && (error.is_connection() || error.is_timeout())
        {
            self.0.store(true, Ordering::Relaxed);
        }
    }

    #[inline]
    fn seen(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// A backend operation the call needs; the driver performs it and steps the call with the
/// matching [`Input`].
pub(crate) enum Request<'s> {
    /// `GET key`; answer with [`Input::Read`].
    Read(&'s str),
    /// `SET key token NX PX time` (a stale value's refresh lease); answer with
    /// [`Input::Lease`].
    TakeLease(TakeLease<'s>),
    /// The value, or the miss's lease taken or found busy; answer with [`Input::Acquired`].
    Acquire(AcquireLease<'s>),
    /// `SET key value PX ttl`; answer with [`Input::Stored`].
    Store(Set<'s>),
    /// The store and the release of the lease it was computed under; answer with
    /// [`Input::Stored`].
    StoreReleasing(SetReleasing<'s>),
    /// Delete `key` if it holds `token`; answer with [`Input::Released`].
    Release(ReleaseLease<'s>),
}

/// What the driver hands to [`Call::step`].
pub(crate) enum Input<R> {
    /// The first step.
    Start,
    /// What a [`Request::Read`] gave.
    Read(Result<Option<Bytes>>),
    /// What a [`Request::TakeLease`] gave.
    Lease(Result<bool>),
    /// What a [`Request::Acquire`] gave.
    Acquired(Result<Acquired>),
    /// What a [`Request::Store`] or a [`Request::StoreReleasing`] gave.
    Stored(Result<()>),
    /// What a [`Request::Release`] gave.
    Released(Result<bool>),
    /// The flight a [`Step::Wait`] waited on ended (`None`: the caller could not wait).
    Woke(Option<Outcome>),
    /// A [`Step::Pause`] is over.
    Slept,
    /// The function ran ([`Step::Compute`]): its result and how long it took.
    Computed { result: R, took: Duration },
    /// Run the refresh of [`Step::Refresh`] in line.
    InLine,
}

/// What the driver must do next.
pub(crate) enum Step<R> {
    /// Perform [`Call::request`].
    Io,
    /// Wait for this flight to end, then step with [`Input::Woke`].
    Wait(Follower),
    /// Pause (until the time is up or a notification comes), then step with
    /// [`Input::Slept`].
    Pause(Pause),
    /// Run the function, then step with [`Input::Computed`].
    Compute,
    /// A stale value's refresh is ready: run it in the background with
    /// [`Call::detach_refresh`], or step with [`Input::InLine`].
    Refresh,
    /// The call's result.
    Done(R),
}

/// What [`Call::open`] gives.
pub(crate) enum Opened<Call, R> {
    /// A fresh hit: the result.
    Done(R),
    /// The call, and its next step.
    Running(Call, Step<R>),
}

/// The guards a computing caller holds: the in-process flight and the cross-process lease.
pub(crate) struct Guards {
    leader: Option<Leader>,
    lease: Option<Lease>,
}

impl Guards {
    fn none() -> Self {
        Self {
            leader: None,
            lease: None,
        }
    }
}

/// A miss's lease being taken: its guard (armed while an acquiring look is in flight, so a
/// call dropped then releases what that look may have taken), its time, how long and how
/// often to look while someone else holds it, and this caller's registration as a waiter
/// with the pause it takes if the look finds the lease busy (taken before the look, so a
/// notification sent meanwhile ends the pause).
struct Taking {
    lease: Lease,
    time: Duration,
    deadline: Instant,
    attempt: u32,
    waiter: Waiter,
    pause: Option<Pause>,
}

impl Taking {
    /// Ready for the next look: armed, with its pause taken.
    fn arm(&mut self) {
        self.lease.arm();
        self.pause = Some(self.waiter.pause(poll_delay(self.attempt)));
    }
}

/// Where a call stands; every variant that waits on a backend operation names it (see
/// [`Call::request`]).
enum State<R, T> {
    /// Not started, `forced_update`: compute at once.
    Forced,
    /// Not started, or waiting for the first read.
    Reading { mark: Mark },
    /// Stale: taking the refresh lease (armed), for `time`.
    RefreshLease {
        stale: T,
        leader: Leader,
        lease: Lease,
        time: Duration,
    },
    /// Stale, holding the refresh guards: the read that checks nobody refreshed meanwhile.
    RefreshCheck { stale: T, guards: Guards },
    /// Stale and refreshed meanwhile: releasing the refresh lease.
    RefreshDropped { stale: T, lease: Lease },
    /// Stale: the refresh may run (see [`Step::Refresh`]).
    RefreshReady { stale: T, guards: Guards },
    /// Waiting for the flight's leader.
    Following { mark: Mark },
    /// Reading again after a flight stored the key.
    Rereading { mark: Mark },
    /// The leader looking for the value and taking the lease.
    Leasing { leader: Leader, lease: Taking },
    /// Another process holds the lease: pausing before the next look.
    LeaseSleeping { leader: Leader, lease: Taking },
    /// Running the function.
    Computing { guards: Guards },
    /// Storing the result (and releasing the lease in the same operation, if held).
    Storing {
        result: R,
        sealed: (Bytes, Ttl),
        outcome: Outcome,
        guards: Guards,
    },
    /// Releasing the lease of a result not stored.
    Releasing {
        result: R,
        outcome: Outcome,
        leader: Option<Leader>,
        lease: Lease,
    },
    /// Done, or moved to the background.
    Over,
}

/// One cached call in progress (see the module docs).
pub(crate) struct Call<'a, R, P: Policy<R>, C> {
    plan: Plan<'a>,
    policy: P,
    /// A sync caller (for the flight: see [`Follower::wait_blocking`]; and the lease).
    blocking: bool,
    state: State<R, P::Stored>,
    codec: PhantomData<fn() -> C>,
}

/// How long one caller may refresh a stale value before another may try.
const STALE_REFRESH_LEASE: Duration = Duration::from_secs(30);

impl<'a, R, P: Policy<R>, C: Codec> Call<'a, R, P, C> {
    /// A call for `plan` (`blocking`: a sync caller); its first step is [`Input::Start`].
    pub(crate) fn new(plan: Plan<'a>, policy: P, blocking: bool) -> Self {
        let state = match plan.opening() {
            Some(mark) => State::Reading { mark },
            None => State::Forced,
        };
        Self::in_state(plan, policy, blocking, state)
    }

    /// A call whose driver performed the first read itself, `read`, with the flights'
    /// `mark` taken from [`Plan::opening`] just before: a fresh hit is the result at once,
    /// before any call state exists (so a hit costs no more than its lookup); anything else
    /// is the call at its next step.
    #[inline]
    pub(crate) fn open(
        plan: Plan<'a>,
        policy: P,
        blocking: bool,
        mark: Mark,
        read: Result<Option<Bytes>>,
    ) -> Opened<Self, R> {
        match plan.lookup::<C, P::Stored>(read) {
            Lookup::Fresh(value, fill) => {
                let result = policy.restore(value);
                plan.keep(&policy, &result, fill);
                Opened::Done(result)
            }
            lookup => {
                let mut call = Self::in_state(plan, policy, blocking, State::Over);
                let step = call.looked_up(lookup, mark);
                Opened::Running(call, step)
            }
        }
    }

    #[inline]
    fn in_state(plan: Plan<'a>, policy: P, blocking: bool, state: State<R, P::Stored>) -> Self {
        Self {
            plan,
            policy,
            blocking,
            state,
            codec: PhantomData,
        }
    }

    /// A stale value's refresh moved to another task: it starts at [`Step::Compute`].
    pub(crate) fn refreshing(plan: Plan<'a>, policy: P, guards: Guards) -> Self {
        Self::in_state(plan, policy, false, State::Computing { guards })
    }

    pub(crate) fn plan(&self) -> &Plan<'a> {
        &self.plan
    }

    pub(crate) fn policy(&self) -> &P {
        &self.policy
    }

    /// The stale value to return and the guards of its refresh, which another task takes
    /// over (after [`Step::Refresh`]; the call is over).
    pub(crate) fn detach_refresh(&mut self) -> Option<(R, Guards)> {
        match mem::replace(&mut self.state, State::Over) {
            State::RefreshReady { stale, guards } => Some((self.policy.restore(stale), guards)),
            other => {
                self.state = other;
                None
            }
        }
    }

    /// The backend operation to perform after [`Step::Io`].
    pub(crate) fn request(&self) -> Request<'_> {
        let key = self.plan.key.as_str();
        match &self.state {
            State::Reading { .. } | State::RefreshCheck { .. } | State::Rereading { .. } => {
                Request::Read(key)
            }
            State::RefreshLease { lease, time, .. } => Request::TakeLease(TakeLease {
                key: lease.key(),
                token: lease.token_bytes(),
                time: *time,
            }),
            State::Leasing { lease, .. } => Request::Acquire(AcquireLease {
                key,
                lease_key: lease.lease.key(),
                token: lease.lease.token_bytes(),
                time: lease.time,
            }),
            State::Storing {
                sealed: (value, ttl),
                guards,
                ..
            } => match &guards.lease {
                Some(lease) => Request::StoreReleasing(SetReleasing {
                    key,
                    value: value.clone(),
                    ttl: *ttl,
                    lease_key: lease.key(),
                    token: lease.token(),
                }),
                None => Request::Store(Set {
                    key,
                    value: value.clone(),
                    ttl: *ttl,
                }),
            },
            State::RefreshDropped { lease, .. } | State::Releasing { lease, .. } => {
                Request::Release(ReleaseLease {
                    key: lease.key(),
                    token: lease.token(),
                })
            }
            State::Forced
            | State::RefreshReady { .. }
            | State::Following { .. }
            | State::LeaseSleeping { .. }
            | State::Computing { .. }
            | State::Over => unreachable!("the call is not waiting on a backend operation"),
        }
    }

    /// Advances the call with what the last step produced.
    pub(crate) fn step(&mut self, input: Input<R>) -> Step<R> {
        match (mem::replace(&mut self.state, State::Over), input) {
            (State::Forced, Input::Start) => self.compute(Guards::none()),
            (state @ State::Reading { .. }, Input::Start) => self.wait_on(state),
            (State::Reading { mark }, Input::Read(read)) => {
                let lookup = self.plan.lookup::<C, P::Stored>(read);
                self.looked_up(lookup, mark)
            }
            (
                State::RefreshLease {
                    stale,
                    leader,
                    lease,
                    ..
                },
                Input::Lease(taken),
            ) => {
                let lease = match self.plan.lease_attempt(taken) {
                    Attempt::Held => Some(lease),
                    Attempt::Failed => {
                        lease.settle();
                        None
                    }
                    // Another process refreshes it.
                    Attempt::Busy => {
                        lease.settle();
                        return Step::Done(self.policy.restore(stale));
                    }
                };
                let guards = Guards {
                    leader: Some(leader),
                    lease,
                };
                self.check_refresh(stale, guards)
            }
            (State::RefreshCheck { stale, guards }, Input::Read(read)) => {
                if !self.plan.refreshed_meanwhile(read) {
                    return self.wait_on(State::RefreshReady { stale, guards });
                }
                match self.plan.to_release(guards.lease) {
                    Some(lease) => self.wait_on(State::RefreshDropped { stale, lease }),
                    None => Step::Done(self.policy.restore(stale)),
                }
            }
            (State::RefreshDropped { stale, lease }, Input::Released(release)) => {
                self.plan.released(release, lease);
                Step::Done(self.policy.restore(stale))
            }
            (State::RefreshReady { guards, .. }, Input::InLine) => self.compute(guards),
            (State::Following { mark }, Input::Woke(outcome)) => match outcome {
                None => self.compute(Guards::none()),
                Some(outcome) => self.followed(outcome, mark),
            },
            (State::Rereading { mark }, Input::Read(read)) => {
                match self.plan.lookup::<C, P::Stored>(read) {
                    Lookup::Fresh(value, fill) => {
                        let result = self.policy.restore(value);
                        self.plan.keep(&self.policy, &result, fill);
                        Step::Done(result)
                    }
                    Lookup::Stale(value) => Step::Done(self.policy.restore(value)),
                    Lookup::Miss => self.join(mark),
                }
            }
            (State::Leasing { leader, mut lease }, Input::Acquired(acquired)) => {
                self.plan.outage.note(&acquired);
                match acquired {
                    // Stored by another process; this look took no lease.
                    Ok(Acquired::Value(bytes)) => {
                        lease.lease.settle();
                        match self.plan.filled::<C, P::Stored>(&bytes) {
                            Some(value) => {
                                leader.finish(Outcome::Stored(bytes));
                                Step::Done(self.policy.restore(value))
                            }
                            None => self.compute_leading(leader),
                        }
                    }
                    Ok(Acquired::Taken) => {
                        self.plan.counters.took_lease(lease.attempt);
                        self.compute(Guards {
                            leader: Some(leader),
                            lease: Some(lease.lease),
                        })
                    }
                    Ok(Acquired::Busy) if Instant::now() >= lease.deadline => {
                        lease.lease.settle();
                        self.plan.counters.lease_busy(lease.attempt);
                        self.plan.counters.lease_takeover();
                        self.compute_leading(leader)
                    }
                    Ok(Acquired::Busy) => {
                        lease.lease.disarm();
                        self.plan.counters.lease_busy(lease.attempt);
                        let pause = lease.pause.take().expect("a look takes its pause first");
                        self.state = State::LeaseSleeping { leader, lease };
                        Step::Pause(pause)
                    }
                    // After a failure the lease, if it was taken, expires on its own.
                    Err(error) => {
                        tracing::warn!(function = self.plan.label, error = %format_args!("{error:#}"), "cannot take the lease; computing without it");
                        lease.lease.settle();
                        self.compute_leading(leader)
                    }
                }
            }
            (State::LeaseSleeping { leader, mut lease }, Input::Slept) => {
                lease.attempt += 1;
                lease.arm();
                self.wait_on(State::Leasing { leader, lease })
            }
            (State::Computing { guards }, Input::Computed { result, took }) => {
                let sealed = self.plan.seal::<C, R, P>(&self.policy, &result, took);
                let outcome = match &sealed {
                    Some((bytes, _)) => Outcome::Stored(bytes.clone()),
                    None => Outcome::NotStored(self.policy.share(&result)),
                };
                match sealed {
                    Some(sealed) if self.plan.may_store() => self.wait_on(State::Storing {
                        result,
                        sealed,
                        outcome,
                        guards,
                    }),
                    _ => self.release(result, outcome, guards),
                }
            }
            (
                State::Storing {
                    result,
                    sealed,
                    outcome,
                    guards,
                },
                Input::Stored(write),
            ) => {
                let ok = write.is_ok();
                self.plan.stored(write);
                self.plan.near_stored(&self.policy, &result, &sealed, ok);
                // Released with the store (or, after an outage, left to expire).
                if let Some(lease) = guards.lease {
                    lease.settle();
                    self.plan.wake_waiters();
                }
                finish(result, outcome, guards.leader)
            }
            (
                State::Releasing {
                    result,
                    outcome,
                    leader,
                    lease,
                },
                Input::Released(release),
            ) => {
                self.plan.released(release, lease);
                self.plan.wake_waiters();
                finish(result, outcome, leader)
            }
            (_, _) => unreachable!("a call stepped with an input its state does not expect"),
        }
    }

    /// What the first read found, read after `mark`.
    fn looked_up(&mut self, lookup: Lookup<P::Stored>, mark: Mark) -> Step<R> {
        match lookup {
            Lookup::Fresh(value, fill) => {
                let result = self.policy.restore(value);
                self.plan.keep(&self.policy, &result, fill);
                Step::Done(result)
            }
            Lookup::Stale(stale) => self.refresh(stale),
            Lookup::Miss => self.join(mark),
        }
    }

    /// Enters `state`, which waits on the backend operation it names.
    fn wait_on(&mut self, state: State<R, P::Stored>) -> Step<R> {
        let refresh = matches!(state, State::RefreshReady { .. });
        self.state = state;
        if refresh { Step::Refresh } else { Step::Io }
    }

    fn compute(&mut self, guards: Guards) -> Step<R> {
        self.state = State::Computing { guards };
        Step::Compute
    }

    fn compute_leading(&mut self, leader: Leader) -> Step<R> {
        self.compute(Guards {
            leader: Some(leader),
            lease: None,
        })
    }

    /// A stale value: returned, while this caller refreshes it if it is the one to.
    fn refresh(&mut self, stale: P::Stored) -> Step<R> {
        let cache = self.plan.cache;
        let flights = &cache.inner.flights;
        let Some(leader) = flights.try_lead(&self.plan.key, self.blocking) else {
            return Step::Done(self.policy.restore(stale));
        };
        match self.plan.refresh_lease_time() {
            Some(time) => {
                let lease = self.plan.lease(self.blocking);
                self.wait_on(State::RefreshLease {
                    stale,
                    leader,
                    lease,
                    time,
                })
            }
            None => self.check_refresh(
                stale,
                Guards {
                    leader: Some(leader),
                    lease: None,
                },
            ),
        }
    }

    fn check_refresh(&mut self, stale: P::Stored, guards: Guards) -> Step<R> {
        if self.plan.outage.seen() {
            self.wait_on(State::RefreshReady { stale, guards })
        } else {
            self.wait_on(State::RefreshCheck { stale, guards })
        }
    }

    /// Joins the key's flight after a miss.
    fn join(&mut self, mut mark: Mark) -> Step<R> {
        let cache = self.plan.cache;
        let flights = &cache.inner.flights;
        loop {
            match flights.join(&self.plan.key, mark, self.blocking) {
                Role::Leader(leader) => return self.lead(leader),
                Role::Follower(follower) => {
                    self.state = State::Following { mark };
                    return Step::Wait(follower);
                }
                Role::Reread => {
                    mark = flights.mark();
                    if !self.plan.outage.seen() {
                        return self.wait_on(State::Rereading { mark });
                    }
                }
            }
        }
    }

    /// What a follower does once its flight ended.
    fn followed(&mut self, outcome: Outcome, mark: Mark) -> Step<R> {
        match outcome {
            Outcome::Stored(bytes) => match self.plan.decode_shared::<C, P::Stored>(&bytes) {
                Some(value) => Step::Done(self.policy.restore(value)),
                None => self.compute(Guards::none()),
            },
            // The leader's failure, shared: the function ran once for all of them.
            Outcome::NotStored(Some(shared)) => match self.policy.unshare(&shared) {
                Some(result) => Step::Done(result),
                None => self.join(mark),
            },
            // Not shareable: rejoin, so one waiter at a time takes over (never all at once).
            Outcome::NotStored(None) | Outcome::Abandoned => self.join(mark),
        }
    }

    /// The flight's leader: takes the lease if one is configured, then computes.
    fn lead(&mut self, leader: Leader) -> Step<R> {
        match self.plan.lease_time().filter(|_| !self.plan.outage.seen()) {
            Some(time) => {
                let lease = self.plan.taking(time, self.blocking);
                self.wait_on(State::Leasing { leader, lease })
            }
            None => self.compute_leading(leader),
        }
    }

    /// A result not stored: releases the lease, then finishes the flight.
    fn release(&mut self, result: R, outcome: Outcome, guards: Guards) -> Step<R> {
        match self.plan.to_release(guards.lease) {
            Some(lease) => self.wait_on(State::Releasing {
                result,
                outcome,
                leader: guards.leader,
                lease,
            }),
            None => finish(result, outcome, guards.leader),
        }
    }
}

fn finish<R>(result: R, outcome: Outcome, leader: Option<Leader>) -> Step<R> {
    if let Some(leader) = leader {
        leader.finish(outcome);
    }
    Step::Done(result)
}

/// What a read found.
enum Lookup<T> {
    /// A value to return, and what keeping it in the near cache costs.
    Fresh(T, Fill),
    /// A value to return while one caller refreshes it.
    Stale(T),
    /// Nothing usable, or a value to recompute early.
    Miss,
}

/// What one attempt to take a lease gave.
enum Attempt {
    /// Taken: this caller holds it.
    Held,
    /// Another caller holds it.
    Busy,
    /// The backend failed: go on without a lease.
    Failed,
}

impl<'a> Plan<'a> {
    /// A plan for the direct API, or `None` (a bypass, counted) when `options.unless` is set.
    pub(crate) fn direct(cache: &'a Cache, key: &str, options: &'a Options) -> Option<Self> {
        let counters = cache.counters();
        if options.unless {
            counters.bypass();
            return None;
        }
        Some(Plan {
            cache,
            key: cache.full_key(key),
            options,
            counters,
            label: "get_or_set_with",
            outage: Outage::default(),
            near: None,
        })
    }

    /// How a call opens: with a read of its key, the flights' mark taken just before it
    /// (see [`Flights::join`](crate::flight::Flights::join)), or `None` for
    /// `forced_update`, which computes at once.
    #[inline]
    pub(crate) fn opening(&self) -> Option<Mark> {
        (!self.options.forced_update).then(|| self.cache.inner.flights.mark())
    }

    /// The path of this call's backend operations.
    #[inline]
    pub(crate) fn gateway(&self) -> Gateway<'a> {
        self.cache.gateway_for(self.counters)
    }

    fn ttl(&self) -> Ttl {
        self.options
            .timeout
            .map_or(self.cache.inner.default_ttl, ttl_of)
    }

    fn lease_time(&self) -> Option<Duration> {
        self.options.stampede.lease_time()
    }

    /// A lease on this call's key (held by a sync caller when `blocking`), armed: the
    /// command that takes it is the next request.
    fn lease(&self, blocking: bool) -> Lease {
        let entry = near_key(&self.key);
        Lease::new(
            self.cache,
            lease_key(&self.key),
            entry,
            lease_token(),
            blocking,
        )
    }

    /// A miss's lease about to be taken for `time`, armed, with this caller registered as a
    /// waiter on the key: its acquiring look is the next request.
    fn taking(&self, time: Duration, blocking: bool) -> Taking {
        let waiter = Waiters::global().register(near_key(&self.key));
        let mut taking = Taking {
            lease: self.lease(blocking),
            time,
            deadline: Instant::now() + wait_limit(time),
            attempt: 0,
            waiter,
            pause: None,
        };
        taking.arm();
        taking
    }

    /// This call stored its value under the lease, or gave the lease up: callers of this
    /// process waiting on the lease look again now.
    fn wake_waiters(&self) {
        Waiters::global().notify(&[near_key(&self.key)]);
    }

    /// Classifies a read (hits and misses counted; errors logged and treated as misses).
    fn lookup<C: Codec, T: DeserializeOwned>(&self, read: Result<Option<Bytes>>) -> Lookup<T> {
        self.outage.note(&read);
        let bytes = match read {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::warn!(function = self.label, error = %format_args!("{error:#}"), "cache read failed; running the function");
                self.counters.miss();
                self.counters.fail_open();
                return Lookup::Miss;
            }
        };
        let weight = bytes.as_ref().map_or(0, Bytes::len);
        let Some((value, meta)) = open_counted::<C, T>(self.counters, self.label, bytes) else {
            return Lookup::Miss;
        };
        let Some(soft) = meta.soft_expiry else {
            // No clock read on the common path: only early refresh and serve-stale need it.
            return Lookup::Fresh(
                value,
                Fill {
                    weight,
                    limit: None,
                },
            );
        };
        let now = SystemTime::now();
        match self.options.stampede.freshness(&meta, now) {
            Freshness::Fresh => {
                let limit = Some(soft.duration_since(now).unwrap_or_default());
                Lookup::Fresh(value, Fill { weight, limit })
            }
            Freshness::Stale => {
                self.counters.stale_hit();
                Lookup::Stale(value)
            }
            Freshness::Early => {
                self.counters.early_refresh();
                Lookup::Miss
            }
        }
    }

    /// The sealed bytes and backend TTL to store for `result`, if the policy stores it.
    fn seal<C: Codec, R, P: Policy<R>>(
        &self,
        policy: &P,
        result: &R,
        compute_time: Duration,
    ) -> Option<(Bytes, Ttl)> {
        self.counters.computed(compute_time);
        let stored = policy.storable(result, self.options.cache_none)?;
        let (ttl, meta) =
            self.options
                .stampede
                .store_plan(self.ttl(), compute_time, SystemTime::now());
        match envelope::seal::<C, P::Stored>(stored, meta) {
            Ok(bytes) => {
                self.counters.sealed(bytes.len());
                Some((bytes, ttl))
            }
            Err(error) => {
                tracing::warn!(function = self.label, error = %format_args!("{error:#}"), "cannot encode the result; not cached");
                self.counters.error();
                None
            }
        }
    }

    /// False, logged and counted as an error, when this call met an outage: its store is
    /// skipped.
    fn may_store(&self) -> bool {
        if !self.outage.seen() {
            return true;
        }
        tracing::debug!(
            function = self.label,
            "cache unreachable during this call; result returned unstored"
        );
        self.counters.error();
        false
    }

    fn stored(&self, write: Result<()>) {
        if let Err(error) = write {
            tracing::warn!(function = self.label, error = %format_args!("{error:#}"), "cache write failed; result returned uncached");
        }
    }

    /// Keeps a fresh result of this call in the near cache, if it plans to.
    #[inline]
    fn keep<R, P: Policy<R>>(&self, policy: &P, result: &R, fill: Fill) {
        if let Some(near) = &self.near {
            self.keep_near(near, policy, result, fill);
        }
    }

    /// A value read from the backend may have been stored long ago, and a `GET` does not say
    /// how long its entry has left: the near copy lives at most the function's timeout from
    /// now (and its local timeout, and a soft expiry's fresh period), so that a value is
    /// never served past its timeout by more than the local timeout.
    fn keep_near<R, P: Policy<R>>(&self, near: &NearPlan, policy: &P, result: &R, fill: Fill) {
        if let (Some(tier), Some(value)) = (self.cache.near(), policy.near_value(result)) {
            tier.keep(near, value, fill.capped(self.ttl()));
        }
    }

    /// After this call's store: its near entry replaced by the stored result (when it
    /// plans to keep it) or forgotten, and the change announced when the store succeeded.
    fn near_stored<R, P: Policy<R>>(
        &self,
        policy: &P,
        result: &R,
        sealed: &(Bytes, Ttl),
        ok: bool,
    ) {
        let Some(tier) = self.cache.near() else {
            return;
        };
        let key = self
            .near
            .as_ref()
            .map_or_else(|| near_key(&self.key), |near| near.key);
        let kept = match (&self.near, policy.near_value(result)) {
            (Some(near), Some(value)) if ok => {
                let (bytes, ttl) = sealed;
                let soft = envelope::peek_meta(bytes).and_then(|meta| meta.soft_expiry);
                let fresh =
                    soft.map(|soft| soft.duration_since(SystemTime::now()).unwrap_or_default());
                let fill = Fill {
                    weight: bytes.len(),
                    limit: *ttl,
                };
                tier.keep_stored(near, value, fill.capped(fresh));
                true
            }
            _ => false,
        };
        if !kept {
            tier.forget(&[key]);
        }
        if ok {
            tier.announce(Change::Keys(vec![key]));
        }
    }

    /// A flight's stored value, decoded for a follower.
    fn decode_shared<C: Codec, T: DeserializeOwned>(&self, bytes: &[u8]) -> Option<T> {
        match envelope::open::<C, T>(bytes) {
            Ok((value, _)) => Some(value),
            Err(error) => {
                tracing::warn!(function = self.label, error = %format_args!("{error:#}"), "shared result did not decode");
                None
            }
        }
    }

    /// The lease to try for a stale value's refresh: the configured one, or 30 s on a
    /// shared backend (so one process refreshes), or none in process.
    fn refresh_lease_time(&self) -> Option<Duration> {
        self.lease_time().or_else(|| {
            self.cache
                .inner
                .capabilities
                .shared
                .then_some(STALE_REFRESH_LEASE)
        })
    }

    /// What one `SET NX` on the lease key gave (a failure is logged).
    fn lease_attempt(&self, taken: Result<bool>) -> Attempt {
        self.outage.note(&taken);
        match taken {
            Ok(true) => Attempt::Held,
            Ok(false) => Attempt::Busy,
            Err(error) => {
                tracing::warn!(function = self.label, error = %format_args!("{error:#}"), "cannot take the lease; computing without it");
                Attempt::Failed
            }
        }
    }

    fn released(&self, release: Result<bool>, lease: Lease) {
        if let Err(error) = release {
            tracing::debug!(function = self.label, error = %format_args!("{error:#}"), "lease not released; it will expire");
        }
        lease.settle();
    }

    /// Settles `lease` without a release when this call met an outage (it expires on its
    /// own); otherwise hands it back to be released.
    fn to_release(&self, lease: Option<Lease>) -> Option<Lease> {
        let lease = lease?;
        if self.outage.seen() {
            lease.settle();
            return None;
        }
        Some(lease)
    }

    /// True when a re-read shows that another caller refreshed the value after this one
    /// read it stale (checked once this caller holds the refresh guards, so a refresh that
    /// finished a moment ago is not repeated).
    fn refreshed_meanwhile(&self, read: Result<Option<Bytes>>) -> bool {
        self.outage.note(&read);
        let Ok(Some(bytes)) = read else { return false };
        envelope::peek_meta(&bytes)
            .and_then(|meta| meta.soft_expiry)
            .is_some_and(|expiry| expiry > SystemTime::now())
    }

    /// A value another caller stored while this one took or waited on the lease (a hit).
    fn filled<C: Codec, T: DeserializeOwned>(&self, bytes: &[u8]) -> Option<T> {
        let (value, _) = envelope::open::<C, T>(bytes).ok()?;
        self.counters.hit();
        Some(value)
    }
}

/// How long a caller waits on someone else's lease before computing itself: twice the
/// lease, so a holder that died is replaced (its lease expires) before waiters give up.
fn wait_limit(lease: Duration) -> Duration {
    lease * 2
}

#[cfg(test)]
mod tests;
