"""What the gdb and lldb plugins of vmscope share: finding the binary, deciding which arguments
are address expressions (the debugger evaluates those and vmscope gets numbers), refusing the
commands that would need ptrace (the debugger owns it), and running vmscope with its output
streamed back. Pure Python, no debugger module: `python3 vmscope_common.py` runs its self-test.

The rule for expressions, as the plugins' help states it:

* The address argument of a command is evaluated by the debugger: the rest of the line for `x`
  and `print`, every address of `whatis` and `layout`, the first argument of `translate` and
  `watch` (and `--region`'s value), the range of `shared`, and the address of `regions` (a word
  that starts with a digit or one of `& $ * ( -`; other words there are name patterns).
* Plain numbers (`0x7f00_1000`, `4096`) and region names (`[heap]`) are passed unchanged, as is
  any word written with a leading backslash (`\\$x` passes `$x` to vmscope).
* For commands the plugin does not know, every word starting with `&`, `$` or `*` is evaluated.
* Everything else (flags, durations, file names, patterns) is passed unchanged.
"""

import codecs
import os
import re
import shutil
import signal
import subprocess
import threading

# Commands that need ptrace, which the debugger holds: refused with what to use instead.
REFUSED = {
    "stop": "the debugger owns the process: stop it with the debugger (Ctrl-C, `interrupt`)",
    "interrupt": "the debugger owns the process: stop it with the debugger (Ctrl-C, `interrupt`)",
    "continue": "the debugger owns the process: resume it with the debugger's `continue`",
    "c": "the debugger owns the process: resume it with the debugger's `continue`",
    "cont": "the debugger owns the process: resume it with the debugger's `continue`",
    "detach": "each vmscope command runs on its own and lets go when it ends; "
    "use the debugger's `detach` to let go of the process",
    "attach": "vmscope follows the debugger's process: attach to another one with the debugger",
    "registers": "vmscope reads registers through ptrace, which the debugger holds: use the "
    "debugger's `info registers` (gdb) or `register read` (lldb); `$reg` in an address "
    "is evaluated by the debugger",
    "regs": "use the debugger's `info registers` (gdb) or `register read` (lldb)",
}

ALL_POSITIONAL = "all"
ADDRESS_LIKE = "address-like"
REST = "rest"


class Spec:
    """Where a command takes address expressions."""

    def __init__(self, positions=(), valued=(), address_flags=()):
        self.positions = positions  # ALL_POSITIONAL, ADDRESS_LIKE, REST, or a set of indices
        self.valued = set(valued) | set(address_flags)  # flags followed by a value
        self.address_flags = set(address_flags)  # flags whose value is an address


_WHATIS = Spec(ALL_POSITIONAL, valued={"-f", "--depth"})
_TRANSLATE = Spec({0}, valued={"--limit", "--pid"}, address_flags={"--region"})
_REGIONS = Spec(ADDRESS_LIKE, valued={"--kind", "--perm", "--sort", "--top", "-A", "-B"})
_WATCH = Spec({0}, valued={"--count", "--for"})

SPECS = {
    "x": Spec(REST),
    "examine": Spec(REST),
    "print": Spec(REST),
    "p": Spec(REST),
    "whatis": _WHATIS,
    "xinfo": _WHATIS,
    "translate": _TRANSLATE,
    "v2p": _TRANSLATE,
    "shared": Spec({1}, valued={"--limit"}, address_flags={"--region"}),
    "layout": Spec(ALL_POSITIONAL),
    "regions": _REGIONS,
    "vmmap": _REGIONS,
    "watch": _WATCH,
    "w": _WATCH,
}

# Known commands without address arguments: nothing in them is evaluated.
NO_EXPRESSIONS = {
    "help", "h", "?", "info", "i", "threads", "thread", "watches", "unwatch", "faults",
    "snapshot", "snap", "diff", "set", "source", "echo", "quit", "q", "exit", "signal",
}

_NUMBER = re.compile(r"^(0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+|[0-9][0-9_]*)$")
_PAIRS = {"(": ")", "[": "]", "{": "}"}


class PluginError(Exception):
    """A problem to show as the debugger's own error."""


def find_binary(plugin_file):
    """$VMSCOPE, then PATH, then target/release in the repository holding the plugin."""
    env = os.environ.get("VMSCOPE")
    if env:
        if os.path.isfile(env) and os.access(env, os.X_OK):
            return env
        raise PluginError(f"$VMSCOPE is {env!r}, which is not an executable file")
    on_path = shutil.which("vmscope")
    if on_path:
        return on_path
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(plugin_file))))
    built = os.path.join(repo, "target", "release", "vmscope")
    if os.path.isfile(built) and os.access(built, os.X_OK):
        return built
    raise PluginError(
        "cannot find the vmscope binary: set $VMSCOPE to its path, put it on PATH, or build it "
        f"with `cargo build --release` in {repo} (looked for {built})"
    )


