//! Resident memory, for the bytes a cache entry takes.

/// Resident memory of this process, in bytes (Linux: `/proc/self/statm`,
/// 4 KiB pages).
pub(crate) fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}
