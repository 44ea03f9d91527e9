//! The library's error type. Variants are grouped by who has to act on them: the target went away,
//! the OS refused (with the fix named), the user typed something wrong (with the column), or the
//! backend cannot do it at all. `main` is the only place that uses anyhow.

use crate::addr::VirtAddr;
use std::fmt;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    // -- the target ---------------------------------------------------------------------------
    /// The process went away (exit status when we could learn it: we launched it or trace it).
    #[error("process {pid} exited{}", status.as_ref().map(|s| format!(" ({s})")).unwrap_or_default())]
    Exited { pid: i32, status: Option<String> },
    #[error("no process with pid {pid}")]
    NoSuchProcess { pid: i32 },
    #[error("no target: attach to one with `attach PID`")]
    NoTarget,
    #[error("cannot read {len} bytes at {addr}: {reason}")]
    Unreadable {
        addr: VirtAddr,
        len: usize,
        reason: String,
    },
    #[error("{what} is not supported on {target}")]
    Unsupported { what: String, target: String },
    #[error("process {pid} must be stopped for {what}: run `stop` first")]
    NotStopped { pid: i32, what: String },

    // -- the operating system -----------------------------------------------------------------
    /// The OS refused; `fix` says what would let it through.
    #[error("{what}: permission denied ({fix})")]
    Permission { what: String, fix: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[cfg(unix)]
    #[error("{context}: {errno}")]
    Sys {
        context: String,
        errno: nix::errno::Errno,
    },

    // -- the user -----------------------------------------------------------------------------
    /// A command line that does not parse, with the column of the problem.
    #[error("{0}")]
    Parse(ParseError),
    /// A well-formed command that cannot be carried out as asked.
    #[error("{0}")]
    Usage(String),
    #[error("unknown command `{0}`: try `help`")]
    UnknownCommand(String),
    #[error("interrupted")]
    Interrupted,

    // -- files --------------------------------------------------------------------------------
    #[error("{path}: {message}")]
    BadFile { path: String, message: String },
    /// An error inside a command file, located by file and line.
    #[error("{file}:{line}: {source}")]
    Script {
        file: String,
        line: usize,
        #[source]
        source: Box<Error>,
    },
}

impl Error {
    /// Whether this is Ctrl-C, also when it stopped a command file.
    pub fn is_interrupted(&self) -> bool {
        match self {
            Error::Interrupted => true,
            Error::Script { source, .. } => source.is_interrupted(),
            _ => false,
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Error::Usage(message.into())
    }

    /// True for errors that mean "the process is gone": the REPL keeps running and says so.
    pub fn is_exit(&self) -> bool {
        match self {
            Error::Exited { .. } | Error::NoSuchProcess { .. } => true,
            Error::Script { source, .. } => source.is_exit(),
            _ => false,
        }
    }
}

/// A parse failure: the text that was parsed, the column (in characters) of the problem, and what
/// was expected there. Displayed as the line with a caret under the column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: String,
    pub column: usize,
    pub message: String,
}

impl ParseError {
    pub fn new(line: impl Into<String>, column: usize, message: impl Into<String>) -> Self {
        ParseError {
            line: line.into(),
            column,
            message: message.into(),
        }
    }

    /// The same error seen inside a longer line that starts `shift` characters earlier.
    pub fn within(mut self, line: &str, shift: usize) -> Self {
        self.line = line.to_string();
        self.column += shift;
        self
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let line = crate::render::escape::escape_str(&self.line);
        writeln!(f, "{}", self.message)?;
        writeln!(f, "  {line}")?;
        write!(f, "  {}^", " ".repeat(self.column))
    }
}

impl From<ParseError> for Error {
    fn from(e: ParseError) -> Self {
        Error::Parse(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caret_under_column() {
        let e = ParseError::new("1 + )", 4, "expected an expression");
        assert_eq!(e.to_string(), "expected an expression\n  1 + )\n      ^");
        let e = e.within("x/4gx 1 + )", 6);
        assert_eq!(
            e.to_string(),
            "expected an expression\n  x/4gx 1 + )\n            ^"
        );
    }

    #[test]
    fn exit_status_in_message() {
        let e = Error::Exited {
            pid: 42,
            status: Some("exit code 3".into()),
        };
        assert_eq!(e.to_string(), "process 42 exited (exit code 3)");
        assert!(e.is_exit());
    }
}
