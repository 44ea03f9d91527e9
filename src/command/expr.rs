//! The address-expression language every address-taking command shares: `$sp+8`, `*($rsp+0x10)`,
//! `[heap]+0x20`, `libc.so.6!malloc`. This module owns the grammar (nom parsers producing an
//! [`Expr`] tree, with errors that point at the exact character), the argument splitter that keeps
//! a parenthesised or quoted expression in one word, and the evaluator. What a `$name`, a
//! `[region]` or a symbol stands for, and how memory is read for `*`, is up to the caller's
//! [`EvalContext`].

use crate::addr::VirtAddr;
use crate::error::{Error, ParseError, Result};
use nom::bytes::complete::{take_while, take_while1};
use nom::character::complete::satisfy;
use nom::combinator::{cut, recognize};
use nom::error::ErrorKind;
use nom::{IResult, Parser};
use std::fmt;

/// An address expression, as parsed; [`eval`] turns it into a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    Num(u64),
    /// `$name` (stored without the `$`): a register or a convenience variable.
    Var(String),
    /// `[name]`: the start of the named region.
    Region(String),
    /// A symbol, possibly `module!name`.
    Symbol(String),
    /// `*e`: the pointer-sized value stored at `e`.
    Deref(Box<Expr>),
    /// `-e`, two's complement.
    Neg(Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
}

impl BinOp {
    fn symbol(self) -> char {
        match self {
            BinOp::Add => '+',
            BinOp::Sub => '-',
            BinOp::Mul => '*',
            BinOp::Div => '/',
        }
    }

    fn precedence(self) -> u8 {
        match self {
            BinOp::Add | BinOp::Sub => 1,
            BinOp::Mul | BinOp::Div => 2,
        }
    }
}

impl fmt::Display for BinOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.symbol())
    }
}

impl Expr {
    /// How tightly the expression binds when printed: operands that bind less tightly than their
    /// position needs get parentheses.
    fn precedence(&self) -> u8 {
        match self {
            Expr::Binary(op, ..) => op.precedence(),
            Expr::Deref(_) | Expr::Neg(_) => 3,
            _ => 4,
        }
    }

    fn fmt_at(&self, f: &mut fmt::Formatter<'_>, min: u8) -> fmt::Result {
        if self.precedence() < min {
            write!(f, "({self})")
        } else {
            write!(f, "{self}")
        }
    }
}

/// Prints the expression so that [`parse_expr`] reads back the same tree (numbers in hex, as
/// few parentheses as precedence allows, symbols quoted when they are not plain identifiers).
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Num(n) if *n < 10 => write!(f, "{n}"),
            Expr::Num(n) => write!(f, "{n:#x}"),
            Expr::Var(name) => write!(f, "${name}"),
            Expr::Region(name) => write!(f, "[{name}]"),
            Expr::Symbol(name) if is_plain_symbol(name) => f.write_str(name),
            Expr::Symbol(name) => write!(f, "'{name}'"),
            Expr::Deref(inner) => {
                f.write_str("*")?;
                inner.fmt_at(f, 3)
            }
            Expr::Neg(inner) => {
                f.write_str("-")?;
                inner.fmt_at(f, 3)
            }
            Expr::Binary(op, lhs, rhs) => {
                // Left-associative: the right operand needs parentheses at equal precedence.
                lhs.fmt_at(f, op.precedence())?;
                write!(f, " {op} ")?;
                rhs.fmt_at(f, op.precedence() + 1)
            }
        }
    }
}

/// The nom error of the expression parsers: where the problem is (the input remaining there, so
/// its distance from the start of the text is the column) and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExprError<'a> {
    pub at: &'a str,
    pub message: String,
}

impl<'a> ExprError<'a> {
    pub fn new(at: &'a str, message: impl Into<String>) -> Self {
        ExprError {
            at,
            message: message.into(),
        }
    }

    /// The column (in characters) of the problem within `input`, the text parsing started on.
    pub fn column(&self, input: &str) -> usize {
        let consumed = input.len().saturating_sub(self.at.len());
        input
            .char_indices()
            .take_while(|&(byte, _)| byte < consumed)
            .count()
    }

