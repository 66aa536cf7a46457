//! The `metrics` handles of one function and cache, registered once and reused, so an
//! event costs an increment, not a look-up of its name and labels in the recorder.

use metrics::{Counter, Histogram, Key, KeyName, Label as MetricLabel, Metadata, Recorder, Unit};

use super::{Event, Label, Slot};

/// Where the handles were registered from.
static METADATA: Metadata<'static> =
    Metadata::new("cache_core", metrics::Level::INFO, Some(module_path!()));

/// The `cache` label of a call made with no cache installed.
const NO_CACHE: &str = "(none)";
/// The `function` label of the [`Cache`](crate::Cache) methods.
const DIRECT: &str = "(direct)";

/// One function's handles in one cache (or a cache's own, for its methods).
pub(crate) struct Calls {
    /// The recorder they were registered with (its address).
    recorder: usize,
    /// The cache they count in (the address of its slot; 0 for none).
    cache: usize,
    counters: [Counter; Event::COUNT],
    pub(super) compute: Histogram,
    pub(super) size: Histogram,
}

impl std::fmt::Debug for Calls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Calls").finish_non_exhaustive()
    }
}

impl Calls {
    pub(super) fn counter(&self, event: Event) -> &Counter {
        &self.counters[event as usize]
    }

    fn register(recorder: &dyn Recorder, id: usize, cache: usize, labels: [&str; 2]) -> Self {
        let key = |name: &'static str| {
            let labels = vec![
                MetricLabel::new("cache", labels[0].to_owned()),
                MetricLabel::new("function", labels[1].to_owned()),
            ];
            Key::from_parts(name, labels)
        };
        describe(recorder);
        Self {
            recorder: id,
            cache,
            counters: EVENTS
                .map(|event| recorder.register_counter(&key(event.metric()), &METADATA)),
            compute: recorder.register_histogram(&key("cache_compute_seconds"), &METADATA),
            size: recorder.register_histogram(&key("cache_value_bytes"), &METADATA),
        }
    }
}

/// Every event, in counter order.
const EVENTS: [Event; Event::COUNT] = [
    Event::Hit,
    Event::Miss,
    Event::StaleHit,
    Event::EarlyRefresh,
    Event::Store,
    Event::Error,
    Event::FailOpen,
    Event::Bypass,
    Event::LeaseWait,
    Event::TakeOver,
    Event::Delete,
    Event::NearHit,
];

/// The current recorder's address: what a handle registered with it remembers.
#[inline]
pub(super) fn recorder_id() -> usize {
    metrics::with_recorder(|recorder| std::ptr::from_ref(recorder).cast::<()>().addr())
}

/// Runs `f` with the handles of `owner` (a function's slot, or a cache's) counting in
/// `cache`: the ones registered on first use, or fresh ones when the recorder or the cache
/// differ from that first use.
#[inline]
pub(super) fn with_calls<R>(owner: &Slot, cache: Option<&Slot>, f: impl FnOnce(&Calls) -> R) -> R {
    let recorder = recorder_id();
    let cache_id = cache.map_or(0, |slot| std::ptr::from_ref(slot).addr());
    let register =
        || metrics::with_recorder(|r| Calls::register(r, recorder, cache_id, labels(owner, cache)));
    let calls = owner.handles.get_or_init(register);
    if calls.recorder == recorder && calls.cache == cache_id {
        f(calls)
    } else {
        f(&register())
    }
}

/// The `cache` and `function` labels of `owner`'s events in `cache`.
fn labels<'a>(owner: &'a Slot, cache: Option<&'a Slot>) -> [&'a str; 2] {
    let name = |slot: &'a Slot| match &slot.label {
        Label::Unnamed => "",
        Label::Cache(name) => name,
        Label::Function(path) => path,
    };
    let function = match owner.label {
        Label::Function(path) => path,
        _ => DIRECT,
    };
    [cache.map_or(NO_CACHE, name), function]
}

/// Tells the recorder what each metric means (once per registration; recorders keep the
/// first).
fn describe(recorder: &dyn Recorder) {
    for (event, text) in EVENTS.iter().zip(DESCRIPTIONS) {
        recorder.describe_counter(
            KeyName::from_const_str(event.metric()),
            Some(Unit::Count),
            metrics::SharedString::const_str(text),
        );
    }
    recorder.describe_histogram(
        KeyName::from_const_str("cache_compute_seconds"),
        Some(Unit::Seconds),
        metrics::SharedString::const_str("Time the function's body took on a miss."),
    );
    recorder.describe_histogram(
        KeyName::from_const_str("cache_value_bytes"),
        Some(Unit::Bytes),
        metrics::SharedString::const_str("Size of each value stored, envelope included."),
    );
}

/// The description of each event's counter, in counter order.
const DESCRIPTIONS: [&str; Event::COUNT] = [
    "Reads that found a usable value (stale hits included).",
    "Reads that found nothing usable.",
    "Hits served stale while one caller refreshes.",
    "Hits recomputed early (early refresh).",
    "Values written.",
    "Backend failures and undecodable values.",
    "Calls whose read failed, so the function ran without the cache.",
    "Calls that skipped the cache.",
    "Calls that waited on another caller's lease.",
    "Waiters that computed themselves (expired lease, or waited too long).",
    "Entries removed.",
    "Hits served from the near cache, without the backend (also counted as hits).",
];
