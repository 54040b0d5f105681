// response.hpp: reading one answer off the front of what a server sent.
#pragma once

#include "load.hpp"
#include "oracle.hpp"

#include <string>

namespace lg {

enum class Parse { need_more, right, wrong };

/// One answer at the front of `in`, removed once complete: a text line, or
/// an HTTP response (status line, header fields, Content-Length body).
/// Compares it with `expected`; a wrong one is described in `got`.
/// `server_closes` is set when an HTTP answer says Connection: close.
Parse parse_answer(Protocol protocol, const Expected& expected, std::string& in, std::string& got, bool& server_closes);

}  // namespace lg
