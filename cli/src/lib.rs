//! The `gt` command's library: running the local stack's servers as child processes, generating
//! sample recordings, and the ephemeral stack tests run against.

pub mod ingest;
pub mod media_gen;
pub mod postgres;
pub mod process;
pub mod stack;
pub mod temporal;
pub mod tools;
pub mod up;
