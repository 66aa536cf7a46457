//! Issue 9: errors said what failed *and* why in the message, then the same cause again as
//! `source()` ("Redis refused the credentials ...: NoPerm: ..." above "NoPerm: ..."). Each
//! error now says what its layer failed to do, and the cause is only in `source()`.

mod redis_support;

use std::error::Error as _;
use std::time::Duration;

use cache_core::backend::{Backend, BlockingBackend};
use cache_core::codec::{Bincode, Codec, Json};
use cache_core::config::Config;
use cache_core::{Cache, ErrorKind};
use cache_redis::{BreakerSettings, RedisBackend};
use tests::RedisServer;

/// Walks `error`'s `source()` chain and fails if a message repeats the text of its source.
/// A wrapper that prints its inner error unchanged (as `redis::RedisError` does for a
/// server answer) repeats nothing of its own, so identical texts are allowed.
fn assert_no_repeats(error: &cache_core::Error) -> Vec<String> {
    let mut texts = vec![error.to_string()];
    let mut next = error.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        let outer = texts.last().expect("one text");
        assert!(
            outer == &text || !outer.contains(&text),
            "{outer:?} repeats its source {text:?} (kind {:?})",
            error.kind()
        );
        texts.push(text);
        next = cause.source();
    }
    // `{:#}` prints each distinct text once.
    let chain = format!("{error:#}");
    for text in &texts {
        assert_eq!(chain.matches(text.as_str()).count(), 1, "{chain}");
    }
    texts
}

fn quick(url: &str) -> RedisBackend {
    RedisBackend::builder()
        .url(url)
        .connect_timeout(Duration::from_millis(200))
        .response_timeout(Duration::from_millis(200))
        .breaker(BreakerSettings::disabled())
        .build()
        .unwrap()
}

#[tokio::test]
async fn typical_errors_say_what_failed_and_keep_the_cause_in_source_only() {
    let mut errors = Vec::new();

    // Configuration.
    errors.push(
        Config::from_vars(|name| (name == "CACHE_REDIS_DB").then(|| "-1".to_owned())).unwrap_err(),
    );
    let config = Config::from_vars(|name| {
        (name == "CACHE_REDIS_URL").then(|| "redis://localhost/?protocol=9".to_owned())
    })
    .unwrap();
    errors.push(cache_redis::from_config(&config).unwrap_err());
    errors.push(RedisBackend::builder().port(0).build().unwrap_err());

    // Authentication, permission, another error answer (a database the server lacks).
    let server = RedisServer::builder().acl_user("app", "pw").start();
    let wrong = quick(&server.url_for_user("app", "not-pw"));
    errors.push(Backend::get(&wrong, "k").await.unwrap_err());
    errors.push(BlockingBackend::get(&wrong, "k").unwrap_err());
    let _: () = redis_support::raw(
        &server,
        redis::cmd("ACL")
            .arg("SETUSER")
            .arg("noscan")
            .arg(&["on", ">pw", "~*", "&*", "+@all", "-scan"]),
    );
    let noscan = quick(&server.url_for_user("noscan", "pw"));
    errors.push(Backend::delete_prefix(&noscan, "x:").await.unwrap_err());
    errors.push(BlockingBackend::delete_prefix(&noscan, "x:").unwrap_err());
    let missing_db = quick(&server.url().replace("/0", "/1000"));
    errors.push(Backend::get(&missing_db, "k").await.unwrap_err());
    errors.push(BlockingBackend::get(&missing_db, "k").unwrap_err());

    // A refused operation.
    let unscoped = Cache::builder()
        .backend(redis_support::backend(&server))
        .namespace("")
        .build()
        .unwrap();
    errors.push(unscoped.clear().await.unwrap_err());

    // Time-outs (paused server) and connection errors (killed server).
    let mut down = RedisServer::start();
    let backend = quick(&down.url());
    Backend::set(&backend, "k", "v".into(), None).await.unwrap();
    down.pause();
    errors.push(Backend::get(&backend, "k").await.unwrap_err());
    errors.push(BlockingBackend::get(&backend, "k").unwrap_err());
    down.resume();
    down.kill();
    let fresh = quick(&down.url());
    errors.push(Backend::get(&fresh, "k").await.unwrap_err());
    errors.push(BlockingBackend::get(&fresh, "k").unwrap_err());

    // Values that do not decode: the codec's error is the source.
    errors.push(Bincode::decode::<String>(&[0xFF, 0xFF, 0xFF]).unwrap_err());
    errors.push(Json::decode::<u8>(b"not json").unwrap_err());

    let kinds: Vec<ErrorKind> = errors.iter().map(|e| e.kind()).collect();
    for kind in [
        ErrorKind::Config,
        ErrorKind::Authentication,
        ErrorKind::Permission,
        ErrorKind::Backend,
        ErrorKind::Refused,
        ErrorKind::Timeout,
        ErrorKind::Connection,
        ErrorKind::Decode,
    ] {
        assert!(kinds.contains(&kind), "no {kind:?} error in {kinds:?}");
    }
    for error in &errors {
        let texts = assert_no_repeats(error);
        let from_redis = !matches!(error.kind(), ErrorKind::Config | ErrorKind::Refused);
        assert_eq!(
            texts.len() > 1,
            from_redis,
            "{:?}: a Redis or codec failure has its cause as source(), a check has none: \
             {texts:?}",
            error.kind()
        );
    }
}
