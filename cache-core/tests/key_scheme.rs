//! Property tests of the key scheme as a whole: namespaces, direct keys, `#[cached]` and
//! `#[memoize]` sites, built through `cache_core::__private` exactly as expansions build
//! them, on one shared in-memory backend.
//!
//! Every write is identified by what it means: (namespace, kind, name, arguments). Two
//! writes with different meanings must get different keys, and forgetting (one call, one
//! function, one namespace) must remove exactly the writes that mean it.

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use cache_core::__private::{self as p, Kind, Site};
use cache_core::Cache;
use cache_core::backend::BlockingBackend;
use cache_core::backend::memory::MemoryBackend;
use proptest::prelude::*;

/// How an entry is named.
#[derive(Debug, Clone)]
enum Name {
    /// `key_prefix = ".."`.
    Prefix(String),
    /// No `key_prefix`: the function's path (`a::b`).
    Path(String),
}

/// One write: a direct `cache.set(key, ..)`, or a call of an annotated function.
#[derive(Debug, Clone)]
enum Writer {
    Direct {
        ns: String,
        key: String,
    },
    Function {
        ns: String,
        kind: Kind,
        name: Name,
        args: Vec<String>,
    },
}

/// What a write means. `#[cached(key_prefix = "p")]` means the direct key `p`, on purpose
/// (`cache.delete("homepage")` forgets `#[cached(key_prefix = "homepage")]`).
type Meaning = (String, &'static str, String, Vec<String>);

impl Writer {
    fn ns(&self) -> String {
        let (Self::Direct { ns, .. } | Self::Function { ns, .. }) = self;
        cache_core::key::namespace(ns)
    }

    fn meaning(&self) -> Meaning {
        let ns = self.ns();
        match self {
            Self::Direct { key, .. } => (ns, "entry", key.clone(), vec![]),
            Self::Function {
                kind, name, args, ..
            } => match (kind, name) {
                (Kind::Cached, Name::Prefix(p)) => (ns, "entry", p.clone(), vec![]),
                (Kind::Cached, Name::Path(path)) => (ns, "cached", path.clone(), vec![]),
                (Kind::Memoize, Name::Prefix(p)) => (ns, "memoize prefix", p.clone(), args.clone()),
                (Kind::Memoize, Name::Path(path)) => {
                    (ns, "memoize path", path.clone(), args.clone())
                }
            },
        }
    }

    /// The function a write belongs to: its meaning without the arguments.
    fn function(&self) -> Meaning {
        let (ns, kind, name, _) = self.meaning();
        (ns, kind, name, vec![])
    }

    fn cache(&self, backend: &Arc<MemoryBackend>) -> Cache {
        let (Self::Direct { ns, .. } | Self::Function { ns, .. }) = self;
        Cache::builder()
            .shared_backend(backend.clone())
            .namespace(ns.clone())
            .build()
            .unwrap()
    }

    fn site(&self) -> Option<&'static Site> {
        let Self::Function { kind, name, .. } = self else {
            return None;
        };
        let leak = |s: &str| -> &'static str { Box::leak(s.to_owned().into_boxed_str()) };
        let site = match name {
            Name::Prefix(prefix) => Site::new(*kind, "x::f", Some(leak(prefix))),
            Name::Path(path) => Site::new(*kind, leak(path), None),
        };
        Some(Box::leak(Box::new(site)))
    }

    /// The key without the namespace, as the expansion's key function builds it.
    fn logical(&self, site: &Site) -> String {
        let Self::Function { kind, args, .. } = self else {
            unreachable!("only functions have sites")
        };
        let mut key = site.key("");
        if *kind == Kind::Memoize {
            for arg in args {
                key.arg(arg.as_str()).unwrap();
            }
        }
        key.finish()
    }

    /// The key the backend sees.
    fn full_key(&self, backend: &Arc<MemoryBackend>) -> String {
        let cache = self.cache(backend);
        match self {
            Self::Direct { key, .. } => cache.full_key(key),
            Self::Function { .. } => {
                let logical = self.logical(self.site().unwrap());
                format!("{}{logical}", cache.namespace())
            }
        }
    }
}

/// Texts that look like each other, like each other's escapes, or like function keys.
const LOOK_ALIKES: [&str; 11] = [
    "",
    "a",
    "ab",
    "a.b",
    "a:b",
    "a%3Ab",
    "a:b:~lease",
    "memoize",
    "memoize:a.b",
    "cached:a.b",
    "{a}",
];

