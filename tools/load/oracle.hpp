// oracle.hpp: what each request must get back, written from the protocol's
// page (docs/protocol.md) and nothing else.
//
// It shares no code with the server: a parser bug mirrored in the expected
// answer would never be caught. Its splitmix64 is even computed another
// way: the n-th output is the mixing function applied to n times the
// generator's constant (the state after n steps), in constant time, where
// the server really runs the n steps (that is WORK's cost).
#pragma once

#include "load.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace lg {

struct Expected {
    std::string label;    // the request as given
    std::string wire;     // the bytes sent
    std::string answer;   // the answer line (text) or body line (HTTP), without LF
    bool prefix = false;  // answer is only a prefix (WHO, STATS, ERR ...)
    int status = 200;     // HTTP only
    bool closes = false;  // the server closes after answering (QUIT, Connection: close)
};

/// The request as sent, and what must come back.
Expected expect(const LoadOptions& options, const std::string& request);

/// Does `got` (an answer line or body line) match?
bool matches(const Expected& expected, std::string_view got);

/// The n-th output of splitmix64 from state 0, in O(1).
uint64_t splitmix64_nth(uint64_t n);

}  // namespace lg
