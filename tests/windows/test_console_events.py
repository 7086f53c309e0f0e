"""examples/two_services.c built for Windows, under wine: a console's Ctrl+C
stops its services gracefully (web, then db, which web depends on) and the
program exits with status 0.  The event comes from ctrl_event.exe, through
GenerateConsoleCtrlEvent, as it comes from a console when Ctrl+C is pressed."""
import pytest

# STATUS_CONTROL_C_EXIT: the status of a process that Windows' default
# handler ends on Ctrl+C or Ctrl+Break, truncated to 8 bits by wine.
CONTROL_C_EXIT = 0xC000013A & 0xFF


def start(console, example, event):
    program = console(event, [example("two_services")])
    program.wait_for("web: db is running, serving")
    return program


def test_ctrl_c_stops_the_services_in_order_and_exits_0(console, example):
    program = start(console, example, "ctrl-c")
    program.send_event()
    status, rest, err = program.finish()
    assert rest == ["web: stopping", "db: stopping"], err
    assert status == 0, f"exit status {status}; stderr: {err}"


def test_ctrl_break_without_a_source_ends_it_as_windows_does(console, example):
    # two_services has a SIGINT source only: Ctrl+Break (SIGBREAK) goes on to
    # Windows' default handler, which ends the process.
    program = start(console, example, "ctrl-break")
    program.send_event()
    status, rest, err = program.finish()
    if "GenerateConsoleCtrlEvent: error" in err:
        pytest.skip(f"this wine cannot send CTRL_BREAK_EVENT ({err.strip()})")
    assert status == CONTROL_C_EXIT and rest == [], f"exit status {status}, output {rest}; {err}"
