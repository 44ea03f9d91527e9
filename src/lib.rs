//! vmscope: a memory inspector for live processes. It attaches to a process (passively by
//! default), and its commands explain the process's memory: what is mapped where, what a value
//! points to, what the threads are doing. The attach layer ([`target`]) knows the OS, the commands
//! ([`command`]) know only the [`target::Target`] trait, and rendering ([`render`]) knows only
//! typed results.

pub mod addr;
pub mod command;
pub mod demo;
pub mod error;
pub mod interrupt;
pub mod pages;
pub mod regions;
pub mod render;
pub mod repl;
pub mod script;
pub mod symbols;
pub mod target;