    /// The error as a [`ParseError`] over `input`, the text parsing started on.
    pub fn into_parse_error(self, input: &str) -> ParseError {
        ParseError::new(input, self.column(input), self.message)
    }
}

impl fmt::Display for ExprError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl<'a> nom::error::ParseError<&'a str> for ExprError<'a> {
    fn from_error_kind(input: &'a str, kind: ErrorKind) -> Self {
        let message = match input.chars().next() {
            None => "unexpected end of input".to_string(),
            Some(c) => format!("unexpected `{c}` ({})", kind.description()),
        };
        ExprError::new(input, message)
    }

    /// Keeps the innermost error: it is the most specific.
    fn append(_input: &'a str, _kind: ErrorKind, other: Self) -> Self {
        other
    }
}

type PResult<'a, T> = IResult<&'a str, T, ExprError<'a>>;

/// How deep expressions may nest (parentheses, prefix operators and operator chains all count),
/// so that neither the recursive parser nor [`eval`] can run out of stack on hostile input.
const MAX_DEPTH: usize = 256;
const TOO_DEEP: &str = "expression nested too deeply";

/// A recoverable error: this is not an expression here (an `alt` may try something else).
fn error(at: &str, message: impl Into<String>) -> nom::Err<ExprError<'_>> {
    nom::Err::Error(ExprError::new(at, message))
}

/// An unrecoverable error: an expression started but is malformed.
fn failure(at: &str, message: impl Into<String>) -> nom::Err<ExprError<'_>> {
    nom::Err::Failure(ExprError::new(at, message))
}

fn ws(input: &str) -> PResult<'_, &str> {
    take_while(char::is_whitespace).parse(input)
}

/// Parses a whole string as one expression (leading/trailing whitespace allowed); anything left
/// over is an error at its column.
pub fn parse_expr(input: &str) -> Result<Expr, ParseError> {
    match expr(input) {
        Ok((rest, parsed)) => {
            let rest = rest.trim_start();
            match rest.chars().next() {
                None => Ok(parsed),
                Some(')') => Err(ExprError::new(rest, "unexpected `)`").into_parse_error(input)),
                Some(c) => Err(ExprError::new(
                    rest,
                    format!("unexpected `{c}`: expected an operator"),
                )
                .into_parse_error(input)),
            }
        }
        Err(nom::Err::Error(e) | nom::Err::Failure(e)) => Err(e.into_parse_error(input)),
        Err(nom::Err::Incomplete(_)) => Err(ParseError::new(
            input,
            input.chars().count(),
            "unexpected end of input",
        )),
    }
}

/// The nom leaf parser, for command parsers that embed an expression: skips leading whitespace,
/// parses one expression and returns the input after it (trailing whitespace not consumed).
/// Fails with `Err::Error` when the input does not start an expression at all, and with
/// `Err::Failure` when an expression started but is malformed.
pub fn expr(input: &str) -> IResult<&str, Expr, ExprError<'_>> {
    let (input, _) = ws(input)?;
    let (rest, (parsed, _height)) = sum(input, 0)?;
    Ok((rest, parsed))
}

/// The parsers below take `depth`, the nesting so far, and return the tree with its height, so
/// that `depth + height` stays within [`MAX_DEPTH`].
type Operand = for<'a> fn(&'a str, usize) -> PResult<'a, (Expr, usize)>;

/// `sum := product (('+' | '-') product)*`
fn sum(input: &str, depth: usize) -> PResult<'_, (Expr, usize)> {
    binary_chain(input, depth, &[BinOp::Add, BinOp::Sub], product)
}

/// `product := unary (('*' | '/') unary)*`
fn product(input: &str, depth: usize) -> PResult<'_, (Expr, usize)> {
    binary_chain(input, depth, &[BinOp::Mul, BinOp::Div], unary)
}

