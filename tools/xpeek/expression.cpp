// SPDX-License-Identifier: MIT
#include "expression.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

namespace xpeek {
namespace {

using Expected = std::expected<Value, std::string>;

bool is_ident_start(char c) {
    return std::isalpha(static_cast<unsigned char>(c)) != 0 || c == '_';
}
bool is_ident_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '.' || c == '@';
}

Value make_int(std::int64_t v, unsigned size, bool is_unsigned) {
    Value r;
    r.kind = Value::Kind::integer;
    r.integer = v;
    r.size = size;
    r.is_unsigned = is_unsigned;
    return r;
}

/// C's usual arithmetic conversions, simplified: the wider operand's type, at least int.
Value arith_result(const Value& a, const Value& b, std::int64_t v) {
    if (a.kind == Value::Kind::address || b.kind == Value::Kind::address) {
        Value r = make_int(v, 8, true);
        r.kind = Value::Kind::address;
        return r;
    }
    unsigned size = std::max({a.size, b.size, 4u});
    bool uns = (a.size == size && a.is_unsigned) || (b.size == size && b.is_unsigned);
    if (size == 4) {
        v = uns ? static_cast<std::int64_t>(static_cast<std::uint32_t>(v))
                : static_cast<std::int64_t>(static_cast<std::int32_t>(v));
    }
    return make_int(v, size, uns);
}

constexpr CType C_TYPES[] = {
    {"char", 1, false, false, false},
    {"signed char", 1, false, false, false},
    {"unsigned char", 1, false, true, false},
    {"short", 2, false, false, false},
    {"short int", 2, false, false, false},
    {"signed short", 2, false, false, false},
    {"unsigned short", 2, false, true, false},
    {"unsigned short int", 2, false, true, false},
    {"int", 4, false, false, false},
    {"signed", 4, false, false, false},
    {"signed int", 4, false, false, false},
    {"unsigned", 4, false, true, false},
    {"unsigned int", 4, false, true, false},
    {"long", 8, false, false, false},
    {"long int", 8, false, false, false},
    {"signed long", 8, false, false, false},
    {"unsigned long", 8, false, true, false},
    {"unsigned long int", 8, false, true, false},
    {"long long", 8, false, false, false},
    {"long long int", 8, false, false, false},
    {"signed long long", 8, false, false, false},
    {"unsigned long long", 8, false, true, false},
    {"unsigned long long int", 8, false, true, false},
    {"int8_t", 1, false, false, false},
    {"uint8_t", 1, false, true, false},
    {"int16_t", 2, false, false, false},
    {"uint16_t", 2, false, true, false},
    {"int32_t", 4, false, false, false},
    {"uint32_t", 4, false, true, false},
    {"int64_t", 8, false, false, false},
    {"uint64_t", 8, false, true, false},
    {"float", 4, true, false, false},
    {"double", 8, true, false, false},
    {"void", 0, false, false, false},
};

class Parser {
  public:
    Parser(std::string_view text, Scope& scope, bool stop_at_comma, bool allow_any = false)
        : m_text(text), m_scope(scope), m_stop_at_comma(stop_at_comma), m_allow_any(allow_any) {}

    Expected parse_all() {
        skip_spaces();
        if (at_end()) {
            return std::unexpected(std::string("A syntax error in expression, near `'."));
        }
        auto v = parse_binary(0);
        if (!v) {
            return v;
        }
        skip_spaces();
        if (!at_end()) {
            return syntax_error();
        }
        if (!m_allow_any && v->kind == Value::Kind::void_value) {
            // Only print shows a void; x, find, break... need a number.
            return std::unexpected("$" + v->text + " is void (not a register and never set).");
        }
        if (!m_allow_any && v->kind == Value::Kind::raw) {
            return scalar(*v, "Value can't be converted to integer.");
        }
        return v;
    }
    std::size_t position() const { return m_pos; }