def split_words(text):
    """Splits at whitespace outside quotes, parentheses and brackets: [(start, end)]."""
    words = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            break
        start = i
        stack = []
        quote = None
        while i < n:
            ch = text[i]
            if quote:
                if ch == "\\" and i + 1 < n:
                    i += 1
                elif ch == quote:
                    quote = None
            elif ch in "'\"":
                quote = ch
            elif ch in _PAIRS:
                stack.append(_PAIRS[ch])
            elif stack and ch == stack[-1]:
                stack.pop()
            elif ch.isspace() and not stack:
                break
            i += 1
        words.append((start, i))
    return words


def _needs_eval(word):
    return not (_NUMBER.match(word) or (word.startswith("[") and word.endswith("]")))


def _looks_like_address(word):
    return word[:1].isdigit() or word[:1] in "&$*(-"


def rewrite(line, evaluate):
    """Rewrites one vmscope command line for the debugger's process.

    `evaluate(expr)` returns the debugger's value of an expression as an int. Returns
    `(command, json)`: the line to run with the expressions replaced by hex numbers, and
    whether `--json` was asked for (it is a vmscope option, taken out of the line).
    """
    text = line.strip()
    words = [text[s:e] for s, e in split_words(text)]
    json = "--json" in words
    words = [w for w in words if w != "--json"]
    if not words:
        return "help", json
    head = words[0]
    name = head.split("/", 1)[0]
    if name in REFUSED:
        raise PluginError(f"`{name}` is not available inside the debugger: {REFUSED[name]}")
    args = words[1:]

    def value(expr):
        if expr.startswith("\\"):
            return expr[1:]
        if not _needs_eval(expr):
            return expr
        return hex(evaluate(expr) & 0xFFFF_FFFF_FFFF_FFFF)

    if name in ("watch", "w") and "--passive" not in args:
        # Hardware watchpoints through ptrace would fight the debugger: perf events instead.
        args.insert(0, "--passive")
    spec = SPECS.get(name)
    if spec is not None and spec.positions == REST:
        if args and args[0].startswith("/"):
            head, args = head + args[0], args[1:]  # gdb also takes `x /4gx ADDR`
        rest = " ".join(args)
        return (f"{head} {value(rest)}" if rest else head), json
    out = []
    position = 0
    i = 0
    while i < len(args):
        word = args[i]
        if spec is None:
            if name not in NO_EXPRESSIONS and word[:1] in "&$*":
                word = value(word)
            elif word.startswith("\\"):
                word = word[1:]
            out.append(word)
            i += 1
            continue
        if word.startswith("-") and not _NUMBER.match(word.lstrip("-")):
            flag, eq, given = word.partition("=")
            if eq:
                out.append(f"{flag}={value(given)}" if flag in spec.address_flags else word)
            elif flag in spec.valued and i + 1 < len(args):
                nxt = args[i + 1]
                out += [word, value(nxt) if flag in spec.address_flags else nxt]
                i += 1
            else:
                out.append(word)
            i += 1
            continue
        if spec.positions == ALL_POSITIONAL:
            is_address = True
        elif spec.positions == ADDRESS_LIKE:
            is_address = _looks_like_address(word) or word.startswith("\\")
        else:
            is_address = position in spec.positions
        out.append(value(word) if is_address else word)
        position += 1
        i += 1
    return " ".join([head] + out), json


def vmscope_argv(binary, target, command, json, color):
    """The command line that runs one vmscope command on `target` (`-p PID` or `--core ...`)."""
    argv = [binary, "--batch", *target, "--color", "always" if color else "never"]
    if json:
        argv.append("--json")
    return argv + ["-ex", command]


def invoke(plugin_file, line, evaluate, target_args, debugger_styles, write):
    """Runs one plugin command line: its address expressions replaced by `evaluate`, the binary
    found next to `plugin_file`, the process or core from `target_args()`, the output streamed to
    `write`. Raises PluginError for the debugger to show."""
    command, json = rewrite(line, evaluate)
    binary = find_binary(plugin_file)
    color = want_color(debugger_styles)
    run(vmscope_argv(binary, target_args(), command, json, color), write)


def command_names(plugin_file):
    """vmscope's command names (for completion); empty when the binary cannot tell."""
    import json

    try:
        binary = find_binary(plugin_file)
        out = subprocess.run(
            [binary, "--batch", "--json", "-ex", "help"],
            capture_output=True, timeout=10, check=False,
        ).stdout
        return sorted(c["name"] for c in json.loads(out)["commands"])
    except Exception:  # noqa: BLE001 - completion must never raise
        return []


