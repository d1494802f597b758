// SPDX-License-Identifier: MIT
#pragma once
/// @file commands.hpp
/// The xshm subcommands, each a thin layer over xproc/shm.hpp. Each returns the
/// exit status: 0 done, 1 an error (reported on stderr as one line,
/// "xshm: <Error::message()>"), 2 a bad argument (one line too).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace xshm {

/// Exit statuses.
inline constexpr int EXIT_OK = 0;
inline constexpr int EXIT_ERROR = 1;
inline constexpr int EXIT_USAGE = 2;

struct LsArgs {
    bool json = false;
};

struct CreateArgs {
    std::string name;
    std::string size;
    std::string mode = "0600";
};

struct HexdumpArgs {
    std::string name;
    std::optional<std::string> offset;
    std::optional<std::string> length;
};

struct AttachArgs {
    std::string pid;
    std::string address;
    bool write = false;
    std::vector<std::string> hexdump;  ///< OFFSET LENGTH, when --hexdump was given
    std::optional<std::string> out;    ///< --out FILE ("-": standard output)
};

int run_ls(const LsArgs& args);
int run_create(const CreateArgs& args);
int run_rm(const std::vector<std::string>& names);
int run_cat(const std::string& name);
int run_hexdump(const HexdumpArgs& args);
int run_who(const std::string& name);
int run_attach(const AttachArgs& args);

}  // namespace xshm
