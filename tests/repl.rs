//! The interactive REPL, driven through a real pseudo-terminal (`script` allocates it): prompt,
//! completion, Ctrl-C at the prompt, the empty line repeating `x`, history, and Ctrl-D detaching.

mod common;
use common::*;

#[test]
fn a_session_in_a_terminal() {
    if !have_script() {
        return;
    }
    let f = Fixture::start("facts");
    f.wait_paused();
    let state = Scratch::new("repl-state");
    let mut term = Terminal::start(f.pid(), &state);
    // Each line is typed at a prompt, and the next waits for its answer and the next prompt:
    // keys typed while a command runs would meet a terminal in cooked mode.
    term.prompt();
    term.keys("thre\t", 250); // Tab completes the common prefix of thread/threads
    term.keys("s\r", 0);
    term.expect("worker-1");
    term.prompt();
    term.keys("\x03", 0); // Ctrl-C at the prompt: a new prompt, not an exit
    term.prompt();
    term.keys("stop\r", 0);
    term.expect("stopped process");
    term.prompt();
    term.keys(&format!("x/2gx {:#x}\r", f.addr("global_values")), 0);
    term.expect("0x1122334455667788");
    term.prompt();
    term.keys("\r", 0); // repeats x: the next two units
    term.expect("0x000000000000002a");
    term.prompt();
    term.keys("whatis answ\t", 250); // Tab completes the fixture's symbol `answer`
    term.keys("\r", 0);
    term.expect("answer (size");
    term.prompt();
    term.keys("\x04", 0); // Ctrl-D: detach and exit
    let out = term.finish();
    let text = stdout(&out);
    assert!(text.contains("(vmscope) "), "{text}");
    assert!(text.contains("worker-1"), "threads did not run:\n{text}");
    assert!(text.contains("stopped process"), "{text}");
    assert!(text.contains("0x1122334455667788"), "{text}");
    // The repeated x shows the next two units: 42 and 0.
    assert!(
        text.contains("0x000000000000002a  0x0000000000000000"),
        "{text}"
    );
    assert!(text.contains("whatis answer"), "symbol completion: {text}");
    assert!(
        text.contains("answer (size"),
        "whatis of the completed symbol: {text}"
    );
    // Ctrl-D let go of the stopped target.
    assert!(wait_until(5, || f.state() == 'S'), "state {}", f.state());
    let history = std::fs::read_to_string(state.0.join("vmscope/history")).unwrap();
    assert!(history.contains("stop"), "{history}");
}

/// Ctrl-C during the `-ex` commands that come before the REPL stops them, as in gdb: the command
/// running ends, the ones after it are not run, and the prompt follows on the same target.
#[test]
fn ctrl_c_during_ex_commands_goes_on_to_the_prompt() {
    if !have_script() {
        return;
    }
    let f = Fixture::start("facts");
    f.wait_paused();
    let state = Scratch::new("repl-ex-ctrl-c");
    let args = format!("-p {} -ex 'faults 20s' -ex 'echo NOT-RUN'", f.pid());
    let mut term = Terminal::run(&args, &state);
    term.expect("[  1.0s]"); // faults is sampling: its live line
    term.keys("\x03", 0);
    term.prompt();
    term.keys("echo AT-THE-PROMPT\r", 0);
    term.expect("AT-THE-PROMPT\r\n");
    term.prompt();
    term.keys("quit\r", 0);
    let out = term.finish();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("page faults sampled"), "{text}");
    assert!(text.contains("remaining commands were not run"), "{text}");
    assert!(!text.contains("NOT-RUN"), "{text}");
    assert!(text.contains("AT-THE-PROMPT"), "{text}");
    assert_eq!(tracer_pid(f.pid()), Some(0), "left traced");
}
