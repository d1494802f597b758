// SPDX-License-Identifier: MIT
#pragma once
// Test helper: tests of hardware breakpoints and watchpoints are skipped where the debug
// registers raise no trap (a virtual machine that does not pass them through;
// xproc::hardware_breakpoints_work() probes it). Their fallback is tested everywhere through
// XPROC_HW_BREAKPOINTS=0.

#include <gtest/gtest.h>

#include "xproc/breakpoints.hpp"

#define SKIP_WITHOUT_DEBUG_REGISTERS()                                                            \
    do {                                                                                          \
        if (!xproc::hardware_breakpoints_work()) {                                                \
            GTEST_SKIP() << "this machine's debug registers raise no trap: hardware breakpoints " \
                            "and watchpoints cannot be tested here";                              \
        }                                                                                         \
    } while (false)
