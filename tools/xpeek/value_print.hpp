// SPDX-License-Identifier: MIT
#pragma once
/// @file value_print.hpp
/// gdb's printing of typed register values, as pure functions of bytes: the flags types
/// (eflags, mxcsr), the floating-point formats gdb knows besides float and double (IEEE half,
/// bfloat16, the i387 80-bit extended), integers of any width up to 128 bits in the print
/// formats x z o t d u, and the unions gdb shows for vector registers (xmm, ymm) with their
/// `<repeats N times>` runs.
///
/// The rules follow gdb 13: valprint.c (generic_val_print_flags, value_print_array_elements,
/// print_hex_chars...), target-float.c (floatformat_printf_format: %.Ng with N the format's
/// DECIMAL_DIG, "nan(0xMANTISSA)", "inf", "<invalid float value>") and the amd64-linux
/// target description (64bit-core.xml, 64bit-sse.xml, 64bit-avx.xml). They are checked
/// against /usr/bin/gdb by tests/integration/xpeek_control_test.cpp.

#include <cstdint>
#include <span>
#include <string>

#include "format.hpp"

namespace xpeek {

/// eflags as gdb prints its i386_eflags type: "[ PF ZF IF ]" (set flags, in bit order).
std::string format_eflags(std::uint64_t value);
/// mxcsr as gdb prints its i386_mxcsr type: "[ IE DAZ IM DM ZM OM UM PM FZ ]". The rounding
/// control (bits 13-14) has no field in gdb's type and is not shown.
std::string format_mxcsr(std::uint64_t value);

/// An IEEE 754 binary16 value: %.5g, "inf", "nan(0x200)".
std::string format_half(std::uint16_t bits);
/// A bfloat16 value: %.4g, "inf", "nan(0x40)".
std::string format_bfloat16(std::uint16_t bits);
/// An i387 80-bit extended value (10 little-endian bytes): %.21Lg, "inf", "nan(0x...)", and
/// "<invalid float value>" when the integer bit contradicts the exponent.
std::string format_i387_ext(std::span<const std::byte> bytes);

/// An integer held in `bytes` (little-endian, 1 to 16 bytes) in gdb's print format `format`:
/// x (hex), z (zero-padded hex), o (octal), t (binary), d (signed), u (unsigned), or 0 for
/// the natural format (decimal, signed when `is_signed`).
std::string format_integer_bytes(std::span<const std::byte> bytes, char format, bool is_signed);

/// The unions gdb gives vector registers.
enum class VectorUnion : std::uint8_t {
    vec128,  ///< xmm: v8_bfloat16 v8_half v4_float v2_double v16_int8 v8_int16 v4_int32 v2_int64 uint128
    vec256,  ///< ymm: v16_bfloat16 v16_half v8_float v4_double v32_int8 v16_int16 v8_int32 v4_int64 v2_int128
    vec512,  ///< zmm: v32_bfloat16 v32_half v16_float v8_double v64_int8 v32_int16 v16_int32 v8_int64
             ///< v4_int128
};

/// The formats format_vector accepts: 0 (natural: floats as decimals, integers as signed
/// decimals) and x z o t d u, which print every lane's raw bits (floating lanes too).
bool vector_format_supported(char format) noexcept;

/// A vector register as gdb prints it: "{v8_bfloat16 = {...}, ..., uint128 = 0x...}". `bytes`
/// holds 16 (vec128), 32 (vec256) or 64 (vec512) bytes. Runs of more than `settings.repeat_threshold`
/// equal lanes print as "0x0 <repeats 16 times>"; an array stops with "..." after
/// `settings.print_max` elements.
std::string format_vector(std::span<const std::byte> bytes, VectorUnion type, char format,
                          const PrintSettings& settings);

}  // namespace xpeek
