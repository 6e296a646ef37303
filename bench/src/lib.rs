//! Shared pieces of Turnpike's load generators: what `/proc` says about a process and the
//! machine (CPU time, resident memory, busy time, CPU model), read the same way by every
//! benchmark so their figures compare.

pub mod procfs;