/// `operand (op operand)*` for the operators in `ops`, left-associative.
fn binary_chain<'a>(
    input: &'a str,
    depth: usize,
    ops: &[BinOp],
    operand: Operand,
) -> PResult<'a, (Expr, usize)> {
    let (mut rest, (mut lhs, mut height)) = operand(input, depth + 1)?;
    loop {
        let (at_op, _) = ws(rest)?;
        let Some(&op) = ops.iter().find(|op| at_op.starts_with(op.symbol())) else {
            return Ok((rest, (lhs, height)));
        };
        let (after_op, _) = ws(&at_op[1..])?;
        let (next, (rhs, rhs_height)) = cut(|i| operand(i, depth + 1)).parse(after_op)?;
        height = height.max(rhs_height) + 1;
        if depth + height > MAX_DEPTH {
            return Err(failure(at_op, TOO_DEEP));
        }
        lhs = Expr::Binary(op, Box::new(lhs), Box::new(rhs));
        rest = next;
    }
}

/// `unary := '*' unary | '-' unary | primary`
fn unary(input: &str, depth: usize) -> PResult<'_, (Expr, usize)> {
    if depth > MAX_DEPTH {
        return Err(failure(input, TOO_DEEP));
    }
    let wrap: fn(Box<Expr>) -> Expr = match input.chars().next() {
        Some('*') => Expr::Deref,
        Some('-') => Expr::Neg,
        _ => return primary(input, depth),
    };
    let (after_op, _) = ws(&input[1..])?;
    let (rest, (inner, height)) = cut(|i| unary(i, depth + 1)).parse(after_op)?;
    Ok((rest, (wrap(Box::new(inner)), height + 1)))
}

/// `primary := number | '$' ident | '[' region-name ']' | symbol | '(' expr ')'`, chosen by the
/// first character (so a token starting with a digit is always a number).
fn primary(input: &str, depth: usize) -> PResult<'_, (Expr, usize)> {
    let leaf = match input.chars().next() {
        Some(c) if c.is_ascii_digit() => number(input),
        Some('$') => variable(input),
        Some('[') => region(input),
        Some('(') => return parenthesized(input, depth),
        Some(c) if c == '\'' || is_symbol_start(c) => symbol(input),
        _ => Err(error(input, "expected an expression")),
    };
    leaf.map(|(rest, parsed)| (rest, (parsed, 1)))
}

/// `'(' expr ')'`; `input` starts with the `(`.
fn parenthesized(input: &str, depth: usize) -> PResult<'_, (Expr, usize)> {
    let (after_open, _) = ws(&input[1..])?;
    let (rest, inner) = cut(|i| sum(i, depth + 1)).parse(after_open)?;
    let (rest, _) = ws(rest)?;
    match rest.strip_prefix(')') {
        Some(rest) => Ok((rest, inner)),
        None => Err(failure(rest, "expected `)`")),
    }
}

/// `0x` hex, `0o` octal, `0b` binary or decimal, underscores allowed between digits; `input`
/// starts with a digit. Letters or digits run on after the number are reported as bad digits.
fn number(input: &str) -> PResult<'_, Expr> {
    let (radix, name, digits) = match input.get(..2) {
        Some("0x" | "0X") => (16, "hex", &input[2..]),
        Some("0o" | "0O") => (8, "octal", &input[2..]),
        Some("0b" | "0B") => (2, "binary", &input[2..]),
        _ => (10, "decimal", input),
    };
    let (rest, token) =
        take_while(|c: char| c.is_ascii_alphanumeric() || c == '_').parse(digits)?;
    let mut value: u64 = 0;
    let mut seen_digit = false;
    // `token` is ASCII, so byte offsets are character offsets.
    for (i, c) in token.char_indices() {
        if c == '_' {
            continue;
        }
        let Some(digit) = c.to_digit(radix) else {
            return Err(failure(&digits[i..], format!("invalid {name} digit `{c}`")));
        };
        seen_digit = true;
        value = value
            .checked_mul(u64::from(radix))
            .and_then(|v| v.checked_add(u64::from(digit)))
            .ok_or_else(|| failure(input, "number too large for 64 bits"))?;
    }
    if !seen_digit {
        let prefix = &input[..input.len() - digits.len()];
        return Err(failure(
            digits,
            format!("expected a {name} digit after `{prefix}`"),
        ));
    }
    Ok((rest, Expr::Num(value)))
}