fn writer() -> impl Strategy<Value = Writer> {
    let ns = prop_oneof![
        prop::sample::select(&["", "a", "a:", "ab"][..]).prop_map(str::to_owned),
        "[ab:]{0,3}"
    ];
    // Small alphabets, so that prefixes of one another and look-alikes are common.
    let text = || {
        prop_oneof![
            prop::sample::select(&LOOK_ALIKES[..]).prop_map(str::to_owned),
            "[ab:.]{0,3}",
            "(memoize|cached)(:[ab.]{0,2})?",
            "[ab{}*%]{1,2}",
        ]
    };
    let name = prop_oneof![
        text().prop_map(Name::Prefix),
        prop::sample::select(&["a::b", "a::b::a"][..]).prop_map(|p| Name::Path(p.to_owned())),
        "[ab](::[ab]){1,2}".prop_map(Name::Path),
    ];
    let kind = prop_oneof![Just(Kind::Cached), Just(Kind::Memoize)];
    let args = proptest::collection::vec(prop_oneof!["[ab:.]{0,2}", Just("b".to_owned())], 0..3);
    prop_oneof![
        (ns.clone(), text()).prop_map(|(ns, key)| Writer::Direct { ns, key }),
        (ns, kind, name, args).prop_map(|(ns, kind, name, args)| Writer::Function {
            ns,
            kind,
            name,
            args: if kind == Kind::Cached { vec![] } else { args },
        }),
    ]
}

/// Writes every writer's key on one backend, forgets with `forget`, and returns which
/// writers' keys are left.
fn left_after(writers: &[Writer], forget: impl FnOnce(&Arc<MemoryBackend>)) -> Vec<bool> {
    let backend = Arc::new(MemoryBackend::new());
    let keys: Vec<_> = writers.iter().map(|w| w.full_key(&backend)).collect();
    for key in &keys {
        BlockingBackend::set(&*backend, key, Bytes::from_static(b"v"), None).unwrap();
    }
    forget(&backend);
    keys.iter()
        .map(|key| BlockingBackend::exists(&*backend, key).unwrap())
        .collect()
}