  private:
    bool at_end() const { return m_pos >= m_text.size() || (m_stop_at_comma && m_text[m_pos] == ','); }
    char peek(std::size_t ahead = 0) const {
        return m_pos + ahead < m_text.size() ? m_text[m_pos + ahead] : '\0';
    }
    void skip_spaces() {
        while (m_pos < m_text.size() && std::isspace(static_cast<unsigned char>(m_text[m_pos])) != 0) {
            ++m_pos;
        }
    }
    std::unexpected<std::string> syntax_error() const {
        std::string rest(m_text.substr(std::min(m_pos, m_text.size())));
        return std::unexpected("A syntax error in expression, near `" + rest + "'.");
    }

    /// `v` as an operand of arithmetic: an x87 register becomes its value (as a double), a
    /// vector or a void is an error with `message`.
    static Expected scalar(const Value& v, const char* message) {
        if (v.kind == Value::Kind::raw && v.type == Value::Type::i387_ext && v.bytes.size() >= 10) {
            long double ld = 0;
            std::memcpy(&ld, v.bytes.data(), 10);
            Value r;
            r.kind = Value::Kind::floating;
            r.floating = static_cast<double>(ld);
            r.size = 8;
            return r;
        }
        if (v.kind == Value::Kind::raw || v.kind == Value::Kind::void_value) {
            return std::unexpected(std::string(message));
        }
        return v;
    }

    /// Binary operator at the cursor and its precedence (higher binds tighter), or 0.
    int binary_op(std::string_view& op) const {
        if (at_end()) {
            return 0;
        }
        const char c = peek();
        const char d = peek(1);
        if ((c == '<' && d == '<') || (c == '>' && d == '>')) {
            op = m_text.substr(m_pos, 2);
            return 5;
        }
        switch (c) {
            case '|':
                op = "|";
                return 1;
            case '^':
                op = "^";
                return 2;
            case '&':
                op = "&";
                return 3;
            case '+':
            case '-':
                op = m_text.substr(m_pos, 1);
                return 6;
            case '*':
            case '/':
            case '%':
                op = m_text.substr(m_pos, 1);
                return 7;
            default:
                return 0;
        }
    }

    Expected parse_binary(int min_prec) {
        auto lhs = parse_unary();
        if (!lhs) {
            return lhs;
        }
        for (;;) {
            skip_spaces();
            std::string_view op;
            const int prec = binary_op(op);
            if (prec == 0 || prec < min_prec) {
                return lhs;
            }
            m_pos += op.size();
            auto rhs = parse_binary(prec + 1);
            if (!rhs) {
                return rhs;
            }
            static constexpr const char* NOT_A_NUMBER =
                "Argument to arithmetic operation not a number or boolean.";
            auto a = scalar(*lhs, NOT_A_NUMBER);
            if (!a) {
                return a;
            }
            auto b = scalar(*rhs, NOT_A_NUMBER);
            if (!b) {
                return b;
            }
            auto r = apply(op, *a, *b);
            if (!r) {
                return r;
            }
            lhs = std::move(r);
        }
    }

