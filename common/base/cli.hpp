// cli.hpp: the options every model shares, declared once (CLI11).
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sl {

struct CommonOptions {
    std::string host = "127.0.0.1";
    int port = 8080;
    int backlog = 511;  // nginx's and redis's default; Linux caps it at net.core.somaxconn
    int idle_timeout = 30;
    bool trace = false;
};

/// --host --port --backlog --idle-timeout --trace --version (and CLI11's
/// --help). A bad value stops the program with a message naming the option
/// and a non-zero exit, before any socket is opened.
void add_common_options(CLI::App& app, CommonOptions& options);

/// --graceful-timeout SECONDS, for models with children (default 10): how long
/// a stop waits for children to finish their requests before SIGKILL.
void add_graceful_timeout_option(CLI::App& app, int& seconds);

/// A word naming a value of an enum, with its table of (word, value).
template <class E>
using Names = std::vector<std::pair<std::string_view, E>>;

/// "a, b or c": the words of a table, for help texts and errors.
template <class E>
std::string name_list(const Names<E>& names) {
    std::string out;
    for (size_t i = 0; i < names.size(); ++i)
        out += (i == 0 ? "" : i + 1 == names.size() ? " or " : ", ") + std::string(names[i].first);
    return out;
}

/// The value a word names, or nullptr; the word of a value, or "".
template <class E>
const E* find_value(const Names<E>& names, std::string_view word) {
    for (const auto& [w, v] : names)
        if (w == word) return &v;
    return nullptr;
}
template <class E>
std::string_view find_word(const Names<E>& names, E value) {
    for (const auto& [w, v] : names)
        if (v == value) return w;
    return {};
}

/// Accepts the words of `names`; anything else: "unknown value 'x': use a, b or c".
template <class E>
CLI::Validator enum_validator(const Names<E>& names, const std::string& what) {
    return CLI::Validator(
        [names](std::string& text) -> std::string {
            return find_value(names, text) ? std::string() : "unknown value '" + text + "': use " + name_list(names);
        },
        what, "enum");
}

/// An option whose value is one of the words of `names`, stored as the enum
/// when the command line is parsed (once: the program compares enums, never
/// strings). An unknown word is refused with the list of words. With a
/// vector, a comma-separated list of words. Names the default in --help.
template <class E>
CLI::Option* add_enum_option(CLI::App& app, const std::string& flag, E& value, const Names<E>& names,
                             const std::string& help) {
    return app
        .add_option_function<std::string>(
            flag, [&value, names](const std::string& text) { value = *find_value(names, text); }, help)
        ->check(enum_validator(names, "WORD"))
        ->default_str(std::string(find_word(names, value)));
}

template <class E>
CLI::Option* add_enum_option(CLI::App& app, const std::string& flag, std::vector<E>& values, const Names<E>& names,
                             const std::string& help) {
    std::string current;
    for (E v : values) current += (current.empty() ? "" : ",") + std::string(find_word(names, v));
    return app
        .add_option_function<std::vector<std::string>>(
            flag,
            [&values, names](const std::vector<std::string>& texts) {
                values.clear();
                for (const std::string& text : texts) values.push_back(*find_value(names, text));
            },
            help)
        ->delimiter(',')
        ->check(enum_validator(names, "WORD,..."))
        ->default_str(current);
}

/// The number of online CPUs: the default worker count.
int cpu_count();

}  // namespace sl