def want_color(debugger_styles):
    """Color when the debugger styles its output, stdout is a terminal and NO_COLOR is unset."""
    return (
        bool(debugger_styles)
        and "NO_COLOR" not in os.environ
        and os.environ.get("TERM", "") != "dumb"
        and os.isatty(1)
    )


def run(argv, write):
    """Runs vmscope, streaming its standard output to `write(str)` as it comes. Ctrl-C is passed
    on to vmscope (which ends `watch`/`faults` with their summary). Raises PluginError with
    vmscope's own message when it fails."""
    try:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    except OSError as e:
        raise PluginError(f"cannot run {argv[0]}: {e}") from None
    err_chunks = []
    drain = threading.Thread(target=lambda: err_chunks.append(proc.stderr.read()), daemon=True)
    drain.start()
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    recent = ""
    fd = proc.stdout.fileno()
    while True:
        try:
            chunk = os.read(fd, 65536)
        except KeyboardInterrupt:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
            continue
        except InterruptedError:
            continue
        if not chunk:
            break
        text = decoder.decode(chunk)
        if text:
            write(text)
            recent = (recent + text)[-8192:]
    tail = decoder.decode(b"", final=True)
    if tail:
        write(tail)
    while True:
        try:
            code = proc.wait()
            break
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGINT)
    drain.join()
    stderr = b"".join(c for c in err_chunks if c).decode("utf-8", errors="replace")
    if code == 0:
        if stderr.strip():
            write(stderr)
        return
    if code < 0:
        raise PluginError(f"vmscope was killed by signal {-code}")
    def bare(line):
        for prefix in ("error: ", "vmscope: "):
            if line.startswith(prefix):
                return line[len(prefix):]
        return line

    message = "\n".join(bare(l) for l in stderr.rstrip().splitlines())
    last_line = (recent.strip().splitlines() or [""])[-1]
    if not message and last_line.startswith("{"):
        import json

        try:
            message = json.loads(last_line).get("error", "")
        except ValueError:
            pass
    raise PluginError(message or f"vmscope exited with status {code}")


def _self_test():
    words = lambda t: [t[s:e] for s, e in split_words(t)]
    assert words("whatis ($rsp + 8) 'a b' [heap]") == ["whatis", "($rsp + 8)", "'a b'", "[heap]"]
    assert words("  x/4gx   $sp ") == ["x/4gx", "$sp"]
    seen = []

    def ev(e):
        seen.append(e)
        return {"&g": 0x1000, "$rsp+8": 0x7FF8, "main": 0x401000, "$sp + 8": 0x10, "-1": -1}[e]

    assert rewrite("regions &g --json", ev) == ("regions 0x1000", True)
    assert rewrite("regions libc --kind image", ev) == ("regions libc --kind image", False)
    assert rewrite("regions [heap] -A 2", ev) == ("regions [heap] -A 2", False)
    assert rewrite("whatis $rsp+8 main 0x10", ev) == ("whatis 0x7ff8 0x401000 0x10", False)
    assert rewrite("x/4gx $sp + 8", ev) == ("x/4gx 0x10", False)
    assert rewrite("x/s 4096", ev) == ("x/s 4096", False)
    assert rewrite("x /4gx $sp + 8", ev) == ("x/4gx 0x10", False)
    assert rewrite("translate &g 8192 --limit 4", ev) == ("translate 0x1000 8192 --limit 4", False)
    assert rewrite("translate --region &g", ev) == ("translate --region 0x1000", False)
    assert rewrite("translate --region=&g", ev) == ("translate --region=0x1000", False)
    assert rewrite("watch &g 4 --count 3", ev) == ("watch --passive 0x1000 4 --count 3", False)
    assert rewrite("shared 4242 &g 4096", ev) == ("shared 4242 0x1000 4096", False)
    assert rewrite("faults 2s --by region", ev) == ("faults 2s --by region", False)
    assert rewrite("echo $x", ev) == ("echo $x", False)
    assert rewrite("newcmd &g plain \\$raw", ev) == ("newcmd 0x1000 plain $raw", False)
    assert rewrite("whatis \\$var", ev) == ("whatis $var", False)
    assert rewrite("whatis -1", ev) == ("whatis 0xffffffffffffffff", False)
    assert rewrite("", ev) == ("help", False)
    for refused in ("stop", "continue", "registers"):
        try:
            rewrite(refused, ev)
        except PluginError as e:
            assert "debugger" in str(e)
        else:
            raise AssertionError(refused)
    print("vmscope_common self-test: ok")


if __name__ == "__main__":
    _self_test()