    Expected apply(std::string_view op, const Value& a, const Value& b) {
        if (a.kind == Value::Kind::string || b.kind == Value::Kind::string) {
            return std::unexpected(std::string("Argument to arithmetic operation not a number or boolean."));
        }
        if (a.kind == Value::Kind::floating || b.kind == Value::Kind::floating) {
            const double x = a.kind == Value::Kind::floating ? a.floating : static_cast<double>(a.integer);
            const double y = b.kind == Value::Kind::floating ? b.floating : static_cast<double>(b.integer);
            Value r;
            r.kind = Value::Kind::floating;
            r.size = 8;
            if (op == "+") {
                r.floating = x + y;
            } else if (op == "-") {
                r.floating = x - y;
            } else if (op == "*") {
                r.floating = x * y;
            } else if (op == "/") {
                r.floating = x / y;
            } else {
                return std::unexpected(std::string("Integer only operation ") + std::string(op) + ".");
            }
            return r;
        }
        const bool a_ptr = a.kind == Value::Kind::address;
        const bool b_ptr = b.kind == Value::Kind::address;
        if ((op == "+" || op == "-") && (a_ptr || b_ptr)) {
            // Pointer arithmetic scales by the element size (1 for a bare symbol: bytes).
            Value r = a_ptr ? a : b;
            const auto pa = static_cast<std::uint64_t>(a.integer);
            const auto pb = static_cast<std::uint64_t>(b.integer);
            if (a_ptr && b_ptr) {
                if (op == "+") {
                    return std::unexpected(std::string("Cannot add two pointers."));
                }
                return make_int(static_cast<std::int64_t>(pa - pb) / static_cast<std::int64_t>(a.pointee), 8,
                                false);
            }
            if (op == "-" && b_ptr) {
                return std::unexpected(std::string("Cannot subtract a pointer from an integer."));
            }
            const std::uint64_t step = static_cast<std::uint64_t>(r.pointee);
            r.integer = static_cast<std::int64_t>(a_ptr ? (op == "+" ? pa + pb * step : pa - pb * step)
                                                        : pb + pa * step);
            return r;
        }
        const auto x = static_cast<std::uint64_t>(a.integer);
        const auto y = static_cast<std::uint64_t>(b.integer);
        const bool uns = a.is_unsigned || b.is_unsigned;
        std::uint64_t v = 0;
        if (op == "+") {
            v = x + y;
        } else if (op == "-") {
            v = x - y;
        } else if (op == "*") {
            v = x * y;
        } else if (op == "/" || op == "%") {
            if (y == 0) {
                return std::unexpected(std::string("Division by zero"));
            }
            if (uns) {
                v = op == "/" ? x / y : x % y;
            } else {
                const auto sx = static_cast<std::int64_t>(x);
                const auto sy = static_cast<std::int64_t>(y);
                if (sy == -1) {
                    v = op == "/" ? 0 - x : 0;
                } else {
                    v = static_cast<std::uint64_t>(op == "/" ? sx / sy : sx % sy);
                }
            }
        } else if (op == "<<") {
            v = y >= 64 ? 0 : x << y;
        } else if (op == ">>") {
            v = y >= 64 ? 0 : (uns ? x >> y : static_cast<std::uint64_t>(static_cast<std::int64_t>(x) >> y));
        } else if (op == "&") {
            v = x & y;
        } else if (op == "|") {
            v = x | y;
        } else if (op == "^") {
            v = x ^ y;
        }
        return arith_result(a, b, static_cast<std::int64_t>(v));
    }

    Expected parse_unary() {
        skip_spaces();
        if (at_end()) {
            return syntax_error();
        }
        const char c = peek();
        if (c == '-' || c == '+' || c == '~') {
            ++m_pos;
            auto operand = parse_unary();
            if (!operand) {
                return operand;
            }
            auto v = scalar(*operand, "Argument to arithmetic operation not a number or boolean.");
            if (!v) {
                return v;
            }
            if (c == '+') {
                return v;
            }
            if (v->kind == Value::Kind::string) {
                return std::unexpected(
                    std::string("Argument to arithmetic operation not a number or boolean."));
            }
            if (v->kind == Value::Kind::floating) {
                if (c == '~') {
                    return std::unexpected(
                        std::string("Argument to complement operation not an integer, boolean."));
                }
                v->floating = -v->floating;
                return v;
            }
            const auto x = static_cast<std::uint64_t>(v->integer);
            const std::int64_t r = static_cast<std::int64_t>(c == '-' ? 0 - x : ~x);
            Value zero = make_int(0, 4, false);
            return arith_result(*v, zero, r);
        }
        if (c == '&') {
            ++m_pos;
            skip_spaces();
            auto v = parse_unary();
            if (!v) {
                return v;
            }
            if (v->kind != Value::Kind::address) {
                return std::unexpected(
                    std::string("Attempt to take address of value not located in memory."));
            }
            return v;
        }
        if (c == '*') {
            return std::unexpected(
                std::string("Dereferencing needs a type, and xpeek reads minimal symbols only: use x/a ADDR "
                            "to read a pointer."));
        }
        return parse_primary();
    }

