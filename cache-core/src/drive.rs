//! The two drivers of the call engine ([`crate::engine`]): [`run_blocking`] for sync
//! functions and [`run_async`] for async ones. They perform the engine's backend operations
//! through the [`Gateway`] and wait on flights, leases and the function itself, each in its
//! own way; every decision is the engine's.

use std::future::Future;
use std::marker::PhantomData;
use std::time::Instant;

use crate::cache::Cache;
use crate::codec::Codec;
use crate::engine::{Call, Guards, Input, Opened, Outage, Plan, Planner, Request, Step};
use crate::gateway::Gateway;
use crate::options::Options;
use crate::policy::Policy;
use crate::stats::{Counters, Stats};

/// Runs a cached call for a sync function.
pub(crate) fn run_blocking<R, P: Policy<R>, C: Codec, F: FnOnce() -> R>(
    plan: Plan<'_>,
    policy: P,
    body: F,
) -> R {
    let gateway = plan.gateway();
    let (mut call, mut step) = match plan.opening() {
        Some(mark) => {
            let read = gateway.read_blocking(&plan.key);
            match Call::<R, P, C>::open(plan, policy, true, mark, read) {
                Opened::Done(result) => return result,
                Opened::Running(call, step) => (call, step),
            }
        }
        None => start(Call::new(plan, policy, true)),
    };
    let mut body = Some(body);
    loop {
        let input = match step {
            Step::Done(result) => return result,
            Step::Io => perform_blocking(gateway, call.request()),
            Step::Wait(follower) => Input::Woke(follower.wait_blocking()),
            Step::Pause(pause) => {
                pause.wait_blocking();
                Input::Slept
            }
            Step::Compute => {
                let started = Instant::now();
                let result = body.take().expect("the function runs once")();
                let took = started.elapsed();
                Input::Computed { result, took }
            }
            Step::Refresh => Input::InLine,
        };
        step = call.step(input);
    }
}

/// Runs an async call through the cache, or without it when there is no plan.
///
/// Only the first read and a fresh hit happen in this future, before any call state exists;
/// everything else lives in a separate, boxed one ([`drive_async`]), so the future of a hit
/// holds little besides the read itself. (A function returning an `async` block rather than
/// an `async fn`, whose arguments would be held twice: as captured and as moved to locals.)
#[allow(clippy::manual_async_fn)]
pub(crate) fn run_async<'a, R, P: Policy<R>, C: Codec, F: Future<Output = R>>(
    plan: impl Planner + 'a,
    options: Options,
    policy: P,
    body: F,
    detach: impl Detach<R, P, C, F>,
) -> impl Future<Output = R> {
    async move {
        let Some(plan) = plan.plan(&options) else {
            return body.await;
        };
        let Some(mark) = plan.opening() else {
            let (call, step) = start(Call::<R, P, C>::new(plan, policy, false));
            return Box::pin(drive_async(call, step, body, detach)).await;
        };
        // The read spelled out (not `Gateway::read`): an in-process hit has no future, and
        // no temporary is kept across the await.
        let read = if plan.gateway().reads_in_line() {
            plan.gateway().read_in_line(&plan.key)
        } else {
            let remote = plan.gateway().read_remote(&plan.key);
            remote.await
        };
        let read = plan.gateway().count_read(read);
        let (call, step) = match Call::<R, P, C>::open(plan, policy, false, mark, read) {
            Opened::Done(result) => return result,
            Opened::Running(call, step) => (call, step),
        };
        Box::pin(drive_async(call, step, body, detach)).await
    }
}

/// Drives an async call from `step` to its end.
async fn drive_async<R, P: Policy<R>, C: Codec, F: Future<Output = R>>(
    mut call: Call<'_, R, P, C>,
    mut step: Step<R>,
    body: F,
    detach: impl Detach<R, P, C, F>,
) -> R {
    let gateway = call.plan().gateway();
    let mut body = Some(body);
    let mut detach = Some(detach);
    loop {
        let input = match step {
            Step::Done(result) => return result,
            Step::Io => perform(gateway, call.request()).await,
            Step::Wait(follower) => Input::Woke(Some(follower.wait().await)),
            Step::Pause(pause) => {
                pause.wait().await;
                Input::Slept
            }
            Step::Compute => {
                let started = Instant::now();
                let result = body.take().expect("the function runs once").await;
                let took = started.elapsed();
                Input::Computed { result, took }
            }
            Step::Refresh => {
                let detach = detach.take().expect("one refresh per call");
                match detach.detach(&mut call, body.take().expect("the function runs once")) {
                    Ok(stale) => return stale,
                    Err(inline) => {
                        body = Some(inline);
                        Input::InLine
                    }
                }
            }
        };
        step = call.step(input);
    }
}

