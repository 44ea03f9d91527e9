//! The command-line grammar (nom): `NAME[/MODIFIER] [ARGS]`. The name is a word, the optional
//! modifier follows a slash with no space (gdb's `x/8gx`), and the arguments are the rest of the
//! line, which each command parses with its own parsers.

use crate::error::ParseError;
use nom::{
    IResult, Parser,
    bytes::complete::{take_while, take_while1},
    character::complete::{char, multispace0},
    combinator::opt,
    sequence::preceded,
};

/// A command line split into its parts; `args_col` is where the arguments start (in chars).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine<'a> {
    pub name: &'a str,
    pub modifier: Option<&'a str>,
    pub args: &'a str,
    pub args_col: usize,
}

fn name(input: &str) -> IResult<&str, &str> {
    take_while1(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-').parse(input)
}

fn modifier(input: &str) -> IResult<&str, &str> {
    preceded(char('/'), take_while(|c: char| c.is_ascii_alphanumeric())).parse(input)
}

/// Parses a non-empty, non-comment line. Blank lines and `#` comments are the caller's to skip.
pub fn parse_command_line(line: &str) -> Result<CommandLine<'_>, ParseError> {
    let col = |rest: &str| line[..line.len() - rest.len()].chars().count();
    let (rest, _) =
        multispace0::<_, nom::error::Error<&str>>(line).expect("multispace0 cannot fail");
    let (rest, name) =
        name(rest).map_err(|_| ParseError::new(line, col(rest), "expected a command name"))?;
    let (rest, modifier) = opt(modifier)
        .parse(rest)
        .map_err(|_| ParseError::new(line, col(rest), "bad modifier"))?;
    if let Some(c) = rest.chars().next()
        && !c.is_whitespace()
    {
        return Err(ParseError::new(
            line,
            col(rest),
            format!("unexpected `{c}` after the command name"),
        ));
    }
    let args = rest.trim();
    let args_col = col(rest.trim_start());
    Ok(CommandLine {
        name,
        modifier,
        args,
        args_col,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases: &[(&str, &str, Option<&str>, &str, usize)] = &[
            ("info", "info", None, "", 4),
            ("  x/8gx $sp ", "x", Some("8gx"), "$sp", 8),
            ("x/s 0x1000", "x", Some("s"), "0x1000", 4),
            ("x 0x10", "x", None, "0x10", 2),
            ("help x", "help", None, "x", 5),
            ("set color off", "set", None, "color off", 4),
        ];
        for &(line, name, modifier, args, col) in cases {
            let c = parse_command_line(line).unwrap();
            assert_eq!(
                (c.name, c.modifier, c.args, c.args_col),
                (name, modifier, args, col),
                "{line}"
            );
        }
    }

    #[test]
    fn errors_point_at_the_column() {
        let e = parse_command_line("  !boom").unwrap_err();
        assert_eq!(e.column, 2);
        let e = parse_command_line("x/8g!x").unwrap_err();
        assert_eq!(e.column, 4);
        assert!(e.message.contains("unexpected `!`"));
    }
}