    Expected parse_primary() {
        skip_spaces();
        const char c = peek();
        if (c == '(') {
            // A cast: "(TYPE)" or "(TYPE *)" followed by an operand.
            const std::size_t close = m_text.find(')', m_pos);
            if (close != std::string_view::npos) {
                if (const auto type = find_ctype(m_text.substr(m_pos + 1, close - m_pos - 1))) {
                    m_pos = close + 1;
                    auto operand = parse_unary();
                    if (!operand) {
                        return operand;
                    }
                    auto v = scalar(*operand, "Invalid cast.");
                    if (!v) {
                        return v;
                    }
                    if (v->kind == Value::Kind::string) {
                        return std::unexpected(std::string("Invalid cast."));
                    }
                    return convert(*v, *type);
                }
            }
            ++m_pos;
            auto v = parse_binary(0);
            if (!v) {
                return v;
            }
            skip_spaces();
            if (peek() != ')') {
                return syntax_error();
            }
            ++m_pos;
            return v;
        }
        if (std::isdigit(static_cast<unsigned char>(c)) != 0 ||
            (c == '.' && std::isdigit(static_cast<unsigned char>(peek(1))) != 0)) {
            return parse_number();
        }
        if (c == '\'') {
            return parse_quoted();
        }
        if (c == '"') {
            return parse_string();
        }
        if (c == '$') {
            ++m_pos;
            if (peek() == '$') {
                // $$ and $$N: the value history counted back from the last value.
                const std::size_t start = m_pos++;
                while (std::isdigit(static_cast<unsigned char>(peek())) != 0) {
                    ++m_pos;
                }
                return m_scope.register_value(m_text.substr(start, m_pos - start));
            }
            const std::size_t start = m_pos;
            while (m_pos < m_text.size() && is_ident_char(m_text[m_pos]) && m_text[m_pos] != '.') {
                ++m_pos;
            }
            return m_scope.register_value(m_text.substr(start, m_pos - start));
        }
        if (is_ident_start(c)) {
            const std::size_t start = m_pos;
            while (m_pos < m_text.size() && is_ident_char(m_text[m_pos])) {
                ++m_pos;
            }
            return symbol(m_text.substr(start, m_pos - start));
        }
        return syntax_error();
    }

    Expected symbol(std::string_view name) {
        const auto addr = m_scope.symbol_address(name);
        if (!addr) {
            return std::unexpected("No symbol \"" + std::string(name) + "\" in current context.");
        }
        Value v = make_int(static_cast<std::int64_t>(*addr), 8, true);
        v.kind = Value::Kind::address;
        return v;
    }

    Expected parse_number() {
        const std::size_t start = m_pos;
        const bool hex = peek() == '0' && (peek(1) == 'x' || peek(1) == 'X');
        std::size_t end = m_pos + (hex ? 2 : 0);
        bool is_float = false;
        while (end < m_text.size()) {
            const char ch = m_text[end];
            if (std::isxdigit(static_cast<unsigned char>(ch)) != 0 &&
                (hex || std::isdigit(static_cast<unsigned char>(ch)) != 0)) {
                ++end;
            } else if (!hex && (ch == '.' || ch == 'e' || ch == 'E')) {
                is_float = true;
                ++end;
                if ((ch == 'e' || ch == 'E') && end < m_text.size() &&
                    (m_text[end] == '-' || m_text[end] == '+')) {
                    ++end;
                }
            } else {
                break;
            }
        }
        const std::string digits(m_text.substr(start, end - start));
        if (is_float) {
            char* stop = nullptr;
            errno = 0;
            const double d = std::strtod(digits.c_str(), &stop);
            if (*stop != '\0') {
                return std::unexpected("Invalid number \"" + digits + "\".");
            }
            m_pos = end;
            // a trailing 'f' makes a float, as in C
            unsigned size = 8;
            if (m_pos < m_text.size() && (m_text[m_pos] == 'f' || m_text[m_pos] == 'F')) {
                ++m_pos;
                size = 4;
            }
            Value v;
            v.kind = Value::Kind::floating;
            v.floating = d;
            v.size = size;
            return v;
        }
        char* stop = nullptr;
        errno = 0;
        const int base = hex ? 16 : (digits.size() > 1 && digits[0] == '0' ? 8 : 10);
        const unsigned long long n = std::strtoull(hex ? digits.c_str() + 2 : digits.c_str(), &stop, base);
        if (*stop != '\0' || errno == ERANGE || (hex && digits.size() == 2)) {
            return std::unexpected("Invalid number \"" + digits + "\".");
        }
        m_pos = end;
        bool suffix_u = false;
        int suffix_l = 0;
        while (m_pos < m_text.size()) {
            const char s = m_text[m_pos];
            if (s == 'u' || s == 'U') {
                suffix_u = true;
            } else if (s == 'l' || s == 'L') {
                ++suffix_l;
            } else {
                break;
            }
            ++m_pos;
        }
        if (m_pos < m_text.size() && is_ident_char(m_text[m_pos])) {
            return std::unexpected("Invalid number \"" + digits + std::string(1, m_text[m_pos]) + "\".");
        }
        // C's rules for the type of a literal (decimal: int, long; hex/octal: int, unsigned, long, unsigned
        // long).
        unsigned size = suffix_l > 0 ? 8 : 4;
        bool uns = suffix_u;
        if (size == 4) {
            if (uns ? n > std::numeric_limits<std::uint32_t>::max()
                    : n > std::numeric_limits<std::int32_t>::max()) {
                if (base != 10 && !uns && n <= std::numeric_limits<std::uint32_t>::max()) {
                    uns = true;
                } else {
                    size = 8;
                }
            }
        }
        if (size == 8 && !uns &&
            n > static_cast<unsigned long long>(std::numeric_limits<std::int64_t>::max())) {
            uns = true;
        }
        return make_int(static_cast<std::int64_t>(n), size, uns);
    }

