"""vmscope inside lldb.

Load it with one line in ~/.lldbinit:

    command script import /path/to/vmscope/plugins/lldb/vmscope.py

It adds the `vmscope` command (and the short alias `vms` when no other command or alias has that
name), which runs any vmscope command on lldb's current process: the live one (by pid,
passively: lldb keeps ptrace) or the core file lldb has loaded. See `help vmscope` inside lldb,
and docs/plugins.md.
"""

import importlib
import os
import sys

import lldb

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
try:
    import vmscope_common as common

    importlib.reload(common)  # loading the plugin again picks up an edited copy
finally:
    sys.path.pop(0)

PLUGIN_FILE = os.path.abspath(__file__)

# Short names to register besides `vmscope`, each only if lldb has no command or alias by that
# name yet (lldb's own `memory region`, `image lookup`... and other plugins' names are kept).
ALIASES = ["vms"]

HELP = """Run a vmscope command on the process lldb is debugging (or the core file it has loaded).

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
  vmscope regions --json           JSON instead of tables

Address expressions are lldb's: the address argument of a command is evaluated by lldb
(`expression`) in the selected frame and passed to vmscope as a number, so `&var`, `$rsp`,
`*ptr` and `main` mean what they mean in lldb (a variable's value is its value: write &var for
its address). The address argument is the rest of the line for x and print, every address of
whatis and layout, the first argument of translate and watch and the value of --region, the
range of shared, and for regions a word starting with a digit or one of & $ * ( -. For other
commands, words starting with & $ * are evaluated. Plain numbers and region names ([heap],
[stack]) are passed unchanged, and so is a word written with a leading backslash.

vmscope runs passively: lldb holds ptrace, so vmscope never stops or traces the process.
`stop`, `continue`, `attach`, `detach` and `registers` are refused (use lldb's own commands),
and `watch` always runs as `watch --passive` (perf events, no old values). A stopped process
stays stopped: to watch or sample faults, let it run first (`process continue` in an
interactive session returns the prompt while it runs).

The binary is found through $VMSCOPE, then PATH, then target/release of the repository this
plugin lives in. Output is colored when lldb uses color on a terminal and NO_COLOR is unset."""


def _target_args(debugger, exe_ctx):
    target = exe_ctx.GetTarget() if exe_ctx.GetTarget().IsValid() else debugger.GetSelectedTarget()
    process = target.GetProcess() if target.IsValid() else lldb.SBProcess()
    if not process.IsValid():
        raise common.PluginError(
            "lldb has no process: launch or attach to one (or load a core file) first"
        )
    plugin = process.GetPluginName() or ""
    if "core" in plugin:
        core_spec = process.GetCoreFile()
        core = core_spec.fullpath if core_spec.IsValid() else None
        if not core:
            raise common.PluginError("lldb did not say which core file it has loaded")
        args = ["--core", core]
        exe = target.GetExecutable()
        if exe.IsValid() and exe.fullpath and os.path.isfile(exe.fullpath):
            args += ["--exe", exe.fullpath]
        return args
    # lldb debugs even local processes through lldb-server (gdb-remote); the platform says where.
    if target.GetPlatform().GetName() not in (None, "", "host"):
        raise common.PluginError(
            "lldb's process runs on a remote platform: vmscope inspects local processes and cores"
        )
    pid = process.GetProcessID()
    if not pid:
        raise common.PluginError("lldb's process has no pid yet")
    if not os.path.isdir(f"/proc/{pid}"):
        raise common.PluginError(f"process {pid} is not on this machine")
    return ["-p", str(pid)]


def _evaluator(debugger, exe_ctx):
    def run(expr):
        frame = exe_ctx.GetFrame()
        target = exe_ctx.GetTarget() if exe_ctx.GetTarget().IsValid() else debugger.GetSelectedTarget()
        return frame.EvaluateExpression(expr) if frame.IsValid() else target.EvaluateExpression(expr)

    def evaluate(expr):
        value = run(expr)
        error = value.GetError()
        if not value.IsValid() or (error.IsValid() and error.Fail()):
            message = (error.GetCString() if error.IsValid() else None) or "no value"
            message = message.strip().splitlines()[0].strip()
            if message.startswith("error: "):
                message = message[len("error: "):]
            raise common.PluginError(f"cannot evaluate `{expr}`: {message}")
        kind = value.GetType().GetCanonicalType().GetTypeClass()
        if kind & (lldb.eTypeClassArray | lldb.eTypeClassFunction):
            # The result is a copy in lldb's own memory: ask for the address of the original.
            address = run(f"&({expr})")
            if address.GetError().Fail():
                raise common.PluginError(f"`{expr}` has no address")
            return address.GetValueAsUnsigned()
        if kind & (lldb.eTypeClassStruct | lldb.eTypeClassClass | lldb.eTypeClassUnion):
            raise common.PluginError(
                f"`{expr}` is a {value.GetTypeName()}, not an address: write &{expr} for its address"
            )
        return value.GetValueAsUnsigned()

    return evaluate


class VmscopeCommand:
    def __init__(self, debugger, internal_dict):
        pass

    def get_short_help(self):
        return "Run a vmscope command on this process or core (vmscope help lists them)."

    def get_long_help(self):
        return HELP

    def __call__(self, debugger, command, exe_ctx, result):
        chunks = []
        try:
            common.invoke(
                PLUGIN_FILE,
                command,
                _evaluator(debugger, exe_ctx),
                lambda: _target_args(debugger, exe_ctx),
                debugger.GetUseColor(),
                chunks.append,
            )
        except common.PluginError as e:
            if chunks:
                result.Print("".join(chunks))
            result.SetError(f"vmscope: {e}")
            return
        result.Print("".join(chunks))
        result.SetStatus(lldb.eReturnStatusSuccessFinishResult)


def _taken(interpreter, name):
    return interpreter.CommandExists(name) or interpreter.AliasExists(name) or interpreter.UserCommandExists(name)


def __lldb_init_module(debugger, internal_dict):
    interpreter = debugger.GetCommandInterpreter()
    # Importing the plugin again replaces our own commands and still never takes a name that
    # lldb or another plugin owns.
    ours = getattr(lldb, "_vmscope_commands", set())
    names = ["vmscope"] + [a for a in ALIASES if a in ours or not _taken(interpreter, a)]
    for name in names:
        debugger.HandleCommand(f"command script add -o -c {__name__}.VmscopeCommand {name}")
    lldb._vmscope_commands = set(names)
