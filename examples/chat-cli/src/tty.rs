//! The terminal's echo: off while a turn streams, so that a line typed meanwhile does not mix
//! into the answer (the session prints it on a line of its own when it is sent), and back on
//! when the chat is idle and when the chat exits.

use std::io::IsTerminal;
use std::os::fd::AsFd;

use nix::sys::termios::{self, LocalFlags, SetArg, Termios};

/// Echo control of stdin, when stdin is a terminal.
pub(crate) struct Echo {
    /// The terminal's settings at start, restored on drop; `None` when not a terminal.
    original: Option<Termios>,
    on: bool,
}

impl Echo {
    /// Takes stdin's settings (nothing to do when stdin is not a terminal).
    pub(crate) fn new() -> Self {
        let stdin = std::io::stdin();
        let original =
            if stdin.is_terminal() { termios::tcgetattr(stdin.as_fd()).ok() } else { None };
        Echo { original, on: true }
    }

    /// Turns echo on or off (a no-op when unchanged or not a terminal).
    pub(crate) fn set(&mut self, on: bool) {
        let Some(original) = &self.original else { return };
        if self.on == on {
            return;
        }
        let mut settings = original.clone();
        if !on {
            settings.local_flags.remove(LocalFlags::ECHO);
        }
        let stdin = std::io::stdin();
        if termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &settings).is_ok() {
            self.on = on;
        }
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        if let Some(original) = &self.original {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, original);
        }
    }
}