    Expected parse_quoted() {
        // 'c' is a character; 'longer.name' quotes a symbol (gdb's way to name odd symbols).
        const std::size_t close = m_text.find('\'', m_pos + 1);
        std::string_view body = m_text.substr(m_pos + 1);
        const std::size_t before = body.size();
        auto ch = parse_char_escape(body);
        if (ch && !body.empty() && body.front() == '\'') {
            m_pos += 1 + (before - body.size()) + 1;
            return make_int(static_cast<signed char>(*ch), 1, false);
        }
        if (close != std::string_view::npos && close > m_pos + 1) {
            const std::string_view name = m_text.substr(m_pos + 1, close - m_pos - 1);
            m_pos = close + 1;
            return symbol(name);
        }
        return std::unexpected(std::string("Unmatched single quote."));
    }

    Expected parse_string() {
        ++m_pos;
        std::string text;
        while (m_pos < m_text.size() && m_text[m_pos] != '"') {
            std::string_view rest = m_text.substr(m_pos);
            const std::size_t before = rest.size();
            auto ch = parse_char_escape(rest);
            if (!ch) {
                return std::unexpected(std::string("Unterminated string in expression."));
            }
            text += static_cast<char>(*ch);
            m_pos += before - rest.size();
        }
        if (m_pos >= m_text.size()) {
            return std::unexpected(std::string("Unterminated string in expression."));
        }
        ++m_pos;
        Value v;
        v.kind = Value::Kind::string;
        v.size = static_cast<unsigned>(text.size());
        v.text = std::move(text);
        return v;
    }

    std::string_view m_text;
    std::size_t m_pos = 0;
    Scope& m_scope;
    bool m_stop_at_comma;
    bool m_allow_any;
};

}  // namespace

std::optional<CType> find_ctype(std::string_view text) {
    std::string norm;
    int pointers = 0;
    std::size_t i = 0;
    while (i < text.size()) {
        const char c = text[i];
        if (std::isspace(static_cast<unsigned char>(c)) != 0) {
            ++i;
            continue;
        }
        if (c == '*') {
            ++pointers;
            ++i;
            continue;
        }
        if (pointers > 0 || !is_ident_start(c)) {
            return std::nullopt;
        }
        std::size_t j = i;
        while (j < text.size() &&
               (std::isalnum(static_cast<unsigned char>(text[j])) != 0 || text[j] == '_')) {
            ++j;
        }
        norm += (norm.empty() ? "" : " ") + std::string(text.substr(i, j - i));
        i = j;
    }
    for (const CType& t : C_TYPES) {
        if (t.name == norm) {
            if (pointers > 0) {
                CType p = t;
                p.pointee = pointers > 1 ? 8 : (t.size == 0 ? 1 : t.size);
                p.size = 8;
                p.is_pointer = true;
                p.is_unsigned = true;
                p.is_float = false;
                return p;
            }
            if (t.size == 0) {
                return std::nullopt;  // plain void
            }
            return t;
        }
    }
    return std::nullopt;
}

