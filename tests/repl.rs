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
    let mut send = |keys: &str| term.keys(keys, 250);
    send("thre\t"); // Tab completes the common prefix of thread/threads
    send("s\r");
    send("\x03"); // Ctrl-C at the prompt: a new prompt, not an exit
    send("stop\r");
    send(&format!("x/2gx {:#x}\r", f.addr("global_values")));
    send("\r"); // repeats x: the next two units
    send("whatis answ\t"); // Tab completes the fixture's symbol `answer`
    send("\r");
    send("\x04"); // Ctrl-D: detach and exit
    let out = term.finish().wait_with_output().unwrap();
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
    term.keys("", 1000);
    term.keys("\x03", 700);
    term.keys("echo AT-THE-PROMPT\r", 500);
    term.keys("quit\r", 0);
    let out = term.finish().wait_with_output().unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("page faults sampled"), "{text}");
    assert!(text.contains("remaining commands were not run"), "{text}");
    assert!(!text.contains("NOT-RUN"), "{text}");
    assert!(text.contains("AT-THE-PROMPT"), "{text}");
    assert_eq!(tracer_pid(f.pid()), Some(0), "left traced");
}
