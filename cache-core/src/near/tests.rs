//! The tier alone: bounds, expiry, flushes, the gate and the race guard.

use std::sync::Arc;
use std::time::Duration;

use super::{Fill, NearCache, NearValue, Tier};
use crate::backend::memory::MemoryBackend;
use crate::backplane::{Listener, near_key};

fn tier(settings: NearCache) -> Tier {
    let checked = settings.check().expect("valid settings");
    Tier::start(&checked, &MemoryBackend::new(), "cache:", true).expect("an in-process tier")
}

fn value(s: &str) -> NearValue {
    Arc::new(s.to_owned())
}

fn text(tier: &Tier, key: u128) -> Option<String> {
    tier.get(key).map(|v| v.downcast_ref::<String>().unwrap().clone())
}

const FILL: Fill = Fill {
    weight: 100,
    limit: None,
};

#[test]
fn a_kept_value_is_served_until_its_local_timeout() {
    let tier = tier(NearCache::new(Duration::from_millis(50)));
    let plan = tier.plan(1, tier.local());
    tier.keep(&plan, value("a"), FILL);
    assert_eq!(text(&tier, 1).as_deref(), Some("a"));
    std::thread::sleep(Duration::from_millis(80));
    assert_eq!(text(&tier, 1), None, "expired");
    assert_eq!(tier.len(), 0, "an expired entry is removed when met");
}

#[test]
fn the_backend_entrys_remaining_life_caps_the_local_timeout() {
    let tier = tier(NearCache::new(Duration::from_secs(60)));
    let plan = tier.plan(1, tier.local());
    let fill = Fill {
        weight: 10,
        limit: Some(Duration::from_millis(30)),
    };
    tier.keep(&plan, value("a"), fill);
    assert!(text(&tier, 1).is_some());
    std::thread::sleep(Duration::from_millis(60));
    assert_eq!(text(&tier, 1), None, "never past the entry's own expiry");
    let gone = Fill {
        weight: 10,
        limit: Some(Duration::ZERO),
    };
    tier.keep(&tier.plan(2, tier.local()), value("b"), gone);
    assert_eq!(tier.len(), 0, "an entry with no life left is not kept");
}

#[test]
fn the_entry_bound_holds() {
    let tier = tier(NearCache::new(Duration::from_secs(60)).max_entries(100));
    for key in 0..1_000u128 {
        let key = near_key(&key.to_string());
        tier.keep(&tier.plan(key, tier.local()), value("v"), FILL);
    }
    assert!(tier.len() <= 100, "{} entries", tier.len());
    assert!(tier.len() >= 50, "{} entries", tier.len());
}

#[test]
fn the_byte_bound_holds() {
    // 100 bytes of value plus 96 of the entry's own: at most 50 entries in 10,000 bytes.
    let tier = tier(NearCache::new(Duration::from_secs(60)).max_bytes(10_000));
    for key in 0..1_000u128 {
        let key = near_key(&key.to_string());
        tier.keep(&tier.plan(key, tier.local()), value("v"), FILL);
    }
    assert!(tier.len() <= 10_000 / 196, "{} entries", tier.len());
    assert!(tier.len() >= 10, "{} entries", tier.len());
}

#[test]
fn changes_and_flushes_forget_entries() {
    let tier = tier(NearCache::new(Duration::from_secs(60)));
    for key in 1..=3 {
        tier.keep(&tier.plan(key, tier.local()), value("v"), FILL);
    }
    tier.shared.changed(&[1]);
    assert_eq!((text(&tier, 1), tier.len()), (None, 2));
    tier.forget(&[2]);
    assert_eq!((text(&tier, 2), tier.len()), (None, 1));
    tier.shared.flush();
    assert_eq!(tier.len(), 0);
}

#[test]
fn a_closed_gate_serves_nothing() {
    let tier = tier(NearCache::new(Duration::from_secs(60)));
    tier.keep(&tier.plan(1, tier.local()), value("a"), FILL);
    tier.close_gate(true);
    assert_eq!(text(&tier, 1), None);
    tier.close_gate(false);
    assert_eq!(text(&tier, 1).as_deref(), Some("a"));
}

#[test]
fn a_value_read_while_its_key_changed_is_not_kept() {
    let tier = tier(NearCache::new(Duration::from_secs(60)));
    // The snapshot is taken before the backend read; the change arrives during it.
    let plan = tier.plan(7, tier.local());
    tier.shared.changed(&[7]);
    tier.keep(&plan, value("old"), FILL);
    assert_eq!(text(&tier, 7), None);
    // A flush during the read counts too.
    let plan = tier.plan(7, tier.local());
    tier.shared.flush();
    tier.keep(&plan, value("old"), FILL);
    assert_eq!(text(&tier, 7), None);
    // A change of another stripe's key does not matter.
    let plan = tier.plan(7, tier.local());
    tier.shared.changed(&[8]);
    tier.keep(&plan, value("new"), FILL);
    assert_eq!(text(&tier, 7).as_deref(), Some("new"));
}

#[test]
fn a_shared_backend_without_a_change_channel_gets_no_tier() {
    let checked = NearCache::new(Duration::from_secs(1)).check().unwrap();
    assert!(Tier::start(&checked, &MemoryBackend::new(), "cache:", false).is_none());
}

#[test]
fn bad_settings_name_the_setting_and_the_range() {
    let error = |near: NearCache| near.check().unwrap_err().to_string();
    let second = Duration::from_secs(1);
    assert!(error(NearCache::new(Duration::ZERO)).contains("near_cache.local_timeout"));
    assert!(error(NearCache::new(second).max_entries(0)).contains("near_cache.max_entries"));
    assert!(error(NearCache::new(second).max_entries(1).max_bytes(1 << 20)).contains("not both"));
    assert!(error(NearCache::new(second).max_bytes(10)).contains("at least 1024"));
    let bound = error(NearCache::new(second).staleness_bound(Duration::from_millis(1)));
    assert!(bound.contains("near_cache.staleness_bound") && bound.contains("10 ms to 1 hour"));
    assert!(NearCache::new(second).check().unwrap().fail_safe.eq(&false));
}
