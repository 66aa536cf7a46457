//! Compile tests for `#[cached]` and `#[memoize]`: what must compile (`ui/pass`) and what
//! must be refused with a precise error (`ui/fail`, with the expected `.stderr`).
//!
//! Regenerate the expected output with `TRYBUILD=overwrite cargo test -p tests --test
//! trybuild`, then read every changed `.stderr`.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
