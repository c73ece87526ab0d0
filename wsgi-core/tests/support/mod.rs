//! What the property tests share.

/// The number of cases a property test runs: `PROPTEST_CASES` when set
/// (`cargo xtask memcheck` runs fewer under valgrind), else `default`.
pub fn cases_or(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}
