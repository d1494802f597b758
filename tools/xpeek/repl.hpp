// SPDX-License-Identifier: MIT
#pragma once
/// @file repl.hpp
/// The interactive loop: a "(xpeek) " prompt with line editing and history
/// (libedit, history in ~/.xpeek_history) on a terminal, plain lines otherwise.

namespace xpeek {

class Session;

/// Reads and runs commands until quit or end of input. Returns whether the last
/// command succeeded. `quiet` suppresses the banner.
bool run_interactive(Session& session, bool quiet);

}  // namespace xpeek