/// The same function (all arguments) has one arity: drop writers that break this.
fn one_arity(writers: Vec<Writer>) -> Vec<Writer> {
    let mut arity = std::collections::BTreeMap::new();
    writers
        .into_iter()
        .filter(|w| {
            let n = match w {
                Writer::Function { args, .. } => args.len(),
                Writer::Direct { .. } => 0,
            };
            *arity.entry(w.function()).or_insert(n) == n
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn distinct_meanings_get_distinct_keys_without_braces(a in writer(), b in writer()) {
        let backend = Arc::new(MemoryBackend::new());
        let (ka, kb) = (a.full_key(&backend), b.full_key(&backend));
        prop_assert!(!ka.contains(['{', '}']), "{} holds a brace", ka);
        if a.meaning() != b.meaning() {
            prop_assert_ne!(ka, kb, "{:?} and {:?}", a, b);
        } else {
            prop_assert_eq!(ka, kb);
        }
    }

    #[test]
    fn invalidate_all_removes_exactly_its_functions_entries(
        writers in proptest::collection::vec(writer(), 1..8).prop_map(one_arity),
        pick in any::<prop::sample::Index>(),
    ) {
        let target = pick.get(&writers).clone();
        let Some(site) = target.site() else { return Ok(()) };
        let left = left_after(&writers, |backend| {
            p::forget_all_blocking(Some(&target.cache(backend)), site).unwrap();
        });
        for (writer, left) in writers.iter().zip(left) {
            prop_assert_eq!(left, writer.function() != target.function(), "{:?}", writer);
        }
    }

    #[test]
    fn invalidate_and_delete_remove_exactly_one_entry(
        writers in proptest::collection::vec(writer(), 1..8).prop_map(one_arity),
        pick in any::<prop::sample::Index>(),
    ) {
        let target = pick.get(&writers).clone();
        let left = left_after(&writers, |backend| {
            let cache = target.cache(backend);
            match &target {
                Writer::Direct { key, .. } => {
                    cache.blocking().delete(key).unwrap();
                }
                Writer::Function { .. } => {
                    let logical = target.logical(target.site().unwrap());
                    p::forget_blocking(Some(&cache), Ok(logical)).unwrap();
                }
            }
        });
        for (writer, left) in writers.iter().zip(left) {
            prop_assert_eq!(left, writer.meaning() != target.meaning(), "{:?}", writer);
        }
    }

    #[test]
    fn clear_of_one_namespace_keeps_every_other(
        writers in proptest::collection::vec(writer(), 1..8),
        pick in any::<prop::sample::Index>(),
    ) {
        let target = pick.get(&writers).clone();
        // The empty namespace is no namespace: its `clear()` is the whole backend's.
        prop_assume!(!target.ns().is_empty());
        let left = left_after(&writers, |backend| {
            target.cache(backend).blocking().clear().unwrap();
        });
        for (writer, left) in writers.iter().zip(left) {
            prop_assert_eq!(left, writer.ns() != target.ns(), "{:?}", writer);
        }
    }
}

/// Every combination of look-alike namespaces, names and arguments.
fn look_alikes() -> Vec<Writer> {
    let spaces = ["", "a", "a:", "ab", "a:b", "b"];
    let paths = ["a::b", "a::b::a", "ab::a"];
    let arg_lists: [&[&str]; 7] = [
        &[],
        &["b"],
        &["b", "b"],
        &["b:b"],
        &["a.b"],
        &[""],
        &["~lease"],
    ];
    let mut writers = Vec::new();
    for ns in spaces.map(str::to_owned) {
        for text in LOOK_ALIKES.map(str::to_owned) {
            writers.push(Writer::Direct {
                ns: ns.clone(),
                key: text.clone(),
            });
            writers.push(Writer::Function {
                ns: ns.clone(),
                kind: Kind::Cached,
                name: Name::Prefix(text.clone()),
                args: vec![],
            });
        }
        let names = LOOK_ALIKES
            .map(|t| Name::Prefix(t.to_owned()))
            .into_iter()
            .chain(paths.map(|p| Name::Path(p.to_owned())));
        for name in names {
            if let Name::Path(_) = name {
                writers.push(Writer::Function {
                    ns: ns.clone(),
                    kind: Kind::Cached,
                    name: name.clone(),
                    args: vec![],
                });
            }
            for args in arg_lists {
                let args = args.iter().map(|a| (*a).to_owned()).collect();
                writers.push(Writer::Function {
                    ns: ns.clone(),
                    kind: Kind::Memoize,
                    name: name.clone(),
                    args,
                });
            }
        }
    }
    writers
}

#[test]
fn look_alikes_get_distinct_keys_without_braces() {
    let backend = Arc::new(MemoryBackend::new());
    let mut seen = std::collections::HashMap::new();
    for writer in look_alikes() {
        let key = writer.full_key(&backend);
        assert!(!key.contains(['{', '}']), "{key} holds a brace");
        if let Some(other) = seen.insert(key.clone(), writer.meaning()) {
            assert_eq!(other, writer.meaning(), "{key} means two things");
        }
    }
}

#[test]
fn invalidate_all_of_a_look_alike_removes_exactly_its_entries() {
    let writers = look_alikes();
    let mut done = BTreeSet::new();
    for target in &writers {
        let Some(site) = target.site() else { continue };
        if !done.insert(target.function()) {
            continue;
        }
        let left = left_after(&writers, |backend| {
            p::forget_all_blocking(Some(&target.cache(backend)), site).unwrap();
        });
        for (writer, left) in writers.iter().zip(left) {
            let mine = writer.function() == target.function();
            assert_eq!(left, !mine, "invalidate_all of {target:?}, {writer:?}");
        }
    }
}

#[test]
fn namespaces_are_normalised_and_reserved_ones_refused() {
    let ns = |raw: &str| {
        Cache::builder()
            .namespace(raw)
            .build()
            .map(|c| c.namespace().to_owned())
    };
    assert_eq!(ns("cache:").unwrap(), "cache:");
    assert_eq!(ns("cache").unwrap(), "cache:");
    assert_eq!(ns("a").unwrap(), "a:");
    assert_eq!(ns("").unwrap(), "");
    for reserved in ["memoize", "memoize:", "cached"] {
        let err = ns(reserved).unwrap_err();
        assert!(err.is_config(), "{err}");
        assert!(err.to_string().contains("CACHE_KEY_PREFIX"), "{err}");
    }
}

#[test]
fn delete_prefix_matches_direct_keys_by_their_text() {
    let cache = Cache::memory();
    let blocking = cache.blocking();
    for key in ["user:1", "user:2", "users", "user", "memoize:app.square:4"] {
        blocking.set(key, &1u8).unwrap();
    }
    assert_eq!(blocking.delete_prefix("user:").unwrap(), 2);
    assert!(blocking.has("users").unwrap() && blocking.has("user").unwrap());
    let left: BTreeSet<_> = ["users", "user", "memoize:app.square:4"]
        .into_iter()
        .filter(|key| blocking.has(key).unwrap())
        .collect();
    assert_eq!(left.len(), 3);
    assert_eq!(blocking.delete_prefix("").unwrap(), 3);
}
