// SPDX-License-Identifier: MIT
#include "value_print.hpp"

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace xpeek {
namespace {

using u128 = unsigned __int128;

struct FlagName {
    int bit;
    const char* name;
};

std::string flags_text(std::uint64_t value, std::span<const FlagName> flags) {
    // gdb's val_print_type_code_flags: "[", then " NAME" for every set field, then " ]".
    std::string s = "[";
    for (const auto& f : flags) {
        if ((value >> f.bit) & 1u) {
            s += ' ';
            s += f.name;
        }
    }
    s += " ]";
    return s;
}

u128 load(std::span<const std::byte> bytes) {
    u128 v = 0;
    for (std::size_t i = bytes.size(); i-- > 0;) {
        v = (v << 8) | std::to_integer<unsigned>(bytes[i]);
    }
    return v;
}

std::string to_base(u128 v, unsigned base) {
    if (v == 0) {
        return "0";
    }
    static constexpr char DIGITS[] = "0123456789abcdef";
    std::string s;
    while (v != 0) {
        s.insert(s.begin(), DIGITS[static_cast<unsigned>(v % base)]);
        v /= base;
    }
    return s;
}

std::string printf_string(const char* fmt, auto... args) {
    char buf[128];
    const int n = std::snprintf(buf, sizeof buf, fmt, args...);
    return std::string(buf, n < 0 ? 0 : static_cast<std::size_t>(n));
}

/// A small IEEE format (half, bfloat16) through gdb's generic floatformat rules.
std::string format_small_float(std::uint16_t bits, int exp_bits, int man_bits, int digits) {
    const char* sign = (bits >> 15) != 0 ? "-" : "";
    const unsigned exp_max = (1u << exp_bits) - 1;
    const unsigned exponent = (bits >> man_bits) & exp_max;
    const unsigned mantissa = bits & ((1u << man_bits) - 1);
    if (exponent == exp_max) {
        if (mantissa != 0) {
            return printf_string("%snan(0x%x)", sign, mantissa);
        }
        return std::string(sign) + "inf";
    }
    const int bias = static_cast<int>(exp_max >> 1);
    double v = exponent == 0 ? std::ldexp(static_cast<double>(mantissa), 1 - bias - man_bits)
                             : std::ldexp(static_cast<double>(mantissa | (1u << man_bits)),
                                          static_cast<int>(exponent) - bias - man_bits);
    if (*sign != '\0') {
        v = -v;
    }
    return printf_string("%.*g", digits, v);
}

enum class LaneKind : std::uint8_t { bfloat16, half, f32, f64, i8, i16, i32, i64, i128, u128 };

struct Member {
    const char* name;
    LaneKind kind;
    unsigned lane_bytes;
    bool array;  ///< false: one scalar filling the register (uint128)
};

constexpr Member VEC128[] = {
    {"v8_bfloat16", LaneKind::bfloat16, 2, true}, {"v8_half", LaneKind::half, 2, true},
    {"v4_float", LaneKind::f32, 4, true},         {"v2_double", LaneKind::f64, 8, true},
    {"v16_int8", LaneKind::i8, 1, true},          {"v8_int16", LaneKind::i16, 2, true},
    {"v4_int32", LaneKind::i32, 4, true},         {"v2_int64", LaneKind::i64, 8, true},
    {"uint128", LaneKind::u128, 16, false},
};
constexpr Member VEC256[] = {
    {"v16_bfloat16", LaneKind::bfloat16, 2, true}, {"v16_half", LaneKind::half, 2, true},
    {"v8_float", LaneKind::f32, 4, true},          {"v4_double", LaneKind::f64, 8, true},
    {"v32_int8", LaneKind::i8, 1, true},           {"v16_int16", LaneKind::i16, 2, true},
    {"v8_int32", LaneKind::i32, 4, true},          {"v4_int64", LaneKind::i64, 8, true},
    {"v2_int128", LaneKind::i128, 16, true},
};
constexpr Member VEC512[] = {
    {"v32_bfloat16", LaneKind::bfloat16, 2, true}, {"v32_half", LaneKind::half, 2, true},
    {"v16_float", LaneKind::f32, 4, true},         {"v8_double", LaneKind::f64, 8, true},
    {"v64_int8", LaneKind::i8, 1, true},           {"v32_int16", LaneKind::i16, 2, true},
    {"v16_int32", LaneKind::i32, 4, true},         {"v8_int64", LaneKind::i64, 8, true},
    {"v4_int128", LaneKind::i128, 16, true},
};

std::string format_lane(std::span<const std::byte> lane, LaneKind kind, char format) {
    if (format != 0) {
        // x z o t d u print the raw bits, floating lanes included (gdb 8.1 and later).
        return format_integer_bytes(lane, format, false);
    }
    switch (kind) {
        case LaneKind::bfloat16:
            return format_bfloat16(static_cast<std::uint16_t>(load(lane)));
        case LaneKind::half:
            return format_half(static_cast<std::uint16_t>(load(lane)));
        case LaneKind::f32: {
            float f;
            std::memcpy(&f, lane.data(), sizeof f);
            return format_float(f);
        }
        case LaneKind::f64: {
            double d;
            std::memcpy(&d, lane.data(), sizeof d);
            return format_double(d);
        }
        case LaneKind::u128:
            return format_integer_bytes(lane, 0, false);
        default:
            return format_integer_bytes(lane, 0, true);
    }
}

/// gdb's value_print_array_elements for one array member.
std::string format_array(std::span<const std::byte> bytes, const Member& m, char format,
                         const PrintSettings& settings) {
    const std::size_t len = bytes.size() / m.lane_bytes;
    auto lane = [&](std::size_t i) { return bytes.subspan(i * m.lane_bytes, m.lane_bytes); };
    std::string s = "{";
    unsigned things_printed = 0;
    std::size_t i = 0;
    for (; i < len && things_printed < settings.print_max; ++i) {
        if (i != 0) {
            s += ", ";
        }
        std::size_t reps = 1;
        std::size_t next = i + 1;
        if (settings.repeat_threshold != ~0u) {
            while (next < len && std::memcmp(lane(next).data(), lane(i).data(), m.lane_bytes) == 0) {
                ++reps;
                ++next;
            }
        }
        s += format_lane(lane(i), m.kind, format);
        if (reps > settings.repeat_threshold) {
            s += " <repeats " + std::to_string(reps) + " times>";
            i = next - 1;
            things_printed += settings.repeat_threshold;
        } else {
            ++things_printed;
        }
    }
    if (i < len) {
        s += "...";
    }
    s += "}";
    return s;
}

}  // namespace

std::string format_eflags(std::uint64_t value) {
    // 64bit-core.xml's i386_eflags (bit 1 is a nameless field: never printed).
    static constexpr FlagName FLAGS[] = {
        {0, "CF"},  {2, "PF"},  {4, "AF"},  {6, "ZF"},  {7, "SF"},  {8, "TF"},   {9, "IF"},   {10, "DF"},
        {11, "OF"}, {14, "NT"}, {16, "RF"}, {17, "VM"}, {18, "AC"}, {19, "VIF"}, {20, "VIP"}, {21, "ID"}};
    return flags_text(value, FLAGS);
}

std::string format_mxcsr(std::uint64_t value) {
    // 64bit-sse.xml's i386_mxcsr: no field for the rounding control (bits 13-14).
    static constexpr FlagName FLAGS[] = {{0, "IE"},  {1, "DE"},  {2, "ZE"},  {3, "OE"}, {4, "UE"},
                                         {5, "PE"},  {6, "DAZ"}, {7, "IM"},  {8, "DM"}, {9, "ZM"},
                                         {10, "OM"}, {11, "UM"}, {12, "PM"}, {15, "FZ"}};
    return flags_text(value, FLAGS);
}

std::string format_half(std::uint16_t bits) {
    // DECIMAL_DIG of an 11-bit significand: ceil(1 + 11 log10 2) = 5.
    return format_small_float(bits, 5, 10, 5);
}

std::string format_bfloat16(std::uint16_t bits) {
    // 8-bit significand: ceil(1 + 8 log10 2) = 4.
    return format_small_float(bits, 8, 7, 4);
}

std::string format_i387_ext(std::span<const std::byte> bytes) {
    if (bytes.size() < 10) {
        return "<unavailable>";
    }
    std::uint64_t mantissa = 0;
    std::memcpy(&mantissa, bytes.data(), 8);
    const unsigned top = std::to_integer<unsigned>(bytes[8]) | (std::to_integer<unsigned>(bytes[9]) << 8);
    const unsigned exponent = top & 0x7fff;
    const char* sign = (top & 0x8000) != 0 ? "-" : "";
    const bool int_bit = (mantissa >> 63) != 0;
    // floatformat_i387_ext_is_valid: the integer bit is set exactly when the exponent is not 0.
    if ((exponent == 0) != !int_bit) {
        return "<invalid float value>";
    }
    if (exponent == 0x7fff) {
        if ((mantissa << 1) == 0) {
            return std::string(sign) + "inf";
        }
        // floatformat_mantissa: the first 32 bits with %lx, the next 32 with %08lx.
        return printf_string("%snan(0x%lx%08lx)", sign, static_cast<unsigned long>(mantissa >> 32),
                             static_cast<unsigned long>(mantissa & 0xffffffffu));
    }
    long double v = 0;
    std::memcpy(&v, bytes.data(), 10);
    // 64-bit significand: ceil(1 + 64 log10 2) = 21 digits.
    return printf_string("%.21Lg", v);
}

std::string format_integer_bytes(std::span<const std::byte> bytes, char format, bool is_signed) {
    const std::size_t n = std::min<std::size_t>(bytes.size(), 16);
    const u128 raw = load(bytes.first(n));
    const unsigned bits = static_cast<unsigned>(n) * 8;
    const bool negative = n > 0 && (raw >> (bits - 1)) != 0;
    auto decimal_signed = [&] {
        if (!negative) {
            return to_base(raw, 10);
        }
        const u128 magnitude = bits == 128 ? ~raw + 1 : ((u128{1} << bits) - raw);
        return "-" + to_base(magnitude, 10);
    };
    switch (format) {
        case 'x':
            return "0x" + to_base(raw, 16);
        case 'z': {
            std::string digits = to_base(raw, 16);
            if (digits.size() < n * 2) {
                digits.insert(0, n * 2 - digits.size(), '0');
            }
            return "0x" + digits;
        }
        case 'o':
            return raw == 0 ? "0" : "0" + to_base(raw, 8);
        case 't':
            return to_base(raw, 2);
        case 'd':
            return decimal_signed();
        case 'u':
            return to_base(raw, 10);
        default:
            return is_signed ? decimal_signed() : to_base(raw, 10);
    }
}

bool vector_format_supported(char format) noexcept {
    switch (format) {
        case 0:
        case 'x':
        case 'z':
        case 'o':
        case 't':
        case 'd':
        case 'u':
            return true;
        default:
            return false;
    }
}

std::string format_vector(std::span<const std::byte> bytes, VectorUnion type, char format,
                          const PrintSettings& settings) {
    const std::span<const Member> members = type == VectorUnion::vec128   ? std::span<const Member>(VEC128)
                                            : type == VectorUnion::vec256 ? std::span<const Member>(VEC256)
                                                                          : std::span<const Member>(VEC512);
    std::string s = "{";
    bool first = true;
    for (const Member& m : members) {
        if (!first) {
            s += ", ";
        }
        first = false;
        s += m.name;
        s += " = ";
        s += m.array ? format_array(bytes, m, format, settings) : format_lane(bytes, m.kind, format);
    }
    s += "}";
    return s;
}

}  // namespace xpeek