/// `'$' ident`; `input` starts with the `$`.
fn variable(input: &str) -> PResult<'_, Expr> {
    let after = &input[1..];
    let name: PResult<'_, &str> =
        take_while1(|c: char| c.is_ascii_alphanumeric() || c == '_').parse(after);
    let (rest, name) = name.map_err(|_| failure(after, "expected a variable name after `$`"))?;
    Ok((rest, Expr::Var(name.to_string())))
}

/// `'[' region-name ']'`, the name being everything up to the `]` with surrounding whitespace
/// trimmed; `input` starts with the `[`.
fn region(input: &str) -> PResult<'_, Expr> {
    let inner = &input[1..];
    let Some(end) = inner.find(']') else {
        return Err(failure(input, "expected `]` to close this `[`"));
    };
    let name = inner[..end].trim();
    if name.is_empty() {
        return Err(failure(inner, "expected a region name"));
    }
    Ok((&inner[end + 1..], Expr::Region(name.to_string())))
}

fn is_symbol_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == '.'
}

fn is_symbol_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '@' | '$')
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(is_symbol_start) && chars.all(is_symbol_char)
}

/// Whether `name` reads back as a symbol without quotes: `ident` or `ident!ident`.
fn is_plain_symbol(name: &str) -> bool {
    match name.split_once('!') {
        Some((module, item)) => is_identifier(module) && is_identifier(item),
        None => is_identifier(name),
    }
}

/// `symbol-part ('!' symbol-part)?`, kept as one name (`libc.so.6!malloc`).
fn symbol(input: &str) -> PResult<'_, Expr> {
    let (rest, first) = symbol_part(input)?;
    let Some(after_bang) = rest.strip_prefix('!') else {
        return Ok((rest, Expr::Symbol(first.to_string())));
    };
    let (rest, item) = symbol_part(after_bang).map_err(|e| match e {
        nom::Err::Error(_) => failure(after_bang, "expected a symbol name after `!`"),
        other => other,
    })?;
    Ok((rest, Expr::Symbol(format!("{first}!{item}"))))
}

/// An identifier, or a single-quoted string taken literally (without the quotes).
fn symbol_part(input: &str) -> PResult<'_, &str> {
    if let Some(body) = input.strip_prefix('\'') {
        let Some(end) = body.find('\'') else {
            return Err(failure(input, "expected `'` to close this quote"));
        };
        if end == 0 {
            return Err(failure(body, "expected a symbol name"));
        }
        return Ok((&body[end + 1..], &body[..end]));
    }
    recognize((satisfy(is_symbol_start), take_while(is_symbol_char))).parse(input)
}

/// Splits an argument string into whitespace-separated words, except inside parentheses,
/// brackets or quotes, returning (column, word) pairs with columns in characters. Commands use
/// this to find `EXPR LEN` pairs like `$sp+8 16` or `( $sp + 8 ) 4096`. Brackets and quotes are
/// taken literally up to their closing character; parentheses nest. An unclosed one is an error
/// at its opening character, a `)` with no `(` an error at itself.
pub fn split_args(input: &str) -> Result<Vec<(usize, &str)>, ParseError> {
    let mut words = Vec::new();
    // (column, byte offset) where the current word started.
    let mut word_start: Option<(usize, usize)> = None;
    // Columns of the `(`s not yet closed.
    let mut parens: Vec<usize> = Vec::new();
    // Inside `[...]` or quotes: the closing character and the opening column.
    let mut literal: Option<(char, usize)> = None;
    for (column, (byte, c)) in input.char_indices().enumerate() {
        if let Some((close, _)) = literal {
            if c == close {
                literal = None;
            }
            continue;
        }
        if c.is_whitespace() && parens.is_empty() {
            if let Some((start_column, start_byte)) = word_start.take() {
                words.push((start_column, &input[start_byte..byte]));
            }
            continue;
        }
        word_start.get_or_insert((column, byte));
        match c {
            '(' => parens.push(column),
            ')' if parens.pop().is_none() => {
                return Err(ParseError::new(input, column, "unexpected `)`"));
            }
            '[' => literal = Some((']', column)),
            '\'' | '"' => literal = Some((c, column)),
            _ => {}
        }
    }
    if let Some((close, column)) = literal {
        let message = if close == ']' {
            "expected `]` to close this `[`".to_string()
        } else {
            format!("expected `{close}` to close this quote")
        };
        return Err(ParseError::new(input, column, message));
    }
    if let Some(&column) = parens.last() {
        return Err(ParseError::new(
            input,
            column,
            "expected `)` to close this `(`",
        ));
    }
    if let Some((start_column, start_byte)) = word_start {
        words.push((start_column, &input[start_byte..]));
    }
    Ok(words)
}

