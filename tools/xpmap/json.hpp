// SPDX-License-Identifier: MIT
#pragma once
/// @file json.hpp
/// xpmap --json: one JSON object per process. The schema is documented at the
/// top of json.cpp.

#include <sys/types.h>
#include <string>
#include <string_view>
#include <vector>

#include "out_buffer.hpp"
#include "xproc/maps.hpp"

namespace xpmap {

/// What --json prints about one process.
struct JsonProcess {
    pid_t pid = 0;
    std::vector<std::string> argv;
    std::string comm;
    std::vector<const xproc::Mapping*> rows;
};

/// Appends one line: the JSON object of `p`, then '\n'.
void write_json(OutBuffer& out, const JsonProcess& p);

/// `s` as a JSON string literal (with the quotes). Valid UTF-8 is kept, control
/// characters are escaped, and every byte that is not part of valid UTF-8 becomes
/// U+FFFD, so the result is always valid JSON text.
void json_string(OutBuffer& out, std::string_view s);

/// The JSON key of an smaps field: "Pss_Dirty" -> "pss_dirty", "MMUPageSize" ->
/// "mmu_page_size", "THPeligible" -> "thp_eligible"; unknown names are converted
/// from CamelCase to snake_case.
std::string json_key(std::string_view smaps_field);

}  // namespace xpmap
