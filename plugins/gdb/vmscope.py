"""vmscope inside gdb.

Load it with one line in ~/.gdbinit:

    source /path/to/vmscope/plugins/gdb/vmscope.py

It adds the `vmscope` command (and the short alias `vms` when no other command has that name),
which runs any vmscope command on gdb's current inferior: the live process (by pid, passively:
gdb keeps ptrace) or the core file gdb has loaded. See `help vmscope` inside gdb, and
docs/plugins.md.
"""

import importlib
import os
import sys

import gdb

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
try:
    import vmscope_common as common

    importlib.reload(common)  # loading the plugin again picks up an edited copy
finally:
    sys.path.pop(0)

PLUGIN_FILE = os.path.abspath(__file__)

# Short names to register besides `vmscope`, each only if gdb has no command by that name yet.
# Names gdb, pwndbg or GEF use (vmmap, xinfo, telescope, whatis, layout, watch, v2p, ...) are
# never candidates: the plugin must not shadow them.
ALIASES = ["vms"]

HELP = """Run a vmscope command on the process gdb is debugging (or the core file it has loaded).

Usage: vmscope COMMAND [ARGS...] [--json]
       vms COMMAND [ARGS...]          (the same, when `vms` was free)

Every vmscope command works: regions, whatis, x, translate, layout, threads, info, faults,
watch --passive, diff, snapshot... (`vmscope help` lists them, `vmscope help CMD` explains one).
Examples:
  vmscope regions                  the memory map with kinds and usage
  vmscope regions &counter         the region holding a variable, with -A N/-B N neighbours
  vmscope whatis $rsp+8 &global    what is at these addresses
  vmscope x/4gx $sp                memory, annotated
  vmscope translate &counter       virtual to physical (live processes only)
  vmscope faults 2s                page faults by region (let the process run: `continue &`)
  vmscope regions --json           JSON instead of tables

Address expressions are gdb's: the address argument of a command is evaluated by gdb and
passed to vmscope as a number, so `&var`, `$rsp`, `*ptr`, `main` and `arr` mean what they mean
in gdb (a variable's value is its value: write &var for its address). The address argument is
the rest of the line for x and print, every address of whatis and layout, the first argument of
translate and watch and the value of --region, the range of shared, and for regions a word
starting with a digit or one of & $ * ( -. For other commands, words starting with & $ * are
evaluated. Plain numbers and region names ([heap], [stack]) are passed unchanged, and so is a
word written with a leading backslash (\\$x passes $x).

vmscope runs passively: gdb holds ptrace, so vmscope never stops or traces the process.
`stop`, `continue`, `attach`, `detach` and `registers` are refused (use gdb's own commands;
`$reg` in an address is evaluated by gdb), and `watch` always runs as `watch --passive`
(perf events, no old values). A stopped process stays stopped: to watch or sample faults,
let it run in the background first (`continue &`, with `set non-stop on` or target-async).

The binary is found through $VMSCOPE, then PATH, then target/release of the repository this
plugin lives in. Output is colored when gdb styles its own (`set style enabled`) on a
terminal and NO_COLOR is unset."""


def _core_file():
    """The core file gdb has loaded for the current inferior, if any."""
    try:
        text = gdb.execute("info target", to_string=True)
    except gdb.error:
        return None
    marker = "Local core dump file:"
    at = text.find(marker)
    if at < 0:
        return None
    line = text[at + len(marker):].strip().splitlines()[0].strip()
    # "`/path/to/core', file type elf64-x86-64."
    if line.startswith("`") and "'," in line:
        return line[1:line.rindex("',")]
    return None


def _target_args():
    inferior = gdb.selected_inferior()
    connection = getattr(inferior, "connection", None)
    kind = getattr(connection, "type", None)
    core = _core_file() if kind in (None, "core") else None
    if core:
        args = ["--core", core]
        exe = inferior.progspace.filename if inferior.progspace else None
        if exe and os.path.isfile(exe):
            args += ["--exe", exe]
        return args
    if kind not in (None, "native"):
        raise common.PluginError(
            f"gdb's inferior is on a {kind} target: vmscope inspects local processes and core files"
        )
    if not inferior.pid:
        raise common.PluginError(
            "gdb has no process: run or attach to one (or load a core file) first"
        )
    if not os.path.isdir(f"/proc/{inferior.pid}"):
        raise common.PluginError(f"process {inferior.pid} is not on this machine")
    return ["-p", str(inferior.pid)]


def _evaluate(expr):
    try:
        value = gdb.parse_and_eval(expr)
    except gdb.error as e:
        hint = ""
        if "unknown type" in str(e) and not expr.startswith("&"):
            hint = f" (for its address write &{expr})"
        raise common.PluginError(f"cannot evaluate `{expr}`: {e}{hint}") from None
    kind = value.type.strip_typedefs().code
    if kind in (gdb.TYPE_CODE_ARRAY, gdb.TYPE_CODE_FUNC):
        if value.address is None:
            raise common.PluginError(f"`{expr}` has no address")
        return int(value.address)
    if kind in (gdb.TYPE_CODE_STRUCT, gdb.TYPE_CODE_UNION):
        raise common.PluginError(
            f"`{expr}` is a {value.type}, not an address: write &{expr} for its address"
        )
    try:
        return int(value)
    except (gdb.error, TypeError, ValueError) as e:
        raise common.PluginError(f"`{expr}` is not a number or an address: {e}") from None


class VmscopeCommand(gdb.Command):
    __doc__ = HELP

    def __init__(self, name):
        super().__init__(name, gdb.COMMAND_DATA)
        self._names = None

    def invoke(self, argument, from_tty):
        self.dont_repeat()
        try:
            styles = gdb.parameter("style enabled")
            common.invoke(PLUGIN_FILE, argument, _evaluate, _target_args, styles, gdb.write)
        except common.PluginError as e:
            raise gdb.GdbError(f"vmscope: {e}") from None

    def complete(self, text, word):
        # The first word is a vmscope command; later ones are gdb expressions.
        if " " in text.lstrip():
            return gdb.COMPLETE_EXPRESSION
        if self._names is None:
            self._names = common.command_names(PLUGIN_FILE)
        return [n for n in self._names if n.startswith(word or "")]


def _is_free(name):
    try:
        gdb.execute(f"help {name}", to_string=True)
    except gdb.error:
        return True
    return False


def _register():
    # Sourcing the plugin again replaces our own commands and still never takes a name that
    # gdb or another plugin (pwndbg, GEF) owns.
    ours = getattr(gdb, "_vmscope_commands", set())
    aliases = [a for a in ALIASES if a in ours or _is_free(a)]
    VmscopeCommand("vmscope")
    for alias in aliases:
        VmscopeCommand(alias)
    gdb._vmscope_commands = {"vmscope", *aliases}


_register()
