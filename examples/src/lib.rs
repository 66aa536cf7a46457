//! The two Flask-Caching tutorials, rebuilt in Rust: each app is a router here (so tests can
//! drive it) and a binary in `src/bin` (so people can run it).

pub mod advanced;
pub mod prometheus;
pub mod serve;
pub mod tutorial;