/// What an expression's names mean, and how memory is read: supplied by the caller of [`eval`].
pub trait EvalContext {
    /// `$name`: a register (target stopped) or a convenience variable.
    fn var(&mut self, name: &str) -> Result<u64>;
    /// `[name]`: the start address of the named region.
    fn region(&mut self, name: &str) -> Result<u64>;
    /// A symbol name: the whatis issue fills this in; until then it returns an error.
    fn symbol(&mut self, name: &str) -> Result<u64>;
    /// Reads the pointer-sized (8 byte, little-endian on x86_64) value at `addr`.
    fn read_pointer(&mut self, addr: VirtAddr) -> Result<u64>;
}

/// Evaluates `expr`, left operand first. `+`, `-`, `*` and negation wrap around (addresses are
/// 64-bit modular); division by zero is a usage error; errors from `ctx` are returned as they are.
pub fn eval(expr: &Expr, ctx: &mut dyn EvalContext) -> Result<u64> {
    Ok(match expr {
        Expr::Num(n) => *n,
        Expr::Var(name) => ctx.var(name)?,
        Expr::Region(name) => ctx.region(name)?,
        Expr::Symbol(name) => ctx.symbol(name)?,
        Expr::Deref(inner) => {
            let addr = eval(inner, ctx)?;
            ctx.read_pointer(VirtAddr::new(addr))?
        }
        Expr::Neg(inner) => eval(inner, ctx)?.wrapping_neg(),
        Expr::Binary(op, lhs, rhs) => {
            let lhs = eval(lhs, ctx)?;
            let rhs = eval(rhs, ctx)?;
            match op {
                BinOp::Add => lhs.wrapping_add(rhs),
                BinOp::Sub => lhs.wrapping_sub(rhs),
                BinOp::Mul => lhs.wrapping_mul(rhs),
                BinOp::Div => lhs
                    .checked_div(rhs)
                    .ok_or_else(|| Error::usage("division by zero"))?,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn num(n: u64) -> Expr {
        Expr::Num(n)
    }
    fn var(name: &str) -> Expr {
        Expr::Var(name.to_string())
    }
    fn region(name: &str) -> Expr {
        Expr::Region(name.to_string())
    }
    fn sym(name: &str) -> Expr {
        Expr::Symbol(name.to_string())
    }
    fn deref(e: Expr) -> Expr {
        Expr::Deref(Box::new(e))
    }
    fn neg(e: Expr) -> Expr {
        Expr::Neg(Box::new(e))
    }
    fn bin(op: BinOp, l: Expr, r: Expr) -> Expr {
        Expr::Binary(op, Box::new(l), Box::new(r))
    }
    fn add(l: Expr, r: Expr) -> Expr {
        bin(BinOp::Add, l, r)
    }
    fn sub(l: Expr, r: Expr) -> Expr {
        bin(BinOp::Sub, l, r)
    }
    fn mul(l: Expr, r: Expr) -> Expr {
        bin(BinOp::Mul, l, r)
    }
    fn div(l: Expr, r: Expr) -> Expr {
        bin(BinOp::Div, l, r)
    }

    fn parse_cases() -> Vec<(&'static str, Expr)> {
        vec![
            // numbers
            ("0x7f00_1000", num(0x7f00_1000)),
            ("0X1F", num(0x1f)),
            ("4096", num(4096)),
            ("1_000", num(1000)),
            ("0b101", num(5)),
            ("0o17", num(0o17)),
            ("0", num(0)),
            ("0xffffffffffffffff", num(u64::MAX)),
            ("18446744073709551615", num(u64::MAX)),
            // variables and registers
            ("$pc", var("pc")),
            ("$heap_int", var("heap_int")),
            ("$rsp+8", add(var("rsp"), num(8))),
            // regions
            ("[heap]", region("heap")),
            ("[anon:my thing]", region("anon:my thing")),
            ("[ stack ]", region("stack")),
            ("[heap]+0x20", add(region("heap"), num(0x20))),
            // symbols
            ("main", sym("main")),
            ("main+0x10", add(sym("main"), num(0x10))),
            ("libc.so.6!malloc", sym("libc.so.6!malloc")),
            ("std::io::stdout", sym("std::io::stdout")),
            ("foo@plt", sym("foo@plt")),
            ("_start", sym("_start")),
            ("'_ZN3foo3barE'", sym("_ZN3foo3barE")),
            ("'a::b<c>'+1", add(sym("a::b<c>"), num(1))),
            ("libfoo.so!'x<y>'", sym("libfoo.so!x<y>")),
            // deref
            ("*($sp+8)", deref(add(var("sp"), num(8)))),
            ("**$sp", deref(deref(var("sp")))),
            ("*0x1000 * 2", mul(deref(num(0x1000)), num(2))),
            ("2 * *$sp", mul(num(2), deref(var("sp")))),
            // precedence and associativity
            ("2*3+4", add(mul(num(2), num(3)), num(4))),
            ("2+3*4", add(num(2), mul(num(3), num(4)))),
            ("(2+3)*4", mul(add(num(2), num(3)), num(4))),
            ("10-2-3", sub(sub(num(10), num(2)), num(3))),
            ("100/10/5", div(div(num(100), num(10)), num(5))),
            ("10-(2-3)", sub(num(10), sub(num(2), num(3)))),
            ("-1", neg(num(1))),
            ("1 - -2", sub(num(1), neg(num(2)))),
            ("-$sp*2", mul(neg(var("sp")), num(2))),
            // whitespace
            ("  $sp  +  8  ", add(var("sp"), num(8))),
            ("\t*\t( $sp + 8 )\n", deref(add(var("sp"), num(8)))),
            ("( ( 1 ) )", num(1)),
            ("* $sp", deref(var("sp"))),
        ]
    }

    #[test]
    fn parses_every_form() {
        for (input, expected) in parse_cases() {
            assert_eq!(parse_expr(input), Ok(expected), "input {input:?}");
        }
    }

    #[test]
    fn display_reads_back_as_the_same_tree() {
        for (input, parsed) in parse_cases() {
            let shown = parsed.to_string();
            assert_eq!(
                parse_expr(&shown),
                Ok(parsed),
                "input {input:?} shown as {shown:?}"
            );
        }
        assert_eq!(parse_expr("2*(3+4)").unwrap().to_string(), "2 * (3 + 4)");
        assert_eq!(parse_expr("*($sp+8)").unwrap().to_string(), "*($sp + 8)");
    }

    #[test]
    fn errors_point_at_the_problem() {
        let cases: &[(&str, usize, &str)] = &[
            ("", 0, "expected an expression"),
            ("   ", 3, "expected an expression"),
            ("1 +", 3, "expected an expression"),
            ("1 * ", 4, "expected an expression"),
            ("(1+2", 4, "expected `)`"),
            ("(1 2", 3, "expected `)`"),
            ("0x", 2, "expected a hex digit"),
            ("0b", 2, "expected a binary digit"),
            ("0xfffffffffffffffff", 0, "number too large for 64 bits"),
            (
                "1 + 18446744073709551616",
                4,
                "number too large for 64 bits",
            ),
            ("1 2", 2, "unexpected `2`"),
            ("[heap", 0, "expected `]`"),
            ("[ ]", 1, "expected a region name"),
            (")", 0, "expected an expression"),
            ("(1))", 3, "unexpected `)`"),
            ("$", 1, "expected a variable name"),
            ("$+1", 1, "expected a variable name"),
            ("0xzz", 2, "invalid hex digit `z`"),
            ("0x10g", 4, "invalid hex digit `g`"),
            ("0b102", 4, "invalid binary digit `2`"),
            ("12ab", 2, "invalid decimal digit `a`"),
            ("'unterminated", 0, "expected `'`"),
            ("''", 1, "expected a symbol name"),
            ("libc!", 5, "expected a symbol name after `!`"),
            ("1 + é", 4, "expected an expression"),
            ("'é' + )", 6, "expected an expression"),
            ("[é] 1", 4, "unexpected `1`"),
            ("**", 2, "expected an expression"),
        ];
        for &(input, column, message) in cases {
            let err = parse_expr(input).expect_err(input);
            assert_eq!(err.line, input, "input {input:?}");
            assert_eq!(err.column, column, "input {input:?}: {}", err.message);
            assert!(
                err.message.contains(message),
                "input {input:?}: {:?} does not contain {message:?}",
                err.message
            );
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let shallow = format!("{}1{}", "(".repeat(50), ")".repeat(50));
        assert_eq!(parse_expr(&shallow), Ok(num(1)));
        for deep in [
            format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000)),
            format!("{}$sp", "*".repeat(10_000)),
            format!("1{}", "+1".repeat(10_000)),
        ] {
            let err = parse_expr(&deep).unwrap_err();
            assert!(err.message.contains("too deeply"), "{}", err.message);
        }
    }

    #[test]
    fn leaf_parser_stops_after_one_expression() {
        let (rest, parsed) = expr("  $sp+8 16").unwrap();
        assert_eq!(rest, " 16");
        assert_eq!(parsed, add(var("sp"), num(8)));
        // Not an expression at all: recoverable, so `alt` can try something else.
        assert!(matches!(expr(") x"), Err(nom::Err::Error(_))));
        // Started but malformed: a failure, with the position of the problem.
        let input = "(1 + 2";
        match expr(input) {
            Err(nom::Err::Failure(e)) => {
                assert_eq!(e.column(input), 6);
                assert_eq!(e.message, "expected `)`");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[derive(Default)]
    struct TestContext {
        vars: HashMap<&'static str, u64>,
        regions: HashMap<&'static str, u64>,
        symbols: HashMap<&'static str, u64>,
        memory: HashMap<u64, u64>,
    }

    impl EvalContext for TestContext {
        fn var(&mut self, name: &str) -> Result<u64> {
            self.vars
                .get(name)
                .copied()
                .ok_or_else(|| Error::usage(format!("no variable `${name}`")))
        }
        fn region(&mut self, name: &str) -> Result<u64> {
            self.regions
                .get(name)
                .copied()
                .ok_or_else(|| Error::usage(format!("no region `[{name}]`")))
        }
        fn symbol(&mut self, name: &str) -> Result<u64> {
            self.symbols
                .get(name)
                .copied()
                .ok_or_else(|| Error::usage(format!("no symbol `{name}`")))
        }
        fn read_pointer(&mut self, addr: VirtAddr) -> Result<u64> {
            self.memory
                .get(&addr.get())
                .copied()
                .ok_or_else(|| Error::Unreadable {
                    addr,
                    len: 8,
                    reason: "not mapped".to_string(),
                })
        }
    }

    fn context() -> TestContext {
        TestContext {
            vars: HashMap::from([("sp", 0x7ffd_0000), ("pc", 0x40_1000), ("heap_int", 7)]),
            regions: HashMap::from([("heap", 0x5555_0000), ("anon:my thing", 0x1000)]),
            symbols: HashMap::from([("main", 0x40_1100), ("libc.so.6!malloc", 0x7f00_2000)]),
            memory: HashMap::from([
                (0x7ffd_0000, 0x7ffd_0010),
                (0x7ffd_0008, 0x5555_0040),
                (0x7ffd_0010, 0xdead_beef),
                (0x1000, 21),
            ]),
        }
    }

    #[test]
    fn evaluates() {
        let cases: &[(&str, u64)] = &[
            ("2*3+4", 10),
            ("2+3*4", 14),
            ("(2+3)*4", 20),
            ("10-2-3", 5),
            ("100/10/5", 2),
            ("7/2", 3),
            ("-1", u64::MAX),
            ("0-1", u64::MAX),
            ("0xffffffffffffffff+2", 1),
            ("$sp+8", 0x7ffd_0008),
            ("$heap_int*2", 14),
            ("[heap]+0x20", 0x5555_0020),
            ("[anon:my thing]", 0x1000),
            ("main+0x10", 0x40_1110),
            ("libc.so.6!malloc", 0x7f00_2000),
            ("*$sp", 0x7ffd_0010),
            ("**$sp", 0xdead_beef),
            ("*($sp+8)", 0x5555_0040),
            ("*($sp+8) - [heap]", 0x40),
            ("*0x1000 * 2", 42),
            ("--5", 5),
        ];
        let mut ctx = context();
        for &(input, expected) in cases {
            let parsed = parse_expr(input).unwrap();
            assert_eq!(
                eval(&parsed, &mut ctx).unwrap(),
                expected,
                "input {input:?}"
            );
        }
    }

    #[test]
    fn evaluation_errors_propagate() {
        let mut ctx = context();
        let run = |input: &str, ctx: &mut TestContext| eval(&parse_expr(input).unwrap(), ctx);

        let err = run("$sp/0", &mut ctx).unwrap_err();
        assert!(
            matches!(&err, Error::Usage(m) if m == "division by zero"),
            "{err}"
        );
        let err = run("1/(2-2)", &mut ctx).unwrap_err();
        assert!(
            matches!(&err, Error::Usage(m) if m == "division by zero"),
            "{err}"
        );

        let err = run("$nope+1", &mut ctx).unwrap_err();
        assert_eq!(err.to_string(), "no variable `$nope`");
        let err = run("[nowhere]", &mut ctx).unwrap_err();
        assert_eq!(err.to_string(), "no region `[nowhere]`");
        let err = run("'missing'", &mut ctx).unwrap_err();
        assert_eq!(err.to_string(), "no symbol `missing`");

        // *$sp is 0x7ffd0010, whose value 0xdeadbeef is not mapped.
        let err = run("***$sp", &mut ctx).unwrap_err();
        assert!(
            matches!(err, Error::Unreadable { addr, len: 8, .. } if addr == VirtAddr::new(0xdead_beef)),
            "{err}"
        );
    }

    #[test]
    fn splits_arguments() {
        let cases: &[(&str, &[(usize, &str)])] = &[
            ("", &[]),
            ("   ", &[]),
            ("$sp 16", &[(0, "$sp"), (4, "16")]),
            ("( $sp + 8 ) 4096", &[(0, "( $sp + 8 )"), (12, "4096")]),
            ("'a b' 3", &[(0, "'a b'"), (6, "3")]),
            ("[anon:x y] 8", &[(0, "[anon:x y]"), (11, "8")]),
            (
                "  *($sp + (8 * 2))\t16  ",
                &[(2, "*($sp + (8 * 2))"), (19, "16")],
            ),
            ("[a(b] x", &[(0, "[a(b]"), (6, "x")]),
            ("'a)b' \"c d\"", &[(0, "'a)b'"), (6, "\"c d\"")]),
            ("é (a b) c", &[(0, "é"), (2, "(a b)"), (8, "c")]),
        ];
        for &(input, expected) in cases {
            assert_eq!(split_args(input).unwrap(), expected, "input {input:?}");
        }
    }

    #[test]
    fn split_errors_point_at_the_opening() {
        let cases: &[(&str, usize, &str)] = &[
            ("(1+2", 0, "expected `)` to close this `(`"),
            ("x ((1) 2", 2, "expected `)`"),
            ("1 )", 2, "unexpected `)`"),
            ("'a b", 0, "expected `'` to close this quote"),
            ("\"a", 0, "expected `\"`"),
            ("[heap 8", 0, "expected `]`"),
            ("é (", 2, "expected `)`"),
        ];
        for &(input, column, message) in cases {
            let err = split_args(input).expect_err(input);
            assert_eq!(err.line, input);
            assert_eq!(err.column, column, "input {input:?}: {}", err.message);
            assert!(
                err.message.contains(message),
                "input {input:?}: {}",
                err.message
            );
        }
    }
}