/// A call that starts without a read (`forced_update`), at its first step.
fn start<R, P: Policy<R>, C: Codec>(mut call: Call<'_, R, P, C>) -> (Call<'_, R, P, C>, Step<R>) {
    let step = call.step(Input::Start);
    (call, step)
}

/// Performs one of the engine's requests on the blocking half.
fn perform_blocking<R>(gateway: Gateway<'_>, request: Request<'_>) -> Input<R> {
    match request {
        Request::Read(key) => Input::Read(gateway.read_blocking(key)),
        Request::TakeLease(op) => Input::Lease(gateway.perform_blocking(op)),
        Request::Acquire(op) => Input::Acquired(gateway.perform_blocking(op)),
        Request::Store(op) => Input::Stored(gateway.perform_blocking(op)),
        Request::StoreReleasing(op) => Input::Stored(gateway.perform_blocking(op)),
        Request::Release(op) => Input::Released(gateway.perform_blocking(op)),
    }
}

/// Performs one of the engine's requests on the async half.
async fn perform<R>(gateway: Gateway<'_>, request: Request<'_>) -> Input<R> {
    match request {
        Request::Read(key) => Input::Read(gateway.read(key).await),
        Request::TakeLease(op) => Input::Lease(gateway.perform(op).await),
        Request::Acquire(op) => Input::Acquired(gateway.perform(op).await),
        Request::Store(op) => Input::Stored(gateway.perform(op).await),
        Request::StoreReleasing(op) => Input::Stored(gateway.perform(op).await),
        Request::Release(op) => Input::Released(gateway.perform(op).await),
    }
}

/// Where the refresh of a stale value runs.
pub(crate) trait Detach<R, P: Policy<R>, C, F> {
    /// Moves the refresh to the background and gives the stale value, or hands `body` back
    /// to run the refresh in line.
    fn detach(self, call: &mut Call<'_, R, P, C>, body: F) -> Result<R, F>;
}

/// Refreshes in the caller's task (the body may borrow from it).
pub(crate) struct Inline;

impl<R, P: Policy<R>, C, F> Detach<R, P, C, F> for Inline {
    fn detach(self, _call: &mut Call<'_, R, P, C>, body: F) -> Result<R, F> {
        Err(body)
    }
}

/// Refreshes in a task spawned on the current tokio runtime, so the caller that won the
/// refresh is served the stale value at once like everyone else. Needs a body that owns
/// its data; without a runtime it falls back to [`Inline`].
pub(crate) struct Spawn<C> {
    pub(crate) site: Option<&'static Stats>,
    pub(crate) codec: PhantomData<fn() -> C>,
}

impl<R, P, C, F> Detach<R, P, C, F> for Spawn<C>
where
    R: Send + 'static,
    P: Policy<R> + Copy + Send + Sync + 'static,
    P::Stored: Send,
    C: Codec,
    F: Future<Output = R> + Send + 'static,
{
    fn detach(self, call: &mut Call<'_, R, P, C>, body: F) -> Result<R, F> {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Err(body);
        };
        let plan = call.plan();
        let (cache, key, options) = (plan.cache.clone(), plan.key.clone(), *plan.options);
        let (site, label) = (self.site, plan.label);
        let policy = *call.policy();
        let Some((stale, guards)) = call.detach_refresh() else {
            return Err(body);
        };
        runtime.spawn(refresh::<R, P, C, F>(
            cache, key, options, site, label, policy, guards, body,
        ));
        Ok(stale)
    }
}

/// A stale value's refresh, in its own task.
#[allow(clippy::too_many_arguments)]
async fn refresh<R, P: Policy<R>, C: Codec, F: Future<Output = R>>(
    cache: Cache,
    key: String,
    options: Options,
    site: Option<&'static Stats>,
    label: &'static str,
    policy: P,
    guards: Guards,
    body: F,
) {
    let counters = Counters {
        cache: &cache.inner.stats,
        site,
    };
    let plan = Plan {
        cache: &cache,
        key,
        options: &options,
        counters,
        label,
        outage: Outage::default(),
        near: None,
    };
    let call = Call::<R, P, C>::refreshing(plan, policy, guards);
    drop(drive_async(call, Step::Compute, body, Inline).await);
}
