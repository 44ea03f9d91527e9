//! Demangling: symbol names as the linker sees them (`_ZN7vmscope4demo4bump17h0123456789abcdefE`,
//! `_ZN6shapes6Circle4areaEv`, `_RNvCs1234_7vmscope4main`) turned into the names people write
//! (`vmscope::demo::bump`, `shapes::Circle::area()`). Rust names (legacy and v0) go through
//! rustc-demangle, with the hash left out; C++ names through cpp_demangle. Names that are not
//! mangled (C) are left alone.

/// The demangled form of `name`, or `None` when it is not a mangled Rust or C++ name (or does
/// not demangle).
pub fn demangle(name: &str) -> Option<String> {
    if (name.starts_with("_R") || is_rust_legacy(name))
        && let Ok(d) = rustc_demangle::try_demangle(name)
    {
        // `{:#}` leaves out the hash (`::h0123456789abcdef`).
        return Some(format!("{d:#}"));
    }
    if name.starts_with("_Z") {
        let sym = cpp_demangle::Symbol::new(name).ok()?;
        return sym
            .demangle_with_options(&cpp_demangle::DemangleOptions::default())
            .ok();
    }
    None
}

/// A Rust legacy name: `_ZN` path `17h<16 hex digits>E`, possibly followed by a `.llvm.N`
/// suffix (the path itself holds dots: `_$LT$core..any..TypeId$GT$`). A C++ name such as
/// `_ZN3foo3barEv` has no such hash.
fn is_rust_legacy(name: &str) -> bool {
    let Some(body) = name.strip_prefix("_ZN") else {
        return false;
    };
    let b = body.as_bytes();
    body.match_indices("17h").any(|(i, _)| {
        let hash = i + 3..i + 19;
        b.get(hash.clone())
            .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
            && b.get(i + 19) == Some(&b'E')
            && (i + 20 == b.len() || b[i + 20] == b'.')
    })
}

/// The demangled name without its parameter list and qualifiers (`shapes::Circle::area() const`
/// -> `shapes::Circle::area`), so users can name a C++ function without its signature.
/// Template arguments are kept.
pub fn without_parameters(demangled: &str) -> &str {
    if !demangled.ends_with(')') && !demangled.ends_with("const") && !demangled.ends_with('&') {
        return demangled;
    }
    // Find the `(` that opens the final parameter list: scan back matching parentheses.
    let bytes = demangled.as_bytes();
    let Some(close) = demangled.rfind(')') else {
        return demangled;
    };
    let mut depth = 0usize;
    for i in (0..=close).rev() {
        match bytes[i] {
            b')' => depth += 1,
            b'(' => {
                depth -= 1;
                if depth == 0 {
                    return demangled[..i].trim_end();
                }
            }
            _ => {}
        }
    }
    demangled
}

/// `without_parameters` and, for template functions whose demangled name starts with the return
/// type (`int shapes::biggest<int>(...)`), also without that: the names a user may type for a
/// demangled name, besides the name itself.
pub fn short_forms(demangled: &str) -> Vec<&str> {
    let bare = without_parameters(demangled);
    let mut out = Vec::new();
    if bare != demangled {
        out.push(bare);
    }
    // The last space outside <...> and (...) separates a return type from the name.
    let mut depth = 0i32;
    let mut split = None;
    for (i, c) in bare.char_indices() {
        match c {
            '<' | '(' => depth += 1,
            '>' | ')' => depth -= 1,
            ' ' if depth == 0 => split = Some(i),
            _ => {}
        }
    }
    if let Some(i) = split {
        let (head, name) = (&bare[..i], &bare[i + 1..]);
        if !head.ends_with("operator") && !name.is_empty() && !name.starts_with("operator") {
            out.push(name);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_legacy_and_v0() {
        assert_eq!(
            demangle("_ZN7vmscope4demo4bump17h0123456789abcdefE").as_deref(),
            Some("vmscope::demo::bump")
        );
        assert_eq!(
            demangle("_ZN7vmscope4demo4bump17h0123456789abcdefE.llvm.1234").as_deref(),
            Some("vmscope::demo::bump")
        );
        assert_eq!(
            demangle("_ZN58_$LT$core..any..TypeId$u20$as$u20$core..cmp..PartialEq$GT$2eq17h9709ea49d29831eeE")
                .as_deref(),
            Some("<core::any::TypeId as core::cmp::PartialEq>::eq")
        );
        assert_eq!(
            demangle("_RNvCs1234_7vmscope4main").as_deref(),
            Some("vmscope::main")
        );
    }

    #[test]
    fn cpp() {
        assert_eq!(
            demangle("_ZN6shapes6Circle4areaEv").as_deref(),
            Some("shapes::Circle::area()")
        );
        assert_eq!(
            demangle("_ZNK6shapes6Circle4areaEv").as_deref(),
            Some("shapes::Circle::area() const")
        );
        assert_eq!(demangle("_Z3addii").as_deref(), Some("add(int, int)"));
        // A C++ variable has the legacy-looking form without a hash: C++ rules apply.
        assert_eq!(
            demangle("_ZN6shapes5countE").as_deref(),
            Some("shapes::count")
        );
    }

    #[test]
    fn c_names_and_garbage_are_left_alone() {
        for name in ["main", "malloc", "_start", "_Z", "_ZN", "_R", "_Zzzz", ""] {
            assert_eq!(demangle(name), None, "{name}");
        }
    }

    #[test]
    fn parameters_dropped() {
        assert_eq!(
            without_parameters("shapes::Circle::area() const"),
            "shapes::Circle::area"
        );
        assert_eq!(without_parameters("add(int, int)"), "add");
        assert_eq!(
            without_parameters("f(void (*)(int))"),
            "f",
            "nested parentheses"
        );
        assert_eq!(
            without_parameters("std::vector<int>::push_back(int&&)"),
            "std::vector<int>::push_back"
        );
        assert_eq!(without_parameters("vmscope::main"), "vmscope::main");
    }

    #[test]
    fn short_forms_drop_return_types() {
        assert_eq!(
            short_forms("int shapes::biggest<int>(std::vector<int, std::allocator<int> > const&)"),
            ["int shapes::biggest<int>", "shapes::biggest<int>"]
        );
        assert_eq!(short_forms("add(int, int)"), ["add"]);
        assert_eq!(short_forms("operator new(unsigned long)"), ["operator new"]);
        assert!(short_forms("vmscope::main").is_empty());
    }
}