Value convert(const Value& v, const CType& type) {
    Value r;
    if (type.is_float) {
        r.kind = Value::Kind::floating;
        r.size = type.size;
        double d = v.kind == Value::Kind::floating
                       ? v.floating
                       : (v.is_unsigned ? static_cast<double>(static_cast<std::uint64_t>(v.integer))
                                        : static_cast<double>(v.integer));
        if (type.size == 4) {
            d = static_cast<double>(static_cast<float>(d));
        }
        r.floating = d;
        return r;
    }
    std::uint64_t bits = 0;
    if (v.kind == Value::Kind::floating) {
        bits = std::isnan(v.floating) ? 0 : static_cast<std::uint64_t>(static_cast<std::int64_t>(v.floating));
    } else {
        bits = static_cast<std::uint64_t>(v.integer);
    }
    r.size = type.size;
    r.is_unsigned = type.is_unsigned;
    if (type.size < 8) {
        const unsigned sh = 64 - type.size * 8;
        bits = type.is_unsigned ? (bits << sh) >> sh
                                : static_cast<std::uint64_t>(static_cast<std::int64_t>(bits << sh) >> sh);
    }
    r.integer = static_cast<std::int64_t>(bits);
    r.kind = type.is_pointer ? Value::Kind::address : Value::Kind::integer;
    r.pointee = type.is_pointer ? type.pointee : 1;
    return r;
}

std::optional<int> parse_char_escape(std::string_view& text) {
    if (text.empty()) {
        return std::nullopt;
    }
    if (text[0] != '\\') {
        const int c = static_cast<unsigned char>(text[0]);
        text.remove_prefix(1);
        return c;
    }
    if (text.size() < 2) {
        return std::nullopt;
    }
    const char e = text[1];
    text.remove_prefix(2);
    switch (e) {
        case 'n':
            return '\n';
        case 't':
            return '\t';
        case 'r':
            return '\r';
        case 'a':
            return '\a';
        case 'b':
            return '\b';
        case 'f':
            return '\f';
        case 'v':
            return '\v';
        case 'e':
            return 033;
        case 'x': {
            int v = 0;
            int n = 0;
            while (!text.empty() && std::isxdigit(static_cast<unsigned char>(text[0])) != 0) {
                const char d = text[0];
                v = v * 16 + (std::isdigit(static_cast<unsigned char>(d)) != 0
                                  ? d - '0'
                                  : (std::tolower(d) - 'a' + 10));
                text.remove_prefix(1);
                ++n;
            }
            if (n == 0) {
                return std::nullopt;
            }
            return v & 0xff;
        }
        default:
            if (e >= '0' && e <= '7') {
                int v = e - '0';
                for (int i = 0; i < 2 && !text.empty() && text[0] >= '0' && text[0] <= '7'; ++i) {
                    v = v * 8 + (text[0] - '0');
                    text.remove_prefix(1);
                }
                return v & 0xff;
            }
            return static_cast<unsigned char>(e);  // \\ \' \" \? and others stand for themselves
    }
}

std::expected<Value, std::string> evaluate(std::string_view text, Scope& scope) {
    Parser p(text, scope, false);
    return p.parse_all();
}

std::expected<Value, std::string> evaluate_any(std::string_view text, Scope& scope) {
    Parser p(text, scope, false, true);
    return p.parse_all();
}

std::expected<Value, std::string> evaluate_to_comma(std::string_view& text, Scope& scope) {
    Parser p(text, scope, true);
    auto v = p.parse_all();
    if (v) {
        text.remove_prefix(std::min(p.position(), text.size()));
    }
    return v;
}

}  // namespace xpeek
