// SPDX-License-Identifier: MIT
#pragma once
/// @file expression.hpp
/// The small C expression language of xpeek's arguments (gdb's, minus types):
/// numbers (decimal, 0x hex, 0 octal, suffixes u/l ignored), character literals
/// ('T', '\n', '\0', '\x41'), strings ("abc", for find), floats (1.5, 1e-3),
/// symbol names (a symbol means its address; &sym is accepted too; 'odd.name'
/// quotes a name), $registers, unary - + ~ &, binary * / % + - << >> & ^ |, and
/// parentheses.
///
/// Names and registers are looked up through a `Scope`, so the evaluator knows
/// nothing about processes: issue 5 plugs real registers in by implementing
/// `Scope::register_value`.

#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace xpeek {

/// A value with the C type gdb would give it (what `find` needs to size a pattern).
struct Value {
    enum class Kind : std::uint8_t {
        integer,
        floating,
        string,
        address,
        raw,         ///< register bytes printed by `type` (x87 st, xmm, ymm, ymm0h); see `bytes`
        void_value,  ///< an unset convenience variable: prints "void", no arithmetic
    };
    /// gdb types that print their own way; `print` keeps them through the value history
    /// ($1, $, $$2) and pointer arithmetic keeps a code pointer a code pointer.
    enum class Type : std::uint8_t {
        plain,
        code_pointer,  ///< `void (*)()` ($pc): "(void (*)()) 0x... <sym+off>"
        eflags,        ///< "[ PF ZF IF ]"
        mxcsr,         ///< "[ IM DM ZM OM UM PM ]"
        i387_ext,      ///< Kind::raw, 10 bytes
        vec128,        ///< Kind::raw, 16 bytes: xmm
        vec256,        ///< Kind::raw, 32 bytes: ymm
        vec512,        ///< Kind::raw, 64 bytes: zmm
        uint128,       ///< Kind::raw, 16 bytes: ymm0h...
    };
    Kind kind = Kind::integer;
    Type type = Type::plain;
    std::int64_t integer = 0;  ///< integer and address values (addresses as unsigned bits)
    double floating = 0;
    std::string text;   ///< string literal bytes, no NUL; for a void, the variable's name
    unsigned size = 4;  ///< bytes of the C type: char 1, int 4, long 8, double 8, address 8
    bool is_unsigned = false;
    unsigned pointee = 1;          ///< address values: bytes per element for + and - ((int *)p + 1 is p + 4)
    std::vector<std::byte> bytes;  ///< Kind::raw: the register's bytes, little-endian

    std::uint64_t as_address() const noexcept {
        return kind == Kind::floating ? static_cast<std::uint64_t>(static_cast<std::int64_t>(floating))
                                      : static_cast<std::uint64_t>(integer);
    }
};

/// A C scalar type, for casts "(long)&sym" and `set {TYPE}ADDR = VALUE`.
struct CType {
    std::string_view name;  ///< normalized: words separated by one space
    unsigned size = 0;      ///< bytes
    bool is_float = false;
    bool is_unsigned = false;
    bool is_pointer = false;  ///< "TYPE *": an address
    unsigned pointee = 1;     ///< for pointers: the size of what they point to
};

/// The type named by `text` ("unsigned  long", "int8_t", "char *"), or nullopt.
std::optional<CType> find_ctype(std::string_view text);

/// `v` converted to `type` as C does (integers truncated/extended, floats converted).
Value convert(const Value& v, const CType& type);

/// Where names come from.
class Scope {
  public:
    virtual ~Scope() = default;
    /// Runtime address of a symbol, or nullopt when no module defines it.
    virtual std::optional<std::uint64_t> symbol_address(std::string_view name) = 0;
    /// $name (without the '$'): a register or convenience variable, or an error message.
    /// The value history comes here too: "" for $, "N" for $N, "$" for $$, "$N" for $$N.
    virtual std::expected<Value, std::string> register_value(std::string_view name) = 0;
};

/// Evaluates `text` completely; the error is a gdb-style one-line message
/// ("No symbol \"foo\" in current context.", "A syntax error in expression, near `)'.").
/// The result is a number, an address or a string: a vector register or a void value is an
/// error ("Value can't be converted to integer."), an x87 register becomes a double.
std::expected<Value, std::string> evaluate(std::string_view text, Scope& scope);

/// As `evaluate`, for `print`: the result may also be a register value of Kind::raw or a void.
std::expected<Value, std::string> evaluate_any(std::string_view text, Scope& scope);

/// Evaluates the longest prefix of `text` that is an expression, stopping at a top-level
/// ',' (gdb's parse_to_comma_and_eval); `text` is advanced past what was used.
std::expected<Value, std::string> evaluate_to_comma(std::string_view& text, Scope& scope);

/// Parses one C character literal body at the start of `text` (after the opening quote):
/// 'a', '\n', '\033', '\x1b'. Advances `text`. nullopt if malformed.
std::optional<int> parse_char_escape(std::string_view& text);

}  // namespace xpeek
